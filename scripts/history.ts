/**
 * A longer history run than the tests' (test/history/): for `seconds` on each store, clients
 * take turns at locks (long leases, and short ones that some holders outstay) and INC and read
 * counters, all at once; then the whole history is checked.
 *
 *   node scripts/history.ts [seconds per store, default 10] [store ...]
 *
 * Stores: memory, sqlite (one server each), postgres, redis, redis-cluster (two servers each);
 * default all. Prints the operations checked and every violation; exits 1 if there was one.
 */
import { randomBytes } from 'node:crypto';
import { checkCounters } from '../test/history/counter-checker.ts';
import { History, operations } from '../test/history/history.ts';
import { checkLocks } from '../test/history/lock-checker.ts';
import { startTarget, TARGET_KINDS, type TargetKind } from '../test/history/targets.ts';
import { runCounters, runLocks } from '../test/history/workloads.ts';

const [secondsArg, ...kindArgs] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 10);
if (!(seconds > 0)) throw new Error(`usage: node scripts/history.ts [seconds] [store ...]`);
for (const kind of kindArgs) {
  if (!(TARGET_KINDS as readonly string[]).includes(kind)) {
    throw new Error(`unknown store ${kind}: one of ${TARGET_KINDS.join(', ')}`);
  }
}
const kinds = kindArgs.length > 0 ? (kindArgs as TargetKind[]) : [...TARGET_KINDS];
const seed = Number(process.env['SESSIOND_HISTORY_SEED'] ?? randomBytes(4).readUInt32LE());
const [LOCKERS, OUTSTAYERS, COUNTERS] = [12, 6, 16];

let failed = false;
console.log(`seed ${seed}, ${seconds} s per store`);
for (const kind of kinds) {
  const target = await startTarget(kind);
  try {
    const clients = await target.clients(LOCKERS + OUTSTAYERS + COUNTERS);
    const tag = `hist-${randomBytes(4).toString('hex')}-`;
    const lockSids = [`${tag}lock-a`, `${tag}lock-b`];
    const leaseSids = [`${tag}lease-a`];
    const counters: Array<[string, string]> = [
      [`${tag}count-a`, 'hits'],
      [`${tag}count-a`, 'misses'],
      [`${tag}count-b`, 'hits'],
    ];
    for (const sid of [...lockSids, ...leaseSids, `${tag}count-a`, `${tag}count-b`]) {
      await clients[0]!.create(sid, { timeout: 0 });
    }
    const history = new History();
    const started = performance.now();
    const deadline = started + seconds * 1000;
    const keepGoing = () => performance.now() < deadline;
    const forever = Number.MAX_SAFE_INTEGER;
    const [, { overstays }] = await Promise.all([
      runLocks(history, clients.slice(0, LOCKERS), {
        sids: lockSids,
        rounds: forever,
        leaseMs: 120_000,
        waitMs: 60_000,
        seed,
        keepGoing,
      }),
      runLocks(history, clients.slice(LOCKERS, LOCKERS + OUTSTAYERS), {
        sids: leaseSids,
        rounds: forever,
        leaseMs: 1000,
        waitMs: 0,
        overstay: 0.2,
        seed: seed + LOCKERS,
        keepGoing,
      }),
      runCounters(history, clients.slice(LOCKERS + OUTSTAYERS), {
        counters,
        ops: forever,
        incShare: 0.7,
        seed: seed + LOCKERS + OUTSTAYERS,
        keepGoing,
      }),
    ]);
    const ran = (performance.now() - started) / 1000;
    const ops = operations(history.events);
    const checking = performance.now();
    const locks = checkLocks(ops);
    const incs = checkCounters(ops);
    const checked = (performance.now() - checking) / 1000;
    const violations = [...locks.violations, ...incs.violations];
    console.log(
      `${kind} (${target.described}): ${ops.length} ops in ${ran.toFixed(1)} s, checked in ${checked.toFixed(1)} s: ` +
        `${locks.grants} lock holders (${locks.refused} LOCKED, ${overstays} outstayed their lease, ` +
        `${locks.leaseLost.length} leases lost), ${locks.completed} register updates ` +
        `(${locks.unprotected} after the lease could have run out); ` +
        `${incs.incs} INCs (${incs.unknownIncs} unknown), ${incs.reads} GETs on ${incs.counters} counters; ` +
        `violations: ${violations.length}`,
    );
    // Error replies other than LOCKED, and lost replies, by command and message.
    const odd = new Map<string, number>();
    for (const op of ops) {
      if (op.outcome === 'ok' || (op.call.f === 'lock' && op.error?.startsWith('LOCKED ')))
        continue;
      const what = `${op.call.f} ${op.outcome}: ${op.error ?? ''}`;
      odd.set(what, (odd.get(what) ?? 0) + 1);
    }
    for (const [what, count] of odd) console.log(`  ${count} × ${what}`);
    for (const violation of violations.slice(0, 20)) {
      console.log(`  ${violation.kind}: ${violation.message}`);
    }
    if (target.problems.length > 0) console.log(`  server errors: ${target.problems.join('; ')}`);
    if (violations.length > 0 || target.problems.length > 0) failed = true;
  } finally {
    await target.close();
  }
}
process.exitCode = failed ? 1 : 0;
