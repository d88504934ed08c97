import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

type Call = () => void;

/** What the held response calls at its first byte and at its end. */
export interface HoldHooks {
  /** Before the first byte (headers included) leaves: write the session, set its headers. */
  beforeHeaders(): Promise<void>;
  /** Before the last byte leaves: write what changed since, release the lock. */
  beforeEnd(): Promise<void>;
  /** A hook failed: the response is replaced by a 500 if its headers are still unsent. */
  onError(error: unknown): void;
  /** The client went away before the response ended. */
  onAbort(): void;
}

/** A held response, as its handler left it. */
export interface HeldResponse {
  /** Whether the handler has called end() (the response may still be held). */
  readonly ended: boolean;
}

/**
 * Holds back a node:http response until the session is saved: writeHead, write, flushHeaders and
 * end are queued while `beforeHeaders` runs, then replayed in order, and end waits for
 * `beforeEnd`. So a redirect never reaches the browser before the session it leads to is stored.
 * express-session saves at end() too, but lets writeHead and write pass; this holds them all.
 */
export function holdResponse(res: ServerResponse, hooks: HoldHooks): HeldResponse {
  // Kept unbound so they are restored exactly as found; always called with `res` as `this`.
  /* eslint-disable @typescript-eslint/unbound-method */
  const original = {
    writeHead: res.writeHead,
    write: res.write,
    end: res.end,
    flushHeaders: res.flushHeaders,
  };
  /* eslint-enable @typescript-eslint/unbound-method */
  const queue: Call[] = [];
  let state: 'open' | 'saving' | 'streaming' | 'ending' | 'done' = 'open';
  let ended = false;

  const restore = (): void => {
    res.writeHead = original.writeHead;
    res.write = original.write;
    res.flushHeaders = original.flushHeaders;
  };
  const fail = (error: unknown): void => {
    state = 'done';
    queue.length = 0;
    restore();
    res.end = original.end;
    hooks.onError(error);
    if (!res.headersSent) {
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      res.statusCode = 500;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end('session could not be saved\n');
    } else {
      res.destroy();
    }
  };
  const finish = (call: Call): void => {
    state = 'ending';
    hooks.beforeEnd().then(() => {
      state = 'done';
      res.end = original.end;
      call();
    }, fail);
  };
  const startSaving = (): void => {
    if (state !== 'open') return;
    state = 'saving';
    hooks.beforeHeaders().then(() => {
      state = 'streaming';
      restore();
      const calls = queue.splice(0);
      for (const call of calls) call();
    }, fail);
  };

  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    if (state === 'open' || state === 'saving') {
      queue.push(() => callWriteHead(res, original.writeHead, args));
      return res;
    }
    return callWriteHead(res, original.writeHead, args);
  };
  res.write = function (this: ServerResponse, ...args: unknown[]) {
    queue.push(() => void Reflect.apply(original.write, res, args));
    startSaving();
    return true;
  } as ServerResponse['write'];
  res.flushHeaders = function (this: ServerResponse) {
    queue.push(() => original.flushHeaders.call(res));
    startSaving();
  };
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    if (ended) return res;
    ended = true;
    const end: Call = () => void Reflect.apply(original.end, res, args);
    if (state === 'streaming') {
      finish(end);
    } else {
      queue.push(() => finish(end));
      startSaving();
    }
    return res;
  } as ServerResponse['end'];
  res.once('close', () => {
    if (state !== 'done' && !res.writableFinished) hooks.onAbort();
  });
  return {
    get ended() {
      return ended;
    },
  };
}

/**
 * Calls the real writeHead. Set-Cookie lines given to writeHead would replace the session's
 * (writeHead's headers win over setHeader's), so they are appended instead.
 */
function callWriteHead(
  res: ServerResponse,
  writeHead: ServerResponse['writeHead'],
  args: unknown[],
): ServerResponse {
  const at = args.findIndex(isHeaderObject);
  if (at >= 0) {
    const headers = { ...(args[at] as OutgoingHttpHeaders) };
    for (const name of Object.keys(headers)) {
      if (name.toLowerCase() !== 'set-cookie') continue;
      const value = headers[name];
      if (value !== undefined) res.appendHeader('set-cookie', value as string | string[]);
      delete headers[name];
    }
    args = args.with(at, headers);
  }
  return Reflect.apply(writeHead, res, args) as ServerResponse;
}

function isHeaderObject(value: unknown): value is OutgoingHttpHeaders {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
