/** The embedded SQLite session store (node:sqlite, WAL, group commit). */
export {
  SqliteStore,
  type SqliteStoreOptions,
  type SqliteStoreSettings,
  type SqliteStoreStats,
} from './sqlite-store.ts';
export { MIGRATIONS, SCHEMA_VERSION, migrate, schemaVersion, type Migration } from './schema.ts';
