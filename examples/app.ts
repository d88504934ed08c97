/**
 * A small Express app on sessiond's web layer: a per-session counter, login with regenerate(),
 * logout, "log out other devices", and PHPLib's get mode (the id in links and forms, no cookie).
 *
 *   node examples/app.ts                            embedded, SQLite file ./sessiond-example.db
 *   node examples/app.ts --store memory             embedded, in memory
 *   node examples/app.ts --remote 127.0.0.1:8086    a sessiond server (node bin/sessiond.js serve)
 *   node examples/app.ts --port 3000                where it listens (127.0.0.1; default 3000)
 *
 * SESSION_KEY (32+ bytes) signs the ids; SESSIOND_PASSWORD is the server's password, if any.
 * An app outside this repository imports from 'sessiond/web' and 'sessiond/web/express'.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import express, {
  type ErrorRequestHandler,
  type Express,
  type Request,
  type RequestHandler,
} from 'express';
import { SessiondClient } from '../src/client/index.ts';
import { Engine } from '../src/index.ts';
import { openStore } from '../src/store/open.ts';
import { expressSessions, sessionOf } from '../src/web/express/index.ts';
import {
  createSessions,
  escapeHtml,
  type SessionManager,
  type SessionOptions,
} from '../src/web/index.ts';

/** The one demo account. A real app keeps password hashes (scrypt, argon2), never passwords. */
export const DEMO_USER = 'demo';
export const DEMO_PASSWORD = 'demo-password';

/** What `createApp` needs: where sessions live, and optionally the keys that sign their ids. */
export interface AppOptions {
  backing: Pick<SessionOptions, 'engine' | 'client'>;
  keys?: readonly string[];
}

/** The app and its two session managers (cookie sessions, and get-mode sessions). */
export interface App {
  app: Express;
  sessions: SessionManager;
  getModeSessions: SessionManager;
  /** Stops the managers' timers; the engine or client is the caller's to close. */
  close(): Promise<void>;
}

/**
 * Builds the example app over an engine (embedded) or a client (remote).
 * @example
 * const { app } = createApp({ backing: { engine: new Engine({ store: new MemoryStore() }) } });
 * app.listen(3000, '127.0.0.1');
 */
export function createApp(options: AppOptions): App {
  const keys = options.keys?.length ? { keys: options.keys } : {};
  const sessions = createSessions({ ...options.backing, ...keys, className: 'example' });
  // PHPLib's get mode: the id rides in URLs and forms under its own name and class.
  const getModeSessions = createSessions({
    ...options.backing,
    ...keys,
    name: 'sid',
    className: 'example-get',
    carrier: 'query',
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(sameOriginPosts);
  app.use(express.urlencoded({ extended: false, limit: '4kb' }));
  app.use('/get-mode', getModeRouter(getModeSessions));
  app.use(expressSessions(sessions));

  app.get('/', (req, res) => {
    const session = sessionOf(req);
    const visits = ((session.get('visits') as number | undefined) ?? 0) + 1;
    session.set('visits', visits);
    const user = session.userId;
    res.send(
      page(
        'Home',
        `<p>You have seen this page <strong id="visits">${visits}</strong> time${visits === 1 ? '' : 's'} in this session.</p>
${user === null ? loginForm() : signedIn(user)}
<p><a href="/get-mode/">Get mode</a>: a session carried in links and forms, without a cookie.</p>`,
      ),
    );
  });

  app.post('/login', async (req, res) => {
    const { user = '', password = '' } = formOf(req);
    if (user !== DEMO_USER || !passwordMatches(password)) {
      res.status(401).send(page('Sign in', `<p>Wrong user or password.</p>${loginForm()}`));
      return;
    }
    const session = sessionOf(req);
    // A new id at login: an id planted before it is worthless after (defends against fixation).
    await session.regenerate();
    session.userId = user;
    res.redirect(303, '/');
  });

  app.post('/logout', async (req, res) => {
    await sessionOf(req).delete();
    res.redirect(303, '/');
  });

  app.get('/devices', async (req, res) => {
    const session = sessionOf(req);
    const user = session.userId;
    if (user === null) return res.redirect(303, '/');
    const ids = await sessions.userSessions(user);
    // Each session shown by a fingerprint, never its id: an id on a page is a key to it.
    const items = ids
      .map((id) => {
        const mine = id === session.id ? ' (this device)' : '';
        return `<li><code>${escapeHtml(fingerprint(id))}</code>${mine}</li>`;
      })
      .join('\n');
    res.send(
      page(
        'Your devices',
        `<p>${escapeHtml(user)} is signed in on ${ids.length} device${ids.length === 1 ? '' : 's'}:</p>
<ul id="devices">
${items}
</ul>
<form method="post" action="/devices/revoke"><button>Log out other devices</button></form>
<p><a href="/">Home</a></p>`,
      ),
    );
  });

  app.post('/devices/revoke', async (req, res) => {
    await sessionOf(req).destroyOthers();
    res.redirect(303, '/devices');
  });

  app.use((_req, res) => void res.status(404).send(page('Not found', '<p>No such page.</p>')));
  app.use(errorPage);

  return {
    app,
    sessions,
    getModeSessions,
    close: async () => {
      await sessions.close();
      await getModeSessions.close();
    },
  };
}

/** PHPLib's get mode: every link and form of these pages carries `sid`, escaped by url(). */
function getModeRouter(sessions: SessionManager): express.Router {
  const router = express.Router();
  router.use(expressSessions(sessions));
  router.get('/', (req, res) => {
    const session = sessionOf(req);
    const clicks = ((session.get('clicks') as number | undefined) ?? 0) + 1;
    session.set('clicks', clicks);
    const note = session.get('note') as string | undefined;
    // url(), selfUrl() and hiddenField() return text already escaped for an attribute.
    res.send(
      page(
        'Get mode',
        `<p>Clicks in this session: <strong id="clicks">${clicks}</strong>.</p>
<p><a id="again" href="${session.url('/get-mode/')}">Click again</a> (the session id is in the link)</p>
<form method="post" action="/get-mode/note">
${session.hiddenField()}
<label>A note to keep <input name="note" maxlength="200"></label> <button>Save</button>
</form>
${note === undefined ? '' : `<p>Your note: <q id="note">${escapeHtml(note)}</q></p>`}
<p><a href="/">Home</a> (the cookie session; this one is left behind)</p>`,
      ),
    );
  });
  router.post('/note', (req, res) => {
    const session = sessionOf(req);
    session.set('note', (formOf(req).note ?? '').slice(0, 200));
    res.redirect(303, session.url('/get-mode/'));
  });
  router.use((_req, res) => void res.status(404).send(page('Not found', '<p>No such page.</p>')));
  return router;
}

function signedIn(user: string): string {
  return `<p>Signed in as <strong id="user">${escapeHtml(user)}</strong>. <a href="/devices">Your devices</a></p>
<form method="post" action="/logout"><button>Log out</button></form>`;
}

function loginForm(): string {
  return `<form method="post" action="/login">
<label>User <input name="user" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button>Sign in</button>
</form>
<p>Demo account: <code>${escapeHtml(DEMO_USER)}</code> / <code>${escapeHtml(DEMO_PASSWORD)}</code></p>`;
}

/** A whole page; `body` must already be escaped. */
function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>${escapeHtml(title)} · sessiond example</title>
<h1>${escapeHtml(title)}</h1>
${body}
</html>
`;
}

/** The urlencoded form, as strings only (a repeated field is not an array here). */
function formOf(req: Request): Record<string, string | undefined> {
  const body: unknown = req.body;
  if (typeof body !== 'object' || body === null) return {};
  const form: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(body)) {
    if (typeof value === 'string') form[name] = value;
  }
  return form;
}

function passwordMatches(given: string): boolean {
  // Equal-length digests compared in constant time: defends against timing attacks.
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(DEMO_PASSWORD));
}

/** A short, one-way label of a session id. */
export function fingerprint(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 10);
}

/**
 * A cross-site form post carries no session cookie (SameSite=Lax), but a login form needs none:
 * refusing foreign Origins defends against login CSRF as well.
 */
const sameOriginPosts: RequestHandler = (req, res, next) => {
  const origin = req.get('origin');
  if (req.method === 'POST' && origin !== undefined && origin !== `${req.protocol}://${req.host}`) {
    res.status(403).send(page('Refused', '<p>A form from another site was refused.</p>'));
    return;
  }
  next();
};

const errorPage: ErrorRequestHandler = (error: { status?: number }, _req, res, _next) => {
  // The page says what kind of failure, never the error itself (it may name internals).
  if (error.status !== 503) console.error(error);
  const busy = error.status === 503;
  res
    .status(busy ? 503 : 500)
    .send(page(busy ? 'Busy' : 'Error', `<p>${busy ? 'Try again in a moment.' : 'Sorry.'}</p>`));
};

/** Runs the example from the command line. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      store: { type: 'string', default: 'sqlite:sessiond-example.db' },
      remote: { type: 'string' },
      port: { type: 'string', default: '3000' },
    },
  });
  let backing: AppOptions['backing'];
  let closeBacking: () => Promise<void>;
  if (values.remote !== undefined) {
    const [host = '127.0.0.1', port = '8086'] = values.remote.split(':');
    const password = process.env['SESSIOND_PASSWORD'];
    const client = await SessiondClient.connect({
      host,
      port: Number(port),
      ...(password !== undefined && { password }),
    });
    backing = { client };
    closeBacking = () => client.disconnect();
  } else {
    const engine = new Engine({ store: await openStore(values.store) });
    backing = { engine };
    closeBacking = () => engine.close();
  }
  const key = process.env['SESSION_KEY'];
  const example = createApp({ backing, ...(key !== undefined && { keys: [key] }) });
  const server: Server = example.app.listen(Number(values.port), '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const where = values.remote === undefined ? values.store : `sessiond at ${values.remote}`;
  console.log(`sessiond example on http://127.0.0.1:${port}/ (sessions: ${where})`);
  const stop = async () => {
    server.close();
    server.closeAllConnections();
    await example.close();
    await closeBacking();
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) await main();
