import { readFileSync } from 'node:fs';
import type { Engine } from '../../core/engine.ts';
import { validateId } from '../../core/ids.ts';
import { noSession } from '../../errors.ts';
import { mapReply } from '../../protocol/resp/encoder.ts';
import { deadlineOf } from '../../store/types.ts';
import { bytesToJson, replyToJson, type Json } from '../http/json-codec.ts';
import type { ActivityHistory } from '../observability/activity-history.ts';
import type { ServerStats } from '../stats.ts';

/**
 * The Content-Security-Policy of the page. Scripts only from the server's own files, never
 * inline, and Trusted Types for none: defends against stored XSS through session ids and
 * values, so that even a future `innerHTML` with data throws instead of running it. Only the
 * page's own origin may be fetched, and no frame may hold it: defends against clickjacking on
 * the destroy buttons.
 */
export const ADMIN_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

/** Headers of every file of the page. */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': ADMIN_CSP,
  // frame-ancestors for browsers that predate it: defends against clickjacking.
  'x-frame-options': 'DENY',
  // The browser keeps to the declared types: defends against a file run as another kind.
  'x-content-type-options': 'nosniff',
  // The page's address never leaves in a Referer header.
  'referrer-policy': 'no-referrer',
  // No window opened from elsewhere keeps a handle on the page.
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': 'no-cache',
};

/** A file of the page, ready to send. */
export interface AdminAsset {
  body: Buffer;
  headers: Readonly<Record<string, string>>;
}

/** The page's files by route; read once, at start. */
const FILES: ReadonlyArray<[route: string, file: string, type: string]> = [
  ['/admin', 'index.html', 'text/html; charset=utf-8'],
  ['/admin/', 'index.html', 'text/html; charset=utf-8'],
  ['/admin/app.js', 'app.js', 'text/javascript; charset=utf-8'],
  ['/admin/charts.js', 'charts.js', 'text/javascript; charset=utf-8'],
  ['/admin/admin.css', 'admin.css', 'text/css; charset=utf-8'],
];

/**
 * The same folder from src/server/admin and from dist/server/admin: the package ships src, and
 * the browser's files are plain JavaScript that the TypeScript build does not copy.
 */
const ASSETS = new URL('../../../src/server/admin/assets/', import.meta.url);

/** What the admin page reads: the engine, the counters and the last hour. */
export interface AdminPageOptions {
  engine: Engine;
  stats: ServerStats;
  history: ActivityHistory;
  version: string;
}

/**
 * The admin page at `/admin` on the HTTP port: its files, and the two reads its JSON API adds
 * to the command routes (finds and actions go through `POST /v1/command`).
 *
 * - `GET /admin`, `/admin/app.js`, `/admin/charts.js`, `/admin/admin.css`: the page. They
 *   hold no data and load without credentials, so the page can ask for the password.
 * - `GET /admin/api/stats[?since=ms]`: {@link stats}.
 * - `POST /admin/api/session` with `{"id": "..."}`: {@link session}.
 *
 * @example
 * const page = new AdminPage({ engine, stats, history, version });
 * page.asset('/admin/app.js')?.body;
 */
export class AdminPage {
  #engine: Engine;
  #stats: ServerStats;
  #history: ActivityHistory;
  #version: string;
  #assets = new Map<string, AdminAsset>();

  constructor(options: AdminPageOptions) {
    this.#engine = options.engine;
    this.#stats = options.stats;
    this.#history = options.history;
    this.#version = options.version;
    for (const [route, file, type] of FILES) {
      this.#assets.set(route, {
        body: readFileSync(new URL(file, ASSETS)),
        headers: { ...PAGE_HEADERS, 'content-type': type },
      });
    }
  }

  /** The page's file at `path`, or undefined when the path is not one. */
  asset(path: string): AdminAsset | undefined {
    return this.#assets.get(path);
  }

  /**
   * The server now and its last hour: `{version, store, uptimeSeconds, now, sessions,
   * connections, commands, stepMs, history: [{at, sessions, classes, createdPerMinute,
   * destroyedPerMinute, expiredPerMinute, commandsPerSecond, connections}]}`, the history from
   * `since` (ms since the epoch) on when given.
   * @throws whatever the store raises counting sessions
   */
  async stats(since?: number): Promise<Json> {
    const stats = this.#stats;
    return {
      version: this.#version,
      store: this.#engine.store.kind,
      uptimeSeconds: Math.floor((Date.now() - stats.startedAt) / 1000),
      now: Date.now(),
      sessions: await this.#engine.count(),
      connections: stats.connections,
      commands: stats.commands,
      stepMs: this.#history.stepMs,
      history: this.#history.points(since).map(({ at, value }) => ({ at, ...value })),
    };
  }

  /**
   * One session whole, without recording an access (looking must not extend its life):
   * `{id, class, user, data, vars, created, touched, timeout, expires, deadline, lock,
   * readonly}`. Times are ms since the epoch (`expires` 0 and `deadline` null: none), `timeout`
   * seconds, `lock` `{key, until}` or null; byte strings as the HTTP port writes them.
   * @throws BADID, NOSESSION
   */
  async session(id: string): Promise<Json> {
    validateId(id, this.#engine.limits.maxIdBytes);
    const session = await this.#engine.store.get(id, this.#engine.now(), {
      touch: false,
      vars: true,
    });
    if (!session) throw noSession(id);
    const deadline = deadlineOf(session.touched, session.timeout, session.expires);
    return {
      id: bytesToJson(session.id) as Json,
      class: bytesToJson(session.cls) as Json,
      user: session.user === null ? null : (bytesToJson(session.user) as Json),
      data: bytesToJson(session.data) as Json,
      vars: replyToJson(mapReply([...session.vars])),
      created: session.created,
      touched: session.touched,
      timeout: session.timeout,
      expires: session.expires,
      deadline: Number.isFinite(deadline) ? deadline : null,
      lock: session.lock && { key: session.lock.key, until: session.lock.until },
      readonly: session.readonly,
    };
  }
}
