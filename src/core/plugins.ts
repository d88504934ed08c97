import { SessiondError } from '../errors.ts';

/** msession's personality-plugin escape: PLUGIN sid val [param]. */
export type EscapeFunction = (
  sid: string,
  val: string,
  param: string | undefined,
) => string | Promise<string>;

/** msession's function plugin: CALL fn [arg ...]. */
export type CallFunction = (args: readonly string[]) => string | Promise<string>;

/**
 * The functions the operator registered for PLUGIN and CALL. Only code the operator loads can
 * register (msession let any client load a .so with MADMIN_LOADDLL: remote code execution).
 */
export class Plugins {
  #escape: EscapeFunction | undefined;
  #functions = new Map<string, CallFunction>();

  /** Sets the PLUGIN escape function (one, as msession had one personality plugin). */
  setEscape(fn: EscapeFunction): void {
    this.#escape = fn;
  }

  /** Registers a CALL function under a case-sensitive name. */
  register(name: string, fn: CallFunction): void {
    this.#functions.set(name, fn);
  }

  /** @throws SessiondError NOPLUGIN when none is loaded; ERR when it throws. */
  escape(sid: string, val: string, param: string | undefined): Promise<string> {
    const fn = this.#escape;
    if (!fn)
      return Promise.reject(new SessiondError('NOPLUGIN', 'no plugin escape function is loaded'));
    return guard('plugin', () => fn(sid, val, param));
  }

  /** @throws SessiondError NOPLUGIN when `name` is not registered; ERR when it throws. */
  call(name: string, args: readonly string[]): Promise<string> {
    const fn = this.#functions.get(name);
    if (!fn)
      return Promise.reject(
        new SessiondError('NOPLUGIN', `no plugin function named ${JSON.stringify(name)}`),
      );
    return guard(name, () => fn(args));
  }
}

/** Runs plugin code so that whatever it throws becomes an error reply to that client only. */
async function guard(what: string, run: () => string | Promise<string>): Promise<string> {
  try {
    const result = await run();
    if (typeof result !== 'string') throw new TypeError('plugin returned a non-string');
    return result;
  } catch (error) {
    if (error instanceof SessiondError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new SessiondError('ERR', `plugin ${what} failed: ${message}`);
  }
}
