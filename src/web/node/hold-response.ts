import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Awaitable } from '../../store/types.ts';

/** What the held response calls at its first byte and at its end. */
export interface HoldHooks {
  /**
   * Before the first byte (headers included) leaves: write the session, set its headers. A
   * value (not a promise) when that is done at once: the response then goes on at once.
   */
  beforeHeaders(): Awaitable<void>;
  /** Before the last byte leaves: write what changed since, release the lock; as above. */
  beforeEnd(): Awaitable<void>;
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

/** One of the response's own methods, called with the response as `this`. */
type Method = (this: ServerResponse, ...args: unknown[]) => unknown;

/**
 * open: nothing sent yet; saving: beforeHeaders runs; streaming: calls pass through; ending:
 * beforeEnd runs; done: the end went out (or the hold failed).
 */
type State = 'open' | 'saving' | 'streaming' | 'ending' | 'done';

/**
 * Holds back a node:http response until the session is saved: writeHead, write, flushHeaders and
 * end are queued while `beforeHeaders` runs, then replayed in order, and end waits for
 * `beforeEnd`. So a redirect never reaches the browser before the session it leads to is stored.
 * express-session saves at end() too, but lets writeHead and write pass; this holds them all.
 */
export function holdResponse(res: ServerResponse, hooks: HoldHooks): HeldResponse {
  const hold = new Hold(res, hooks);
  // The stand-ins are the only per-response closures; the state lives in one Hold object.
  res.writeHead = function (...args: unknown[]) {
    if (hold.state === 'open' || hold.state === 'saving') {
      hold.queue.push(hold.writeHead, args);
      return res;
    }
    return callWriteHead(res, hold.writeHead, args);
  };
  res.write = function (...args: unknown[]) {
    if (hold.state !== 'open' && hold.state !== 'saving') {
      return Reflect.apply(hold.write, res, args) as boolean;
    }
    hold.queue.push(hold.write, args);
    hold.startSaving();
    return true;
  } as ServerResponse['write'];
  res.flushHeaders = function () {
    if (hold.state !== 'open' && hold.state !== 'saving') return void hold.flushHeaders.call(res);
    hold.queue.push(hold.flushHeaders, []);
    hold.startSaving();
  };
  res.end = function (...args: unknown[]) {
    if (hold.ended) return res;
    hold.ended = true;
    hold.endArgs = args;
    if (hold.state === 'streaming') hold.finish();
    else hold.startSaving();
    return res;
  } as ServerResponse['end'];
  res.on('close', () => {
    if (hold.state !== 'done' && !res.writableFinished) hooks.onAbort();
  });
  return hold;
}

/**
 * A held response's state. A class with plain fields, not an object literal with a getter: such
 * a literal is built by a slow runtime path, about 2 µs a response.
 */
class Hold implements HeldResponse {
  ended = false;
  state: State = 'open';
  /** Calls held back while the session is saved, as method, arguments, method, ... in order. */
  queue: unknown[] = [];
  /** end()'s arguments once the handler has called it. */
  endArgs: unknown[] | null = null;
  readonly res: ServerResponse;
  readonly hooks: HoldHooks;
  // The originals, kept unbound so they are restored exactly as found (own methods or inherited).
  readonly writeHead: Method;
  readonly write: Method;
  readonly end: Method;
  readonly flushHeaders: Method;

  constructor(res: ServerResponse, hooks: HoldHooks) {
    this.res = res;
    this.hooks = hooks;
    /* eslint-disable @typescript-eslint/unbound-method */
    this.writeHead = res.writeHead as Method;
    this.write = res.write as Method;
    this.end = res.end as Method;
    this.flushHeaders = res.flushHeaders;
    /* eslint-enable @typescript-eslint/unbound-method */
  }

  /** At the first write, flush or end: save, then replay what was held. */
  startSaving(): void {
    if (this.state !== 'open') return;
    this.state = 'saving';
    this.#after(
      () => this.hooks.beforeHeaders(),
      () => this.#replay(),
    );
  }

  /** After end(): write what changed since, then let the end out. */
  finish(): void {
    this.state = 'ending';
    this.#after(
      () => this.hooks.beforeEnd(),
      () => this.#end(),
    );
  }

  /** Runs `hook`, then `next` at once when it answered at once; its failure fails the hold. */
  #after(hook: () => Awaitable<void>, next: () => void): void {
    let done: Awaitable<void>;
    try {
      done = hook();
    } catch (error) {
      return this.#fail(error);
    }
    if (!(done instanceof Promise)) return next();
    done.then(next, (error: unknown) => this.#fail(error));
  }

  #end(): void {
    this.state = 'done';
    this.res.end = this.end as ServerResponse['end'];
    Reflect.apply(this.end, this.res, this.endArgs!);
  }

  #replay(): void {
    this.state = 'streaming';
    this.#restore();
    const { queue, res } = this;
    this.queue = [];
    for (let i = 0; i < queue.length; i += 2) {
      const method = queue[i] as Method;
      const args = queue[i + 1] as unknown[];
      if (method === this.writeHead) callWriteHead(res, method, args);
      else Reflect.apply(method, res, args);
    }
    if (this.endArgs !== null) this.finish();
  }

  #restore(): void {
    const { res } = this;
    res.writeHead = this.writeHead as ServerResponse['writeHead'];
    res.write = this.write as ServerResponse['write'];
    res.flushHeaders = this.flushHeaders;
  }

  #fail(error: unknown): void {
    const { res } = this;
    this.state = 'done';
    this.queue = [];
    this.#restore();
    res.end = this.end as ServerResponse['end'];
    this.hooks.onError(error);
    if (!res.headersSent) {
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      res.statusCode = 500;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end('session could not be saved\n');
    } else {
      res.destroy();
    }
  }
}

/**
 * Calls the real writeHead. Set-Cookie lines given to writeHead would replace the session's
 * (writeHead's headers win over setHeader's), so they are appended instead.
 */
function callWriteHead(res: ServerResponse, writeHead: Method, args: unknown[]): ServerResponse {
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
