import { parseArgs } from 'node:util';
import { SessiondClient } from '../client/client.ts';

export type OperatorVerb = 'info' | 'list' | 'show' | 'gc' | 'empty';

export const OPERATE_HELP = `Operator verbs, against a running server:
  sessiond info                 the server's INFO
  sessiond list [--class C]     live session ids, one a line (paged, never all at once)
  sessiond show SID             a session: times, user, data and variables
  sessiond gc                   remove expired sessions now
  sessiond empty --yes          remove every session (needs the admin right)

Connection: --host H (127.0.0.1), --port N (8086), --password P, --user U, --tls
(or SESSIOND_HOST, SESSIOND_PORT, SESSIOND_PASSWORD, SESSIOND_USER).`;

/**
 * Runs an operator verb against a running server through the client.
 * @returns the exit code
 */
export async function operate(
  verb: OperatorVerb,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      password: { type: 'string' },
      user: { type: 'string' },
      tls: { type: 'boolean' },
      class: { type: 'string' },
      yes: { type: 'boolean' },
    },
  });
  if (verb === 'empty' && !values.yes) {
    console.error('sessiond empty removes every session; run it again with --yes to do so');
    return 2;
  }
  if (verb === 'show' && positionals.length !== 1) {
    console.error('usage: sessiond show SID');
    return 2;
  }
  const port = Number(values.port ?? env.SESSIOND_PORT ?? 8086);
  if (!Number.isInteger(port))
    throw new Error(`--port: expected an integer, got "${values.port ?? ''}"`);
  const password = values.password ?? env.SESSIOND_PASSWORD;
  const username = values.user ?? env.SESSIOND_USER;
  const client = await SessiondClient.connect({
    host: values.host ?? env.SESSIOND_HOST ?? '127.0.0.1',
    port,
    reconnect: false,
    ...(password !== undefined && { password }),
    ...(username !== undefined && { username }),
    ...(values.tls && { tls: true }),
  });
  try {
    switch (verb) {
      case 'info':
        console.log((await client.info()).trimEnd());
        break;
      case 'list':
        for await (const id of client.scan({
          count: 1000,
          ...(values.class !== undefined && { cls: values.class }),
        })) {
          console.log(id);
        }
        break;
      case 'show':
        console.log(await describe(client, positionals[0]!));
        break;
      case 'gc':
        console.log(`${await client.gc()} expired sessions removed`);
        break;
      case 'empty':
        console.log(`${await client.empty()} sessions removed`);
        break;
    }
    return 0;
  } finally {
    await client.disconnect();
  }
}

async function describe(client: SessiondClient, sid: string): Promise<string> {
  const [created, age, idle, ttl, timeout, user, data, vars] = await Promise.all([
    client.ctl(sid, 'CTIME'),
    client.ctl(sid, 'AGE'),
    client.ctl(sid, 'TLA'),
    client.ctl(sid, 'TTL'),
    client.timeout(sid),
    client.getUser(sid),
    client.getData(sid),
    client.getArray(sid),
  ]);
  const lines = [
    `id:       ${sid}`,
    `created:  ${new Date(created * 1000).toISOString()} (${age} s ago)`,
    `idle:     ${idle} s (timeout ${timeout === 0 ? 'never' : `${timeout} s`})`,
    `expires:  ${ttl === -1 ? 'never' : `in ${ttl} s`}`,
    `user:     ${user ?? '-'}`,
    `data:     ${JSON.stringify(data)}`,
    `variables (${vars.size}):`,
    ...[...vars].map(([name, value]) => `  ${JSON.stringify(name)} = ${JSON.stringify(value)}`),
  ];
  return lines.join('\n');
}
