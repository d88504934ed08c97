import { resolveSettings, serveHelp } from './settings.ts';
import { serve } from './serve.ts';

import type { OperatorVerb } from './operate.ts';

const OPERATOR_VERBS: readonly OperatorVerb[] = ['info', 'list', 'show', 'gc', 'empty'];

const USAGE = `Usage: sessiond <command> [options]

Commands:
  serve            start the server (sessiond serve --help for its settings)
  info, list, show, gc, empty
                   operator verbs against a running server (sessiond info --help)

Run with no store option, the server keeps sessions in ./sessiond.db (SQLite) and listens
on 127.0.0.1:8086 (RESP) and 127.0.0.1:8087 (HTTP).`;

/** The `sessiond` command line. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command === undefined ? 1 : 0;
  }
  if (command === 'serve') {
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(serveHelp());
      return 0;
    }
    await serve(resolveSettings(rest, process.env));
    return -1; // keeps running until a signal
  }
  if ((OPERATOR_VERBS as readonly string[]).includes(command)) {
    // Loaded only here: the client's transport (@redis/client) is an optional peer dependency
    // that `sessiond serve` never needs.
    const { OPERATE_HELP, operate } = await import('./operate.ts');
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(OPERATE_HELP);
      return 0;
    }
    return operate(command as OperatorVerb, rest, process.env);
  }
  console.error(`sessiond: unknown command "${command}"\n\n${USAGE}`);
  return 1;
}
