/**
 * The crash trial: runs a write load against a `sessiond serve` process, kills it with SIGKILL
 * at a random moment (with the store's own processes, for the targets that have them), starts
 * it again on the same store and checks that every write the client saw acknowledged is there.
 * Expectations carry over from kill to kill, so a write acknowledged before the first kill must
 * still be there after the last.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { SessiondClient } from '../../src/client/client.ts';
import { SessiondError } from '../../src/errors.ts';
import { dataNumber, expectation, settle, type Expectation, type Observed } from './ledger.ts';
import type { CrashTarget } from './targets.ts';
import { seededRandom } from '../support/random.ts';

/** How a trial runs. */
export interface TrialOptions {
  /** How many times sessiond is killed; each kill is followed by a restart and a check. */
  kills: number;
  /** Concurrent writers, one connection and one session of their own each. */
  writers: number;
  /** Acknowledged writes to wait for in each round before the random delay begins. */
  minWritesBeforeKill: number;
  /** The kill comes a uniformly random 0..maxKillDelayMs after that. */
  maxKillDelayMs: number;
  /** Seeds the random delays, so that a run can be repeated. */
  seed: number;
  /** Told of each round as it ends. */
  log?: (line: string) => void;
}

/** What a trial found. */
export interface TrialResult {
  readonly target: string;
  kills: number;
  /** Writes the client saw acknowledged, every one of them checked after the next kill. */
  acknowledged: number;
  /** Acknowledged writes missing after a restart: must be 0 for a durable target. */
  lost: number;
  /** Effects no write could have produced (double-counted INCs, values never sent). */
  phantom: number;
  /** Writes in flight at the kills, and how many of those turned out applied. */
  inFlight: number;
  applied: number;
  /** Sessions checked after the last restart. */
  sessions: number;
  /** Failures of writes before the kill was sent: each is a bug or a broken run. */
  unexpected: string[];
  /** The first few findings, for the report. */
  findings: string[];
}

const SESSIOND = fileURLToPath(new URL('../../bin/sessiond.js', import.meta.url));

/** A `sessiond serve` child process. */
interface Serve {
  readonly child: ChildProcess;
  readonly port: number;
  readonly exited: Promise<void>;
}

/**
 * Runs `sessiond serve <args> --port 0 --http-port=-1` and resolves with its RESP port, read from
 * its "RESP on host:port" log line. Unlike test/multi-server's spawnServe, it takes any flags
 * (--durability) and leaves out the SESSIOND_* variables of this process's environment.
 */
async function startServe(args: readonly string[]): Promise<Serve> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('SESSIOND_')),
  );
  const child = spawn(
    process.execPath,
    // HTTP off: the trial speaks RESP only, and the port would be one more listener to secure.
    [SESSIOND, 'serve', ...args, '--host', '127.0.0.1', '--port', '0', '--http-port=-1'],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  let stdout = '';
  let stderr = '';
  let found = false;
  // Both pipes are read to the end, so the server never blocks on a full one.
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8192);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        if (found) return;
        stdout += chunk;
        const match = /RESP on 127\.0\.0\.1:(\d+)/.exec(stdout);
        if (match) {
          found = true;
          resolve(Number(match[1]));
        }
      });
      child.once('exit', (code, signal) =>
        reject(
          new Error(`sessiond serve ${args.join(' ')} exited (${code ?? signal}):\n${stderr}`),
        ),
      );
      child.once('error', reject);
    });
    return { child, port, exited };
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
}

/** A client of the server listening on `port`, on loopback. */
function connect(port: number): Promise<SessiondClient> {
  return SessiondClient.connect({
    host: '127.0.0.1',
    port,
    // Never resent after a lost connection: a write is acknowledged once, by its own reply.
    reconnect: false,
    // Long enough for a loaded machine: a timeout here would be a flake, not a finding.
    commandTimeoutMs: 60_000,
  });
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** The sessions of one trial and the running totals. */
class Ledger {
  readonly sessions = new Map<string, Expectation>();
  /** Each writer's session, by writer number. */
  readonly mains: Array<Expectation | undefined> = [];
  acknowledged = 0;
  unexpected: string[] = [];
  readonly prefix: string;
  #next = 0;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** A new session id of writer `writer`, expected from now on. */
  add(writer: number, role: 'main' | 'extra'): Expectation {
    const id = `${this.prefix}-w${writer}-${role === 'main' ? 'm' : 'x'}${this.#next++}`;
    const entry = expectation(id);
    this.sessions.set(id, entry);
    return entry;
  }
}

/** The kinds of write a writer cycles through, after creating its session. */
const CYCLE = ['inc', 'set', 'data', 'inc', 'set', 'data', 'create'] as const;

/**
 * One writer: creates its session if it has none, then writes one command at a time until a
 * write fails, which after the kill every write does. A write is recorded as in flight before
 * it is sent and as acknowledged once answered.
 */
async function runWriter(
  client: SessiondClient,
  ledger: Ledger,
  writer: number,
  killed: () => boolean,
): Promise<void> {
  try {
    let main = ledger.mains[writer];
    if (main === undefined) {
      main = ledger.add(writer, 'main');
      ledger.mains[writer] = main;
      // TIMEOUT 0: the sessions never idle-expire, however long a restart takes.
      if (!(await client.create(main.id, { data: 'd0', timeout: 0 }))) {
        throw new Error(`CREATE ${main.id} found it existing`);
      }
      main.created = 'acked';
      ledger.acknowledged++;
    }
    for (let op = 0; ; op++) {
      switch (CYCLE[op % CYCLE.length]!) {
        case 'inc': {
          main.counter.pending = 1;
          const value = Number(await client.inc(main.id, 'counter'));
          if (value !== main.counter.acked + 1) {
            throw new Error(`INC ${main.id} answered ${value}, not ${main.counter.acked + 1}`);
          }
          main.counter.acked = value;
          main.counter.pending = 0;
          break;
        }
        case 'set': {
          const value = main.seq.acked + 1;
          main.seq.pending = value;
          await client.set(main.id, 'seq', String(value));
          main.seq.acked = value;
          main.seq.pending = null;
          break;
        }
        case 'data': {
          const value = main.data.acked + 1;
          main.data.pending = value;
          await client.setData(main.id, `d${value}`);
          main.data.acked = value;
          main.data.pending = null;
          break;
        }
        case 'create': {
          const extra = ledger.add(writer, 'extra');
          if (!(await client.create(extra.id, { data: 'd0', timeout: 0 }))) {
            throw new Error(`CREATE ${extra.id} found it existing`);
          }
          extra.created = 'acked';
          break;
        }
      }
      ledger.acknowledged++;
    }
  } catch (error) {
    // After the kill every write fails: those are the writes in flight, left unknown.
    if (!killed()) ledger.unexpected.push(`writer ${writer}: ${String(error)}`);
  }
}

/** What one session holds now; null when it is not there. */
async function observe(client: SessiondClient, id: string): Promise<Observed | null> {
  try {
    const [data, vars] = await Promise.all([client.getData(id), client.getArray(id)]);
    return {
      data: dataNumber(data),
      seq: Number(vars.get('seq') ?? '0'),
      counter: Number(vars.get('counter') ?? '0'),
    };
  } catch (error) {
    if (error instanceof SessiondError && error.code === 'NOSESSION') return null;
    throw error;
  }
}

/** How many sessions are read at once when checking; the client pipelines them. */
const CHECK_BATCH = 200;

async function check(port: number, ledger: Ledger, result: TrialResult): Promise<void> {
  const client = await connect(port);
  try {
    const entries = [...ledger.sessions.values()];
    for (let i = 0; i < entries.length; i += CHECK_BATCH) {
      const batch = entries.slice(i, i + CHECK_BATCH);
      const observed = await Promise.all(batch.map((entry) => observe(client, entry.id)));
      batch.forEach((entry, j) => {
        const { verdict, keep } = settle(entry, observed[j]!);
        result.lost += verdict.lost;
        result.phantom += verdict.phantom;
        result.inFlight += verdict.inFlight;
        result.applied += verdict.applied;
        for (const finding of verdict.findings) {
          if (result.findings.length < 10) result.findings.push(finding);
        }
        if (!keep) {
          ledger.sessions.delete(entry.id);
          // A writer whose session is gone starts a new one next round.
          const writer = ledger.mains.indexOf(entry);
          if (writer >= 0) ledger.mains[writer] = undefined;
        }
      });
    }
    result.sessions = ledger.sessions.size;
  } finally {
    await client.disconnect().catch(() => {});
  }
}

/** Resolves after `ms` milliseconds. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs the trial against `target`: `kills` rounds of load, SIGKILL, restart and check, then a
 * clean stop. Removes everything it made, whatever happens.
 * @throws when a process cannot be started or the server fails a read while checking
 */
export async function runTrial(target: CrashTarget, options: TrialOptions): Promise<TrialResult> {
  const random = seededRandom(options.seed);
  const ledger = new Ledger(`crash-${randomBytes(4).toString('hex')}`);
  const result: TrialResult = {
    target: target.name,
    kills: 0,
    acknowledged: 0,
    lost: 0,
    phantom: 0,
    inFlight: 0,
    applied: 0,
    sessions: 0,
    unexpected: ledger.unexpected,
    findings: [],
  };
  const store = await target.open();
  let serve: Serve | undefined;
  try {
    serve = await startServe(store.serveArgs);
    for (let round = 1; round <= options.kills; round++) {
      const clients = await Promise.all(
        Array.from({ length: options.writers }, () => connect(serve!.port)),
      );
      let killed = false;
      const before = ledger.acknowledged;
      const writers = clients.map((client, i) => runWriter(client, ledger, i, () => killed));
      let running = options.writers;
      for (const writer of writers) void writer.then(() => running--);
      // Waits for the load to be under way (or for every writer to have failed) before the
      // random delay, so that each kill lands among writes and not before the first.
      const giveUp = Date.now() + 60_000;
      while (
        ledger.acknowledged - before < options.minWritesBeforeKill &&
        running > 0 &&
        Date.now() < giveUp
      ) {
        await sleep(5);
      }
      await sleep(random() * options.maxKillDelayMs);
      // One instant for both: the store's processes first, so that sessiond cannot hear back
      // from a store that outlived it.
      killed = true;
      store.crash();
      serve.child.kill('SIGKILL');
      await serve.exited;
      result.kills++;
      await Promise.all(writers);
      await Promise.all(clients.map((client) => client.disconnect().catch(() => {})));
      await store.restart();
      serve = await startServe(store.serveArgs);
      const lostBefore = result.lost;
      await check(serve.port, ledger, result);
      options.log?.(
        `${target.name} kill ${round}/${options.kills}: ${ledger.acknowledged - before} writes acknowledged, ` +
          `${result.lost - lostBefore} lost, ${ledger.sessions.size} sessions checked`,
      );
    }
    result.acknowledged = ledger.acknowledged;
    serve.child.kill('SIGTERM');
    await serve.exited;
  } finally {
    if (serve !== undefined && isRunning(serve.child)) {
      serve.child.kill('SIGKILL');
      await serve.exited;
    }
    await store.remove();
  }
  return result;
}
