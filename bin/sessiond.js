#!/usr/bin/env node
// The `sessiond` command: the compiled CLI when installed as a package (Node does not strip
// types under node_modules), the TypeScript source in a checkout.
import { existsSync } from 'node:fs';

const installed = import.meta.url.includes('/node_modules/');
const built = new URL('../dist/cli/main.js', import.meta.url);
const source = new URL('../src/cli/main.ts', import.meta.url);
const { main } = await import(installed || !existsSync(source) ? built.href : source.href);
const code = await main(process.argv.slice(2)).catch((error) => {
  console.error(`sessiond: ${error instanceof Error ? error.message : String(error)}`);
  return 1;
});
if (code >= 0) process.exitCode = code;
