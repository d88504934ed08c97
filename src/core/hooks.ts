import { SessiondError } from '../errors.ts';

/** The operations that hooks wrap (eZ Publish's insert/update/destroy/gc/empty, plus regenerate). */
export type HookOp = 'create' | 'update' | 'destroy' | 'gc' | 'empty' | 'regenerate';

/** What a hook is told about the operation. */
export interface HookContext {
  op: HookOp;
  /** The session, for create, update, destroy and regenerate. */
  id?: string;
  /** For update: which command changed the session (set, unset, inc, data, timeout, ...). */
  change?: string;
  /** For update by set, unset or inc: the variable names. */
  names?: readonly string[];
  /** For regenerate, in post hooks: the new id. */
  newId?: string;
  /** For gc and empty, in post hooks: sessions removed. */
  count?: number;
}

/** Runs before the operation; returning false (or throwing) vetoes it with DENIED. */
export type PreHook = (context: HookContext) => boolean | void | Promise<boolean | void>;

/** Runs after the operation succeeded; what it returns or throws cannot change the outcome. */
export type PostHook = (context: HookContext) => void | Promise<void>;

/**
 * Pre and post hooks by operation, in registration order.
 * Fixes eZ's hooks, which could neither veto nor fail without failing the request.
 */
export class Hooks {
  #pre = new Map<HookOp, PreHook[]>();
  #post = new Map<HookOp, PostHook[]>();
  /** Hooks registered, of every op: with none, {@link has} answers without a lookup. */
  #registered = 0;
  #onError: (error: unknown, context: HookContext) => void;

  constructor(onError: (error: unknown, context: HookContext) => void) {
    this.#onError = onError;
  }

  /** Adds a pre hook; returns a function that removes it. */
  pre(op: HookOp, hook: PreHook): () => void {
    return this.#counted(add(this.#pre, op, hook));
  }

  /** Adds a post hook; returns a function that removes it. */
  post(op: HookOp, hook: PostHook): () => void {
    return this.#counted(add(this.#post, op, hook));
  }

  has(op: HookOp): boolean {
    if (this.#registered === 0) return false;
    return (this.#pre.get(op)?.length ?? 0) + (this.#post.get(op)?.length ?? 0) > 0;
  }

  hasPre(op: HookOp): boolean {
    if (this.#registered === 0) return false;
    return (this.#pre.get(op)?.length ?? 0) > 0;
  }

  /** Counts a hook in {@link #registered} until its remover is first called. */
  #counted(remove: () => void): () => void {
    this.#registered++;
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      this.#registered--;
      remove();
    };
  }

  /**
   * Runs the pre hooks of `context.op`.
   * @throws SessiondError DENIED when one returns false or throws (a failing guard fails closed).
   */
  async runPre(context: HookContext): Promise<void> {
    for (const hook of this.#pre.get(context.op) ?? []) {
      let verdict: boolean | void;
      try {
        verdict = await hook(context);
      } catch (error) {
        this.#onError(error, context);
        throw new SessiondError('DENIED', `${context.op} refused: a pre hook failed`);
      }
      if (verdict === false)
        throw new SessiondError('DENIED', `${context.op} refused by a pre hook`);
    }
  }

  /** Runs the post hooks of `context.op`; their errors are reported, never thrown. */
  async runPost(context: HookContext): Promise<void> {
    for (const hook of this.#post.get(context.op) ?? []) {
      try {
        await hook(context);
      } catch (error) {
        this.#onError(error, context);
      }
    }
  }
}

function add<T>(map: Map<HookOp, T[]>, op: HookOp, hook: T): () => void {
  const list = map.get(op) ?? [];
  list.push(hook);
  map.set(op, list);
  return () => {
    const at = list.indexOf(hook);
    if (at >= 0) list.splice(at, 1);
  };
}
