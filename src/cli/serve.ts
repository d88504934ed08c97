import { readFileSync } from 'node:fs';
import { Engine } from '../core/engine.ts';
import { DEFAULT_LIMITS, type Limits } from '../core/limits.ts';
import { createLogger, LOG_LEVELS, type LogLevel } from '../server/observability/logger.ts';
import { loadPlugin } from '../server/plugin-loader.ts';
import { SessiondServer } from '../server/server.ts';
import { openStore } from '../store/open.ts';
import type { Settings } from './settings.ts';

/**
 * `sessiond serve`: opens the store, loads plugins, starts both ports, and shuts down
 * gracefully on SIGINT or SIGTERM (a second signal exits at once). Logs JSON lines on stdout.
 */
export async function serve(settings: Settings): Promise<SessiondServer> {
  if (!(LOG_LEVELS as readonly string[]).includes(settings.logLevel!)) {
    throw new Error(
      `--log-level: expected one of ${LOG_LEVELS.join(', ')}, got "${settings.logLevel}"`,
    );
  }
  const logger = createLogger({ level: settings.logLevel as LogLevel });
  if (settings.durability !== 'full' && settings.durability !== 'normal') {
    throw new Error(`--durability: expected full or normal, got "${String(settings.durability)}"`);
  }
  if ((settings.tlsCert === undefined) !== (settings.tlsKey === undefined)) {
    throw new Error('--tls-cert and --tls-key go together');
  }
  const store = await openStore(settings.store!, {
    durability: settings.durability,
    indexedVars: settings.indexedVars,
  });
  const engine = new Engine({
    store,
    onError: (error) => logger.error({ err: error }, 'hook, listener or event transport failed'),
    defaultTimeout: settings.defaultTimeout!,
    limits: {
      ...otherLimits(settings.limit),
      maxValueBytes: settings.maxValueBytes!,
      maxVars: settings.maxVars!,
      maxDataBytes: settings.maxDataBytes!,
      maxResultIds: settings.maxResultIds!,
    },
  });
  try {
    for (const path of settings.plugin) await loadPlugin(path, engine);
  } catch (error) {
    await engine.close();
    throw error;
  }
  const tls =
    settings.tlsCert === undefined
      ? undefined
      : { cert: readFileSync(settings.tlsCert), key: readFileSync(settings.tlsKey!) };
  const server = await SessiondServer.start({
    engine,
    resp: {
      host: settings.host!,
      port: settings.port!,
      ...(tls && { tls }),
      maxClients: settings.maxClients!,
      maxOutputBuffer: settings.maxOutputBuffer!,
      decoderLimits: {
        maxBulkLength: settings.maxBulkLength!,
        maxArgs: settings.maxArgs!,
        maxInlineLength: settings.maxInline!,
        maxQueryBuffer: settings.maxQueryBuffer!,
      },
    },
    http:
      settings.httpPort === -1
        ? false
        : {
            host: settings.httpHost!,
            port: settings.httpPort!,
            ...(tls && { tls }),
            maxBodyBytes: settings.maxBodyBytes!,
            maxConnections: settings.maxHttpConnections!,
            ...(settings.httpAllowedHosts && { allowedHosts: settings.httpAllowedHosts }),
          },
    auth: {
      ...(settings.password !== undefined && { password: settings.password }),
      ...(settings.adminPassword !== undefined && { adminPassword: settings.adminPassword }),
    },
    sweepIntervalMs: settings.sweepInterval!,
    logger,
  }).catch(async (error: unknown) => {
    await engine.close();
    throw error;
  });
  const { address, port } = server.respAddress;
  const http = server.httpAddress
    ? `; HTTP on ${server.httpAddress.address}:${server.httpAddress.port}`
    : '';
  logger.info(
    {
      store: store.kind,
      resp: `${address}:${port}`,
      ...(server.httpAddress && {
        http: `${server.httpAddress.address}:${server.httpAddress.port}`,
      }),
      auth: settings.password !== undefined || settings.adminPassword !== undefined,
    },
    `sessiond ${store.kind} store; RESP on ${address}:${port}${http}`,
  );
  let stopping = false;
  /**
   * Ends the process once the event loop is empty, so pino's asynchronous write of the last
   * lines completes (process.exit() could cut one off); after 2 s it exits regardless.
   */
  const exit = (code: number) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), 2000).unref();
  };
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, `${signal} again, exiting now`);
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, `${signal}: finishing commands in flight`);
    server.close().then(
      () => {
        logger.info('stopped');
        exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return server;
}

/** Limits with a flag of their own: `--limit` refuses them, so one value has one place. */
const FLAGGED_LIMITS: Partial<Record<keyof Limits, string>> = {
  maxValueBytes: '--max-value-bytes',
  maxVars: '--max-vars',
  maxDataBytes: '--max-data-bytes',
  maxResultIds: '--max-result-ids',
};

/**
 * `--limit NAME=N` entries as engine limits; the engine checks that each is a positive integer.
 * @throws Error naming the entry when it is not NAME=N, names no limit, or has its own flag
 */
export function otherLimits(entries: readonly string[]): Partial<Limits> {
  const limits: Partial<Limits> = {};
  for (const entry of entries) {
    const [name = '', value = '', ...rest] = entry.split('=');
    if (!Object.hasOwn(DEFAULT_LIMITS, name) || rest.length > 0 || !/^\d+$/.test(value)) {
      throw new Error(
        `--limit: expected NAME=N with NAME one of ${Object.keys(DEFAULT_LIMITS).join(', ')}, got "${entry}"`,
      );
    }
    const flag = FLAGGED_LIMITS[name as keyof Limits];
    if (flag) throw new Error(`--limit: ${name} has its own flag, ${flag}`);
    limits[name as keyof Limits] = Number(value);
  }
  return limits;
}
