/**
 * The shared backends the multi-server tests run over, each one the tests' own: a fresh
 * PostgreSQL database, a Redis Cluster started for the run, a fresh key prefix on the machine's
 * Redis. Each knows how to open one more store on itself (one per server) and how to remove
 * every trace of itself.
 */
import { randomBytes } from 'node:crypto';
import { createClient } from '@redis/client';
import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { startRedisCluster } from '../../src/store/redis/cluster-harness.ts';
import { RedisStore } from '../../src/store/redis/redis-store.ts';
import type { Store } from '../../src/store/types.ts';

/** The machine's PostgreSQL (trust auth) and Redis; overridable as for the store tests. */
export const PG_SERVER = process.env['SESSIOND_TEST_PG'] ?? 'postgres://postgres@127.0.0.1:5432';
export const REDIS_URL = process.env['SESSIOND_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** One backend that several servers share. */
export interface Backend {
  readonly name: string;
  /** A new store on the backend: what one more sessiond server opens. */
  openStore(): Promise<Store>;
  /**
   * The `--store` of `sessiond serve` for this backend, or null when the command line cannot
   * reach a part of it that is the tests' own (it has no setting for a Redis key prefix).
   */
  readonly cliStore: string;
  /** Removes the database, the keys or the cluster. Safe to call twice. */
  remove(): Promise<void>;
}

/** The kinds of backend, for {@link createBackend}. */
export type BackendKind = 'postgres' | 'redis-cluster' | 'redis';

/**
 * Creates a backend of `kind` that belongs to this run alone.
 * @throws the driver's error when the machine's PostgreSQL or Redis cannot be reached
 */
export async function createBackend(kind: BackendKind): Promise<Backend> {
  switch (kind) {
    case 'postgres':
      return createPostgres();
    case 'redis-cluster':
      return createRedisCluster();
    case 'redis':
      return createRedis();
  }
}

async function createPostgres(): Promise<Backend> {
  const database = `sessiond_ms_${randomBytes(6).toString('hex')}`;
  const url = `${PG_SERVER}/${database}`;
  // The name is made above from hex digits: it cannot carry SQL.
  await adminQuery(`CREATE DATABASE ${database}`);
  let removed: Promise<void> | undefined;
  return {
    name: 'PostgreSQL',
    // poolSize keeps three servers, their listeners and sweep leaders well inside max_connections.
    openStore: () => PostgresStore.open({ url, schema: 'sessiond', poolSize: 4 }),
    // `sessiond serve` uses the default schema, "sessiond": the servers above share it.
    cliStore: url,
    // FORCE ends the connections of servers killed with SIGKILL, which PostgreSQL may not have
    // noticed yet.
    remove: () => (removed ??= adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)),
  };
}

async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: `${PG_SERVER}/postgres` });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

async function createRedisCluster(): Promise<Backend> {
  const cluster = await startRedisCluster({ masters: 3 });
  const prefix = freshPrefix();
  return {
    name: 'Redis Cluster',
    openStore: () => RedisStore.open({ cluster: { rootNodes: cluster.rootNodes }, prefix }),
    // The cluster is this run's own, so the command line's default prefix is too.
    cliStore: `redis://${cluster.ports.map((port) => `127.0.0.1:${port}`).join(',')}`,
    remove: () => cluster.stop(),
  };
}

async function createRedis(): Promise<Backend> {
  const prefix = freshPrefix();
  let removed: Promise<void> | undefined;
  return {
    name: 'Redis',
    openStore: () => RedisStore.open({ url: REDIS_URL, prefix }),
    cliStore: `${REDIS_URL}?prefix=${encodeURIComponent(prefix)}`,
    remove: () => (removed ??= deleteKeys(prefix)),
  };
}

function freshPrefix(): string {
  return `sessiond-ms:${randomBytes(6).toString('hex')}:`;
}

/** Deletes every key under `prefix` on the machine's Redis, by SCAN and DEL. */
async function deleteKeys(prefix: string): Promise<void> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.del(keys);
    }
  } finally {
    await client.close();
  }
}
