import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { mock } from 'node:test';

/**
 * Runs `body` with `crypto.timingSafeEqual` watched (and answering `verdict` unless undefined),
 * seen by modules that imported it by name too; returns the arguments of each call.
 */
export function withTimingSafeEqual(
  verdict: boolean | undefined,
  body: () => void,
): Array<[Buffer, Buffer]> {
  const spy =
    verdict === undefined
      ? mock.method(crypto, 'timingSafeEqual')
      : mock.method(crypto, 'timingSafeEqual', () => verdict);
  syncBuiltinESMExports();
  try {
    body();
    return spy.mock.calls.map((call) => call.arguments as unknown as [Buffer, Buffer]);
  } finally {
    spy.mock.restore();
    syncBuiltinESMExports();
  }
}
