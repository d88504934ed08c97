/**
 * Every SQL statement the PostgreSQL store sends, in one place, so tests can EXPLAIN exactly the
 * text the store runs.
 *
 * All of them take bound parameters only, each cast to its type: no id, name or value is ever
 * spliced into SQL (PHPLib's session table was open to SQL injection that way). The one thing
 * spliced in is the schema name, which quoteSchema() lets through only as a plain identifier.
 */

/** Live iff now < deadline; NULL is a session that never expires. */
const live = (now: string) => `(s.deadline IS NULL OR s.deadline > ${now})`;

const RECORD_COLUMNS =
  's.cls, s.data, s."user", s.created, s.timeout, s.expires, s.readonly, s.lock_key, s.lock_until';

/**
 * Records an access at most once per $3 ms, never on a grace copy: an UPDATE in a WITH, so a
 * read and its touch are one statement. The outer query reads the snapshot before the update.
 * $1 id, $2 now, $3 resolution.
 */
const touchIfDue = (S: string) => `WITH touch AS (
  UPDATE ${S}.sessions s SET touched = $2::bigint
  WHERE s.id = $1::bytea AND ${live('$2::bigint')} AND NOT s.readonly
    AND s.touched <= $2::bigint - $3::bigint
  RETURNING s.touched
)`;

/** A row of get(): the session, and its variables as two parallel arrays when asked for. */
export interface RecordRow {
  cls: Buffer;
  data: Buffer;
  user: Buffer | null;
  created: number;
  touched: number;
  timeout: number;
  expires: number;
  readonly: boolean;
  lock_key: number | null;
  lock_until: number | null;
  names?: Buffer[] | null;
  values?: Buffer[] | null;
}

function getRecord(S: string, touch: boolean, vars: boolean): string {
  const touched = touch ? 'coalesce((SELECT t.touched FROM touch t), s.touched)' : 's.touched';
  // One aggregate row per session: array_agg keeps names and values in the same order.
  const join = vars
    ? `LEFT JOIN LATERAL (SELECT array_agg(v.name) AS names, array_agg(v.value) AS values
         FROM ${S}.vars v WHERE v.sid = s.id) vs ON true`
    : '';
  return `${touch ? touchIfDue(S) : ''}
    SELECT ${RECORD_COLUMNS}, ${touched} AS touched${vars ? ', vs.names, vs.values' : ''}
    FROM ${S}.sessions s ${join}
    WHERE s.id = $1::bytea AND ${live('$2::bigint')}`;
}

/** The store's statements for schema `S` (a quoted identifier), by name. */
export function buildQueries(S: string) {
  return {
    // $1 id, $2 now, [$3 resolution]
    getFull: getRecord(S, true, true),
    getMeta: getRecord(S, true, false),
    getFullNoTouch: getRecord(S, false, true),
    getMetaNoTouch: getRecord(S, false, false),
    // $1 id, $2 now, $3 resolution, $4 name. No row: no live session; a NULL value: unset.
    getVar: `${touchIfDue(S)}
      SELECT v.value FROM ${S}.sessions s
      LEFT JOIN ${S}.vars v ON v.sid = s.id AND v.name = $4::bytea
      WHERE s.id = $1::bytea AND ${live('$2::bigint')}`,

    create: `SELECT ${S}.create_session($1::bytea, $2::bytea, $3::bytea, $4::bytea, $5::bigint,
      $6::bigint, $7::bigint, $8::bytea[], $9::bytea[], $10::boolean[]) AS created`,
    setVars: `SELECT ${S}.set_vars($1::bytea, $2::bigint, $3::bigint, $4::bytea[], $5::bytea[],
      $6::boolean[], $7::bigint) AS outcome`,
    unsetVars: `SELECT ${S}.unset_vars($1::bytea, $2::bigint, $3::bigint, $4::bytea[]) AS removed`,
    incVar: `SELECT i.o_status AS status, i.o_result AS result FROM ${S}.inc_var($1::bytea,
      $2::bytea, $3::numeric, $4::bigint, $5::bigint, $6::boolean, $7::bigint) i`,
    setData: `SELECT ${S}.set_data($1::bytea, $2::bytea, $3::bigint, $4::bigint, $5::bytea,
      $6::bytea, $7::bigint, $8::bigint, $9::bytea[], $10::bytea[], $11::boolean[]) AS outcome`,
    update: `SELECT ${S}.update_session($1::bytea, $2::bigint, $3::bigint, $4::boolean,
      $5::bigint, $6::boolean, $7::bigint, $8::boolean, $9::bytea) AS outcome`,
    // $1 id, $2 now. Not throttled; a grace copy answers true without being touched.
    touch: `WITH touch AS (
        UPDATE ${S}.sessions s SET touched = $2::bigint
        WHERE s.id = $1::bytea AND ${live('$2::bigint')} AND NOT s.readonly RETURNING 1
      )
      SELECT EXISTS (SELECT FROM touch)
        OR EXISTS (SELECT FROM ${S}.sessions s WHERE s.id = $1::bytea AND ${live('$2::bigint')})
        AS live`,
    destroy: `SELECT ${S}.destroy_session($1::bytea, $2::bigint) AS live`,
    regenerate: `SELECT ${S}.regenerate_session($1::bytea, $2::bytea, $3::bigint, $4::bigint)
      AS outcome`,

    // The whole-result reads end in a LIMIT (NULL: none), so PostgreSQL stops there and never
    // sends the rows past it.
    // `v.indexed` repeats the partial index's WHERE and sha256() its key: that is what lets the
    // planner use vars_find. $1 now, $2 name, $3 value, $4 limit.
    findIndexed: `SELECT v.sid FROM ${S}.vars v JOIN ${S}.sessions s ON s.id = v.sid
      WHERE v.indexed AND v.name = $2::bytea AND sha256(v.value) = sha256($3::bytea)
        AND v.value = $3::bytea AND ${live('$1::bigint')} LIMIT $4::bigint`,
    findScan: `SELECT v.sid FROM ${S}.vars v JOIN ${S}.sessions s ON s.id = v.sid
      WHERE v.name = $2::bytea AND v.value = $3::bytea AND ${live('$1::bigint')} LIMIT $4::bigint`,
    // $1 now, $2 name, $3 limit
    listVarIndexed: `SELECT v.sid, v.value FROM ${S}.vars v JOIN ${S}.sessions s ON s.id = v.sid
      WHERE v.indexed AND v.name = $2::bytea AND ${live('$1::bigint')} LIMIT $3::bigint`,
    listVarScan: `SELECT v.sid, v.value FROM ${S}.vars v JOIN ${S}.sessions s ON s.id = v.sid
      WHERE v.name = $2::bytea AND ${live('$1::bigint')} LIMIT $3::bigint`,

    // $1 now, $2 limit [, $3 class]
    listAll: `SELECT s.id FROM ${S}.sessions s WHERE ${live('$1::bigint')} LIMIT $2::bigint`,
    listAllCls: `SELECT s.id FROM ${S}.sessions s WHERE s.cls = $3::bytea AND ${live('$1::bigint')}
      LIMIT $2::bigint`,
    // Pages walk the primary key (or sessions_cls) in id order, which touches do not change.
    // $1 now, $2 rows to scan [, $3 class] [, $4 or $3: the last id of the previous page]
    listFirstPage: `SELECT s.id, ${live('$1::bigint')} AS live FROM ${S}.sessions s
      ORDER BY s.id LIMIT $2::bigint`,
    listNextPage: `SELECT s.id, ${live('$1::bigint')} AS live FROM ${S}.sessions s
      WHERE s.id > $3::bytea ORDER BY s.id LIMIT $2::bigint`,
    listFirstPageCls: `SELECT s.id, ${live('$1::bigint')} AS live FROM ${S}.sessions s
      WHERE s.cls = $3::bytea ORDER BY s.id LIMIT $2::bigint`,
    listNextPageCls: `SELECT s.id, ${live('$1::bigint')} AS live FROM ${S}.sessions s
      WHERE s.cls = $3::bytea AND s.id > $4::bytea ORDER BY s.id LIMIT $2::bigint`,
    // Two range scans of sessions_deadline: an OR of the two would be answered by a full scan.
    countLive: `SELECT (SELECT count(*) FROM ${S}.sessions s WHERE s.deadline IS NULL)
      + (SELECT count(*) FROM ${S}.sessions s WHERE s.deadline > $1::bigint) AS n`,
    countLiveCls: `SELECT count(*) AS n FROM ${S}.sessions s
      WHERE s.cls = $2::bytea AND ${live('$1::bigint')}`,

    // $1 id, $2 lease, $3 now
    lock: `SELECT l.o_status AS status, l.o_key AS key, l.o_until AS until
      FROM ${S}.lock_session($1::bytea, $2::bigint, $3::bigint) l`,
    // Only the current holder, within its lease, may release: msession let anyone unlock.
    // $1 id, $2 key, $3 now
    unlock: `UPDATE ${S}.sessions s SET lock_key = NULL, lock_until = NULL
      WHERE s.id = $1::bytea AND ${live('$3::bigint')} AND s.lock_key = $2::bigint
        AND s.lock_until > $3::bigint`,

    // $1 user, $2 now, $3 limit
    userSessions: `SELECT s.id FROM ${S}.sessions s
      WHERE s."user" = $1::bytea AND ${live('$2::bigint')} LIMIT $3::bigint`,
    // $1 user, $2 now, $3 except
    destroyUser: `SELECT ${S}.destroy_user($1::bytea, $3::bytea, $2::bigint) AS ids`,
    // $1 now, $2 limit
    sweep: `SELECT w.expired_id AS id, w.expired_cls AS cls FROM ${S}.sweep($1::bigint, $2::bigint) w`,
    empty: `SELECT ${S}.empty($1::bigint) AS n`,

    insertEventsKey: `INSERT INTO ${S}.meta (key, value) VALUES ('events_key', $1::text)
      ON CONFLICT (key) DO NOTHING`,
    selectEventsKey: `SELECT m.value FROM ${S}.meta m WHERE m.key = 'events_key'`,
    selectIndexedVars: `SELECT m.value FROM ${S}.meta m WHERE m.key = 'indexed_vars'`,
    saveIndexedVars: `INSERT INTO ${S}.meta (key, value) VALUES ('indexed_vars', $1::text)
      ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    flagAllIndexed: `UPDATE ${S}.vars v SET indexed = true WHERE NOT v.indexed`,
    flagIndexed: `UPDATE ${S}.vars v SET indexed = (v.name = ANY ($1::bytea[]))
      WHERE v.indexed <> (v.name = ANY ($1::bytea[]))`,
  } as const;
}

/** The store's statements by name. */
export type Queries = ReturnType<typeof buildQueries>;
