/** The shared PostgreSQL session store (pg), with events through LISTEN/NOTIFY. */
export { PostgresStore, type PostgresStoreOptions } from './postgres-store.ts';
export { PostgresEvents, type PostgresEventsOptions } from './events.ts';
export { MIGRATIONS, SCHEMA_VERSION, migrate, schemaVersion, type Migration } from './schema.ts';
