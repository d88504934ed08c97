/**
 * Every size and count the engine enforces, each with a default and a setting. Exceeding one
 * answers LIMIT naming it; none can be turned off, so no client can grow the server without bound.
 * Sizes are in bytes (strings here hold one byte per code unit).
 */
export interface Limits {
  /** Session id length; PROTOCOL.md fixes the ceiling at 255 (msession packed it in 8 bits). */
  maxIdBytes: number;
  maxNameBytes: number;
  maxValueBytes: number;
  maxVars: number;
  maxDataBytes: number;
  maxClassBytes: number;
  maxUserBytes: number;
  /** Idle timeout, and seconds given to EXPIRE and REGENERATE GRACE. */
  maxTimeoutSeconds: number;
  maxGraceSeconds: number;
  maxLeaseMs: number;
  maxLockWaitMs: number;
  /** Ids in one LIST page. */
  maxListCount: number;
  /**
   * Ids in one whole-result reply: LIST without CURSOR, FIND, LISTVAR (id, value pairs) and
   * USERSESSIONS. Such a reply is encoded in one turn of the event loop (and on the embedded
   * stores read in one too), so its size bounds how long every other client waits; LIST CURSOR
   * pages past it.
   */
  maxResultIds: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxIdBytes: 255,
  maxNameBytes: 255,
  maxValueBytes: 64 * 1024,
  maxVars: 1024,
  maxDataBytes: 1024 * 1024,
  maxClassBytes: 255,
  maxUserBytes: 255,
  maxTimeoutSeconds: 10 * 365 * 24 * 3600,
  maxGraceSeconds: 300,
  maxLeaseMs: 3_600_000,
  maxLockWaitMs: 60_000,
  maxListCount: 10_000,
  // 100,000 32-byte ids are about 4 MB of RESP and a tenth of a second of event loop on the
  // memory store (a million: 33 MB and seconds). Even 255-byte ids (26 MB) stay under the
  // default 64 MiB output buffer. Ten full LIST pages; past that, LIST CURSOR.
  maxResultIds: 100_000,
});

/** The defaults with `overrides` applied; every value must be a positive integer. */
export function resolveLimits(overrides: Partial<Limits> = {}): Limits {
  const limits = { ...DEFAULT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`limit ${name} must be a positive integer, got ${String(value)}`);
    }
  }
  if (limits.maxIdBytes > 255) throw new RangeError('limit maxIdBytes cannot exceed 255');
  return limits;
}
