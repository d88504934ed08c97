/**
 * A recorded history of client operations, Jepsen-style: each operation is an invocation event
 * and a completion event, stamped with `process.hrtime.bigint()`. Every client runs in this one
 * process, so the stamps of different clients compare: an operation whose completion stamp is
 * below another's invocation stamp really finished before the other began.
 *
 * A process is one client doing one operation at a time. A completion is `ok` (the reply),
 * `fail` (the server answered with an error: the operation did not take effect) or `unknown`
 * (a timeout or a lost connection: it may have taken effect, now or later). A process whose
 * operation ended unknown does nothing more, as in Jepsen, since its connection is suspect.
 */
import { isSessiondError } from '../../src/errors.ts';

/** A call a process makes; `sid` is the session, `name` a variable. */
export type Call =
  | { f: 'lock'; sid: string; leaseMs: number; waitMs: number }
  | { f: 'unlock'; sid: string; key: number }
  | { f: 'inc'; sid: string; name: string }
  | { f: 'get'; sid: string; name: string }
  | { f: 'set'; sid: string; name: string; value: string };

/** What a call returned: LOCK's key, UNLOCK's flag, INC's new value, GET's value. */
export type Value = number | boolean | string | null;

/** How an operation ended. */
export type Outcome = 'ok' | 'fail' | 'unknown';

/** One event of a history. */
export type HistoryEvent =
  | { type: 'invoke'; process: number; time: bigint; call: Call }
  | { type: Outcome; process: number; time: bigint; value?: Value; error?: string };

/** An invocation and its completion, paired. */
export interface Operation {
  process: number;
  call: Call;
  invokedAt: bigint;
  /** When the reply (or the error) came; for `unknown`, only when the client gave up on it. */
  completedAt: bigint;
  outcome: Outcome;
  /** The reply, when `ok`. */
  value?: Value;
  /** The error's text, when not `ok`. */
  error?: string;
}

/** A history being recorded by concurrent clients. */
export class History {
  readonly events: HistoryEvent[] = [];
  #busy = new Set<number>();
  #processes = 0;

  /** A new process number, for one more sequential client. */
  newProcess(): number {
    return ++this.#processes;
  }

  /**
   * Runs `perform` as the next operation of process `processId` and records its invocation
   * and completion. Errors are recorded, not thrown: a server's error reply (a SessiondError,
   * e.g. LOCKED) is a `fail`, anything else (TIMEOUT, CONNECTION) is `unknown`.
   * @returns the completion
   * @throws Error when the process already has an operation in flight: the checkers need each
   * process to be sequential
   */
  async run(processId: number, call: Call, perform: () => Promise<Value>): Promise<Operation> {
    if (this.#busy.has(processId)) throw new Error(`process ${processId} is already busy`);
    this.#busy.add(processId);
    const invokedAt = now();
    this.events.push({ type: 'invoke', process: processId, time: invokedAt, call });
    let completion: HistoryEvent;
    try {
      const value = await perform();
      completion = { type: 'ok', process: processId, time: now(), value };
    } catch (error) {
      const type = isSessiondError(error) ? 'fail' : 'unknown';
      // SessiondError and ClientError carry a code word (LOCKED, TIMEOUT); keep it in front.
      const code = (error as { code?: unknown } | null)?.code;
      const text = error instanceof Error ? error.message : String(error);
      const said = typeof code === 'string' ? `${code} ${text}` : text;
      completion = { type, process: processId, time: now(), error: said };
    } finally {
      this.#busy.delete(processId);
    }
    this.events.push(completion);
    return toOperation(call, invokedAt, completion);
  }
}

/** The monotonic clock every event is stamped with, in nanoseconds. */
const now = () => process.hrtime.bigint();

function toOperation(call: Call, invokedAt: bigint, end: HistoryEvent): Operation {
  if (end.type === 'invoke') throw new Error(`process ${end.process} invoked twice`);
  const op: Operation = {
    process: end.process,
    call,
    invokedAt,
    completedAt: end.time,
    outcome: end.type,
  };
  if (end.value !== undefined) op.value = end.value;
  if (end.error !== undefined) op.error = end.error;
  return op;
}

/**
 * Pairs each invocation with its process's next completion, in invocation order. An invocation
 * left without a completion (the run stopped first) counts as `unknown`, completed at the end.
 * @throws Error when a process completes without having invoked, or invokes twice in a row
 */
export function operations(events: readonly HistoryEvent[]): Operation[] {
  const open = new Map<number, { call: Call; at: bigint; index: number }>();
  const ops: Array<Operation | undefined> = [];
  let last = 0n;
  for (const event of events) {
    if (event.time > last) last = event.time;
    if (event.type === 'invoke') {
      if (open.has(event.process)) throw new Error(`process ${event.process} invoked twice`);
      open.set(event.process, { call: event.call, at: event.time, index: ops.length });
      ops.push(undefined);
    } else {
      const started = open.get(event.process);
      if (!started) throw new Error(`process ${event.process} completed without invoking`);
      open.delete(event.process);
      ops[started.index] = toOperation(started.call, started.at, event);
    }
  }
  for (const [process, started] of open) {
    ops[started.index] = {
      process,
      call: started.call,
      invokedAt: started.at,
      completedAt: last,
      outcome: 'unknown',
    };
  }
  return ops.filter((op): op is Operation => op !== undefined);
}

/** A finding of a checker: what rule was broken, and a readable account of the operations. */
export interface Violation {
  kind: string;
  message: string;
}

/**
 * One operation for a message, its times in milliseconds since `origin` (the history's first
 * invocation): `p3 inc s/n → 7 [12.031, 12.410]`.
 */
export function show(op: Operation, origin: bigint): string {
  const at = (t: bigint) => (Number(t - origin) / 1e6).toFixed(3);
  const { f, ...args } = op.call;
  const result = op.outcome === 'ok' ? `→ ${JSON.stringify(op.value)}` : op.outcome;
  return `p${op.process} ${f} ${JSON.stringify(args)} ${result} [${at(op.invokedAt)}, ${at(op.completedAt)}]`;
}

/** The earliest invocation of `ops`, the origin of {@link show}'s times. */
export function originOf(ops: readonly Operation[]): bigint {
  let origin: bigint | undefined;
  for (const op of ops) if (origin === undefined || op.invokedAt < origin) origin = op.invokedAt;
  return origin ?? 0n;
}

/** `items` grouped by `keyOf`, in first-seen order (Map.groupBy, which es2023 lacks). */
export function groupBy<T, K>(items: Iterable<T>, keyOf: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
