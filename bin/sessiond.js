#!/usr/bin/env node
// The `sessiond` command: the compiled CLI when installed as a package (Node does not strip
// types under node_modules), the TypeScript source in a checkout.
import { existsSync } from 'node:fs';

/**
 * V8 flags that `sessiond serve` runs with (issue 6, bench/soak-results.md). V8 reads them only
 * at start, so the process replaces itself once with them (same pid, same stdio, same
 * environment) before loading anything else.
 * - `--no-memory-reducer`: V8's memory reducer ran extra mark-compacts while the server was busy
 *   and shrank the heap in their atomic pauses (54.6 and 74.2 ms in two soak runs; in the one
 *   sampled with perf, mostly unmapping pages); a server's heap is meant to stay its size.
 * - `--heap-growing-percent=50`: the next major GC starts when the old generation is 1.5 times
 *   what the last one left (after a soak's fill V8 let it grow from 115 to 247 MB). V8 wants
 *   marking done about 500 ms after it starts, at a pace in proportion to the old generation's
 *   size; when the concurrent markers cannot keep that pace (two CPUs), the main thread marks
 *   in 5 ms steps back to back and the event loop waits for all of it.
 * Node runs any `--require`/`--import` preloads again in the replaced process.
 * `SESSIOND_NO_V8_FLAGS=1` turns this off, for operators who pass their own node flags.
 */
const SERVE_V8_FLAGS = ['--no-memory-reducer', '--heap-growing-percent=50'];

if (
  process.argv[2] === 'serve' &&
  process.env.SESSIOND_NO_V8_FLAGS !== '1' &&
  typeof process.execve === 'function' &&
  !SERVE_V8_FLAGS.every((flag) => process.execArgv.includes(flag))
) {
  // Only this same node binary and this same command line, with fixed flags added in front of
  // the caller's own (theirs come later, so they win): nothing from outside chooses what runs.
  process.execve(process.execPath, [
    process.execPath,
    ...SERVE_V8_FLAGS,
    ...process.execArgv,
    ...process.argv.slice(1),
  ]);
}

const installed = import.meta.url.includes('/node_modules/');
const built = new URL('../dist/cli/main.js', import.meta.url);
const source = new URL('../src/cli/main.ts', import.meta.url);
const { main } = await import(installed || !existsSync(source) ? built.href : source.href);
const code = await main(process.argv.slice(2)).catch((error) => {
  // A server error carries its stable code word (NOSESSION, DENIED, ...): show it.
  const word =
    typeof error?.code === 'string' && /^[A-Z]+$/.test(error.code) ? `${error.code} ` : '';
  console.error(`sessiond: ${word}${error instanceof Error ? error.message : String(error)}`);
  return 1;
});
if (code >= 0) process.exitCode = code;
