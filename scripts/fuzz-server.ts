/**
 * Fuzzes a running sessiond: `node scripts/fuzz-server.ts [seconds=60] [--seed N]`.
 *
 * Starts `sessiond serve --store memory` on free loopback ports, then for `seconds` sends it
 * malformed RESP, HTTP and JSON, huge and negative lengths, deep nesting, slow and deaf clients
 * and connection floods, while a control client does honest work over both ports and checks
 * every answer, and the server's resident memory is sampled every second. Prints what was sent,
 * what the server did, the control client's latency, the memory figures and the bound they are
 * held to; exits 1 if the control client ever failed, the server died or stopped answering, its
 * memory passed the bound, or an answer broke the wire contract. The same seed replays the same
 * inputs (not their timing).
 */
import { formatReport, runFuzz } from '../test/fuzz/fuzz-run.ts';

function parseArgs(argv: string[]): { seconds: number; seed: number } {
  let seconds = 60;
  let seed = Math.floor(Math.random() * 2 ** 31);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--seed' || arg.startsWith('--seed=')) {
      const value = arg === '--seed' ? argv[++i] : arg.slice('--seed='.length);
      seed = Number(value);
      if (!Number.isSafeInteger(seed) || seed < 0)
        throw new Error(`--seed: not a non-negative integer: ${value}`);
    } else if (/^\d+(\.\d+)?$/.test(arg)) {
      seconds = Number(arg);
    } else {
      throw new Error(
        `usage: node scripts/fuzz-server.ts [seconds=60] [--seed N]; unknown argument ${arg}`,
      );
    }
  }
  return { seconds, seed };
}

const { seconds, seed } = parseArgs(process.argv.slice(2));
console.log(`fuzzing sessiond for ${seconds} s with seed ${seed}`);
const report = await runFuzz({ seconds, seed, log: (line) => console.log(line) });
console.log(`\n${formatReport(report)}`);
process.exitCode = report.failures.length === 0 ? 0 : 1;
