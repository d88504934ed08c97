import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { TlsOptions } from 'node:tls';
import type { Engine } from '../core/engine.ts';
import type { DecoderLimits } from '../protocol/resp/decoder.ts';
import { AdminPage } from './admin/admin-page.ts';
import { Auth, type AuthOptions } from './auth.ts';
import { HttpServer } from './http/http-server.ts';
import { COMMAND_TABLE, type CommandContext } from './commands/table.ts';
import { ActivityHistory } from './observability/activity-history.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { Metrics } from './observability/metrics.ts';
import { PubSub } from './pubsub.ts';
import { CONNECTION_COMMANDS } from './resp-connection.ts';
import { DEFAULT_MAX_CLIENTS, DEFAULT_MAX_OUTPUT_BUFFER, RespServer } from './resp-server.ts';
import { ServerStats } from './stats.ts';

/** Where a port listens, and how. */
export interface ListenOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  tls?: TlsOptions;
}

export interface ServerOptions {
  engine: Engine;
  /** The RESP port (default 127.0.0.1:8086, msession's port). */
  resp?: ListenOptions & {
    maxClients?: number;
    maxOutputBuffer?: number;
    decoderLimits?: Partial<DecoderLimits>;
  };
  /** The HTTP/JSON port (default 127.0.0.1:8087); false for none. */
  http?:
    | (ListenOptions & {
        maxBodyBytes?: number;
        maxConnections?: number;
        allowedHosts?: readonly string[];
      })
    | false;
  auth?: AuthOptions;
  /** Runs the engine's expiry sweeper every this many ms (0: off, when another server sweeps). */
  sweepIntervalMs?: number;
  /** Prometheus metrics at `GET /metrics` and per-command timing (default true). */
  metrics?: boolean;
  /**
   * Structured logs (observability/logger.ts); default JSON lines on standard output at
   * `info`. The server itself logs unexpected errors, and session events at `debug`.
   */
  logger?: Logger;
  /** Unexpected errors (a failing store, a bug); default: logged at `error`. */
  onError?: (error: unknown) => void;
}

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/**
 * A running sessiond: the engine behind its ports, sharing one command table, one pub/sub hub
 * and one set of counters.
 *
 * @example
 * const server = await SessiondServer.start({ engine, resp: { port: 0 } });
 * console.log(server.respAddress.port); await server.close();
 */
export class SessiondServer {
  readonly engine: Engine;
  readonly stats: ServerStats;
  readonly pubsub: PubSub;
  readonly logger: Logger;
  /** Null when metrics are off. */
  readonly metrics: Metrics | null;
  /** The last hour the admin page charts; null when the HTTP port is off. */
  readonly activity: ActivityHistory | null;
  readonly respAddress: AddressInfo;
  /** Null when the HTTP port is off. */
  readonly httpAddress: AddressInfo | null;
  #resp: RespServer;
  #http: HttpServer | null;
  #unsubscribe: () => void;
  #closing: Promise<void> | undefined;

  private constructor(
    parts: Pick<SessiondServer, 'engine' | 'pubsub' | 'stats' | 'logger' | 'metrics'>,
    resp: RespServer,
    respAddress: AddressInfo,
    http: { server: HttpServer; address: AddressInfo; activity: ActivityHistory } | null,
    unsubscribe: () => void,
  ) {
    this.engine = parts.engine;
    this.pubsub = parts.pubsub;
    this.stats = parts.stats;
    this.logger = parts.logger;
    this.metrics = parts.metrics;
    this.#resp = resp;
    this.respAddress = respAddress;
    this.#http = http?.server ?? null;
    this.httpAddress = http?.address ?? null;
    this.activity = http?.activity ?? null;
    this.#unsubscribe = unsubscribe;
  }

  static async start(options: ServerOptions): Promise<SessiondServer> {
    const { engine } = options;
    // Hear the other servers' events before accepting subscribers.
    await engine.ready();
    const logger = options.logger ?? createLogger();
    const stats = new ServerStats();
    const report =
      options.onError ?? ((error: unknown) => logger.error({ err: error }, 'unexpected error'));
    // Both ports call this only for failures that are not a SessiondError: answered ERR
    // internal error, and counted as store errors (what they are, short of a bug).
    const onError = (error: unknown) => {
      stats.storeErrors++;
      report(error);
    };
    const pubsub = new PubSub(engine);
    const auth = new Auth(options.auth);
    const context: CommandContext = { engine, info: () => info(engine, stats) };
    const metrics =
      options.metrics === false
        ? null
        : new Metrics({
            engine,
            stats,
            version: VERSION,
            isCommand: (name) => COMMAND_TABLE.has(name) || CONNECTION_COMMANDS.has(name),
          });
    // Whether events are logged, kept current by the logger rather than asked on every event
    // (each SET and INC makes one).
    let logEvents = logger.isLevelEnabled('debug');
    const onLevelChange = () => (logEvents = logger.isLevelEnabled('debug'));
    logger.on('level-change', onLevelChange);
    const stopEvents = engine.subscribe((event) => {
      stats.countEvent(event);
      if (logEvents) {
        if ('id' in event) {
          const oldSid = event.type === 'regenerated' ? { oldSid: event.oldId } : {};
          logger.debug({ event: event.type, sid: event.id, ...oldSid }, 'session event');
        } else {
          logger.debug({ event: event.type, count: event.count }, 'session event');
        }
      }
    });
    const unsubscribe = () => {
      stopEvents();
      logger.off('level-change', onLevelChange);
    };
    const resp = new RespServer(
      {
        host: options.resp?.host ?? '127.0.0.1',
        port: options.resp?.port ?? 8086,
        ...(options.resp?.tls && { tls: options.resp.tls }),
        maxClients: options.resp?.maxClients ?? DEFAULT_MAX_CLIENTS,
        maxOutputBuffer: options.resp?.maxOutputBuffer ?? DEFAULT_MAX_OUTPUT_BUFFER,
        decoderLimits: options.resp?.decoderLimits ?? {},
      },
      {
        context,
        pubsub,
        auth,
        stats,
        metrics: metrics ?? undefined,
        version: VERSION,
        onError,
        logger,
      },
    );
    const respAddress = await resp.listen().catch((error: unknown) => {
      unsubscribe();
      throw error;
    });
    const activity = new ActivityHistory({
      engine,
      stats,
      onError: (error) => logger.warn({ err: error }, 'activity sample failed'),
    });
    const httpOptions = options.http ?? {};
    const http =
      httpOptions === false
        ? null
        : new HttpServer({
            host: httpOptions.host ?? '127.0.0.1',
            port: httpOptions.port ?? 8087,
            ...(httpOptions.tls && { tls: httpOptions.tls }),
            ...(httpOptions.maxBodyBytes !== undefined && {
              maxBodyBytes: httpOptions.maxBodyBytes,
            }),
            ...(options.resp?.decoderLimits?.maxArgs !== undefined && {
              maxArgs: options.resp.decoderLimits.maxArgs,
            }),
            ...(httpOptions.allowedHosts !== undefined && {
              allowedHosts: httpOptions.allowedHosts,
            }),
            ...(httpOptions.maxConnections !== undefined && {
              maxConnections: httpOptions.maxConnections,
            }),
            context,
            auth,
            stats,
            pubsub,
            ...(metrics && { metrics }),
            admin: new AdminPage({ engine, stats, history: activity, version: VERSION }),
            onError,
            logger,
          });
    const httpAddress = await http?.listen().catch(async (error: unknown) => {
      unsubscribe();
      await resp.close();
      throw error;
    });
    const server = new SessiondServer(
      { engine, pubsub, stats, logger, metrics },
      resp,
      respAddress,
      http && httpAddress ? { server: http, address: httpAddress, activity } : null,
      unsubscribe,
    );
    if (server.activity) {
      // A first point at once, so the charts start from the server's start.
      void server.activity.sample();
      server.activity.start();
    }
    const sweep = options.sweepIntervalMs ?? 1000;
    if (sweep > 0) engine.startSweeper(sweep);
    return server;
  }

  /**
   * Graceful shutdown: stop accepting, finish the commands in flight, send their replies,
   * then close the store. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([this.#resp.close(), this.#http?.close(), this.activity?.stop()]);
      this.#unsubscribe();
      this.pubsub.close();
      await this.engine.close();
    })();
    return this.#closing;
  }
}

/** INFO's text, in Redis's `# Section` / `key:value` layout. */
async function info(engine: Engine, stats: ServerStats): Promise<string> {
  const lines = [
    '# Server',
    `sessiond_version:${VERSION}`,
    `node_version:${process.version}`,
    `uptime_in_seconds:${Math.floor((Date.now() - stats.startedAt) / 1000)}`,
    '# Store',
    `store:${engine.store.kind}`,
    '# Sessions',
    `sessions:${await engine.count()}`,
    '# Clients',
    `connected_clients:${stats.connections}`,
    `total_connections_received:${stats.totalConnections}`,
    `rejected_connections:${stats.rejectedConnections}`,
    '# Stats',
    `total_commands_processed:${stats.commands}`,
    `protocol_errors:${stats.protocolErrors}`,
    `auth_failures:${stats.authFailures}`,
    `output_buffer_disconnects:${stats.outputBufferDisconnects}`,
  ];
  return lines.join('\r\n') + '\r\n';
}
