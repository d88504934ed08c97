/** The Redis session store (standalone Redis or Redis Cluster) and its event fan-out. */
export { RedisStore, type RedisStoreOptions } from './redis-store.ts';
export { RedisEvents, type RedisEventListener, type RedisEventsOptions } from './redis-events.ts';
