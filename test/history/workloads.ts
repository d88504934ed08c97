/**
 * The client loads whose histories the checkers read: holders taking turns at a lock with a
 * read-modify-write inside, and INCs mixed with GETs on shared counters. Every client is one
 * sequential process of the history; a process whose operation ended unknown stops there.
 */
import type { SessiondClient } from '../../src/client/client.ts';
import type { Call, History, Value } from './history.ts';
import { seededRandom as random } from '../support/random.ts';

/** The variable the lock holders read and write back plus one. */
export const REGISTER = 'register';

/** LOCKED replies a client takes before it gives up (a lock that is never freed). */
const MAX_LOCK_TRIES = 5000;

/** What {@link runLocks} does. */
export interface LockLoad {
  /** Sessions whose locks the clients take, each client picking one at random per round. */
  sids: readonly string[];
  /** Critical sections each client goes through. */
  rounds: number;
  leaseMs: number;
  /**
   * LOCK's WAIT. After a LOCKED reply the client pauses up to 10 ms and tries again. With 0 the
   * grant comes within a round trip of the invocation, which bounds the lease's start tightly.
   */
  waitMs: number;
  seed: number;
  /**
   * The share of holders that sleep past their lease (a quarter of it longer) and only then
   * UNLOCK, touching nothing: the lock must pass to the next holder once, and only once, the
   * lease has run out. Default 0.
   */
  overstay?: number;
  /** Called before each round: false stops the client (for runs of a set duration). */
  keepGoing?: () => boolean;
}

/**
 * Each client, as its own process: LOCK a session, GET the register, SET it one higher, UNLOCK;
 * `rounds` times. Then one more process reads every session's register.
 * @returns how many holders overstayed their lease on purpose
 */
export async function runLocks(
  history: History,
  clients: readonly SessiondClient[],
  load: LockLoad,
): Promise<{ overstays: number }> {
  let overstays = 0;
  await Promise.all(
    clients.map(async (client, i) => {
      const process = history.newProcess();
      const draw = random(load.seed + i);
      const run = (call: Call, perform: () => Promise<Value>) =>
        history.run(process, call, perform);
      for (let round = 0; round < load.rounds && (load.keepGoing?.() ?? true); round++) {
        const sid = load.sids[Math.floor(draw() * load.sids.length)]!;
        const { leaseMs, waitMs } = load;
        let lock = await run({ f: 'lock', sid, leaseMs, waitMs }, () =>
          client.lock(sid, { leaseMs, waitMs }),
        );
        for (let tries = 1; lock.outcome === 'fail' && tries < MAX_LOCK_TRIES; tries++) {
          await new Promise((resolve) => setTimeout(resolve, draw() * 10));
          lock = await run({ f: 'lock', sid, leaseMs, waitMs }, () =>
            client.lock(sid, { leaseMs, waitMs }),
          );
        }
        if (lock.outcome !== 'ok') return;
        const key = lock.value as number;
        if (draw() < (load.overstay ?? 0)) {
          overstays++;
          await new Promise((resolve) => setTimeout(resolve, leaseMs * 1.25));
          const unlock = await run({ f: 'unlock', sid, key }, () => client.unlock(sid, key));
          if (unlock.outcome === 'unknown') return;
          continue;
        }
        const read = await run({ f: 'get', sid, name: REGISTER }, () => client.get(sid, REGISTER));
        if (read.outcome === 'unknown') return;
        if (read.outcome === 'ok') {
          // A pause between the read and the write widens the window in which a second holder
          // would read the same value: a lost update if exclusion failed.
          if (draw() < 0.5) await new Promise((resolve) => setTimeout(resolve, 1));
          const value = String(Number(read.value ?? 0) + 1);
          const write = await run({ f: 'set', sid, name: REGISTER, value }, () =>
            client.set(sid, REGISTER, value).then(() => true),
          );
          if (write.outcome === 'unknown') return;
        }
        const unlock = await run({ f: 'unlock', sid, key }, () => client.unlock(sid, key));
        if (unlock.outcome === 'unknown') return;
      }
    }),
  );
  await finalReads(
    history,
    clients[0]!,
    load.sids.map((sid) => [sid, REGISTER]),
  );
  return { overstays };
}

/** What {@link runCounters} does. */
export interface CounterLoad {
  /** Counter variables as [sid, name]: every client INCs and reads all of them. */
  counters: ReadonlyArray<readonly [string, string]>;
  /** Operations per client. */
  ops: number;
  /** The share of INCs among them; the rest are GETs. */
  incShare: number;
  seed: number;
  keepGoing?: () => boolean;
}

/**
 * Each client, as its own process: `ops` times, INC or GET a counter picked at random. Then one
 * more process reads every counter.
 */
export async function runCounters(
  history: History,
  clients: readonly SessiondClient[],
  load: CounterLoad,
): Promise<void> {
  await Promise.all(
    clients.map(async (client, i) => {
      const process = history.newProcess();
      const draw = random(load.seed + i);
      for (let n = 0; n < load.ops && (load.keepGoing?.() ?? true); n++) {
        const [sid, name] = load.counters[Math.floor(draw() * load.counters.length)]!;
        const op =
          draw() < load.incShare
            ? await history.run(process, { f: 'inc', sid, name }, async () =>
                Number(await client.inc(sid, name)),
              )
            : await history.run(process, { f: 'get', sid, name }, () => client.get(sid, name));
        if (op.outcome === 'unknown') return;
      }
    }),
  );
  await finalReads(history, clients[0]!, load.counters);
}

/** Reads every [sid, name] as one more process, once everything else has ended. */
async function finalReads(
  history: History,
  client: SessiondClient,
  variables: ReadonlyArray<readonly [string, string]>,
): Promise<void> {
  const process = history.newProcess();
  for (const [sid, name] of variables) {
    await history.run(process, { f: 'get', sid, name }, () => client.get(sid, name));
  }
}
