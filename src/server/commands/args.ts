import { SessiondError, syntaxError } from '../../errors.ts';
import { parseInt64 } from '../../store/types.ts';

/**
 * Parses an integer argument: canonical decimal, within the safe integer range.
 * @throws NOTINT otherwise
 */
export function intArg(text: string, what: string): number {
  const n = parseInt64(text);
  if (n === null || n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new SessiondError('NOTINT', `${what} is not an integer`);
  }
  return Number(n);
}

/** Parses a signed 64-bit integer argument. @throws NOTINT otherwise */
export function int64Arg(text: string, what: string): bigint {
  const n = parseInt64(text);
  if (n === null) throw new SessiondError('NOTINT', `${what} is not an integer`);
  return n;
}

/**
 * Reads `KEYWORD value` pairs (keywords case-insensitive) from `args`; a keyword given twice
 * keeps the last value, like Redis.
 * @throws ERR on an unknown keyword or a keyword without a value
 */
export function options<K extends string>(
  args: readonly string[],
  keywords: readonly K[],
): Partial<Record<K, string>> {
  const found: Partial<Record<K, string>> = {};
  for (let i = 0; i < args.length; i += 2) {
    const keyword = args[i]!.toUpperCase() as K;
    const value = args[i + 1];
    if (!keywords.includes(keyword) || value === undefined) throw syntaxError('syntax error');
    found[keyword] = value;
  }
  return found;
}
