/**
 * The key layout of the Redis store. Every key of one session carries the hash tag
 * `{s:<id>}`, so a script can touch all of them in one slot of a Redis Cluster; index keys carry
 * tags of their own and live on other slots.
 *
 * | key                          | type | holds                                                  |
 * | ---------------------------- | ---- | ------------------------------------------------------ |
 * | `P{s:<id>}m`                 | hash | metadata, data, lock, index tokens (`x:<name>`)        |
 * | `P{s:<id>}v`                 | hash | the variables                                          |
 * | `P{i:<k>}a`                  | zset | `<id> <tok> <cls>` of every session in shard k, by deadline |
 * | `P{i:<k>}c:<cls>`            | zset | the same members, one class only (same slot as `a`)    |
 * | `P{u:<user>}`                | set  | `<id> <tok>` of the user's sessions                    |
 * | `P{n:<name>}`                | hash | `<id> <tok>` → value, for LISTVAR of an indexed name   |
 * | `P{f:<len>:<name><value>}`   | set  | `<id> <tok>`, for FIND of an indexed name              |
 *
 * `P` is the prefix, `<k>` a shard number, `<tok>` the token of the write that made the entry.
 * The deadline score is `inf` for a session that never expires.
 */
import { Buffer } from 'node:buffer';

/** Deadline sets are split in this many shards (slots), so no one Redis node takes every touch. */
export const INDEX_SHARDS = 16;

/** A byte string (one byte per UTF-16 code unit) as the bytes Redis stores. */
export const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Redis's own bytes back as a byte string. */
export const text = (b: Buffer): string => b.toString('latin1');

/** Escapes Redis glob characters so that a literal prefix can lead a SCAN MATCH pattern. */
function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** Builds every key of one prefix; see the module comment for the layout. */
export class KeySpace {
  readonly prefix: string;
  /** SCAN MATCH pattern of every session's metadata key. */
  readonly sessionPattern: Buffer;
  /** SCAN MATCH pattern of every key of this store (`P{...`, so a longer prefix is not matched). */
  readonly everything: Buffer;
  readonly #idStart: number;

  /** @throws RangeError for a prefix with a brace (it would move the hash tag) or a non-byte. */
  constructor(prefix: string) {
    // A brace in the prefix would become the hash tag and put all of a cluster's keys on one slot.
    if (/[{}]/.test(prefix) || [...prefix].some((c) => c.charCodeAt(0) > 0xff)) {
      throw new RangeError('redis store: prefix must be bytes without "{" or "}"');
    }
    this.prefix = prefix;
    this.sessionPattern = bytes(`${escapeGlob(prefix)}{s:*}m`);
    this.everything = bytes(`${escapeGlob(prefix)}{*`);
    this.#idStart = prefix.length + 3;
  }

  meta(id: string): Buffer {
    // `s:` keeps the tag non-empty even for an id that starts with "}", whose keys would
    // otherwise hash whole and land on different slots.
    return bytes(`${this.prefix}{s:${id}}m`);
  }

  vars(id: string): Buffer {
    return bytes(`${this.prefix}{s:${id}}v`);
  }

  /** The id of a metadata key that matched {@link sessionPattern}. */
  idOfMeta(key: string): string {
    return key.slice(this.#idStart, -2);
  }

  /** The variables key next to a metadata key. */
  varsOfMeta(key: Buffer): Buffer {
    const vars = Buffer.from(key);
    vars[vars.length - 1] = 0x76; // 'v'
    return vars;
  }

  all(shard: number): Buffer {
    return bytes(`${this.prefix}{i:${shard}}a`);
  }

  cls(shard: number, cls: string): Buffer {
    return bytes(`${this.prefix}{i:${shard}}c:${cls}`);
  }

  user(user: string): Buffer {
    return bytes(`${this.prefix}{u:${user}}`);
  }

  varName(name: string): Buffer {
    return bytes(`${this.prefix}{n:${name}}`);
  }

  varValue(name: string, value: string): Buffer {
    // The length keeps the key unambiguous however the name and value split.
    return bytes(`${this.prefix}{f:${name.length}:${name}${value}}`);
  }
}

/** The shard of a session's deadline entries: FNV-1a of the id. */
export function shardOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % INDEX_SHARDS;
}

/** The member of a user or variable index: `<id> <tok>`. Ids never hold a space. */
export const member = (id: string, tok: string): string => `${id} ${tok}`;

/** The member of a deadline set: `<id> <tok> <cls>`. */
export const deadlineMember = (id: string, tok: string, cls: string): string =>
  `${id} ${tok} ${cls}`;

/** Splits `<id> <tok>[ <cls>]`; null for a member this store did not write. */
export function parseMember(m: string): { id: string; tok: string; cls: string } | null {
  const first = m.indexOf(' ');
  if (first <= 0) return null;
  const second = m.indexOf(' ', first + 1);
  if (second < 0) return { id: m.slice(0, first), tok: m.slice(first + 1), cls: '' };
  return { id: m.slice(0, first), tok: m.slice(first + 1, second), cls: m.slice(second + 1) };
}
