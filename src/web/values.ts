/**
 * A session's variables for one request: thawed lazily from JSON (never eval, unlike PHPLib),
 * frozen back at commit, and only those whose JSON changed are written.
 */

/** What commit writes: JSON per changed variable, and the names to remove. */
export interface VariableChanges {
  set: Array<[string, string]>;
  unset: string[];
}

/**
 * The variable table of one request. A value that was read is compared, as JSON, with what was
 * loaded at commit, so a change made in place (`cart.push(item)`) is saved without a `set`.
 */
export class SessionValues {
  /** JSON text as the store has it (after the last save). */
  #stored: Map<string, string>;
  /** Values read or set during this request. */
  #live = new Map<string, unknown>();
  /** Unregistered: readable until the request ends, then removed. */
  #unregistered = new Set<string>();
  /** Removed now (set to undefined). */
  #removed = new Set<string>();
  /** For text that was not JSON: its JSON form, so reading it alone does not rewrite it. */
  #rawText = new Map<string, string>();

  constructor(stored: Map<string, string> = new Map()) {
    this.#stored = stored;
  }

  get(name: string): unknown {
    if (this.#live.has(name)) return this.#live.get(name);
    if (this.#removed.has(name)) return undefined;
    const json = this.#stored.get(name);
    if (json === undefined) return undefined;
    const value = thaw(json);
    if (value === json) this.#rawText.set(name, freeze(value));
    this.#live.set(name, value);
    return value;
  }

  /**
   * Sets a value; undefined removes the variable at once.
   * @throws TypeError when the value has no JSON form (a BigInt, a cycle, a function)
   */
  set(name: string, value: unknown): void {
    this.#unregistered.delete(name);
    if (value === undefined) {
      this.#live.delete(name);
      this.#removed.add(name);
      return;
    }
    // Frozen once now so that a value with no JSON form fails here, at the caller.
    freeze(value);
    this.#removed.delete(name);
    this.#live.set(name, value);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** PHPLib's register: the variable persists; it starts as `initial` when it has no value. */
  register(name: string, initial: unknown): void {
    this.#unregistered.delete(name);
    if (!this.has(name)) this.set(name, initial);
  }

  /** PHPLib's unregister: the value stays for the rest of the request, then is gone. */
  unregister(name: string): void {
    if (this.has(name)) this.#unregistered.add(name);
  }

  isRegistered(name: string): boolean {
    return !this.#unregistered.has(name) && this.has(name);
  }

  /** Names of the variables that have a value now. */
  names(): string[] {
    const names = new Set([...this.#stored.keys(), ...this.#live.keys()]);
    return [...names].filter((name) => this.has(name));
  }

  /** What differs from the store: only changed variables are written. */
  changes(): VariableChanges {
    const set: Array<[string, string]> = [];
    for (const [name, value] of this.#live) {
      if (this.#unregistered.has(name)) continue;
      const json = freeze(value);
      if (json !== (this.#rawText.get(name) ?? this.#stored.get(name))) set.push([name, json]);
    }
    const unset: string[] = [];
    for (const name of this.#removed) if (this.#stored.has(name)) unset.push(name);
    for (const name of this.#unregistered) if (this.#stored.has(name)) unset.push(name);
    return { set, unset };
  }

  /** Records that `changes` reached the store, so a later save writes only what follows. */
  saved(changes: VariableChanges): void {
    for (const [name, json] of changes.set) {
      this.#stored.set(name, json);
      this.#rawText.delete(name);
    }
    for (const name of changes.unset) {
      this.#stored.delete(name);
      this.#live.delete(name);
    }
    this.#removed.clear();
    this.#unregistered.clear();
  }
}

/**
 * The JSON of a value.
 * @throws TypeError when it has none
 */
function freeze(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError('session values must have a JSON form');
  return json;
}

/**
 * A stored value. Text that is not JSON (a value another msession client wrote) reads back as
 * the text itself.
 */
function thaw(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return json;
  }
}
