/**
 * The PostgreSQL schema of the session store, as an ordered list of migrations.
 *
 * The schema records the steps it has taken in its `schema_version` table; opening a store
 * applies the missing steps in order, each in its own transaction under a transaction-level
 * advisory lock, so two servers starting together never apply a step twice and a crash between
 * two steps leaves a schema that the next open carries on from.
 *
 * Every multi-step rule is a PL/pgSQL function, called as one statement: one round trip, one
 * transaction. The functions run under READ COMMITTED, where each statement inside them takes a
 * fresh snapshot; every writer of a session's variables locks its `sessions` row first (FOR
 * UPDATE, or by updating or deleting it), and deletes variables only in a later statement, so no
 * variable outlives its session and no count goes stale before commit.
 *
 * Byte strings (ids, classes, users, names, values, data) are `bytea`: PostgreSQL `text` cannot
 * hold NUL. Times are bigint milliseconds that the caller passes in; the database clock is
 * never read.
 */
import { createHash } from 'node:crypto';
import type { ClientBase } from 'pg';

/** One step of the schema: `sql(s)` takes schema `s` (a quoted identifier) from `version - 1` to `version`. */
export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: (schema: string) => string;
}

/** Live iff now < deadline; NULL is a session that never expires. */
const live = (alias: string, now: string) =>
  `(${alias}.deadline IS NULL OR ${alias}.deadline > ${now})`;

/**
 * Every schema step, oldest first. Append only: a step that has shipped is never edited, since
 * databases in the field already ran it; a changed function is a new step with CREATE OR REPLACE.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'sessions, vars, meta, their indexes and the functions of the atomic rules',
    sql: (S) => `
      -- deadline: deadlineOf(touched, timeout, expires) in ms, NULL when the session never
      -- expires. Generated, so no write can leave it out of step; liveness is one indexed
      -- comparison. fence: the last lock key handed out.
      CREATE TABLE ${S}.sessions (
        id bytea NOT NULL PRIMARY KEY,
        cls bytea NOT NULL,
        data bytea NOT NULL,
        "user" bytea,
        created bigint NOT NULL,
        touched bigint NOT NULL,
        timeout bigint NOT NULL,
        expires bigint NOT NULL,
        deadline bigint GENERATED ALWAYS AS (
          CASE
            WHEN timeout > 0 AND (expires <= 0 OR touched + timeout * 1000 < expires)
              THEN touched + timeout * 1000
            WHEN expires > 0 THEN expires
          END
        ) STORED,
        readonly boolean NOT NULL DEFAULT false,
        fence bigint NOT NULL DEFAULT 0,
        lock_key bigint,
        lock_until bigint
      );
      -- The sweep (deadline <= now, earliest first) and COUNT (deadline IS NULL, deadline > now).
      CREATE INDEX sessions_deadline ON ${S}.sessions (deadline);
      -- USERSESSIONS and the revocation of a user's sessions.
      CREATE INDEX sessions_user ON ${S}.sessions ("user") WHERE "user" IS NOT NULL;
      -- LIST and COUNT of one class; deadline included so both can answer from the index. A
      -- touch changes the indexed deadline, so it updates every index anyway: the INCLUDE is free.
      CREATE INDEX sessions_cls ON ${S}.sessions (cls, id) INCLUDE (deadline);

      -- indexed: true when the name is one of the store's indexedVars, so vars_find holds only
      -- the names FIND and LISTVAR are meant to be fast for. The index keys on sha256(value),
      -- not the value: a btree entry must fit in a third of a page, and values reach 64 KiB.
      CREATE TABLE ${S}.vars (
        sid bytea NOT NULL,
        name bytea NOT NULL,
        value bytea NOT NULL,
        indexed boolean NOT NULL,
        PRIMARY KEY (sid, name)
      );
      CREATE INDEX vars_find ON ${S}.vars (name, sha256(value)) WHERE indexed;

      CREATE TABLE ${S}.meta (
        key text NOT NULL PRIMARY KEY,
        value text NOT NULL
      );

      -- Creates the session unless a live one has the id; an expired row (and its variables)
      -- is replaced. Two creators of one id: the second's INSERT waits for the first's commit.
      CREATE FUNCTION ${S}.create_session(
        p_id bytea, p_cls bytea, p_data bytea, p_user bytea, p_timeout bigint, p_expires bigint,
        p_now bigint, p_names bytea[], p_values bytea[], p_indexed boolean[]
      ) RETURNS boolean LANGUAGE plpgsql AS $$
      BEGIN
        DELETE FROM ${S}.sessions s WHERE s.id = p_id AND s.deadline <= p_now;
        INSERT INTO ${S}.sessions (id, cls, data, "user", created, touched, timeout, expires)
          VALUES (p_id, p_cls, p_data, p_user, p_now, p_now, p_timeout, p_expires)
          ON CONFLICT (id) DO NOTHING;
        IF NOT FOUND THEN
          RETURN false;
        END IF;
        -- The variables of the expired row deleted above, if any.
        DELETE FROM ${S}.vars v WHERE v.sid = p_id;
        INSERT INTO ${S}.vars (sid, name, value, indexed)
          SELECT p_id, u.n, u.v, u.i FROM unnest(p_names, p_values, p_indexed) AS u(n, v, i);
        RETURN true;
      END $$;

      -- Locks the live session's row for the rest of the transaction and records the access
      -- (at most once per p_resolution ms; never on a read-only grace copy). NULL: no session.
      CREATE FUNCTION ${S}.lock_for_write(p_id bytea, p_now bigint, p_resolution bigint)
      RETURNS boolean LANGUAGE plpgsql AS $$
      DECLARE
        v_readonly boolean;
        v_touched bigint;
      BEGIN
        SELECT s.readonly, s.touched INTO v_readonly, v_touched FROM ${S}.sessions s
          WHERE s.id = p_id AND ${live('s', 'p_now')} FOR UPDATE;
        IF NOT FOUND THEN
          RETURN NULL;
        END IF;
        IF NOT v_readonly AND v_touched <= p_now - p_resolution THEN
          UPDATE ${S}.sessions s SET touched = p_now WHERE s.id = p_id;
        END IF;
        RETURN v_readonly;
      END $$;

      -- Sets variables unless the session would then hold more than p_max_vars. The names come
      -- deduplicated (last value wins) from the caller.
      CREATE FUNCTION ${S}.set_vars(
        p_id bytea, p_now bigint, p_resolution bigint, p_names bytea[], p_values bytea[],
        p_indexed boolean[], p_max_vars bigint
      ) RETURNS text LANGUAGE plpgsql AS $$
      DECLARE
        v_readonly boolean := ${S}.lock_for_write(p_id, p_now, p_resolution);
        v_count bigint;
        v_added bigint;
      BEGIN
        IF v_readonly IS NULL THEN
          RETURN 'nosession';
        ELSIF v_readonly THEN
          RETURN 'readonly';
        END IF;
        SELECT count(*) INTO v_count FROM ${S}.vars v WHERE v.sid = p_id;
        -- Only when the session could overflow is it worth looking up which names are new.
        IF v_count + cardinality(p_names) > p_max_vars THEN
          SELECT count(*) INTO v_added FROM unnest(p_names) AS u(n)
            WHERE NOT EXISTS (SELECT 1 FROM ${S}.vars v WHERE v.sid = p_id AND v.name = u.n);
          IF v_count + v_added > p_max_vars THEN
            RETURN 'limit';
          END IF;
        END IF;
        INSERT INTO ${S}.vars (sid, name, value, indexed)
          SELECT p_id, u.n, u.v, u.i FROM unnest(p_names, p_values, p_indexed) AS u(n, v, i)
          ON CONFLICT (sid, name) DO UPDATE SET value = excluded.value;
        RETURN 'ok';
      END $$;

      -- Removes variables; -1 for no session, -2 for a read-only copy, else how many existed.
      CREATE FUNCTION ${S}.unset_vars(
        p_id bytea, p_now bigint, p_resolution bigint, p_names bytea[]
      ) RETURNS bigint LANGUAGE plpgsql AS $$
      DECLARE
        v_readonly boolean := ${S}.lock_for_write(p_id, p_now, p_resolution);
        v_removed bigint;
      BEGIN
        IF v_readonly IS NULL THEN
          RETURN -1;
        ELSIF v_readonly THEN
          RETURN -2;
        END IF;
        DELETE FROM ${S}.vars v WHERE v.sid = p_id AND v.name = ANY (p_names);
        GET DIAGNOSTICS v_removed = ROW_COUNT;
        RETURN v_removed;
      END $$;

      -- Adds p_by to an integer variable (absent counts as 0). The stored value must be a
      -- canonical signed 64-bit decimal (as parseInt64: no '+', spaces, leading zeros or '-0'),
      -- and so must the sum: the arithmetic is numeric, so overflow is a range check, not a wrap.
      -- status: ok (result is the new value as text), notint, limit, nosession or readonly.
      CREATE FUNCTION ${S}.inc_var(
        p_id bytea, p_name bytea, p_by numeric, p_now bigint, p_resolution bigint,
        p_indexed boolean, p_max_vars bigint, OUT o_status text, OUT o_result text
      ) LANGUAGE plpgsql AS $$
      DECLARE
        v_readonly boolean := ${S}.lock_for_write(p_id, p_now, p_resolution);
        v_value bytea;
        v_text text;
        v_sum numeric;
      BEGIN
        IF v_readonly IS NULL THEN
          o_status := 'nosession';
          RETURN;
        ELSIF v_readonly THEN
          o_status := 'readonly';
          RETURN;
        END IF;
        SELECT v.value INTO v_value FROM ${S}.vars v WHERE v.sid = p_id AND v.name = p_name;
        IF NOT FOUND THEN
          v_sum := p_by;
        ELSE
          -- 20 bytes hold the longest int64 ('-9223372036854775808'): never decode a big value.
          -- 'escape' turns every byte that is not printable ASCII into a backslash sequence,
          -- which the pattern refuses.
          v_text := CASE WHEN length(v_value) <= 20 THEN encode(v_value, 'escape') END;
          IF v_text IS NULL OR v_text !~ '^-?(0|[1-9][0-9]{0,18})$' OR v_text = '-0' THEN
            o_status := 'notint';
            RETURN;
          END IF;
          v_sum := v_text::numeric + p_by;
        END IF;
        IF v_sum < -9223372036854775808 OR v_sum > 9223372036854775807 THEN
          o_status := 'notint';
          RETURN;
        END IF;
        IF v_value IS NULL
           AND (SELECT count(*) FROM ${S}.vars v WHERE v.sid = p_id) >= p_max_vars THEN
          o_status := 'limit';
          RETURN;
        END IF;
        INSERT INTO ${S}.vars (sid, name, value, indexed)
          VALUES (p_id, p_name, convert_to(v_sum::text, 'SQL_ASCII'), p_indexed)
          ON CONFLICT (sid, name) DO UPDATE SET value = excluded.value;
        o_status := 'ok';
        o_result := v_sum::text;
      END $$;

      -- Sets the data blob, creating the session from the p_* fields when none is live.
      CREATE FUNCTION ${S}.set_data(
        p_id bytea, p_data bytea, p_now bigint, p_resolution bigint, p_cls bytea, p_user bytea,
        p_timeout bigint, p_expires bigint, p_names bytea[], p_values bytea[], p_indexed boolean[]
      ) RETURNS text LANGUAGE plpgsql AS $$
      DECLARE
        v_readonly boolean;
      BEGIN
        LOOP
          v_readonly := ${S}.lock_for_write(p_id, p_now, p_resolution);
          IF v_readonly THEN
            RETURN 'readonly';
          ELSIF NOT v_readonly THEN
            UPDATE ${S}.sessions s SET data = p_data WHERE s.id = p_id;
            RETURN 'updated';
          ELSIF ${S}.create_session(p_id, p_cls, p_data, p_user, p_timeout, p_expires, p_now,
                                    p_names, p_values, p_indexed) THEN
            RETURN 'created';
          END IF;
          -- Another server created the id between the two steps: the next turn's fresh
          -- snapshot sees it and updates it.
        END LOOP;
      END $$;

      -- Changes metadata and records the access. p_set_*: whether the field is in the patch.
      CREATE FUNCTION ${S}.update_session(
        p_id bytea, p_now bigint, p_resolution bigint, p_set_timeout boolean, p_timeout bigint,
        p_set_expires boolean, p_expires bigint, p_set_user boolean, p_user bytea
      ) RETURNS text LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE ${S}.sessions s SET
          timeout = CASE WHEN p_set_timeout THEN p_timeout ELSE s.timeout END,
          expires = CASE WHEN p_set_expires THEN p_expires ELSE s.expires END,
          "user" = CASE WHEN p_set_user THEN p_user ELSE s."user" END,
          touched = CASE WHEN s.touched <= p_now - p_resolution THEN p_now ELSE s.touched END
          WHERE s.id = p_id AND ${live('s', 'p_now')} AND NOT s.readonly;
        IF FOUND THEN
          RETURN 'ok';
        END IF;
        PERFORM FROM ${S}.sessions s WHERE s.id = p_id AND ${live('s', 'p_now')} AND s.readonly;
        RETURN CASE WHEN FOUND THEN 'readonly' ELSE 'nosession' END;
      END $$;

      -- Removes the session, live or expired; true if it was live.
      CREATE FUNCTION ${S}.destroy_session(p_id bytea, p_now bigint)
      RETURNS boolean LANGUAGE plpgsql AS $$
      DECLARE
        v_deadline bigint;
      BEGIN
        DELETE FROM ${S}.sessions s WHERE s.id = p_id RETURNING s.deadline INTO v_deadline;
        IF NOT FOUND THEN
          RETURN false;
        END IF;
        DELETE FROM ${S}.vars v WHERE v.sid = p_id;
        RETURN v_deadline IS NULL OR v_deadline > p_now;
      END $$;

      -- Moves a session to p_new_id, which must be free; see Store.regenerate.
      CREATE FUNCTION ${S}.regenerate_session(
        p_old_id bytea, p_new_id bytea, p_grace bigint, p_now bigint
      ) RETURNS text LANGUAGE plpgsql AS $$
      DECLARE
        r ${S}.sessions%ROWTYPE;
        v_expires bigint;
      BEGIN
        SELECT * INTO r FROM ${S}.sessions s
          WHERE s.id = p_old_id AND ${live('s', 'p_now')} FOR UPDATE;
        IF NOT FOUND THEN
          RETURN 'nosession';
        END IF;
        -- A grace copy cannot be regenerated again, or a stolen old id could mint fresh ones.
        IF r.readonly THEN
          RETURN 'readonly';
        END IF;
        DELETE FROM ${S}.sessions s WHERE s.id = p_new_id AND s.deadline <= p_now;
        INSERT INTO ${S}.sessions (id, cls, data, "user", created, touched, timeout, expires,
                                   readonly, fence, lock_key, lock_until)
          VALUES (p_new_id, r.cls, r.data, r."user", r.created, p_now, r.timeout, r.expires,
                  false, r.fence, r.lock_key, r.lock_until)
          ON CONFLICT (id) DO NOTHING;
        IF NOT FOUND THEN
          RETURN 'exists';
        END IF;
        -- The replaced expired row's variables, if any.
        DELETE FROM ${S}.vars v WHERE v.sid = p_new_id;
        IF p_grace > 0 THEN
          INSERT INTO ${S}.vars (sid, name, value, indexed)
            SELECT p_new_id, v.name, v.value, v.indexed FROM ${S}.vars v WHERE v.sid = p_old_id;
          -- The old id only serves requests already in flight: read-only, unlocked, and gone
          -- after the grace, so a fixated or stolen old id is worth little.
          v_expires := CASE WHEN r.expires > 0 THEN least(r.expires, p_now + p_grace)
                            ELSE p_now + p_grace END;
          UPDATE ${S}.sessions s SET readonly = true, expires = v_expires, lock_key = NULL,
                                     lock_until = NULL
            WHERE s.id = p_old_id;
        ELSE
          UPDATE ${S}.vars v SET sid = p_new_id WHERE v.sid = p_old_id;
          DELETE FROM ${S}.sessions s WHERE s.id = p_old_id;
        END IF;
        RETURN 'ok';
      END $$;

      -- Takes the lock if it is free or its lease ran out. status: acquired (key, until), held
      -- (until: the holder's lease end) or nosession.
      CREATE FUNCTION ${S}.lock_session(
        p_id bytea, p_lease bigint, p_now bigint, OUT o_status text, OUT o_key bigint,
        OUT o_until bigint
      ) LANGUAGE plpgsql AS $$
      BEGIN
        LOOP
          -- Keys only grow, even across unlocks, so a holder whose lease ran out cannot
          -- release (or be mistaken for) the next holder: a fencing token.
          UPDATE ${S}.sessions s
            SET fence = s.fence + 1, lock_key = s.fence + 1, lock_until = p_now + p_lease
            WHERE s.id = p_id AND ${live('s', 'p_now')}
              AND (s.lock_until IS NULL OR s.lock_until <= p_now)
            RETURNING s.lock_key, s.lock_until INTO o_key, o_until;
          IF FOUND THEN
            o_status := 'acquired';
            RETURN;
          END IF;
          SELECT s.lock_until INTO o_until FROM ${S}.sessions s
            WHERE s.id = p_id AND ${live('s', 'p_now')};
          IF NOT FOUND THEN
            o_status := 'nosession';
            RETURN;
          ELSIF o_until > p_now THEN
            o_status := 'held';
            RETURN;
          END IF;
          -- Released between the two statements: try again.
        END LOOP;
      END $$;

      -- Removes the user's live sessions but p_except; the ids removed.
      CREATE FUNCTION ${S}.destroy_user(p_user bytea, p_except bytea, p_now bigint)
      RETURNS bytea[] LANGUAGE plpgsql AS $$
      DECLARE
        v_ids bytea[];
      BEGIN
        WITH gone AS (
          DELETE FROM ${S}.sessions s
            WHERE s."user" = p_user AND ${live('s', 'p_now')} AND s.id IS DISTINCT FROM p_except
            RETURNING s.id
        ) SELECT coalesce(array_agg(gone.id), '{}') INTO v_ids FROM gone;
        DELETE FROM ${S}.vars v WHERE v.sid = ANY (v_ids);
        RETURN v_ids;
      END $$;

      -- Removes at most p_limit expired sessions, earliest deadline first. SKIP LOCKED: two
      -- servers sweeping at once take disjoint rows, so each expiry is reported once; a row
      -- touched meanwhile is re-checked against its new deadline before it is taken.
      CREATE FUNCTION ${S}.sweep(p_now bigint, p_limit bigint)
      RETURNS TABLE (expired_id bytea, expired_cls bytea) LANGUAGE plpgsql AS $$
      DECLARE
        v_ids bytea[];
        v_classes bytea[];
      BEGIN
        WITH gone AS (
          DELETE FROM ${S}.sessions s WHERE s.id IN (
            SELECT e.id FROM ${S}.sessions e WHERE e.deadline <= p_now
              ORDER BY e.deadline LIMIT p_limit FOR UPDATE SKIP LOCKED
          ) RETURNING s.id, s.cls, s.deadline
        ) SELECT coalesce(array_agg(gone.id ORDER BY gone.deadline, gone.id), '{}'),
                 coalesce(array_agg(gone.cls ORDER BY gone.deadline, gone.id), '{}')
            INTO v_ids, v_classes FROM gone;
        DELETE FROM ${S}.vars v WHERE v.sid = ANY (v_ids);
        RETURN QUERY SELECT u.i, u.c FROM unnest(v_ids, v_classes) WITH ORDINALITY AS u(i, c, n)
          ORDER BY u.n;
      END $$;

      -- Removes every session; how many were live.
      CREATE FUNCTION ${S}.empty(p_now bigint) RETURNS bigint LANGUAGE plpgsql AS $$
      DECLARE
        v_live bigint;
      BEGIN
        WITH gone AS (DELETE FROM ${S}.sessions s RETURNING s.deadline)
          SELECT count(*) FILTER (WHERE ${live('gone', 'p_now')}) INTO v_live FROM gone;
        -- Variables of sessions created meanwhile (after the snapshot above) stay with them.
        DELETE FROM ${S}.vars v WHERE NOT EXISTS (SELECT FROM ${S}.sessions s WHERE s.id = v.sid);
        RETURN v_live;
      END $$;
    `,
  },
];

/** The schema version this code writes: the number of migrations. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Schema names the store accepts: an unquoted PostgreSQL identifier, lower case. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The schema name as a quoted identifier, for the SQL text.
 * @throws RangeError when the name is not a plain lower-case identifier
 */
export function quoteSchema(schema: string): string {
  // Identifiers cannot be bound parameters: only a plain identifier gets into SQL text, so the
  // option cannot carry SQL (injection through configuration).
  if (!SCHEMA_NAME.test(schema)) {
    throw new RangeError(`postgres store: schema must match ${String(SCHEMA_NAME)}`);
  }
  return `"${schema}"`;
}

/**
 * The advisory lock key of a purpose ('migrate', 'sweep', ...) in one schema: the first 64 bits
 * of a SHA-256, as the decimal text of a signed bigint.
 */
export function advisoryKey(schema: string, purpose: string): string {
  const digest = createHash('sha256').update(`sessiond:${schema}:${purpose}`).digest();
  return digest.readBigInt64BE(0).toString();
}

/** The schema's version: 0 when it (or its schema_version table) does not exist yet. */
export async function schemaVersion(client: ClientBase, schema: string): Promise<number> {
  const S = quoteSchema(schema);
  const exists = await client.query<{ t: string | null }>(
    "SELECT to_regclass($1 || '.schema_version') AS t",
    [S],
  );
  if (exists.rows[0]?.t == null) return 0;
  const row = await client.query<{ v: number | null }>(
    `SELECT max(version)::int AS v FROM ${S}.schema_version`,
  );
  return row.rows[0]?.v ?? 0;
}

/**
 * Brings the schema up to SCHEMA_VERSION; the number of steps applied (0 when it was current).
 * Each step runs in its own transaction under an advisory lock, so concurrent openers queue
 * and the later ones find the work done. Throws when the schema was written by a newer sessiond.
 */
export async function migrate(client: ClientBase, schema: string): Promise<number> {
  const S = quoteSchema(schema);
  let applied = 0;
  for (;;) {
    // READ COMMITTED, whatever the default: the version must be read after the lock is granted,
    // not in a snapshot taken while waiting for it.
    await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [
        advisoryKey(schema, 'migrate'),
      ]);
      // Only when missing: a role that may use a schema a DBA made need not be able to create one.
      // A new schema grants nothing to PUBLIC: session ids are bearer credentials, readable
      // only by sessiond's role (and superusers).
      const exists = await client.query<{ e: boolean }>(
        'SELECT to_regnamespace($1) IS NOT NULL AS e',
        [S],
      );
      if (exists.rows[0]?.e !== true) await client.query(`CREATE SCHEMA ${S}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${S}.schema_version (
        version integer NOT NULL PRIMARY KEY,
        description text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const version = await schemaVersion(client, schema);
      if (version > SCHEMA_VERSION) {
        throw new Error(
          `postgres store: schema ${schema} has version ${version}, newer than this sessiond's ${SCHEMA_VERSION}`,
        );
      }
      const step = MIGRATIONS[version];
      if (step === undefined) {
        await client.query('COMMIT');
        return applied;
      }
      if (step.version !== version + 1) {
        throw new Error(`postgres store: migration ${version + 1} is out of order`);
      }
      await client.query(step.sql(S));
      await client.query(`INSERT INTO ${S}.schema_version (version, description) VALUES ($1, $2)`, [
        step.version,
        step.description,
      ]);
      await client.query('COMMIT');
      applied++;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  }
}
