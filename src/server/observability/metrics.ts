import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { Engine } from '../../core/engine.ts';
import { isSessiondError } from '../../errors.ts';
import type { ServerStats } from '../stats.ts';
import { CommandLatency } from './command-latency.ts';

/** What the metrics read, and whether Node's process metrics come too. */
export interface MetricsOptions {
  engine: Engine;
  stats: ServerStats;
  /** sessiond's version, for `sessiond_build_info`. */
  version: string;
  /** Whether a name (upper case) is a command, for the latency histogram's label. */
  isCommand: (name: string) => boolean;
  /** Node's process metrics too (CPU, memory, event loop lag, GC); default true. */
  processMetrics?: boolean;
}

/**
 * The server's Prometheus metrics, in a Registry of its own (never prom-client's global one, so
 * two servers in one process do not collide). Served at `GET /metrics` on the HTTP port.
 *
 * Session metrics describe the store: with a shared store the engine hears every server's
 * events, so each server reports the same totals (aggregate them with max, not sum). Command,
 * connection and error metrics describe this server alone.
 *
 * - `sessiond_sessions` (gauge): live sessions in the store, counted at scrape time
 * - `sessiond_sessions_created_total`, `_destroyed_total` (DESTROY, DESTROYUSER, EMPTY: one per
 *   session), `_expired_total`, `_regenerated_total` (counters)
 * - `sessiond_command_duration_seconds{command}` (histogram): from a command read to its reply
 *   ready, both ports; unknown names share `command="unknown"`
 * - `sessiond_lock_waits_total`: LOCK requests that asked to wait (WAIT > 0) for the holder
 * - `sessiond_lock_timeouts_total`: LOCK requests answered LOCKED (still held when the wait ran out)
 * - `sessiond_connections` (gauge), `sessiond_connections_total`,
 *   `sessiond_connections_rejected_total`: both ports (SSE streams included)
 * - `sessiond_protocol_errors_total`: malformed RESP requests and malformed HTTP requests
 * - `sessiond_store_errors_total`: commands that failed unexpectedly (a failing store; a bug
 *   otherwise), answered `ERR internal error`, and failed scrapes of `sessiond_sessions`
 * - `sessiond_output_buffer_disconnects_total`: clients cut off for not reading their replies
 * - `sessiond_build_info{version,store}`: 1
 * - with `processMetrics`, prom-client's `process_*` and `nodejs_*` defaults
 *
 * When the server has a password, `/metrics` needs it like every other route (Bearer or Basic:
 * Prometheus's `authorization` or `basic_auth` scrape settings): connection counts, command mix
 * and error rates tell an attacker how the service is used and when it struggles.
 *
 * @example
 * const metrics = new Metrics({ engine, stats, version, isCommand: (n) => COMMAND_TABLE.has(n) });
 * metrics.command(['GET', 'sid', 'cart'], 0.04, undefined);
 * await metrics.text(); // the Prometheus text format
 */
export class Metrics {
  readonly registry = new Registry();
  readonly latency: CommandLatency;
  #lockWaits: Counter;
  #lockTimeouts: Counter;

  constructor(options: MetricsOptions) {
    const { engine, stats } = options;
    const registry = this.registry;
    const registers = [registry];
    this.latency = new CommandLatency(options.isCommand);
    // A collector rather than a prom-client Histogram: the registry reads it through get(),
    // the same way it reads its own metrics (see command-latency.ts for why).
    registry.registerMetric(this.latency as unknown as Metric);
    this.#lockWaits = new Counter({
      name: 'sessiond_lock_waits_total',
      help: 'LOCK requests that asked to wait for the holder (WAIT > 0)',
      registers,
    });
    this.#lockTimeouts = new Counter({
      name: 'sessiond_lock_timeouts_total',
      help: 'LOCK requests answered LOCKED: the lock was still held when the wait ran out',
      registers,
    });
    new Gauge({
      name: 'sessiond_sessions',
      help: 'Live sessions in the store',
      registers,
      async collect() {
        try {
          this.set(await engine.count());
        } catch {
          // The scrape still answers; the gauge is left out rather than stale.
          this.reset();
          stats.storeErrors++;
        }
      },
    });
    const fromStats: Array<[string, string, () => number]> = [
      ['sessiond_sessions_created_total', 'Sessions created', () => stats.sessionsCreated],
      [
        'sessiond_sessions_destroyed_total',
        'Sessions destroyed (DESTROY, DESTROYUSER, EMPTY)',
        () => stats.sessionsDestroyed,
      ],
      ['sessiond_sessions_expired_total', 'Sessions expired', () => stats.sessionsExpired],
      [
        'sessiond_sessions_regenerated_total',
        'Sessions given a new id',
        () => stats.sessionsRegenerated,
      ],
      [
        'sessiond_connections_total',
        'Connections accepted, both ports',
        () => stats.totalConnections,
      ],
      [
        'sessiond_connections_rejected_total',
        'Connections refused at the limit, both ports',
        () => stats.rejectedConnections,
      ],
      [
        'sessiond_protocol_errors_total',
        'Malformed RESP or HTTP requests',
        () => stats.protocolErrors,
      ],
      [
        'sessiond_auth_failures_total',
        'Credentials refused (WRONGPASS), both ports: alert on a rise, a password being guessed',
        () => stats.authFailures,
      ],
      [
        'sessiond_store_errors_total',
        'Commands that failed unexpectedly (a failing store; a bug otherwise)',
        () => stats.storeErrors,
      ],
      [
        'sessiond_output_buffer_disconnects_total',
        'Clients cut off for not reading their replies',
        () => stats.outputBufferDisconnects,
      ],
    ];
    for (const [name, help, read] of fromStats) {
      new Counter({
        name,
        help,
        registers,
        // The count lives in ServerStats (INFO reads it too); the counter mirrors it at scrape.
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    }
    new Gauge({
      name: 'sessiond_connections',
      help: 'Open connections, both ports',
      registers,
      collect() {
        this.set(stats.connections);
      },
    });
    new Gauge({
      name: 'sessiond_build_info',
      help: 'sessiond version and store kind',
      labelNames: ['version', 'store'],
      registers,
    }).set({ version: options.version, store: engine.store.kind }, 1);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  }

  /** The Content-Type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Counts one command, `request` being its name and arguments, that took `seconds` and failed
   * with `failure` (undefined when it succeeded). On the RESP hot path: keep it cheap.
   */
  command(request: readonly string[], seconds: number, failure: unknown): void {
    const series = this.latency.observe(request[0]!, seconds);
    if (series.command === 'LOCK') this.#lock(request, failure);
  }

  #lock(request: readonly string[], failure: unknown): void {
    // LOCK sid [LEASE ms] [WAIT ms]: options come in pairs after the id.
    for (let i = 2; i + 1 < request.length; i += 2) {
      if (request[i]!.toUpperCase() === 'WAIT' && Number(request[i + 1]) > 0) {
        this.#lockWaits.inc();
        break;
      }
    }
    if (isSessiondError(failure, 'LOCKED')) this.#lockTimeouts.inc();
  }
}
