/**
 * Soak of a real `sessiond serve` (a script: not a test, not CI).
 *
 *   node --expose-gc scripts/soak.ts [--minutes 10] [--settle-minutes 0] [--sessions 1000000]
 *        [--store memory|sqlite:PATH] [--rate 10000] [--fill-rate 30000] [--p99-ms 10]
 *        [--realtime] [--server-node-flags='--trace-gc ...'] [--server-log PATH]
 *
 * Starts `node bin/sessiond.js serve` as a child process, RESP on a free loopback port and HTTP
 * on another (used for `GET /metrics` only), fills it with `--sessions` sessions of three
 * variables, then for `--minutes` sends a constant, open-loop load of `--rate` commands per
 * second with the project's client over {@link CONNECTIONS} connections:
 *
 * - creates: `CREATE sid TIMEOUT t` and `SET sid user .. visits .. page ..` (two commands), t
 *   uniform in {@link TIMEOUT_RANGE} seconds. A controller sets their rate each second to what
 *   left the store in the last seconds (the server's expired and destroyed counters) plus a
 *   twentieth of the gap to `--sessions`, so the live count stays near it;
 * - updates and reads: SET, INC and GET of one variable, each to a session that the script
 *   knows to be live, 95% of them among the {@link HOT} most recently created (the users who
 *   are active now), 5% among all. Every one touches its session;
 * - expiries: sessions that are no longer picked idle out after their timeout and the server's
 *   sweeper removes them; about 0.2-0.3% of the sessions a second;
 * - destroys: `DESTROY` of a live session ({@link WEIGHTS}: logouts).
 *
 * The rest of the budget goes to GET, SET, INC and DESTROY by {@link WEIGHTS}. The fill
 * gives each session the remaining life it would have in that steady state (see
 * {@link fillTimeout}), so expiries run at the steady rate from the first second, and replaces
 * what expired while it ran, so the timed part starts within 0.5% of `--sessions`.
 *
 * What it measures, per 10 s window and per minute:
 * - latency of every command, from the client call to its reply (node:perf_hooks histograms);
 * - the server's RSS (/proc/PID/status VmRSS, every 5 s) and V8 heap (`nodejs_heap_size_used_bytes`);
 * - live sessions (`sessiond_sessions`) and the created, expired and destroyed counters;
 * - the server's own event-loop delay: prom-client's `nodejs_eventloop_lag_max_seconds`, a
 *   `monitorEventLoopDelay` histogram (10 ms timer) that the server resets at every scrape, read
 *   every second. Its value is the longest gap between two ticks of that 10 ms timer, so it
 *   overstates a stall by up to 10 ms;
 * - as a cross-check from outside, the round trip of a PING sent every 10 ms on a connection of
 *   its own, and the server's GC pauses over 10 ms (`nodejs_gc_duration_seconds`);
 * - CPU: the server's, this script's, and the rest of the machine's (other work on a shared
 *   machine disturbs latency; the tables show how much there was), and how long the server's
 *   event-loop thread waited for a CPU while runnable (/proc/PID/task/PID/schedstat). Each
 *   second with a loop delay of 50 ms or more is listed with that wait: a delay that the wait
 *   accounts for is the scheduler's doing, one that it does not is the server's own work.
 *
 * Verdict, printed at the end (exit code 1 when any fails, or when the server logged a warning or
 * an error):
 * - memory flat: every RSS sample in the second half of the run at most 10% above the median of
 *   the first minute's samples (with `--settle-minutes`, of the measured minutes after those);
 * - latency: the p99 of every 10 s window at most `--p99-ms`;
 * - event loop: the server's event-loop delay under {@link STALL_LIMIT_MS} throughout;
 * - no session lost: no command to a session the script knows is live answered NOSESSION.
 *
 * To see what the server's event loop waited for, `--server-node-flags` passes node and V8 flags
 * to it (e.g. `--server-node-flags='--trace-gc --trace-gc-nvp'`) and `--server-log` copies its
 * standard output, where V8 prints those traces, to a file. V8's trace lines carry the server's
 * own milliseconds since start, so they line up with one another even though V8 buffers them.
 *
 * `--expose-gc` lets the script collect its own garbage from the fill before the timed part,
 * so that a pause of the load generator is less likely to show up as server latency. On a
 * machine shared with other work, `--realtime` (root) takes the scheduler out of the figures.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import {
  createHistogram,
  monitorEventLoopDelay,
  performance,
  type RecordableHistogram,
} from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SessiondClient } from '../src/client/client.ts';
import { isSessiondError } from '../src/errors.ts';

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    /**
     * Minutes of load before the measured minutes that the memory rule leaves out. Until the
     * longest idle timeout (900 s) has passed once, memory still fills with what a steady state
     * holds (the expiry wheel keeps a destroyed session's entry until its old deadline, and V8's
     * committed heap grows to its working size), so `--settle-minutes 15` judges the steady state.
     */
    'settle-minutes': { type: 'string', default: '0' },
    sessions: { type: 'string', default: '1000000' },
    store: { type: 'string', default: 'memory' },
    rate: { type: 'string', default: '10000' },
    'fill-rate': { type: 'string', default: '30000' },
    'p99-ms': { type: 'string', default: '10' },
    realtime: { type: 'boolean', default: false },
    /** Node or V8 flags for the server process, space-separated (e.g. `--trace-gc`). */
    'server-node-flags': { type: 'string', default: '' },
    /** Copies everything the server writes to its standard output (e.g. V8's GC trace) here. */
    'server-log': { type: 'string' },
  },
  strict: true,
});
const SETTLE_MINUTES = Number(flags['settle-minutes']);
/** The whole timed part: the settling minutes, then the measured ones. */
const MINUTES = Number(flags.minutes) + SETTLE_MINUTES;
const SESSIONS = Number(flags.sessions);
const STORE = flags.store;
/** Commands per second in the timed part. */
const RATE = Number(flags.rate);
/**
 * Commands per second at most in the fill: on a shared machine, a fill flat out would take
 * every CPU for as long as it lasts.
 */
const FILL_RATE = Number(flags['fill-rate']);
const P99_BOUND_MS = Number(flags['p99-ms']);
/**
 * Runs the server under SCHED_FIFO (needs root): its threads at priority 1, above every
 * ordinary process, and its event-loop thread and this script's at 2, so that neither waits
 * behind the other work of a shared machine, nor behind the server's own GC threads (which
 * FIFO would not time-slice against it at an equal priority).
 */
const REALTIME = flags.realtime;
for (const [name, value] of Object.entries({ MINUTES, SESSIONS, RATE, FILL_RATE, P99_BOUND_MS })) {
  if (!(value > 0)) throw new Error(`${name}: expected a positive number`);
}
if (!(SETTLE_MINUTES >= 0)) throw new Error('SETTLE_MINUTES: expected zero or more');

const SESSIOND = fileURLToPath(new URL('../bin/sessiond.js', import.meta.url));
const CONNECTIONS = 8;
/** Idle timeouts of the sessions created in the timed part, in seconds. */
const TIMEOUT_RANGE = [120, 900] as const;
/** The most recently created sessions, where 95% of the reads and updates go. */
const HOT = 100_000;
const HOT_SHARE = 0.95;
/** Shares of the budget left after creates. */
const WEIGHTS = { get: 0.4, set: 0.25, inc: 0.25, destroy: 0.1 } as const;
/**
 * A session is picked only when the script's own deadline for it is this far ahead: the server
 * records an access at most once a second (TOUCH_RESOLUTION_MS) and sweeps by whole seconds.
 */
const LIVE_MARGIN_MS = 3000;
const TICK_MS = 5;
const WINDOW_S = 10;
const STALL_LIMIT_MS = 50;
const RSS_GROWTH_LIMIT = 0.1;
/** Creates in flight during the fill. */
const FILL_BATCH = 1024;
/** Commands in flight beyond which the generator stops sending (and counts what it skipped). */
const MAX_IN_FLIGHT = 50_000;
/** USER_HZ, the unit of /proc's CPU times on Linux. */
const TICKS_PER_SECOND = 100;

// ---- the server ----

const serveArgs = [
  ...flags['server-node-flags'].split(' ').filter((flag) => flag !== ''),
  SESSIOND,
  ...['serve', '--store', STORE, '--port', '0', '--http-port', '0', '--log-level', 'info'],
];
const child = REALTIME
  ? spawn('chrt', ['--fifo', '1', process.execPath, ...serveArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  : spawn(process.execPath, serveArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
const serverLog =
  flags['server-log'] === undefined ? undefined : createWriteStream(flags['server-log']);
/** The server's log lines at warn or above, and its standard error: reported at the end. */
const serverComplaints: string[] = [];
const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
const { respPort, httpPort } = await new Promise<{ respPort: number; httpPort: number }>(
  (resolve, reject) => {
    let out = '';
    // Read everything it writes for the whole run: a full pipe would block the server.
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      serverLog?.write(chunk);
      out += chunk;
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const line of lines) {
        const found = /RESP on 127\.0\.0\.1:(\d+); HTTP on 127\.0\.0\.1:(\d+)/.exec(line);
        if (found) resolve({ respPort: Number(found[1]), httpPort: Number(found[2]) });
        if (/"level":(4|5|6)0/.test(line)) serverComplaints.push(line);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => serverComplaints.push(chunk));
    child.once('exit', (code, signal) =>
      reject(new Error(`sessiond serve exited (${code ?? signal}): ${serverComplaints.join('')}`)),
    );
  },
);
// chrt execs the server: the pid is the server's, and so is the id of its main thread.
const serverPid = child.pid!;
if (REALTIME) {
  // Without --all-tasks, chrt -p sets one thread: the event loop's (its id is the pid).
  execFileSync('chrt', ['--fifo', '--pid', '2', String(serverPid)]);
  execFileSync('chrt', ['--fifo', '--pid', '2', String(process.pid)]);
}
// However the script ends, the server ends with it.
process.on('exit', () => child.kill('SIGKILL'));

const connect = () =>
  SessiondClient.connect({
    port: respPort,
    reconnect: false,
    // No timer per command (it costs the generator CPU); the run's own end bounds a hang.
    commandTimeoutMs: 0,
  });
const clients = await Promise.all(Array.from({ length: CONNECTIONS }, connect));
const control = await connect();

// ---- what the script knows of each session ----

/**
 * Slots for 30% more sessions than the target: a slot is freed when its session was destroyed
 * or is past its deadline, and a create takes a free one.
 */
const SLOTS = Math.ceil(SESSIONS * 1.3);
const ids: string[] = new Array<string>(SLOTS).fill('');
/** When the session expires unless touched again (ms since the epoch); 0: gone. */
const deadline = new Float64Array(SLOTS);
const timeoutOf = new Uint16Array(SLOTS);
const free: number[] = [];
for (let slot = SLOTS - 1; slot >= SESSIONS; slot--) free.push(slot);
/** Slots of the most recent creates, a ring. */
const recent = new Int32Array(HOT);
let recentNext = 0;
let recentCount = 0;

let idPool = Buffer.alloc(0);
let idPoolAt = 0;
/** A new 32-character id: 24 random bytes in base64url, like a real session id. */
function newId(): string {
  if (idPoolAt === idPool.length) [idPool, idPoolAt] = [randomBytes(24 * 4096), 0];
  idPoolAt += 24;
  return idPool.toString('base64url', idPoolAt - 24, idPoolAt);
}

const randomInt = (below: number) => Math.floor(Math.random() * below);
const steadyTimeout = () => TIMEOUT_RANGE[0] + randomInt(TIMEOUT_RANGE[1] - TIMEOUT_RANGE[0] + 1);

/**
 * The timeout a session gets in the fill: the remaining life of a session in the steady state.
 * There, a live session's timeout is drawn in proportion to its length (a long-lived session is
 * more likely to be alive at a given moment) and it is uniformly far through it.
 */
function fillTimeout(): number {
  for (;;) {
    const timeout = steadyTimeout();
    if (Math.random() * TIMEOUT_RANGE[1] < timeout)
      return Math.max(5, Math.round(timeout * Math.random()));
  }
}

/** A slot whose session is live with a margin, or -1 after a few misses. */
function pickLive(now: number): number {
  for (let tries = 0; tries < 8; tries++) {
    const slot =
      Math.random() < HOT_SHARE && recentCount > 0
        ? recent[randomInt(recentCount)]!
        : randomInt(SLOTS);
    if (deadline[slot]! > now + LIVE_MARGIN_MS) return slot;
  }
  return -1;
}

/** Returns to `free` the slots whose sessions are surely gone; a slice of them per call. */
let scanAt = 0;
function reclaim(now: number, count: number): void {
  for (let i = 0; i < count; i++) {
    const slot = scanAt;
    scanAt = (scanAt + 1) % SLOTS;
    if (ids[slot] !== '' && deadline[slot]! < now - LIVE_MARGIN_MS) {
      ids[slot] = '';
      deadline[slot] = 0;
      free.push(slot);
    }
  }
}

// ---- measurement ----

type Op = 'create' | 'create-vars' | 'get' | 'set' | 'inc' | 'destroy';
const OPS: readonly Op[] = ['create', 'create-vars', 'get', 'set', 'inc', 'destroy'];

const histogram = () => createHistogram({ lowest: 1, highest: 120_000_000, figures: 3 });

/** What one 10 s window (or the fill) saw. */
interface Window {
  endS: number;
  seconds: number;
  latency: RecordableHistogram;
  done: number;
  live: number;
  modelLive: number;
  rss: number[];
  heap: number[];
  heapAfterMajor: number[];
  loopMaxMs: number;
  pingMaxMs: number;
  generatorLagMs: number;
  gcOver10ms: number;
  gcOver100ms: number;
  created: number;
  expired: number;
  destroyed: number;
  serverCpu: number;
  generatorCpu: number;
  otherCpu: number;
  /** The server main thread's run-queue wait, ms per second, the worst second. */
  waitMaxMs: number;
}

const newWindow = (): Window => ({
  endS: 0,
  seconds: 0,
  latency: histogram(),
  done: 0,
  live: 0,
  modelLive: 0,
  rss: [],
  heap: [],
  heapAfterMajor: [],
  loopMaxMs: 0,
  pingMaxMs: 0,
  generatorLagMs: 0,
  gcOver10ms: 0,
  gcOver100ms: 0,
  created: 0,
  expired: 0,
  destroyed: 0,
  serverCpu: 0,
  generatorCpu: 0,
  otherCpu: 0,
  waitMaxMs: 0,
});

/** The window being measured. */
let current = newWindow();
const windows: Window[] = [];
const byOp = new Map(OPS.map((op) => [op, histogram()]));
const counts = {
  sent: 0,
  done: 0,
  expectedMisses: 0,
  lost: 0,
  errors: 0,
  skipped: 0,
  noTarget: 0,
};
let inFlight = 0;
/** DESTROY's `:0`, which for a session known to be live is a lost session like NOSESSION. */
const DESTROYED_NOTHING = new Error('DESTROY found no session');
let timed = false;
const errorSamples: string[] = [];

/**
 * Counts one command sent and records its latency when the reply comes; `sureLive` says that
 * its session is known to be live, so that NOSESSION means a session was lost.
 * @returns a promise that resolves once the reply is in (never rejects)
 */
function send(op: Op, call: () => Promise<unknown>, sureLive: boolean): Promise<void> {
  const start = performance.now();
  counts.sent++;
  inFlight++;
  const settle = (failure: unknown) => {
    inFlight--;
    const micros = Math.max(1, Math.round((performance.now() - start) * 1000));
    counts.done++;
    current.latency.record(micros);
    current.done++;
    if (timed) byOp.get(op)!.record(micros);
    if (failure === undefined) return;
    if (isSessiondError(failure, 'NOSESSION') || failure === DESTROYED_NOTHING) {
      if (sureLive) counts.lost++;
      else counts.expectedMisses++;
      return;
    }
    counts.errors++;
    const text = failure instanceof Error ? failure.message : JSON.stringify(failure);
    if (errorSamples.length < 5) errorSamples.push(`${op}: ${text}`);
  };
  return call().then(
    () => settle(undefined),
    (error: unknown) => settle(error ?? 'error'),
  );
}

const clientOf = (slot: number) => clients[slot % CONNECTIONS]!;

/** CREATE and SET of its three variables, on the same connection so that they run in order. */
function create(slot: number, timeout: number, now: number): Promise<unknown> {
  const id = newId();
  ids[slot] = id;
  timeoutOf[slot] = timeout;
  deadline[slot] = now + timeout * 1000;
  recent[recentNext] = slot;
  recentNext = (recentNext + 1) % HOT;
  recentCount = Math.min(HOT, recentCount + 1);
  const client = clientOf(slot);
  const n = counts.sent;
  return Promise.all([
    send('create', () => client.create(id, { timeout }), false),
    send(
      'create-vars',
      () => client.setArray(id, { user: `user${n}`, visits: '0', page: `/products/${n % 5000}` }),
      true,
    ),
  ]);
}

/** One GET, SET, INC or DESTROY of a live session. */
function update(op: 'get' | 'set' | 'inc' | 'destroy', now: number): void {
  const slot = pickLive(now);
  if (slot === -1) {
    counts.noTarget++;
    return;
  }
  const id = ids[slot]!;
  const client = clientOf(slot);
  if (op === 'destroy') {
    deadline[slot] = 0;
    ids[slot] = '';
    free.push(slot);
    const call = async () => {
      if (!(await client.destroy(id))) throw DESTROYED_NOTHING;
    };
    void send('destroy', call, true);
    return;
  }
  // Every command here records an access: the session lives on from now.
  deadline[slot] = Math.max(deadline[slot]!, now + timeoutOf[slot]! * 1000);
  const call =
    op === 'get'
      ? () => client.get(id, 'user')
      : op === 'set'
        ? () => client.set(id, 'page', `/products/${randomInt(5000)}`)
        : () => client.inc(id, 'visits');
  void send(op, call, true);
}

// ---- samples of the server ----

interface Metrics {
  sessions: number;
  created: number;
  expired: number;
  destroyed: number;
  heapUsed: number;
  loopMaxMs: number;
  /** GC pauses so far, all kinds, and how many of them were at most 10 ms, 100 ms. */
  gc: number;
  gcUpTo10ms: number;
  gcUpTo100ms: number;
  /** Major (mark-compact) collections so far. */
  gcMajor: number;
}

async function scrape(): Promise<Metrics> {
  const response = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
  const values = new Map<string, number>();
  let gc = 0;
  let gcUpTo10ms = 0;
  let gcUpTo100ms = 0;
  let gcMajor = 0;
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const key = line.slice(0, space);
    const value = Number(line.slice(space + 1));
    values.set(key, value);
    if (key === 'nodejs_gc_duration_seconds_count{kind="major"}') gcMajor = value;
    if (key.startsWith('nodejs_gc_duration_seconds_count')) gc += value;
    else if (key.startsWith('nodejs_gc_duration_seconds_bucket{le="0.01"')) gcUpTo10ms += value;
    else if (key.startsWith('nodejs_gc_duration_seconds_bucket{le="0.1"')) gcUpTo100ms += value;
  }
  const read = (key: string) => values.get(key) ?? NaN;
  return {
    sessions: read('sessiond_sessions'),
    created: read('sessiond_sessions_created_total'),
    expired: read('sessiond_sessions_expired_total'),
    destroyed: read('sessiond_sessions_destroyed_total'),
    heapUsed: read('nodejs_heap_size_used_bytes'),
    loopMaxMs: read('nodejs_eventloop_lag_max_seconds') * 1000,
    gc,
    gcUpTo10ms,
    gcUpTo100ms,
    gcMajor,
  };
}

function rssBytes(): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${serverPid}/status`, 'utf8'))![1];
  return Number(kb) * 1024;
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU seconds the whole machine has spent busy (every process, every core), from /proc/stat. */
function machineSeconds(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / TICKS_PER_SECOND;
}

/** The script's own event-loop delay: when it is high, latency includes the generator's lag. */
const generatorLag = monitorEventLoopDelay({ resolution: 10 });
generatorLag.enable();

let last = { metrics: await scrape(), sched: schedstat(serverPid), at: performance.now() };
let cpuMark = { at: performance.now(), server: 0, generator: 0, machine: 0 };
const markCpu = () => {
  cpuMark = {
    at: performance.now(),
    server: cpuSeconds(serverPid),
    generator: cpuSeconds('self'),
    machine: machineSeconds(),
  };
};
markCpu();
/** Removals per second (expired + destroyed), smoothed; the controller's feed-forward. */
let removalRate = SESSIONS / ((TIMEOUT_RANGE[0] + TIMEOUT_RANGE[1]) / 2);
let createRate = removalRate;
let sampleCount = 0;

/** Samples one at a time: the fill's timer and the timed part's loop both ask for them. */
let sampling = Promise.resolve();
const sample = () => (sampling = sampling.then(takeSample));

/** One sample a second: metrics into the window, the controller, RSS every 5 s. */
async function takeSample(): Promise<void> {
  const metrics = await scrape();
  const now = performance.now();
  const seconds = (now - last.at) / 1000;
  const before = last.metrics;
  current.live = metrics.sessions;
  current.heap.push(metrics.heapUsed);
  // Right after a mark-compact the heap holds little but live data: where a leak would show.
  if (metrics.gcMajor > before.gcMajor) current.heapAfterMajor.push(metrics.heapUsed);
  current.loopMaxMs = Math.max(current.loopMaxMs, metrics.loopMaxMs);
  current.gcOver10ms += metrics.gc - metrics.gcUpTo10ms - (before.gc - before.gcUpTo10ms);
  current.gcOver100ms += metrics.gc - metrics.gcUpTo100ms - (before.gc - before.gcUpTo100ms);
  current.created += metrics.created - before.created;
  current.expired += metrics.expired - before.expired;
  current.destroyed += metrics.destroyed - before.destroyed;
  const removed = metrics.expired - before.expired + (metrics.destroyed - before.destroyed);
  removalRate = 0.7 * removalRate + (0.3 * removed) / seconds;
  // Replace what left, and close a twentieth of the gap to the target each second.
  createRate = Math.min(Math.max(removalRate + (SESSIONS - metrics.sessions) / 20, 0), 0.35 * RATE);
  if (sampleCount++ % 5 === 0) current.rss.push(rssBytes());
  current.generatorLagMs = Math.max(current.generatorLagMs, generatorLag.max / 1e6);
  generatorLag.reset();
  const sched = schedstat(serverPid);
  const cpuMs = sched.runMs - last.sched.runMs;
  const waitMs = sched.waitMs - last.sched.waitMs;
  current.waitMaxMs = Math.max(current.waitMaxMs, waitMs / seconds);
  if (metrics.loopMaxMs >= STALL_LIMIT_MS) {
    stalls.push({
      at: timed ? `${Math.round((now - timedStart) / 1000)} s` : 'fill',
      loopMs: metrics.loopMaxMs,
      cpuMs: cpuMs / seconds,
      waitMs: waitMs / seconds,
      gcOver10ms: metrics.gc - metrics.gcUpTo10ms - (before.gc - before.gcUpTo10ms),
      gcOver100ms: metrics.gc - metrics.gcUpTo100ms - (before.gc - before.gcUpTo100ms),
    });
  }
  last = { metrics, sched, at: now };
}

/**
 * Time the server's main thread (the event loop) spent on a CPU and runnable but waiting for
 * one, in ms, from /proc/PID/task/PID/schedstat. A stall with the thread off the CPU, waiting,
 * is the machine's other work taking the CPU, not the server's own.
 */
function schedstat(pid: number): { runMs: number; waitMs: number } {
  const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ');
  return { runMs: Number(run) / 1e6, waitMs: Number(wait) / 1e6 };
}

/** A second in which the server's event loop was delayed by STALL_LIMIT_MS or more. */
interface Stall {
  at: string;
  loopMs: number;
  /** The main thread's CPU time and run-queue wait in that second, ms per second. */
  cpuMs: number;
  waitMs: number;
  gcOver10ms: number;
  gcOver100ms: number;
}
const stalls: Stall[] = [];

/** Closes the current window: CPU shares, the script's own count of live sessions. */
function closeWindow(endS: number, seconds: number): Window {
  const done = current;
  const at = performance.now();
  const wall = (at - cpuMark.at) / 1000;
  const [server, generator, machine] = [
    cpuSeconds(serverPid),
    cpuSeconds('self'),
    machineSeconds(),
  ];
  done.serverCpu = (server - cpuMark.server) / wall;
  done.generatorCpu = (generator - cpuMark.generator) / wall;
  done.otherCpu = Math.max(
    0,
    (machine - cpuMark.machine) / wall - done.serverCpu - done.generatorCpu,
  );
  markCpu();
  const now = Date.now();
  let live = 0;
  for (let slot = 0; slot < SLOTS; slot++) if (deadline[slot]! > now) live++;
  done.modelLive = live;
  done.endS = endS;
  done.seconds = seconds;
  current = newWindow();
  return done;
}

// ---- the PING prober ----

let probing = true;
async function probe(): Promise<void> {
  while (probing) {
    const start = performance.now();
    await control.ping();
    const ms = performance.now() - start;
    current.pingMaxMs = Math.max(current.pingMaxMs, ms);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 10 - ms)));
  }
}

// ---- formatting ----

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (micros: number) => (micros / 1000).toFixed(micros < 10_000 ? 2 : 1);
const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
const maxOf = (xs: readonly number[]) => xs.reduce((a, b) => Math.max(a, b), -Infinity);
const minOf = (xs: readonly number[]) => xs.reduce((a, b) => Math.min(a, b), Infinity);
const median = (xs: readonly number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

/** A markdown table; the first column left-aligned, the others right-aligned. */
function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  const rule = `| ${widths.map((w, c) => (c === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

const HEAD = [
  'window',
  'cmds/s',
  'live',
  'created/s',
  'expired/s',
  'destroyed/s',
  'p50 ms',
  'p99 ms',
  'max ms',
  'RSS MB',
  'heap MB',
  'heap after major GC MB',
  'loop max ms',
  'PING max ms',
  'GC >10/>100ms',
  'gen lag ms',
  'srv wait ms/s',
  'CPU srv/gen/other',
];

/** A table row of one window, or of several merged. */
function row(label: string, parts: readonly Window[]): string[] {
  const latency = histogram();
  for (const part of parts) latency.add(part.latency);
  const seconds = parts.reduce((sum, p) => sum + p.seconds, 0);
  const sum = (key: 'done' | 'created' | 'expired' | 'destroyed') =>
    parts.reduce((total, p) => total + p[key], 0);
  const avg = (key: 'serverCpu' | 'generatorCpu' | 'otherCpu') =>
    parts.reduce((total, p) => total + p[key] * p.seconds, 0) / seconds;
  const lastPart = parts.at(-1)!;
  return [
    label,
    fmt(sum('done') / seconds),
    fmt(lastPart.live),
    fmt(sum('created') / seconds),
    fmt(sum('expired') / seconds),
    fmt(sum('destroyed') / seconds),
    ms(latency.percentile(50)),
    ms(latency.percentile(99)),
    ms(latency.max),
    mb(maxOf(parts.flatMap((p) => p.rss))),
    `${mb(minOf(parts.flatMap((p) => p.heap)))}-${mb(maxOf(parts.flatMap((p) => p.heap)))}`,
    parts.some((p) => p.heapAfterMajor.length > 0)
      ? mb(minOf(parts.flatMap((p) => p.heapAfterMajor)))
      : '-',
    maxOf(parts.map((p) => p.loopMaxMs)).toFixed(1),
    maxOf(parts.map((p) => p.pingMaxMs)).toFixed(1),
    `${parts.reduce((total, p) => total + p.gcOver10ms, 0)}/${parts.reduce((total, p) => total + p.gcOver100ms, 0)}`,
    maxOf(parts.map((p) => p.generatorLagMs)).toFixed(1),
    maxOf(parts.map((p) => p.waitMaxMs)).toFixed(0),
    `${(avg('serverCpu') * 100).toFixed(0)}/${(avg('generatorCpu') * 100).toFixed(0)}/${(avg('otherCpu') * 100).toFixed(0)}%`,
  ];
}

const progress = (cells: readonly string[]) =>
  console.log(cells.map((cell, i) => (i === 0 ? cell.padEnd(8) : `${HEAD[i]} ${cell}`)).join('  '));

// ---- the run ----

const startedAt = new Date();
console.log(
  `soak: sessiond serve --store ${STORE} (pid ${serverPid}), ${fmt(SESSIONS)} sessions, ` +
    `${MINUTES} min at ${fmt(RATE)} commands/s over ${CONNECTIONS} connections; p99 bound ${P99_BOUND_MS} ms` +
    (REALTIME ? '; SCHED_FIFO (server threads 1, event loops 2)' : ''),
);
console.log(
  `node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ` +
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, started ${startedAt.toISOString()}`,
);

const fillSampler = setInterval(() => void sample(), 1000);
const prober = probe();

// Fill: FILL_BATCH creates at a time, no faster than --fill-rate commands a second.
const fillStart = performance.now();
let fillCreates = 0;
async function fill(count: number, slotOf: (i: number) => number): Promise<void> {
  for (let i = 0; i < count; i += FILL_BATCH) {
    const notBefore = fillStart + ((fillCreates * 2) / FILL_RATE) * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, notBefore - performance.now())));
    const now = Date.now();
    const batch: Array<Promise<unknown>> = [];
    for (let j = i; j < Math.min(count, i + FILL_BATCH); j++) {
      batch.push(create(slotOf(j), fillTimeout(), now));
    }
    fillCreates += batch.length;
    await Promise.all(batch);
  }
}
await fill(SESSIONS, (i) => i);
// The sessions given the shortest lives expired during the fill: replace them.
for (;;) {
  await sample();
  const deficit = SESSIONS - last.metrics.sessions;
  if (deficit <= SESSIONS * 0.005) break;
  reclaim(Date.now(), SLOTS);
  await fill(Math.min(deficit, free.length), () => free.pop()!);
}
clearInterval(fillSampler);
const fillSeconds = (performance.now() - fillStart) / 1000;
await sample();
const filled = closeWindow(0, fillSeconds);
console.log(
  `fill: ${fmt(fillCreates)} sessions (${fmt(counts.done)} commands) in ${fillSeconds.toFixed(1)} s, ` +
    `${fmt(counts.done / fillSeconds)} commands/s; live ${fmt(filled.live)}, RSS ${mb(maxOf(filled.rss))} MB, ` +
    `server loop max ${filled.loopMaxMs.toFixed(1)} ms, GC pauses >10 ms ${filled.gcOver10ms}`,
);
(globalThis as { gc?: () => void }).gc?.();

// The timed part: every TICK_MS, send what the schedule says is due by now.
await sample();
current = newWindow();
markCpu();
timed = true;
const timedStart = performance.now();
const timedEnd = timedStart + MINUTES * 60_000;
let due = 0;
let createCredit = 0;
let lastTick = timedStart;
const budgetWeights = Object.entries(WEIGHTS) as Array<[keyof typeof WEIGHTS, number]>;
const ticker = setInterval(() => {
  const at = performance.now();
  const now = Date.now();
  reclaim(now, Math.ceil(SLOTS / (10_000 / TICK_MS)));
  let budget = Math.floor(((Math.min(at, timedEnd) - timedStart) * RATE) / 1000) - due;
  due += budget;
  createCredit = Math.min(createCredit + (createRate * (at - lastTick)) / 1000, createRate * 0.1);
  lastTick = at;
  if (inFlight > MAX_IN_FLIGHT) {
    counts.skipped += budget;
    return;
  }
  while (createCredit >= 1 && budget >= 2 && free.length > 0) {
    void create(free.pop()!, steadyTimeout(), now);
    createCredit--;
    budget -= 2;
  }
  for (; budget > 0; budget--) {
    let pick = Math.random();
    for (const [op, weight] of budgetWeights) {
      pick -= weight;
      if (pick < 0 || op === 'destroy') {
        update(op, now);
        break;
      }
    }
  }
}, TICK_MS);

const totalSeconds = Math.round(MINUTES * 60);
let windowStart = timedStart;
for (let second = 1; second <= totalSeconds; second++) {
  const at = timedStart + second * 1000;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())));
  const last = second === totalSeconds;
  if (last) {
    clearInterval(ticker);
    // The last window includes the replies to what was sent before the end.
    const drainBy = performance.now() + 30_000;
    while (inFlight > 0 && performance.now() < drainBy)
      await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await sample();
  if (second % WINDOW_S !== 0 && !last) continue;
  const closed = closeWindow(second, (performance.now() - windowStart) / 1000);
  windowStart = performance.now();
  windows.push(closed);
  progress(row(`${closed.endS} s`, [closed]));
}
timed = false;
probing = false;
await prober;
const endedAt = new Date();

// ---- report ----

const perMinute: string[][] = [];
for (let m = 0; m * 6 < windows.length; m++) {
  perMinute.push(row(`${m + 1}`, windows.slice(m * 6, m * 6 + 6)));
}
console.log(`\nper minute (${startedAt.toISOString()} to ${endedAt.toISOString()}):\n`);
console.log(
  table(['minute', ...HEAD.slice(1)], [row('fill', [filled]), ...perMinute, row('all', windows)]),
);

console.log('\nper command, whole timed part:\n');
console.log(
  table(
    ['command', 'count', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms'],
    OPS.map((op) => {
      const h = byOp.get(op)!;
      return [
        op,
        fmt(h.count),
        ms(h.percentile(50)),
        ms(h.percentile(99)),
        ms(h.percentile(99.9)),
        ms(h.max),
      ];
    }),
  ),
);
console.log(
  `\ncommands sent ${fmt(counts.sent)}, answered ${fmt(counts.done)}; expected NOSESSION ` +
    `${fmt(counts.expectedMisses)}; skipped for lack of a live session ${fmt(counts.noTarget)}; ` +
    `skipped over ${fmt(MAX_IN_FLIGHT)} in flight ${fmt(counts.skipped)}; other errors ${fmt(counts.errors)}`,
);
for (const line of errorSamples) console.log(`  error: ${line}`);

// Verdict.
const measured = windows.slice((SETTLE_MINUTES * 60) / WINDOW_S);
const firstMinute = measured.slice(0, 60 / WINDOW_S).flatMap((w) => w.rss);
const secondHalf = measured.slice(Math.floor(measured.length / 2)).flatMap((w) => w.rss);
const baseline = median(firstMinute);
const highest = maxOf(secondHalf);
const memoryFlat = highest <= baseline * (1 + RSS_GROWTH_LIMIT);
const worst = windows.reduce((a, b) =>
  b.latency.percentile(99) > a.latency.percentile(99) ? b : a,
);
const worstP99 = worst.latency.percentile(99) / 1000;
const latencyHeld = worstP99 <= P99_BOUND_MS;
const overall = histogram();
for (const w of windows) overall.add(w.latency);
const stall = windows.reduce((a, b) => (b.loopMaxMs > a.loopMaxMs ? b : a));
const noStall = stall.loopMaxMs < STALL_LIMIT_MS;
/** The loop delay of a second is accounted for when the event loop waited as long for a CPU. */
const starved = (s: Stall) => s.waitMs >= s.loopMs - 10;
const timedStalls = stalls.filter((s) => s.at !== 'fill');
const ownStalls = timedStalls.filter((s) => !starved(s));
const liveCounts = windows.map((w) => w.live);
const verdict = [
  [
    memoryFlat,
    `memory flat: RSS in the second half at most ${mb(highest)} MB, ` +
      `${(((highest - baseline) / baseline) * 100).toFixed(1)}% over the first minute's median ` +
      (SETTLE_MINUTES > 0 ? `after ${SETTLE_MINUTES} settling minutes ` : '') +
      `${mb(baseline)} MB (rule: at most +${RSS_GROWTH_LIMIT * 100}%)`,
  ],
  [
    latencyHeld,
    `p99 per ${WINDOW_S} s window: worst ${worstP99.toFixed(2)} ms (window ending ${worst.endS} s), ` +
      `bound ${P99_BOUND_MS} ms; whole run p99 ${ms(overall.percentile(99))} ms`,
  ],
  [
    noStall,
    `server event loop: max delay ${stall.loopMaxMs.toFixed(1)} ms (window ending ${stall.endS} s; ` +
      `monitorEventLoopDelay, includes the 10 ms timer period), limit ${STALL_LIMIT_MS} ms; ` +
      `max PING round trip ${maxOf(windows.map((w) => w.pingMaxMs)).toFixed(1)} ms; ` +
      `${timedStalls.length} seconds over the limit, ${ownStalls.length} of them not accounted ` +
      `for by the main thread's run-queue wait` +
      (ownStalls.length > 0
        ? ` (largest ${maxOf(ownStalls.map((s) => s.loopMs)).toFixed(1)} ms)`
        : ''),
  ],
  [
    counts.lost === 0 && counts.errors === 0,
    `sessions: live ${fmt(minOf(liveCounts))} to ${fmt(maxOf(liveCounts))}, at the end ` +
      `${fmt(windows.at(-1)!.live)} by the server's count and ${fmt(windows.at(-1)!.modelLive)} ` +
      `by the script's own deadlines; ` +
      `NOSESSION for a session known live ${fmt(counts.lost)}; other errors ${fmt(counts.errors)}`,
  ],
] as const;
if (stalls.length > 0) {
  const worstStalls = [...stalls].sort((a, b) => b.loopMs - a.loopMs).slice(0, 15);
  console.log(
    `\nseconds with the server's event loop delayed ${STALL_LIMIT_MS} ms or more: ${stalls.length} ` +
      `(${stalls.filter((s) => s.at !== 'fill').length} in the timed part), ` +
      `${stalls.filter(starved).length} of them with the main thread waiting for a CPU at least as ` +
      `long; the ${worstStalls.length} worst:\n`,
  );
  console.log(
    table(
      ['at', 'loop max ms', 'main thread CPU ms/s', 'run-queue wait ms/s', 'GC >10/>100ms'],
      worstStalls.map((s) => [
        s.at,
        s.loopMs.toFixed(1),
        s.cpuMs.toFixed(0),
        s.waitMs.toFixed(0),
        `${s.gcOver10ms}/${s.gcOver100ms}`,
      ]),
    ),
  );
}
console.log('\nverdict:');
for (const [ok, text] of verdict) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${text}`);
if (serverComplaints.length > 0) {
  console.log(`server warnings and errors (${serverComplaints.length}):`);
  for (const line of serverComplaints.slice(0, 10)) console.log(`  ${line.trim()}`);
}

await Promise.all([...clients, control].map((client) => client.disconnect()));
child.kill('SIGTERM');
const killTimer = setTimeout(() => child.kill('SIGKILL'), 10_000);
await exited;
clearTimeout(killTimer);
process.exitCode = verdict.every(([ok]) => ok) && serverComplaints.length === 0 ? 0 : 1;
