#!/usr/bin/env node
// The `sessiond` command: the compiled CLI when installed as a package (Node does not strip
// types under node_modules), the TypeScript source in a checkout.
import { existsSync } from 'node:fs';

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
