import { isSessiondError, SessiondError } from '../errors.ts';
import type { Awaitable } from '../store/types.ts';
import {
  isReadonlyRefusal,
  type SessionBackend,
  type SessionChanges,
  type StoredSession,
  type WriteOutcome,
} from './backend.ts';
import type { ResolvedOptions } from './options.ts';
import * as urls from './url-helpers.ts';
import { SessionValues, type VariableChanges } from './values.ts';

/**
 * The types of session variables, declared by the application through declaration merging.
 * Declared names are typed; other names hold any JSON value.
 *
 * @example
 * declare module 'sessiond/web' {
 *   interface SessionData { cart: string[]; theme: 'light' | 'dark' }
 * }
 * session.get('cart'); // string[] | undefined
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface SessionData {}

/**
 * The reserved variable where, with `renewAfter` on, the web layer keeps when the session's
 * current id was issued (unix seconds). The store's creation time cannot serve: REGENERATE
 * keeps it. Hidden from get() and names(); set() refuses it.
 */
export const ID_ISSUED_VAR = 'sessiond:idIssued';

/** The type of variable `K`: declared in SessionData, else unknown JSON. */
export type SessionValue<K extends string> = K extends keyof SessionData ? SessionData[K] : unknown;

/** What SessionManager.begin hands a new Session. */
export interface SessionSetup {
  options: ResolvedOptions;
  /** The id the session has: loaded, adopted (strict mode off), or null for a new visitor. */
  id: string | null;
  /** The loaded session, or null when the store did not have it. */
  loaded: StoredSession | null;
  /** Writes refused: the route's concurrency is 'readonly', or the session is a grace copy. */
  readonly: boolean;
  urls: urls.UrlContext;
}

/**
 * One request's session: PHPLib's Session and eZ's session functions in TypeScript form.
 * Variables are JSON values, read lazily, and only changed ones are written, at the end of the
 * request (before the response goes out) or by `save()`. A visitor who never writes costs no
 * store write and gets no cookie. Made by SessionManager.begin(), never directly.
 *
 * @example
 * const views = (session.get('views') as number | undefined) ?? 0;
 * session.set('views', views + 1);
 */
export class Session {
  #backend: SessionBackend;
  #options: ResolvedOptions;
  #urls: urls.UrlContext;
  #readonly: boolean;
  #id: string | null;
  #stored: boolean;
  /** An id the client chose and the store did not know (strict mode off): created on write. */
  #adopted: boolean;
  #values: SessionValues;
  #data: string;
  #dataDirty = false;
  #user: string | null;
  #userDirty = false;
  /** The user as the store has it, to tell a change of user (regenerateOnUserChange). */
  #savedUser: string | null;
  /** When the current id was issued, unix seconds (ID_ISSUED_VAR); null when not known. */
  #issued: number | null;
  #issuedDirty = false;
  /** The id was replaced in this request (regenerate or renewal): nobody else can hold it. */
  #renewed = false;
  /** A read-only copy left by regenerate with grace (when the backend can tell). */
  #graceCopy: boolean;
  /** Store operations of this session run one at a time, in call order. */
  #queue: Promise<unknown> | undefined;
  /** Operations queued and not yet settled: none, and the next one starts at once. */
  #inFlight = 0;

  constructor(setup: SessionSetup) {
    this.#options = setup.options;
    this.#backend = setup.options.backend;
    this.#urls = setup.urls;
    this.#readonly = setup.readonly;
    this.#id = setup.id;
    this.#stored = setup.loaded !== null;
    this.#adopted = setup.id !== null && setup.loaded === null;
    let vars = setup.loaded?.vars;
    this.#issued = issuedAt(vars?.get(ID_ISSUED_VAR));
    if (vars?.has(ID_ISSUED_VAR)) {
      // A copy: the backend's map is left as it gave it.
      vars = new Map(vars);
      vars.delete(ID_ISSUED_VAR);
    }
    this.#values = new SessionValues(vars);
    this.#data = setup.loaded?.data ?? '';
    this.#user = setup.loaded?.user ?? null;
    this.#savedUser = this.#user;
    this.#graceCopy = setup.loaded?.readonly === true;
  }

  /** The session id, or null until the session is first written. Never log it. */
  get id(): string | null {
    return this.#id;
  }

  /** Whether the session exists in the store (false for a new visitor and after delete()). */
  get stored(): boolean {
    return this.#stored;
  }

  /** A variable's value, or undefined. */
  get<K extends string>(name: K): SessionValue<K> | undefined {
    return this.#values.get(name) as SessionValue<K> | undefined;
  }

  /**
   * Sets a variable (undefined removes it); written when the request ends.
   * @throws TypeError for a value without a JSON form or the reserved name `sessiond:idIssued`;
   * SessiondError DENIED on a read-only route
   */
  set<K extends string>(name: K, value: SessionValue<K> | undefined): void {
    reserved(name);
    this.#writable();
    this.#values.set(name, value);
  }

  /** Whether a variable has a value. */
  has(name: string): boolean {
    return this.#values.has(name);
  }

  /**
   * PHPLib's register: the variable persists, starting as `initial` unless it has a value.
   * @throws TypeError, DENIED as set()
   */
  register<K extends string>(name: K, initial: SessionValue<K>): void {
    reserved(name);
    this.#writable();
    this.#values.register(name, initial);
  }

  /**
   * PHPLib's unregister: the value stays readable for the rest of this request, then is gone.
   * @throws DENIED on a read-only route
   */
  unregister(name: string): void {
    this.#writable();
    this.#values.unregister(name);
  }

  /** Whether the variable has a value that will persist past this request. */
  isRegistered(name: string): boolean {
    return this.#values.isRegistered(name);
  }

  /** Names of the variables that have a value. */
  names(): string[] {
    return this.#values.names();
  }

  /** The unstructured data blob (msession's data, eZ's data column); '' when never set. */
  get data(): string {
    return this.#data;
  }

  /** @throws DENIED on a read-only route */
  set data(data: string) {
    this.#writable();
    this.#data = data;
    this.#dataDirty = true;
  }

  /** The user id (eZSessionUserID), persisted with the session and indexed; null when none. */
  get userId(): string | null {
    return this.#user;
  }

  /** @throws DENIED on a read-only route */
  set userId(user: string | null) {
    this.#writable();
    this.#user = user === '' ? null : user;
    this.#userDirty = true;
  }

  /**
   * Moves the session to a new id and re-sends it: call at login and at every privilege change
   * (defends against session fixation). With `grace` seconds the old id stays a read-only copy,
   * so requests already in flight can finish. A session destroyed meanwhile starts afresh.
   * @throws DENIED on a read-only route or by a pre hook; LIMIT when grace exceeds the maximum
   */
  regenerate(options: { grace?: number } = {}): Promise<void> {
    this.#writable();
    return this.#serial(async () => {
      if (!this.#stored) {
        // Not stored yet: an adopted or early id is simply replaced before anyone can use it.
        if (this.#id !== null) this.#id = this.#backend.newId();
        this.#adopted = false;
        return;
      }
      this.#moved(await this.#backend.regenerate(this.#id!, options.grace ?? 0));
    });
  }

  /**
   * Renews an id older than `renewAfter` (OWASP renewal timeout): the adapters call this before
   * the response headers, so the new id reaches the client. Apps need not call it. A failed
   * renewal goes to `onError` and the session keeps its id until the next request.
   * @internal
   */
  renewIfDue(): Promise<void> {
    return this.#serial(async () => {
      const { renewAfter, renewGrace, onError } = this.#options;
      if (renewAfter === 0 || this.#readonly || this.#graceCopy || !this.#stored) return;
      // Replaced in this request already: the id is new.
      if (this.#renewed) return;
      // An unknown age counts as due: defends against an old id escaping renewal for good.
      if (this.#issued !== null && this.#now() - this.#issued < renewAfter) return;
      try {
        // A new id now and then: defends against a stolen id staying usable while the session
        // lives. With grace: requests in flight with the old id finish on a read-only snapshot.
        this.#moved(await this.#backend.regenerate(this.#id!, renewGrace));
      } catch (error) {
        // A grace copy (the backend could not tell at load): its successor renews, not it.
        if (isSessiondError(error) && isReadonlyRefusal(error)) return;
        onError(error);
      }
    });
  }

  /**
   * PHPLib's delete(): destroys the session now and clears the cookie. Writes after it start a
   * new session under a new id.
   * @throws DENIED on a read-only route or by a pre hook
   */
  delete(): Promise<void> {
    this.#writable();
    return this.#serial(async () => {
      if (this.#stored) await this.#backend.destroy(this.#id!);
      this.#reset();
    });
  }

  /**
   * Destroys the user's other sessions ("log out other devices").
   * @returns how many were destroyed (0 without a user id)
   */
  destroyOthers(): Promise<number> {
    const user = this.#user;
    if (user === null) return Promise.resolve(0);
    return this.#serial(() => this.#backend.destroyUser(user, this.#id));
  }

  /**
   * Writes the changes now; the adapters call it before the response goes out, so apps need
   * not. Only changed variables are written; a session destroyed meanwhile is never recreated.
   * @throws LIMIT, DENIED (a pre hook's veto); ClientError in remote mode
   */
  save(): Promise<void> {
    return this.#serial(() => this.#save());
  }

  /**
   * {@link save}, answering at once when nothing else is in flight and the backend writes at
   * once (an engine over the memory store): the adapters' hot path. May throw at once.
   */
  saveImmediate(): Awaitable<void> {
    if (this.#inFlight > 0) return this.save();
    const saved = this.#save();
    return saved instanceof Promise ? this.#track(saved) : undefined;
  }

  /**
   * Whether save() has anything to write now (a value changed in place counts), or a save is
   * still in flight. The adapters skip the final save, and its promises, when it has none.
   */
  get unsaved(): boolean {
    if (this.#inFlight > 0) return true;
    if (this.#readonly) return false;
    if (this.#dataDirty || this.#userDirty || (this.#stored && this.#issuedDirty)) return true;
    const vars = this.#values.changes();
    return vars.set.length > 0 || vars.unset.length > 0;
  }

  /** PHPLib's url(): `u` carrying the id in get mode, escaped for an attribute or a header. */
  url(u: string): string {
    return urls.sessionUrl(u, this.#token(), this.#urls);
  }

  /** PHPLib's self_url(): this request's URL; relative unless baseUrl or allowedHosts allow. */
  selfUrl(): string {
    return urls.selfUrl(this.#token(), this.#urls);
  }

  /** PHPLib's add_query(): `?k=v&...` or `&k=v&...`, URL-encoded, to append to selfUrl(). */
  addQuery(params: Readonly<Record<string, string | number | boolean>>): string {
    return urls.addQuery(params, this.#token(), this.#urls);
  }

  /** PHPLib's hidden_session(): a hidden input with the id, HTML-escaped; '' unless in get mode. */
  hiddenField(): string {
    return urls.hiddenField(this.#token(), this.#urls);
  }

  /** PHPLib's hidden_id (session4.inc), an alias of hiddenField(). */
  hiddenId(): string {
    return this.hiddenField();
  }

  #token(): string | null {
    return this.#id === null ? null : this.#options.signer.sign(this.#id);
  }

  /** After a regenerate: the new id, freshly issued, or nothing when the session is gone. */
  #moved(next: string | null): void {
    if (next === null) return this.#reset();
    this.#id = next;
    this.#renewed = true;
    this.#stampIssued();
  }

  /** Records that the current id is issued now; written only with renewAfter on. */
  #stampIssued(): void {
    this.#issued = this.#now();
    this.#issuedDirty = this.#options.renewAfter > 0;
  }

  /** Unix seconds, as CTL CTIME counts. */
  #now(): number {
    return Math.floor(this.#options.clock.now() / 1000);
  }

  /**
   * With regenerateOnUserChange: a session whose user changes gets a new id first, so an id
   * fixed or seen before the change never carries the new user (defends against fixation).
   * Fails the save when the regenerate fails (fails closed), except on a grace copy, whose
   * write is dropped anyway.
   */
  async #regenerateOnUserChange(): Promise<void> {
    if (!this.#options.regenerateOnUserChange || !this.#userDirty) return;
    if (this.#user === this.#savedUser || this.#renewed) return;
    if (!this.#stored) {
      // An id the client chose (strict mode off) is replaced; one this request made is fresh.
      if (this.#adopted) {
        this.#id = this.#backend.newId();
        this.#adopted = false;
        this.#renewed = true;
      }
      return;
    }
    if (this.#graceCopy) return;
    try {
      this.#moved(await this.#backend.regenerate(this.#id!, 0));
    } catch (error) {
      // Fails closed: defends against a new user riding on an id from before the change.
      if (!(isSessiondError(error) && isReadonlyRefusal(error))) throw error;
    }
  }

  #writable(): void {
    if (this.#readonly) throw new SessiondError('DENIED', 'the session is read-only here');
    // The id is chosen at the first write, so url() and hiddenField() can carry it at once.
    this.#id ??= this.#backend.newId();
  }

  #serial<T>(operation: () => Awaitable<T>): Promise<T> {
    // Nothing in flight: start now, a turn of the microtask queue sooner and a promise fewer.
    if (this.#inFlight === 0) {
      let started: Awaitable<T>;
      try {
        started = operation();
      } catch (error) {
        // What the operation threw, as a rejection: what its async form gave before.
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        return Promise.reject(error);
      }
      return this.#track(Promise.resolve(started));
    }
    return this.#track(this.#queue!.then(operation, operation));
  }

  /** Counts `run` in flight until it settles; later operations queue behind it. */
  #track<T>(run: Promise<T>): Promise<T> {
    this.#inFlight++;
    this.#queue = run.then(this.#settled, this.#settled);
    return run;
  }

  readonly #settled = (): void => {
    this.#inFlight--;
  };

  /** Writes what changed: at once when the backend writes at once, else a promise. */
  #save(): Awaitable<void> {
    // A read-only route never writes, not even a value changed in place.
    if (this.#readonly) return;
    // A user change may regenerate first, and a new session is created first: both wait.
    if (this.#userDirty || !this.#stored) return this.#saveNew();
    const data = this.#dataDirty ? this.#data : undefined;
    return this.#write(this.#values.changes(), data, undefined, false);
  }

  /** The save of a new session, or of a user change: regenerate or create first. */
  async #saveNew(): Promise<void> {
    if (this.#options.regenerateOnUserChange) await this.#regenerateOnUserChange();
    const vars = this.#values.changes();
    const data = this.#dataDirty ? this.#data : undefined;
    const user = this.#userDirty ? this.#user : undefined;
    const changed =
      vars.set.length || vars.unset.length || data !== undefined || user !== undefined;
    // A renewed id of an unchanged session still records when it was issued.
    if (!changed && !(this.#stored && this.#issuedDirty)) return;
    if (!this.#stored && this.#options.renewAfter > 0) this.#stampIssued();
    // A new session is created with its data blob; everything else follows as one write.
    const created = !this.#stored && (await this.#create(data));
    await this.#write(vars, data, user, created);
  }

  /**
   * Writes the changes of a stored session as one write, then records them as saved; at once
   * when the backend answers at once.
   */
  #write(
    vars: VariableChanges,
    data: string | undefined,
    user: string | null | undefined,
    created: boolean,
  ): Awaitable<void> {
    const changed =
      vars.set.length || vars.unset.length || data !== undefined || user !== undefined;
    // A renewed id of an unchanged session still records when it was issued.
    if (!changed && !this.#issuedDirty) return;
    const issued = this.#issuedDirty ? this.#issued : null;
    const set =
      issued === null ? vars.set : [...vars.set, [ID_ISSUED_VAR, String(issued)] as const];
    const changes: SessionChanges = { set, unset: vars.unset };
    if (user !== undefined) changes.user = user;
    if (data !== undefined && !created) changes.data = data;
    const done = (outcome: WriteOutcome) => this.#saved(outcome, vars, data, user, issued);
    if (!(set.length || vars.unset.length || 'user' in changes || 'data' in changes)) {
      return done('ok');
    }
    const backend = this.#backend;
    const outcome = backend.writeImmediate
      ? backend.writeImmediate(this.#id!, changes)
      : backend.write(this.#id!, changes);
    return outcome instanceof Promise ? outcome.then(done) : done(outcome);
  }

  /** After a write: what it wrote is no longer a change. */
  #saved(
    outcome: WriteOutcome,
    vars: VariableChanges,
    data: string | undefined,
    user: string | null | undefined,
    issued: number | null,
  ): void {
    // Destroyed meanwhile (a logout in another request): it stays destroyed.
    if (outcome === 'gone') return this.#reset();
    // 'readonly', a grace copy: the write is dropped; the session lives on under its new id.
    this.#values.saved(vars);
    if (this.#data === data) this.#dataDirty = false;
    if (this.#user === user) {
      this.#userDirty = false;
      this.#savedUser = user;
    }
    if (this.#issued === issued) this.#issuedDirty = false;
  }

  /**
   * Creates the session under its id, with `data` when given.
   * @returns false when an adopted id had been created by another request meanwhile
   */
  async #create(data: string | undefined): Promise<boolean> {
    const { className: cls, idleTimeout: timeout, absoluteTimeout: lifetime } = this.#options;
    for (let attempt = 1; ; attempt++) {
      const id = this.#id!;
      const init = { cls, timeout, lifetime, ...(data !== undefined && { data }) };
      if (await this.#backend.create(id, init)) {
        this.#stored = true;
        return true;
      }
      if (this.#adopted) {
        // Strict mode is off and another request created this id meanwhile: PHPLib shares it.
        this.#stored = true;
        return false;
      }
      // A made id that is taken (about 2^-190 odds): another id, never someone else's session.
      if (attempt === 3) throw new SessiondError('ERR', 'no free session id after 3 attempts');
      this.#id = this.#backend.newId();
    }
  }

  #reset(): void {
    this.#id = null;
    this.#stored = false;
    this.#adopted = false;
    this.#values = new SessionValues();
    this.#data = '';
    this.#dataDirty = false;
    this.#user = null;
    this.#userDirty = false;
    this.#savedUser = null;
    this.#issued = null;
    this.#issuedDirty = false;
    this.#graceCopy = false;
  }
}

/** @throws TypeError for the web layer's own variable */
function reserved(name: string): void {
  // Defends against app data overwriting the issue time, and so postponing renewal.
  if (name === ID_ISSUED_VAR) throw new TypeError(`${ID_ISSUED_VAR} is the web layer's own`);
}

/** The issue time a session's variable holds (JSON of unix seconds); null when not one. */
function issuedAt(json: string | undefined): number | null {
  const seconds = json === undefined ? NaN : Number(json);
  return Number.isSafeInteger(seconds) ? seconds : null;
}
