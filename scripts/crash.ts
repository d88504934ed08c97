/**
 * Crash durability: runs a write load against `sessiond serve`, kills it with SIGKILL at random
 * moments, restarts it and checks that every write the client saw acknowledged is there
 * (docs/durability.md).
 *
 *   node scripts/crash.ts [kills=10] [stores=sqlite,postgres,postgres-cluster,redis] [--seed N]
 *
 * Stores: sqlite (--durability full), sqlite-normal, postgres (a fresh database on the machine's
 * server; only sessiond is killed), postgres-cluster (a private cluster, killed with sessiond;
 * needs root), redis (a private redis-server with appendonly yes and appendfsync always, killed
 * with sessiond), and the controls memory and redis-rdb, which must lose writes. Exits 1 when a
 * durable store lost an acknowledged write or a control lost none, or a run broke.
 */
import { runTrial, type TrialResult } from '../test/crash/crash-harness.ts';
import { TARGETS, defaultTargets } from '../test/crash/targets.ts';

function usage(message: string): never {
  console.error(
    `${message}\nusage: node scripts/crash.ts [kills=10] [stores=${defaultTargets().join(',')}] [--seed N]`,
  );
  console.error(`stores: ${Object.keys(TARGETS).join(', ')}`);
  process.exit(2);
}

const args = process.argv.slice(2);
let seed = Date.now() % 2 ** 31;
const seedAt = args.indexOf('--seed');
if (seedAt >= 0) {
  seed = Number(args[seedAt + 1]);
  if (!Number.isSafeInteger(seed)) usage('--seed takes an integer');
  args.splice(seedAt, 2);
}
const kills = Number(args[0] ?? 10);
if (!Number.isSafeInteger(kills) || kills < 1) usage(`kills must be a positive integer`);
const names = (args[1] ?? defaultTargets().join(',')).split(',').filter((name) => name !== '');
for (const name of names) if (TARGETS[name] === undefined) usage(`unknown store "${name}"`);

console.log(`crash trial: ${kills} kills per store, seed ${seed}`);
let failed = false;
const rows: Array<[string, TrialResult | string]> = [];
for (const name of names) {
  const target = TARGETS[name]!;
  console.log(`\n${target.setting}; each kill takes down: ${target.killed}`);
  try {
    const result = await runTrial(target, {
      kills,
      writers: 16,
      minWritesBeforeKill: 200,
      maxKillDelayMs: 2000,
      seed,
      log: (line) => console.log(`  ${line}`),
    });
    for (const finding of result.findings) console.log(`  finding: ${finding}`);
    for (const error of result.unexpected) console.log(`  unexpected: ${error}`);
    const violated = result.lost > 0 || result.phantom > 0;
    if (target.durable ? violated : !violated) failed = true;
    if (result.unexpected.length > 0) failed = true;
    rows.push([name, result]);
  } catch (error) {
    failed = true;
    console.log(
      `  broke: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    rows.push([name, 'broke']);
  }
}

console.log(
  '\nstore             expect  kills  acknowledged  lost  phantom  in flight (applied)  sessions',
);
for (const [name, result] of rows) {
  const expect = TARGETS[name]!.durable ? 'none' : 'loss';
  if (typeof result === 'string') {
    console.log(`${name.padEnd(17)} ${expect.padEnd(7)} ${result}`);
    continue;
  }
  console.log(
    `${name.padEnd(17)} ${expect.padEnd(7)} ${String(result.kills).padStart(5)}  ` +
      `${String(result.acknowledged).padStart(12)}  ${String(result.lost).padStart(4)}  ` +
      `${String(result.phantom).padStart(7)}  ` +
      `${`${result.inFlight} (${result.applied})`.padStart(19)}  ${String(result.sessions).padStart(8)}`,
  );
}
console.log(failed ? '\nFAILED' : '\nok');
process.exitCode = failed ? 1 : 0;
