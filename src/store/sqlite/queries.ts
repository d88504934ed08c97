/**
 * Every SQL statement the SQLite store runs, in one place, so tests can check the query plan of
 * exactly the text the store prepares.
 *
 * All of them take bound parameters only: no id, name or value is ever spliced into SQL (PHPLib's
 * session table was open to SQL injection that way).
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';

const SESSION_COLUMNS =
  'id, cls, data, user, created, touched, timeout, expires, deadline, readonly, fence, lock_key, lock_until';
/** Live iff now < deadline; NULL is a session that never expires. */
const LIVE = '(deadline IS NULL OR deadline > ?)';
const LIVE_JOIN = 'JOIN sessions s ON s.id = v.sid WHERE (s.deadline IS NULL OR s.deadline > ?)';
/**
 * ?1 is the last id of the previous page, or '' with ?2 = 1 on the first page, where
 * `id >= ''` lets even an empty id through while keeping a range scan on the index.
 */
const PAGE = 'id >= ?1 AND (id > ?1 OR ?2)';
/** The join of a range scan: ?1 now, ?4/?5 the range's start as PAGE has it. */
const SCAN_JOIN =
  'JOIN sessions s ON s.id = v.sid WHERE (s.deadline IS NULL OR s.deadline > ?1) AND v.sid >= ?4 AND (v.sid > ?4 OR ?5)';

/** The `LIMIT ?` of a read that wants every row: SQLite takes a negative limit as none. */
export const ALL_ROWS = -1;

/** The store's statements by name. */
export const QUERIES = {
  begin: 'BEGIN IMMEDIATE',
  beginRead: 'BEGIN',
  commit: 'COMMIT',
  rollback: 'ROLLBACK',

  selectLive: `SELECT ${SESSION_COLUMNS} FROM sessions WHERE id = ? AND ${LIVE}`,
  selectDeadline: 'SELECT deadline FROM sessions WHERE id = ?',
  insertSession: `INSERT INTO sessions (${SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  deleteSession: 'DELETE FROM sessions WHERE id = ?',
  // One statement that re-checks the throttle and recomputes the deadline from the row as it
  // is, so a touch is atomic even when the caller read the row outside the transaction.
  touchDue: `UPDATE sessions SET touched = ?1, deadline = sessiond_deadline(?1, timeout, expires)
             WHERE id = ?2 AND readonly = 0 AND touched <= ?1 - ?3`,
  touchNow: 'UPDATE sessions SET touched = ?, deadline = ? WHERE id = ?',
  updateData: 'UPDATE sessions SET data = ? WHERE id = ?',
  updateMeta:
    'UPDATE sessions SET user = ?, touched = ?, timeout = ?, expires = ?, deadline = ? WHERE id = ?',
  updateLock: 'UPDATE sessions SET fence = ?, lock_key = ?, lock_until = ? WHERE id = ?',
  makeGraceCopy: `UPDATE sessions SET readonly = 1, expires = ?, deadline = ?, lock_key = NULL, lock_until = NULL
                  WHERE id = ?`,

  selectVars: 'SELECT name, value FROM vars WHERE sid = ?',
  selectVarOfLive: `SELECT s.touched, s.readonly, v.value FROM sessions s
                    LEFT JOIN vars v ON v.sid = s.id AND v.name = ?
                    WHERE s.id = ? AND (s.deadline IS NULL OR s.deadline > ?)`,
  selectVar: 'SELECT value FROM vars WHERE sid = ? AND name = ?',
  countVars: 'SELECT count(*) AS n FROM vars WHERE sid = ?',
  upsertVar: `INSERT INTO vars (sid, name, value, indexed) VALUES (?, ?, ?, ?)
              ON CONFLICT (sid, name) DO UPDATE SET value = excluded.value`,
  deleteVar: 'DELETE FROM vars WHERE sid = ? AND name = ?',
  deleteVars: 'DELETE FROM vars WHERE sid = ?',
  copyVars:
    'INSERT INTO vars (sid, name, value, indexed) SELECT ?, name, value, indexed FROM vars WHERE sid = ?',
  moveVars: 'UPDATE vars SET sid = ? WHERE sid = ?',

  // `v.indexed = 1` repeats the partial index's WHERE, which is what lets the planner use vars_find.
  // The whole-result reads end in `LIMIT ?` (see ALL_ROWS): SQLite stops stepping there.
  findIndexed: `SELECT v.sid AS id FROM vars v ${LIVE_JOIN} AND v.indexed = 1 AND v.name = ? AND v.value = ? LIMIT ?`,
  // An unindexed name is scanned a range of sessions at a time (see SqliteStore.#scanRanges):
  // ?1 now, ?2 name, ?3 value, ?4/?5 the range's start as PAGE has it, ?6 its last id, ?7 limit.
  findScan: `SELECT v.sid AS id FROM vars v ${SCAN_JOIN} AND v.sid <= ?6 AND v.name = ?2 AND v.value = ?3 LIMIT ?7`,
  findScanTail: `SELECT v.sid AS id FROM vars v ${SCAN_JOIN} AND v.name = ?2 AND v.value = ?3 LIMIT ?7`,
  listVarIndexed: `SELECT v.sid AS id, v.value FROM vars v ${LIVE_JOIN} AND v.indexed = 1 AND v.name = ? LIMIT ?`,
  // ?1 now, ?2 name, ?4/?5 the range's start, ?6 its last id, ?7 limit (?3 unused).
  listVarScan: `SELECT v.sid AS id, v.value FROM vars v ${SCAN_JOIN} AND v.sid <= ?6 AND v.name = ?2 LIMIT ?7`,
  listVarScanTail: `SELECT v.sid AS id, v.value FROM vars v ${SCAN_JOIN} AND v.name = ?2 LIMIT ?7`,
  /** The last id of the range of ?3 sessions that starts where ?1/?2 say (PAGE); none past the end. */
  scanRangeEnd: `SELECT id FROM sessions WHERE ${PAGE} ORDER BY id LIMIT 1 OFFSET ?3 - 1`,

  listAll: `SELECT id FROM sessions WHERE ${LIVE} LIMIT ?`,
  listAllCls: `SELECT id FROM sessions WHERE cls = ? AND ${LIVE} LIMIT ?`,
  listPage: `SELECT id, (deadline IS NULL OR deadline > ?3) AS live FROM sessions
             WHERE ${PAGE} ORDER BY id`,
  listPageCls: `SELECT id, (deadline IS NULL OR deadline > ?3) AS live FROM sessions
                WHERE cls = ?4 AND ${PAGE} ORDER BY id`,
  // Two range scans of sessions_deadline: an OR of the two would be answered by a full scan.
  countLive: `SELECT (SELECT count(*) FROM sessions WHERE deadline IS NULL)
                   + (SELECT count(*) FROM sessions WHERE deadline > ?) AS n`,
  countLiveCls: `SELECT count(*) AS n FROM sessions WHERE cls = ? AND ${LIVE}`,
  userSessions: `SELECT id FROM sessions WHERE user = ? AND ${LIVE} LIMIT ?`,
  selectExpired: 'SELECT id, cls FROM sessions WHERE deadline <= ? ORDER BY deadline LIMIT ?',
  deleteAllVars: 'DELETE FROM vars',
  deleteAllSessions: 'DELETE FROM sessions',
} as const;

/** The store's statements, prepared. */
export type Statements = { readonly [K in keyof typeof QUERIES]: StatementSync };

/** Prepares every statement once, for the life of the connection. */
export function prepareAll(db: DatabaseSync): Statements {
  const prepared: Partial<Record<keyof typeof QUERIES, StatementSync>> = {};
  for (const name of Object.keys(QUERIES) as Array<keyof typeof QUERIES>) {
    prepared[name] = db.prepare(QUERIES[name]);
  }
  return prepared as Statements;
}
