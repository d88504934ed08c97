/**
 * Several sessiond servers over one backend, for the multi-server tests: in this process (each
 * with its own engine and store, which is what makes them separate servers), or as
 * `sessiond serve` child processes that a test can kill.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SessiondClient } from '../../src/client/client.ts';
import { Engine } from '../../src/core/engine.ts';
import { createLogger } from '../../src/server/observability/logger.ts';
import { SessiondServer } from '../../src/server/server.ts';
import type { Backend } from './backends.ts';

/** How often the servers sweep: short, so expiry tests wait for the real clock briefly. */
export const SWEEP_INTERVAL_MS = 200;

/** Tells the servers' unexpected errors (a failing store, a bug) to `onError`. */
export async function startServers(
  backend: Backend,
  count: number,
  onError: (error: unknown) => void,
): Promise<SessiondServer[]> {
  const servers: SessiondServer[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const engine = new Engine({ store: await backend.openStore(), onError });
      // Subscribers connected after this hear every event, this server's and the others'.
      await engine.ready();
      servers.push(
        await SessiondServer.start({
          engine,
          resp: { host: '127.0.0.1', port: 0 },
          http: false,
          metrics: false,
          logger: createLogger({ level: 'silent' }),
          sweepIntervalMs: SWEEP_INTERVAL_MS,
          onError,
        }),
      );
    }
  } catch (error) {
    await Promise.allSettled(servers.map((server) => server.close()));
    throw error;
  }
  return servers;
}

/** A client of the server listening on `port`, on loopback. */
export function connect(port: number): Promise<SessiondClient> {
  return SessiondClient.connect({
    host: '127.0.0.1',
    port,
    // Never resent after a lost connection: a test counts exactly what it sent.
    reconnect: false,
    // Long enough for a loaded machine: a timeout here would be a flake, not a finding.
    commandTimeoutMs: 60_000,
  });
}

/** `perServer` clients of each server, in server order. */
export async function connectAll(
  servers: readonly SessiondServer[],
  perServer: number,
): Promise<SessiondClient[][]> {
  return Promise.all(
    servers.map((server) =>
      Promise.all(Array.from({ length: perServer }, () => connect(server.respAddress.port))),
    ),
  );
}

/**
 * Resolves once `check` holds, looking again every few milliseconds. The deadline only keeps a
 * broken run from hanging: no test asserts how long anything took.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  deadlineMs = 30_000,
): Promise<void> {
  const giveUp = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > giveUp) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Every event one subscriber received, counted by `<type> <id>`. */
export class EventLog {
  readonly counts = new Map<string, number>();

  /** Subscribes `client` to `events:*`; the log fills from then on. */
  static async listen(client: SessiondClient): Promise<EventLog> {
    const log = new EventLog();
    await client.subscribe('events:*', (message, channel) => {
      const key = `${channel.slice('events:'.length)} ${message}`;
      log.counts.set(key, (log.counts.get(key) ?? 0) + 1);
    });
    return log;
  }

  /** Whether every one of `keys` arrived at least once. */
  hasAll(keys: Iterable<string>): boolean {
    for (const key of keys) if (!this.counts.has(key)) return false;
    return true;
  }

  /** The counts of events about the sessions in `ids`, by `<type> <id>`, sorted by key. */
  about(ids: ReadonlySet<string>): Array<[string, number]> {
    return [...this.counts]
      .filter(([key]) => ids.has(key.slice(key.indexOf(' ') + 1)))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}

const SESSIOND = fileURLToPath(new URL('../../bin/sessiond.js', import.meta.url));

/** A `sessiond serve` child process. */
export interface ServeProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** What it wrote on standard error, for failure messages. */
  readonly stderr: () => string;
  /** Kills it with `signal` (default SIGKILL) and resolves once it has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs `node bin/sessiond.js serve --store <store> --port 0 --http-port=-1` and resolves with its
 * RESP port, read from its "RESP on host:port" log line.
 * @throws Error with its standard error when it exits before listening
 */
export async function spawnServe(store: string): Promise<ServeProcess> {
  const child = spawn(
    process.execPath,
    [SESSIOND, 'serve', '--store', store, '--port', '0', '--http-port=-1'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const found = /RESP on 127\.0\.0\.1:(\d+)/.exec(stdout);
      if (found) resolve(Number(found[1]));
    });
    child.once('exit', (code, signal) =>
      reject(
        new Error(
          `sessiond serve --store ${store} exited (${code ?? signal}) before listening:\n${stderr}`,
        ),
      ),
    );
    child.once('error', reject);
  }).catch(async (error: unknown) => {
    await kill();
    throw error;
  });
  return { child, port, stderr: () => stderr, kill };
}
