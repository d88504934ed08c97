import type { Engine } from '../../core/engine.ts';
import type { ServerStats } from '../stats.ts';
import { TimeSeries, type Point } from './time-series.ts';

/** What the server looked like at one moment, with rates over the step before it. */
export interface ActivitySample {
  /** Live sessions in the store. */
  sessions: number;
  /**
   * Live sessions of each class found so far. Classes are found by walking the ids a page per
   * step, so a class appears once one of its sessions is seen; those not (yet) found count in
   * `sessions` only.
   */
  classes: Record<string, number>;
  createdPerMinute: number;
  destroyedPerMinute: number;
  expiredPerMinute: number;
  commandsPerSecond: number;
  /** Open connections on both ports. */
  connections: number;
}

/** Where an {@link ActivityHistory} reads from, how often, and how far back it keeps. */
export interface ActivityHistoryOptions {
  engine: Engine;
  stats: ServerStats;
  /** Time between samples in ms (default 10 s). */
  stepMs?: number;
  /** How far back samples are kept in ms (default one hour). */
  windowMs?: number;
  /** Classes charted at most (default 32); sessions of others count in the total only. */
  maxClasses?: number;
  /** Ids looked at per step to find classes (default 100). */
  discoverPerStep?: number;
  /** Where sample times come from (default Date.now); tests pass their own. */
  clock?: () => number;
  /** A sample that failed (a failing store): it is skipped and reported here. */
  onError?: (error: unknown) => void;
}

const MINUTE_MS = 60_000;

/**
 * The last hour of activity, sampled every step into a {@link TimeSeries}: what the admin
 * page draws. Rates come from the {@link ServerStats} counters, sizes from the store.
 *
 * @example
 * const history = new ActivityHistory({ engine, stats });
 * history.start();
 * history.points(); // [{ at, value: { sessions, classes, createdPerMinute, ... } }, ...]
 * history.stop();
 */
export class ActivityHistory {
  readonly stepMs: number;
  #engine: Engine;
  #stats: ServerStats;
  #series: TimeSeries<ActivitySample>;
  #maxClasses: number;
  #discoverPerStep: number;
  #clock: () => number;
  #onError: (error: unknown) => void;
  #classes = new Set<string>();
  #cursor = '0';
  #last: { at: number; created: number; destroyed: number; expired: number; commands: number };
  #timer: NodeJS.Timeout | undefined;
  #sampling: Promise<void> | undefined;

  constructor(options: ActivityHistoryOptions) {
    this.#engine = options.engine;
    this.#stats = options.stats;
    this.stepMs = options.stepMs ?? 10_000;
    this.#series = new TimeSeries(Math.ceil((options.windowMs ?? 3_600_000) / this.stepMs));
    this.#maxClasses = options.maxClasses ?? 32;
    this.#discoverPerStep = options.discoverPerStep ?? 100;
    this.#clock = options.clock ?? Date.now;
    this.#onError = options.onError ?? (() => {});
    this.#last = this.#counters(this.#clock());
  }

  /** Samples every step until {@link stop}; the timer never keeps the process alive. */
  start(): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => void this.sample(), this.stepMs);
    this.#timer.unref();
  }

  /** Stops sampling; resolves once a sample in progress is done. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sampling;
  }

  /** Takes one sample now; a call while one is running waits for that one instead. */
  sample(): Promise<void> {
    // A slow store must not pile samples up behind each other.
    this.#sampling ??= this.#sample().finally(() => (this.#sampling = undefined));
    return this.#sampling;
  }

  /** Samples taken at or after `since` (ms since the epoch), oldest first. */
  points(since?: number): Array<Point<ActivitySample>> {
    return this.#series.points(since);
  }

  async #sample(): Promise<void> {
    const now = this.#counters(this.#clock());
    let sessions: number;
    const classes: Record<string, number> = {};
    try {
      await this.#discover();
      sessions = await this.#engine.count();
      for (const cls of this.#classes) {
        const count = await this.#engine.count(cls);
        // A class with no sessions left leaves room for another; it comes back when seen again.
        if (count === 0) this.#classes.delete(cls);
        else classes[cls] = count;
      }
    } catch (error) {
      this.#onError(error);
      return;
    }
    const last = this.#last;
    const ms = now.at - last.at;
    const perMinute = (a: number, b: number) => (ms > 0 ? ((a - b) * MINUTE_MS) / ms : 0);
    this.#series.push(now.at, {
      sessions,
      classes,
      createdPerMinute: perMinute(now.created, last.created),
      destroyedPerMinute: perMinute(now.destroyed, last.destroyed),
      expiredPerMinute: perMinute(now.expired, last.expired),
      commandsPerSecond: perMinute(now.commands, last.commands) / 60,
      connections: this.#stats.connections,
    });
    this.#last = now;
  }

  /** Looks at the next page of ids for classes not yet known. */
  async #discover(): Promise<void> {
    if (this.#classes.size >= this.#maxClasses) return;
    let page: { cursor: string; ids: string[] };
    try {
      page = await this.#engine.scan(this.#cursor, { count: this.#discoverPerStep });
    } catch (error) {
      // A cursor the store has since forgotten: start the walk over next time.
      if (this.#cursor === '0') throw error;
      this.#cursor = '0';
      return;
    }
    this.#cursor = page.cursor;
    const now = this.#engine.now();
    for (const id of page.ids) {
      // Not touched: looking at a session must not extend its life.
      const session = await this.#engine.store.get(id, now, { touch: false, vars: false });
      if (session) this.#classes.add(session.cls);
      if (this.#classes.size >= this.#maxClasses) return;
    }
  }

  #counters(at: number) {
    const stats = this.#stats;
    return {
      at,
      created: stats.sessionsCreated,
      destroyed: stats.sessionsDestroyed,
      expired: stats.sessionsExpired,
      commands: stats.commands,
    };
  }
}
