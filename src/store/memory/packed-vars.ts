/**
 * A session's variables in memory: small sets packed into one flat string, large ones in a Map.
 *
 * This is Redis's listpack-then-hashtable idea. A Map of three short variables costs about
 * 250 bytes in V8; the same three packed as `4:user3:bob...` cost about 60. A million sessions
 * is the difference between fitting the memory target and not. Past PACKED_MAX_BYTES or
 * PACKED_MAX_ENTRIES the set converts to a Map, so a large session never pays an O(size) copy
 * on each write.
 *
 * Packed format: for each variable, `<name length>:<name><value length>:<value>`, lengths in
 * decimal code units. Names and values may hold any code unit, including ':' and digits.
 */
import { parseSmallIntAt } from '../types.ts';

export type Vars = string | Map<string, string>;

export const EMPTY_VARS: Vars = '';
export const PACKED_MAX_BYTES = 512;
export const PACKED_MAX_ENTRIES = 16;

/** Where the text after the length that {@link readLength} read last starts. */
let afterLength = 0;

/**
 * Reads the decimal length that starts at `at` and sets {@link afterLength} to the index after
 * its ':'. A module variable rather than a returned pair: SET, GET and INC parse on every call,
 * and a pair per length was most of their allocations.
 */
function readLength(packed: string, at: number): number {
  let n = 0;
  let i = at;
  for (let c = packed.charCodeAt(i); c !== 58; c = packed.charCodeAt(++i)) n = n * 10 + (c - 48);
  afterLength = i + 1;
  return n;
}

/** Calls `each(name, value)` for every variable, in order. */
function forEachPacked(packed: string, each: (name: string, value: string) => void): void {
  let i = 0;
  while (i < packed.length) {
    const nameLength = readLength(packed, i);
    const nameStart = afterLength;
    const name = packed.slice(nameStart, nameStart + nameLength);
    const valueLength = readLength(packed, nameStart + nameLength);
    i = afterLength + valueLength;
    each(name, packed.slice(afterLength, i));
  }
}

/** Where the value of the entry {@link findPacked} found last starts, and where it ends. */
let valueStart = 0;
let valueEnd = 0;

/**
 * Finds `name` in a packed set: the index of its value's length field (what a new value
 * replaces from), with {@link valueStart} and {@link valueEnd} set; -1 when absent.
 */
function findPacked(vars: string, name: string): number {
  let i = 0;
  while (i < vars.length) {
    const nameLength = readLength(vars, i);
    const nameStart = afterLength;
    const lengthStart = nameStart + nameLength;
    const valueLength = readLength(vars, lengthStart);
    const end = afterLength + valueLength;
    if (nameLength === name.length && vars.startsWith(name, nameStart)) {
      valueStart = afterLength;
      valueEnd = end;
      return lengthStart;
    }
    i = end;
  }
  return -1;
}

/** The value of `name`, or undefined. */
export function getVar(vars: Vars, name: string): string | undefined {
  if (typeof vars !== 'string') return vars.get(name);
  return findPacked(vars, name) < 0 ? undefined : vars.slice(valueStart, valueEnd);
}

/** A fresh Map of all variables (the caller may keep or change it). */
export function toMap(vars: Vars): Map<string, string> {
  if (typeof vars !== 'string') return new Map(vars);
  const map = new Map<string, string>();
  forEachPacked(vars, (name, value) => map.set(name, value));
  return map;
}

/** How many variables there are. */
export function countVars(vars: Vars): number {
  if (typeof vars !== 'string') return vars.size;
  let n = 0;
  forEachPacked(vars, () => n++);
  return n;
}

/** The compact form of `map`: packed when small, else the map itself. */
export function fromMap(map: Map<string, string>): Vars {
  if (map.size > PACKED_MAX_ENTRIES) return map;
  const parts: string[] = [];
  let bytes = 0;
  for (const [name, value] of map) {
    bytes += name.length + value.length;
    if (bytes > PACKED_MAX_BYTES) return map;
    parts.push(`${name.length}:`, name, `${value.length}:`, value);
  }
  // join() yields a flat string; `+=` would leave a rope that costs several times the memory.
  return parts.join('');
}

/**
 * `vars` with `name` set to `value`, or undefined when that would add a variable past `maxVars`.
 * A packed set is spliced as one string, with no Map in between, in one pass that also counts
 * its variables: SET and INC of a small session are the hot path. A set that outgrows the
 * packed limits becomes a Map; a Map is changed in place.
 */
export function withVar(vars: Vars, name: string, value: string): Vars;
export function withVar(vars: Vars, name: string, value: string, maxVars: number): Vars | undefined;
export function withVar(
  vars: Vars,
  name: string,
  value: string,
  maxVars = Infinity,
): Vars | undefined {
  if (typeof vars !== 'string') {
    if (vars.size >= maxVars && !vars.has(name)) return undefined;
    vars.set(name, value);
    // A Map that a smaller value brings back under the limits is packed again, as in updateVars.
    return vars.size <= PACKED_MAX_ENTRIES ? fromMap(vars) : vars;
  }
  const spliced = replacePacked(vars, name, value);
  if (spliced !== undefined) return spliced;
  let entries = 0;
  let bytes = 0;
  let found = -1;
  let foundEnd = -1;
  let i = 0;
  while (i < vars.length) {
    const nameLength = readLength(vars, i);
    const nameStart = afterLength;
    const valueLength = readLength(vars, nameStart + nameLength);
    const end = afterLength + valueLength;
    if (nameLength === name.length && vars.startsWith(name, nameStart)) {
      found = i;
      foundEnd = end;
      bytes -= valueLength;
    } else {
      entries++;
    }
    bytes += nameLength + valueLength;
    i = end;
  }
  if (found < 0 && entries >= maxVars) return undefined;
  bytes += value.length + (found < 0 ? name.length : 0);
  if (entries + 1 > PACKED_MAX_ENTRIES || bytes > PACKED_MAX_BYTES) {
    const map = toMap(vars);
    map.set(name, value);
    return map;
  }
  // The entry is concatenated (short-lived), the whole joined: join() yields a flat string, where
  // `+` alone would keep a rope that costs several times the memory for as long as it is stored.
  const entry = name.length + ':' + name + value.length + ':' + value;
  if (found < 0) return [vars, entry].join('');
  return [vars.slice(0, found), entry, vars.slice(foundEnd)].join('');
}

/**
 * SET's hot path: `vars` with the present variable `name` set to `value`, scanning no further
 * than it and counting nothing, when the result surely stays within the packed limits (its
 * string length bounds its bytes, and the count does not change). Else undefined.
 */
function replacePacked(vars: string, name: string, value: string): string | undefined {
  const at = findPacked(vars, name);
  return at < 0 ? undefined : spliceValue(vars, at, value);
}

/**
 * The entry {@link findPacked} found at `at` with `value` instead, or undefined when the set
 * might outgrow PACKED_MAX_BYTES (its string length bounds its bytes; the count is unchanged).
 */
function spliceValue(vars: string, at: number, value: string): string | undefined {
  if (vars.length + value.length - (valueEnd - valueStart) > PACKED_MAX_BYTES) return undefined;
  return [vars.slice(0, at), value.length + ':' + value, vars.slice(valueEnd)].join('');
}

/** The counter {@link incPacked} computed last. */
export let incPackedSum = 0;

/** Counters and steps below this in magnitude add exactly as doubles (2 × 1e15 < 2^53). */
const SMALL_INT = 1e15;

/**
 * INC's hot path: `vars` with the present variable `name` plus `by`, in one pass and without
 * BigInt, the sum left in {@link incPackedSum}. Undefined when it does not apply (absent or not
 * a short integer, a large step, or a set that might outgrow the packed limits): the caller
 * takes the general path, which decides every such case.
 */
export function incPacked(vars: string, name: string, by: number): string | undefined {
  if (!(by > -SMALL_INT && by < SMALL_INT)) return undefined;
  const at = findPacked(vars, name);
  if (at < 0) return undefined;
  const current = parseSmallIntAt(vars, valueStart, valueEnd);
  if (current === null) return undefined;
  const sum = current + by;
  if (!(sum > -SMALL_INT && sum < SMALL_INT)) return undefined;
  incPackedSum = sum;
  return spliceValue(vars, at, String(sum));
}

/**
 * Applies `change` to a mutable Map view of `vars` and returns the new compact form.
 * Large sets are changed in place; packed ones are unpacked, changed and packed again.
 */
export function updateVars(vars: Vars, change: (map: Map<string, string>) => void): Vars {
  const map = typeof vars === 'string' ? toMap(vars) : vars;
  change(map);
  return fromMap(map);
}
