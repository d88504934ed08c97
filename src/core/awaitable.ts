import type { Awaitable } from '../store/types.ts';

/**
 * `next(value)`: at once when `value` is already there, else once its promise resolves. What
 * `await` does, without a promise and a microtask turn when nothing is pending: the server's
 * hot path over the memory store answers a command in one synchronous call.
 *
 * @example
 * return after(store.getVar(id, name, now), (value) => value ?? fallback);
 */
export function after<T, U>(value: Awaitable<T>, next: (value: T) => Awaitable<U>): Awaitable<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}
