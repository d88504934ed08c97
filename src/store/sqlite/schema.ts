/**
 * The SQLite schema of the session store, as an ordered list of migrations.
 *
 * The file records how many steps it has taken in `PRAGMA user_version`; opening a file
 * applies the missing steps in order, each in its own transaction, so a crash between two
 * steps leaves a file that the next open carries on from.
 */
import type { DatabaseSync } from 'node:sqlite';

/** One step of the schema: `sql` takes a file from `version - 1` to `version`. */
export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

/**
 * Every schema step, oldest first. Append only: a step that has shipped is never edited,
 * since files in the field already ran it.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'sessions, vars, meta and their indexes',
    sql: `
      -- deadline: min(touched + timeout * 1000, expires) in ms, NULL when the session never
      -- expires; kept in step with touched/timeout/expires by every write (deadlineOf), so
      -- liveness is one indexed comparison. fence: the last lock key handed out.
      CREATE TABLE sessions (
        id TEXT NOT NULL PRIMARY KEY,
        cls TEXT NOT NULL,
        data TEXT NOT NULL,
        user TEXT,
        created INTEGER NOT NULL,
        touched INTEGER NOT NULL,
        timeout INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        deadline INTEGER,
        readonly INTEGER NOT NULL DEFAULT 0,
        fence INTEGER NOT NULL DEFAULT 0,
        lock_key INTEGER,
        lock_until INTEGER
      ) WITHOUT ROWID;
      -- The sweep (deadline <= now) and COUNT (deadline IS NULL, deadline > now).
      CREATE INDEX sessions_deadline ON sessions (deadline);
      -- USERSESSIONS and the revocation of a user's sessions.
      CREATE INDEX sessions_user ON sessions (user) WHERE user IS NOT NULL;
      -- LIST and COUNT of one class. Not (cls, id, deadline), which would make COUNT covering
      -- but cost every touch one more index update (measured: about 25% fewer touches/s).
      CREATE INDEX sessions_cls ON sessions (cls, id);

      -- indexed: 1 when the name is one of the store's indexedVars, so vars_find holds only
      -- the names FIND and LISTVAR are meant to be fast for.
      CREATE TABLE vars (
        sid TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        indexed INTEGER NOT NULL,
        PRIMARY KEY (sid, name)
      ) WITHOUT ROWID;
      CREATE INDEX vars_find ON vars (name, value) WHERE indexed = 1;

      CREATE TABLE meta (
        key TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
];

/** The schema version this code writes: the number of migrations. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The file's schema version (`PRAGMA user_version`). */
export function schemaVersion(db: DatabaseSync): number {
  const row = db.prepare('PRAGMA user_version').get() as { user_version: number } | undefined;
  return row?.user_version ?? 0;
}

/**
 * Brings the file's schema up to SCHEMA_VERSION; the number of steps applied (0 when it was
 * current). Throws when the file was written by a newer sessiond, rather than guess at it.
 */
export function migrate(db: DatabaseSync): number {
  let applied = 0;
  for (;;) {
    // IMMEDIATE takes the write lock before reading the version, so two processes opening one
    // file at once cannot both apply the same step.
    db.exec('BEGIN IMMEDIATE');
    try {
      const version = schemaVersion(db);
      if (version > SCHEMA_VERSION) {
        throw new Error(
          `sqlite store: the file has schema version ${version}, newer than this sessiond's ${SCHEMA_VERSION}`,
        );
      }
      const step = MIGRATIONS[version];
      if (step === undefined) {
        db.exec('COMMIT');
        return applied;
      }
      if (step.version !== version + 1) {
        throw new Error(`sqlite store: migration ${version + 1} is out of order`);
      }
      db.exec(step.sql);
      // PRAGMA takes no bound parameters; the value is an integer from the list above, never
      // from input, so it cannot carry SQL.
      db.exec(`PRAGMA user_version = ${step.version}`);
      db.exec('COMMIT');
      applied++;
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }
}
