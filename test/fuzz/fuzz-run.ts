/**
 * One fuzz run against a `sessiond serve` child process: lanes of attackers on both ports, a
 * control client checking honest work throughout, and the server's memory sampled every second.
 * Used by scripts/fuzz-server.ts (long runs) and server-fuzz.test.ts (a short one in CI).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pauseUnless, type Attack, type AttackContext, type FuzzLimits } from './attack.ts';
import { Control, type ControlReport } from './control.ts';
import { HTTP_ATTACKS, HTTP_HEAVY_ATTACKS, HTTP_SLOW_ATTACKS } from './http-attacks.ts';
import {
  maxClientsFlood,
  RESP_ATTACKS,
  RESP_HEAVY_ATTACKS,
  RESP_SLOW_ATTACKS,
} from './resp-attacks.ts';
import { RespClient } from './resp-client.ts';
import { Rng } from './rng.ts';
import { ServerChild } from './server-child.ts';
import type { Wire } from './wire.ts';

const MiB = 1024 * 1024;

/**
 * The limits the fuzzed server runs with: the defaults scaled down, so that the attacks reach
 * them quickly and the memory they allow is small enough to bound.
 */
export const FUZZ_LIMITS: Readonly<FuzzLimits> = Object.freeze({
  maxClients: 128,
  maxQueryBuffer: 1 * MiB,
  maxBulkLength: 512 * 1024,
  maxArgs: 1024,
  maxInline: 16 * 1024,
  maxOutputBuffer: 1 * MiB,
  maxValueBytes: 16 * 1024,
  maxVars: 64,
  maxDataBytes: 64 * 1024,
  maxBodyBytes: 16 * MiB,
});

/** How many attackers run at once. */
export interface Lanes {
  /** RESP attackers, one input after another. */
  resp: number;
  http: number;
  /** Attackers that hold a connection for seconds: slow bytes, slowloris, deaf subscribers. */
  slow: number;
  /** Attackers pinning big buffers (huge bodies, unread pipelines), one at a time each. */
  heavy: number;
}

export const DEFAULT_LANES: Readonly<Lanes> = Object.freeze({
  resp: 10,
  http: 8,
  slow: 8,
  heavy: 2,
});

export interface FuzzOptions {
  seconds: number;
  seed: number;
  lanes?: Partial<Lanes>;
  /** How long the server idles after the attacks before its final RSS is read (default 2 s). */
  idleMs?: number;
  /** Progress lines during the run; none: quiet. */
  log?: (line: string) => void;
}

export interface MemoryReport {
  baseline: number;
  min: number;
  max: number;
  /** After the attacks and an idle spell (FuzzOptions.idleMs). */
  final: number;
  bound: number;
  /** How the bound was derived, one line per term. */
  why: string[];
}

export interface KindStats {
  count: number;
  /** Time the attacks of this kind took, in all. */
  ms: number;
  /** What the server did (a label per attack, see Attack.run) and how often. */
  outcomes: Map<string, number>;
}

export interface FuzzReport {
  seed: number;
  seconds: number;
  limits: FuzzLimits;
  lanes: Lanes;
  /** Inputs sent per attack kind, with what the server did. */
  sent: Map<string, KindStats>;
  /** Behaviours the contract does not allow, by description, with an example input. */
  findings: Map<string, { count: number; example: string }>;
  control: ControlReport;
  memory: MemoryReport;
  server: {
    alive: boolean;
    /** PING over RESP and GET /healthz both answered after the run. */
    answersAfter: boolean;
    /** Counters from INFO after the run. */
    info: Record<string, string>;
    /** Log lines at level error and above. */
    errors: string[];
  };
  /** Why the run failed; empty when it passed. */
  failures: string[];
}

/** Runs the fuzzer for `seconds` and reports. Always stops the server child before returning. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const limits = { ...FUZZ_LIMITS };
  const lanes = { ...DEFAULT_LANES, ...options.lanes };
  const log = options.log ?? (() => {});
  const server = await ServerChild.start(limits);
  const stop = new AbortController();
  const open = new Set<Wire>();
  const sent = new Map<string, KindStats>();
  const findings = new Map<string, { count: number; example: string }>();
  const rss: number[] = [];
  let control: Control | undefined;
  let controlReport: ControlReport | undefined;
  try {
    control = await Control.start({
      respPort: server.respPort,
      httpPort: server.httpPort,
      intervalMs: 50,
      timeoutMs: 5000,
    });
    await sleep(500);
    const baseline = server.rss() ?? 0;
    const sampler = setInterval(() => {
      const now = server.rss();
      if (now !== undefined) rss.push(now);
    }, 1000);
    const context: AttackContext = {
      respPort: server.respPort,
      httpPort: server.httpPort,
      limits,
      open,
      stopping: () => stop.signal.aborted,
      pause: (ms) => pauseUnless(stop.signal, ms),
      finding: (kind, what, input) => {
        const key = `${kind}: ${what}`;
        const seen = findings.get(key);
        if (seen) seen.count++;
        else findings.set(key, { count: 1, example: input === undefined ? '' : describe(input) });
      },
    };
    const record = (kind: string, outcome: string, ms: number) => {
      const stats = sent.get(kind) ?? { count: 0, ms: 0, outcomes: new Map<string, number>() };
      stats.count++;
      stats.ms += ms;
      stats.outcomes.set(outcome, (stats.outcomes.get(outcome) ?? 0) + 1);
      sent.set(kind, stats);
    };
    const rng = new Rng(options.seed);
    const runners = [
      ...Array.from({ length: lanes.resp }, () => lane(context, rng.fork(), RESP_ATTACKS, record)),
      ...Array.from({ length: lanes.http }, () => lane(context, rng.fork(), HTTP_ATTACKS, record)),
      ...Array.from({ length: lanes.slow }, () =>
        lane(context, rng.fork(), [...RESP_SLOW_ATTACKS, ...HTTP_SLOW_ATTACKS], record),
      ),
      ...Array.from({ length: lanes.heavy }, () =>
        lane(context, rng.fork(), [...RESP_HEAVY_ATTACKS, ...HTTP_HEAVY_ATTACKS], record),
      ),
      floods(context, record),
    ];

    const started = Date.now();
    let lastLog = started;
    while (Date.now() - started < options.seconds * 1000 && server.alive) {
      await sleep(100);
      if (Date.now() - lastLog >= 5000) {
        lastLog = Date.now();
        log(
          `${Math.round((lastLog - started) / 1000)}s: ${total(sent)} inputs, control ${control.ops} ops ` +
            `${control.failures.length} failures, rss ${mib(server.rss() ?? 0)}, ${findings.size} findings`,
        );
      }
    }
    stop.abort();
    // Attacks end their current input; sockets still open after a grace period are cut.
    const ended = Promise.all(runners);
    if (
      (await Promise.race([ended.then(() => true), sleep(15_000, false, { ref: false })])) === false
    ) {
      for (const wire of open) wire.reset();
      await ended;
    }
    for (const wire of open) wire.reset();
    controlReport = await control.stop();
    control = undefined;

    const after = await afterwards(server);
    await sleep(options.idleMs ?? 2000);
    clearInterval(sampler);
    const final = server.rss() ?? 0;
    if (final) rss.push(final);
    const memory = memoryBound(limits, lanes, baseline);
    const report: FuzzReport = {
      seed: options.seed,
      seconds: options.seconds,
      limits,
      lanes,
      sent,
      findings,
      control: controlReport,
      memory: {
        baseline,
        min: Math.min(...rss, baseline),
        max: Math.max(...rss, baseline),
        final,
        ...memory,
      },
      server: { alive: server.alive, ...after, errors: server.errors },
      failures: [],
    };
    report.failures = judgeRun(report);
    return report;
  } finally {
    stop.abort();
    for (const wire of open) wire.reset();
    if (control) await control.stop().catch(() => undefined);
    await server.stop();
  }
}

/** Runs attacks chosen by weight, one after another, until the run stops. */
async function lane(
  context: AttackContext,
  rng: Rng,
  attacks: readonly Attack[],
  record: (kind: string, outcome: string, ms: number) => void,
): Promise<void> {
  const weighted = attacks.map((attack) => [attack, attack.weight] as const);
  while (!context.stopping()) {
    const attack = rng.weighted(weighted);
    // Each input gets a generator of its own: what it draws does not shift the next input.
    const input = rng.fork();
    let outcome: string;
    const started = Date.now();
    try {
      outcome = await attack.run(context, input);
    } catch (error) {
      // A bug of the fuzzer, not of the server; reported so it is not mistaken for a pass.
      context.finding(attack.kind, `the attack itself threw: ${String(error)}`);
      outcome = 'fuzzer-error';
    }
    record(attack.kind, outcome, Date.now() - started);
  }
}

/** A connection flood past maxClients a few seconds in, then every 15 s. */
async function floods(
  context: AttackContext,
  record: (kind: string, outcome: string, ms: number) => void,
): Promise<void> {
  await context.pause(3000);
  while (!context.stopping()) {
    const started = Date.now();
    const outcome = await maxClientsFlood.run(context, new Rng(0));
    record(maxClientsFlood.kind, outcome, Date.now() - started);
    await context.pause(15_000);
  }
}

/** After the attacks: is the server answering on both ports, and what do its counters say? */
async function afterwards(
  server: ServerChild,
): Promise<{ answersAfter: boolean; info: Record<string, string> }> {
  const info: Record<string, string> = {};
  if (!server.alive) return { answersAfter: false, info };
  let answersAfter: boolean;
  let client: RespClient | undefined;
  try {
    client = await RespClient.connect(server.respPort);
    const pong = await client.call('PING');
    const health = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`);
    const body = (await health.json()) as { ok?: boolean };
    answersAfter = pong === 'PONG' && health.status === 200 && body.ok === true;
    // Our sockets are all closed: let the server see the last of them go before counting.
    await sleep(500);
    const text = String(await client.call('INFO'));
    for (const line of text.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0 && !line.startsWith('#')) info[line.slice(0, colon)] = line.slice(colon + 1);
    }
  } catch {
    answersAfter = false;
  } finally {
    client?.close();
  }
  return { answersAfter, info };
}

/**
 * The bound on the server's resident memory, derived from the limits it runs with and how many
 * attackers may pin buffers at once.
 */
function memoryBound(
  limits: FuzzLimits,
  lanes: Lanes,
  baseline: number,
): { bound: number; why: string[] } {
  // A RESP client pins its query buffer (grown by doubling: up to twice maxQueryBuffer), the
  // request's arguments as strings (maxQueryBuffer) and its unsent replies (maxOutputBuffer).
  const perRespClient = 3 * limits.maxQueryBuffer + limits.maxOutputBuffer;
  // An HTTP body in flight: its chunks, their concatenation, the decoded text, the parsed
  // strings, the reply's JSON and that JSON's bytes: six copies at most.
  const perHttpBody = 6 * limits.maxBodyBytes;
  const heavy = lanes.heavy * Math.max(perRespClient, perHttpBody);
  // Other attackers each hold one connection with at most 512 KiB sent (deep nesting, JSON of
  // many values), read twice over (chunks, then their concatenation); a flood's connections
  // send a PING.
  const light = (lanes.resp + lanes.http + lanes.slow) * MiB + limits.maxClients * 64 * 1024;
  // Attackers write to 32 sessions (fz-0..fz-31); sessions made by mutated frames are small
  // and expire after 30 s.
  const store =
    32 * (limits.maxVars * (limits.maxValueBytes + 64) + limits.maxDataBytes) + 16 * MiB;
  // V8 grows its heap ahead of use and gives memory back lazily.
  const headroom = 128 * MiB;
  const bound = baseline + heavy + light + store + headroom;
  return {
    bound,
    why: [
      `baseline ${mib(baseline)} (after start and the first control round)`,
      `+ ${lanes.heavy} heavy lanes x max(RESP client 3 x maxQueryBuffer + maxOutputBuffer = ${mib(perRespClient)}, HTTP body 6 x maxBodyBytes = ${mib(perHttpBody)}) = ${mib(heavy)}`,
      `+ ${lanes.resp + lanes.http + lanes.slow} other lanes x 1 MiB + a flood of ${limits.maxClients} connections x 64 KiB = ${mib(light)}`,
      `+ store: 32 attacker sessions x (maxVars x maxValueBytes + maxDataBytes) + 16 MiB = ${mib(store)}`,
      `+ V8 heap headroom ${mib(headroom)}`,
      `theoretical worst of the RESP port: maxClients x ${mib(perRespClient)} = ${mib(limits.maxClients * perRespClient)}; ` +
        `of the HTTP port: 10 000 connections x ${mib(perHttpBody)} (no serve flag lowers either), so only the ${lanes.heavy} heavy lanes send big bodies`,
    ],
  };
}

/** Why the run failed: the control client failed, the server died or stalled, memory, findings. */
function judgeRun(report: FuzzReport): string[] {
  const failures: string[] = [];
  if (report.control.failures.length > 0) {
    failures.push(`control client failed ${report.control.failures.length} times`);
  }
  if (!report.server.alive) failures.push('the server died');
  else if (!report.server.answersAfter) failures.push('the server did not answer after the run');
  if (report.memory.max > report.memory.bound) {
    failures.push(`RSS ${mib(report.memory.max)} passed the bound ${mib(report.memory.bound)}`);
  }
  if (report.server.errors.length > 0) {
    failures.push(`the server logged ${report.server.errors.length} errors`);
  }
  if (report.findings.size > 0)
    failures.push(`${report.findings.size} kinds of contract violation`);
  const connected = Number(report.server.info['connected_clients'] ?? 0);
  // Every fuzz socket is closed by now; the INFO client and perhaps the health check remain.
  if (connected > 3) failures.push(`${connected} connections still open after the run`);
  return failures;
}

/** The report as text, for people. */
export function formatReport(report: FuzzReport): string {
  const lines: string[] = [];
  lines.push(`seed ${report.seed}, ${report.seconds} s, lanes ${JSON.stringify(report.lanes)}`);
  lines.push(`limits ${JSON.stringify(report.limits)}`);
  lines.push('', `inputs sent: ${total(report.sent)}`);
  lines.push(
    `  ${'kind'.padEnd(22)} ${'sent'.padStart(7)} ${'avg ms'.padStart(7)}  what the server did`,
  );
  for (const [kind, stats] of [...report.sent].sort(([a], [b]) => a.localeCompare(b))) {
    const shown = [...stats.outcomes]
      .sort(([, a], [, b]) => b - a)
      .map(([outcome, n]) => `${outcome} ${n}`)
      .join(', ');
    const average = Math.round(stats.ms / stats.count);
    lines.push(
      `  ${kind.padEnd(22)} ${String(stats.count).padStart(7)} ${String(average).padStart(7)}  ${shown}`,
    );
  }
  const { control, memory, server } = report;
  lines.push(
    '',
    `control: ${control.ops} ops (${control.respOps} RESP, ${control.httpOps} HTTP), ` +
      `${control.failures.length} failures, latency p50 ${ms(control.p50)} p99 ${ms(control.p99)} max ${ms(control.max)}`,
  );
  for (const failure of control.failures.slice(0, 10)) lines.push(`  ${failure}`);
  lines.push(
    `rss: min ${mib(memory.min)}, max ${mib(memory.max)}, final ${mib(memory.final)}; bound ${mib(memory.bound)}:`,
  );
  for (const line of memory.why) lines.push(`  ${line}`);
  const info = [
    'protocol_errors',
    'rejected_connections',
    'output_buffer_disconnects',
    'total_connections_received',
    'total_commands_processed',
    'connected_clients',
  ];
  lines.push(
    `server: ${server.alive ? 'alive' : 'DEAD'}, ${server.answersAfter ? 'answers' : 'does NOT answer'} afterwards; ` +
      info.map((key) => `${key} ${server.info[key] ?? '?'}`).join(', '),
  );
  for (const error of server.errors.slice(0, 10)) lines.push(`  ${error.slice(0, 300)}`);
  lines.push(`findings: ${report.findings.size}`);
  for (const [what, { count, example }] of report.findings) {
    lines.push(`  ${count} x ${what}${example ? `\n      input ${example}` : ''}`);
  }
  lines.push(
    report.failures.length === 0 ? 'PASS' : `FAIL: ${report.failures.join('; ')}`,
    `replay: node scripts/fuzz-server.ts ${report.seconds} --seed ${report.seed}`,
  );
  return lines.join('\n');
}

/** An input for a finding: its length and first bytes, escaped. */
function describe(input: Buffer | string): string {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const shown = JSON.stringify(bytes.toString('latin1', 0, 120));
  return `${bytes.length} bytes: ${shown}${bytes.length > 120 ? '...' : ''}`;
}

function total(sent: Map<string, KindStats>): number {
  let sum = 0;
  for (const stats of sent.values()) sum += stats.count;
  return sum;
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const ms = (value: number) => `${value.toFixed(1)} ms`;
