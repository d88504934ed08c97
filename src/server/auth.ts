import { createHash, timingSafeEqual } from 'node:crypto';

export interface AuthOptions {
  /** The password of user `default`: every command but the admin ones. None: no AUTH needed. */
  password?: string;
  /** The password of user `admin`: every command. None: `default` has the admin right too. */
  adminPassword?: string;
}

/** What a client may do. */
export interface Rights {
  authenticated: boolean;
  admin: boolean;
}

/**
 * Password checks for both ports. msession's daemon had no authentication at all: anyone who
 * reached the port could read, write and destroy every session.
 */
export class Auth {
  #password: Buffer | undefined;
  #adminPassword: Buffer | undefined;

  constructor(options: AuthOptions = {}) {
    this.#password = options.password === undefined ? undefined : digest(options.password, 'utf8');
    this.#adminPassword =
      options.adminPassword === undefined ? undefined : digest(options.adminPassword, 'utf8');
  }

  get required(): boolean {
    return this.#password !== undefined || this.#adminPassword !== undefined;
  }

  /** The rights of a client that has not authenticated. */
  initial(): Rights {
    return { authenticated: !this.required, admin: !this.required };
  }

  /**
   * The rights that `user` (default when omitted) and `password` grant, or null when wrong.
   * Compares SHA-256 digests in constant time: defends against timing attacks on the password.
   */
  check(user: string | undefined, password: string): Rights | null {
    const given = digest(password, 'latin1');
    const matches = (expected: Buffer | undefined) =>
      expected !== undefined && timingSafeEqual(given, expected);
    const asAdmin = (user === undefined || user === 'admin') && matches(this.#adminPassword);
    if (asAdmin) return { authenticated: true, admin: true };
    if ((user === undefined || user === 'default') && matches(this.#password)) {
      return { authenticated: true, admin: this.#adminPassword === undefined };
    }
    return null;
  }
}

/**
 * Configured passwords are text (UTF-8); a password from the wire is a byte string (latin1,
 * one byte per code unit). Hashing each by its own encoding compares the same bytes.
 */
const digest = (text: string, encoding: 'utf8' | 'latin1'): Buffer =>
  createHash('sha256').update(text, encoding).digest();
