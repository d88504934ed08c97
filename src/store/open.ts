import type { Store } from './types.ts';

export interface OpenStoreOptions {
  durability?: 'full' | 'normal';
  indexedVars?: readonly string[];
}

/**
 * Opens a store from its spec: `memory`; `sqlite:PATH` (a bare path ending in .db also means
 * sqlite); `postgres://...` for PostgreSQL;
 * `redis://host:port` for one Redis; `redis://a:7000,b:7001,c:7002` for a Redis
 * Cluster from its seed nodes; `?prefix=name:` after either sets the key prefix. Drivers are imported only when their store is asked for.
 * @throws Error on a spec no store answers to
 */
export async function openStore(spec: string, options: OpenStoreOptions = {}): Promise<Store> {
  const indexedVars = options.indexedVars ?? [];
  if (spec === 'memory') {
    const { MemoryStore } = await import('./memory/memory-store.ts');
    return new MemoryStore({ indexedVars });
  }
  const sqlitePath = spec.startsWith('sqlite:')
    ? spec.slice('sqlite:'.length)
    : spec.endsWith('.db')
      ? spec
      : undefined;
  if (sqlitePath !== undefined && sqlitePath !== '') {
    const { SqliteStore } = await import('./sqlite/sqlite-store.ts');
    return SqliteStore.open({
      path: sqlitePath,
      durability: options.durability ?? 'full',
      indexedVars,
    });
  }
  if (/^postgres(ql)?:\/\//.test(spec)) {
    const { PostgresStore } = await import('./postgres/postgres-store.ts');
    return PostgresStore.open({ url: spec, indexedVars });
  }
  if (/^rediss?:\/\//.test(spec)) {
    const { RedisStore } = await import('./redis/redis-store.ts');
    // `?prefix=` names the key prefix, so that several deployments can share one Redis.
    const [nodeList = '', query = ''] = spec.split('?', 2);
    const prefix = new URLSearchParams(query).get('prefix');
    const common = { indexedVars, ...(prefix !== null && { prefix }) };
    // A comma-separated list of seed nodes means a Redis Cluster.
    const nodes = nodeList.split(',');
    if (nodes.length === 1) return RedisStore.open({ url: nodeList, ...common });
    const rootNodes = nodes.map((node) => (/^rediss?:\/\//.test(node) ? node : `redis://${node}`));
    return RedisStore.open({ cluster: { rootNodes }, ...common });
  }
  throw new Error(
    `unknown store "${spec}": use memory, sqlite:PATH, postgres://... or redis://...`,
  );
}
