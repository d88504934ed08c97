/**
 * What the history runs talk to: one server over a store of its own (memory, sqlite), or two
 * servers sharing a backend (PostgreSQL, Redis, a Redis Cluster), all in this process so that
 * every client's events are stamped by one clock.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SessiondClient } from '../../src/client/client.ts';
import type { SessiondServer } from '../../src/server/server.ts';
import { MemoryStore } from '../../src/store/memory/memory-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { createBackend, type Backend } from '../multi-server/backends.ts';
import { connect, startServers } from '../multi-server/servers.ts';
import { FlawedStore } from './flawed-store.ts';

/** The stores a history runs over. */
export const TARGET_KINDS = ['memory', 'sqlite', 'postgres', 'redis', 'redis-cluster'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

/** Servers started for a run, and what they reported. */
export interface Target {
  /** For test names: "one server over memory", "two servers over PostgreSQL". */
  readonly described: string;
  readonly servers: readonly SessiondServer[];
  /** Unexpected errors the servers reported (a failing store, a bug): a run expects none. */
  readonly problems: unknown[];
  /** `count` clients spread evenly over the servers, closed by `close()`. */
  clients(count: number): Promise<SessiondClient[]>;
  /** Closes the clients and the servers, and removes the backend. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts the servers of `kind`: one for memory and sqlite, whose stores are not shared; two for
 * the shared backends, each with its own engine and store on the backend.
 * @throws the driver's error when the machine's PostgreSQL or Redis cannot be reached
 */
export async function startTarget(kind: TargetKind): Promise<Target> {
  return start(await openBackend(kind), kind === 'memory' || kind === 'sqlite' ? 1 : 2);
}

/** One server over a {@link FlawedStore}: what the checkers must find fault with. */
export function startFlawedTarget(): Promise<Target> {
  return start(
    {
      name: 'a flawed memory store',
      openStore: async () => new FlawedStore(),
      cliStore: 'memory',
      remove: async () => {},
    },
    1,
  );
}

async function start(backend: Backend, count: number): Promise<Target> {
  const problems: unknown[] = [];
  let servers: SessiondServer[];
  try {
    servers = await startServers(backend, count, (error) => problems.push(error));
  } catch (error) {
    await backend.remove();
    throw error;
  }
  const connected: SessiondClient[] = [];
  let closed: Promise<void> | undefined;
  return {
    described: `${count === 1 ? 'one server' : `${count} servers`} over ${backend.name}`,
    servers,
    problems,
    async clients(n) {
      const made = await Promise.all(
        Array.from({ length: n }, (_, i) => connect(servers[i % servers.length]!.respAddress.port)),
      );
      connected.push(...made);
      return made;
    },
    close: () =>
      (closed ??= (async () => {
        await Promise.allSettled(connected.map((client) => client.disconnect()));
        await Promise.allSettled(servers.map((server) => server.close()));
        await backend.remove();
      })()),
  };
}

async function openBackend(kind: TargetKind): Promise<Backend> {
  switch (kind) {
    case 'memory':
      return {
        name: 'memory',
        openStore: async () => new MemoryStore(),
        cliStore: 'memory',
        remove: async () => {},
      };
    case 'sqlite': {
      const dir = mkdtempSync(join(tmpdir(), 'sessiond-history-'));
      const path = join(dir, 'sessions.db');
      return {
        name: 'SQLite',
        openStore: () => SqliteStore.open({ path }),
        cliStore: path,
        remove: async () => rmSync(dir, { recursive: true, force: true }),
      };
    }
    default:
      return createBackend(kind);
  }
}
