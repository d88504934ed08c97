/** What every fuzz attack gets to work with, and what it reports. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Rng } from './rng.ts';
import type { Wire } from './wire.ts';

/** The limits the fuzzed server runs with (its `serve` flags), which the attacks aim past. */
export interface FuzzLimits {
  maxClients: number;
  maxQueryBuffer: number;
  maxBulkLength: number;
  maxArgs: number;
  maxInline: number;
  maxOutputBuffer: number;
  maxValueBytes: number;
  maxVars: number;
  maxDataBytes: number;
  /** The HTTP port's body limit: not a flag, the server's default (16 MiB). */
  maxBodyBytes: number;
}

export interface AttackContext {
  respPort: number;
  httpPort: number;
  limits: FuzzLimits;
  /** Every fuzz socket still open, destroyed when the run ends. */
  open: Set<Wire>;
  /** True once the run is ending: long attacks give up early. */
  stopping(): boolean;
  /** Sleeps `ms`, or less when the run ends. */
  pause(ms: number): Promise<void>;
  /**
   * Records a server behaviour the contract does not allow (a reply without an error code, a
   * 500, no answer where one is due), with the input that caused it.
   */
  finding(kind: string, what: string, input?: Buffer | string): void;
}

/**
 * One kind of abuse: `run` sends one generated input and judges the answer, returning a short
 * label of what the server did ("protocol-error", "400", "closed", ...) for the report.
 */
export interface Attack {
  kind: string;
  weight: number;
  run(context: AttackContext, rng: Rng): Promise<string>;
}

/** A sleep that ends early when `signal` aborts. */
export async function pauseUnless(signal: AbortSignal, ms: number): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => {});
}
