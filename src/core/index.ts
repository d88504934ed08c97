export {
  Engine,
  CTL_QUERIES,
  type CtlQuery,
  type EngineOptions,
  type CreateOptions,
  type LockResult,
  type Session,
} from './engine.ts';
export { ManualClock, systemClock, type Clock } from './clock.ts';
export { DEFAULT_LIMITS, resolveLimits, type Limits } from './limits.ts';
export type { HookContext, HookOp, PostHook, PreHook } from './hooks.ts';
export type { EventListener, SessionEvent, SessionEventType } from './events.ts';
export type { CallFunction, EscapeFunction } from './plugins.ts';
export { randomAlphanumeric, validateId } from './ids.ts';
