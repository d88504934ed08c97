import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsOptionDescriptor } from 'node:util';

/** One setting of `sessiond serve`: a flag, an environment variable and a config file key. */
interface Setting {
  flag: string;
  type: 'string' | 'integer' | 'list';
  fallback?: string;
  help: string;
}

/** Every setting, in the order `--help` lists them. */
export const SETTINGS = {
  store: {
    flag: 'store',
    type: 'string',
    fallback: 'sqlite:sessiond.db',
    help: 'memory | sqlite:PATH | postgres://... | redis://HOST:PORT[,HOST:PORT...] (several: a cluster)',
  },
  durability: {
    flag: 'durability',
    type: 'string',
    fallback: 'full',
    help: 'sqlite: full (fsync per group commit) | normal',
  },
  host: { flag: 'host', type: 'string', fallback: '127.0.0.1', help: 'RESP address' },
  port: { flag: 'port', type: 'integer', fallback: '8086', help: 'RESP port' },
  httpHost: { flag: 'http-host', type: 'string', fallback: '127.0.0.1', help: 'HTTP address' },
  httpPort: {
    flag: 'http-port',
    type: 'integer',
    fallback: '8087',
    help: 'HTTP port (0 picks one; --http-port=-1 disables)',
  },
  httpAllowedHosts: {
    flag: 'http-allowed-hosts',
    type: 'list',
    help: 'host names the HTTP port answers to besides IP literals and localhost (DNS rebinding defence)',
  },
  password: {
    flag: 'password',
    type: 'string',
    help: 'password of user "default" (AUTH), both ports',
  },
  adminPassword: {
    flag: 'admin-password',
    type: 'string',
    help: 'password of user "admin", needed for EMPTY',
  },
  tlsCert: { flag: 'tls-cert', type: 'string', help: 'PEM certificate: both ports speak TLS only' },
  tlsKey: { flag: 'tls-key', type: 'string', help: 'PEM private key for --tls-cert' },
  plugin: {
    flag: 'plugin',
    type: 'list',
    help: 'ES module registering PLUGIN/CALL functions and hooks (repeatable)',
  },
  defaultTimeout: {
    flag: 'default-timeout',
    type: 'integer',
    fallback: '1800',
    help: 'idle timeout (s) of sessions created without one',
  },
  indexedVars: {
    flag: 'indexed-vars',
    type: 'list',
    help: 'variable names indexed for FIND/LISTVAR (comma-separated)',
  },
  sweepInterval: {
    flag: 'sweep-interval',
    type: 'integer',
    fallback: '1000',
    help: 'expiry sweep every N ms (0: off)',
  },
  maxClients: {
    flag: 'max-clients',
    type: 'integer',
    fallback: '10000',
    help: 'connections at once',
  },
  maxOutputBuffer: {
    flag: 'max-output-buffer',
    type: 'integer',
    fallback: String(64 * 1024 * 1024),
    help: 'unsent reply bytes before a client is cut off',
  },
  maxBulkLength: {
    flag: 'max-bulk-length',
    type: 'integer',
    fallback: String(8 * 1024 * 1024),
    help: 'largest RESP argument (bytes)',
  },
  maxArgs: {
    flag: 'max-args',
    type: 'integer',
    fallback: '65536',
    help: 'most arguments in one command (RESP; an HTTP body may hold twice as many JSON values)',
  },
  maxInline: {
    flag: 'max-inline',
    type: 'integer',
    fallback: '65536',
    help: 'longest inline command (bytes)',
  },
  maxQueryBuffer: {
    flag: 'max-query-buffer',
    type: 'integer',
    fallback: String(16 * 1024 * 1024),
    help: 'largest pending request (bytes)',
  },
  maxValueBytes: {
    flag: 'max-value-bytes',
    type: 'integer',
    fallback: '65536',
    help: 'largest variable value',
  },
  maxVars: { flag: 'max-vars', type: 'integer', fallback: '1024', help: 'variables per session' },
  maxDataBytes: {
    flag: 'max-data-bytes',
    type: 'integer',
    fallback: '1048576',
    help: 'largest data blob',
  },
  maxResultIds: {
    flag: 'max-result-ids',
    type: 'integer',
    fallback: '100000',
    help: 'most ids in one LIST (without CURSOR), FIND, LISTVAR or USERSESSIONS reply',
  },
  limit: {
    flag: 'limit',
    type: 'list',
    help: 'any other engine limit as NAME=N, e.g. maxLeaseMs=60000 (names: see the README)',
  },
  maxBodyBytes: {
    flag: 'max-body-bytes',
    type: 'integer',
    fallback: String(16 * 1024 * 1024),
    help: 'largest HTTP request body',
  },
  maxHttpConnections: {
    flag: 'max-http-connections',
    type: 'integer',
    fallback: '10000',
    help: 'HTTP connections at once; more are closed unanswered',
  },
  logLevel: {
    flag: 'log-level',
    type: 'string',
    fallback: 'info',
    help: 'JSON logs on stdout: fatal | error | warn | info | debug | trace | silent',
  },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;
export type Settings = {
  [K in SettingName]: (typeof SETTINGS)[K]['type'] extends 'integer'
    ? number | undefined
    : (typeof SETTINGS)[K]['type'] extends 'list'
      ? string[]
      : string | undefined;
};

const envName = (flag: string) => `SESSIOND_${flag.toUpperCase().replaceAll('-', '_')}`;

/**
 * Resolves settings from, in order of precedence: flags, environment variables
 * (`SESSIOND_PORT`, ...), the JSON config file named by `--config` or `SESSIOND_CONFIG`
 * (keys as in SETTINGS: `port`, `httpPort`, ...), then defaults.
 * @throws Error naming the setting on an unknown flag, a bad integer, or an unreadable config
 */
export function resolveSettings(argv: readonly string[], env: NodeJS.ProcessEnv): Settings {
  const flags: Record<string, ParseArgsOptionDescriptor> = { config: { type: 'string' } };
  for (const setting of Object.values(SETTINGS)) {
    flags[setting.flag] =
      setting.type === 'list' ? { type: 'string', multiple: true } : { type: 'string' };
  }
  const { values } = parseArgs({
    args: [...argv],
    options: flags,
    strict: true,
    allowPositionals: false,
  });
  const configPath = (values.config as string | undefined) ?? env.SESSIOND_CONFIG;
  const file = configPath === undefined ? {} : readConfig(configPath);
  const out: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(SETTINGS) as Array<[SettingName, Setting]>) {
    const raw: unknown =
      values[setting.flag] ?? env[envName(setting.flag)] ?? file[key] ?? setting.fallback;
    out[key] = convert(setting, raw);
  }
  return out as Settings;
}

function readConfig(path: string): Record<string, unknown> {
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`config ${path}: expected a JSON object`);
  }
  for (const key of Object.keys(parsed)) {
    if (!(key in SETTINGS)) throw new Error(`config ${path}: unknown setting "${key}"`);
  }
  return parsed as Record<string, unknown>;
}

function convert(setting: Setting, raw: unknown): unknown {
  if (setting.type === 'list') {
    const items: unknown[] = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
    return items.flatMap((item) => {
      if (typeof item !== 'string')
        throw new Error(`--${setting.flag}: expected text, got ${JSON.stringify(item)}`);
      return item.split(',').filter((part) => part !== '');
    });
  }
  if (raw === undefined) return undefined;
  if (Array.isArray(raw)) raw = raw.at(-1);
  if (setting.type === 'string') return String(raw);
  const n = typeof raw === 'number' ? raw : /^-?\d+$/.test(String(raw)) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n))
    throw new Error(`--${setting.flag}: expected an integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** The `--help` text of `sessiond serve`. */
export function serveHelp(): string {
  const rows = Object.values(SETTINGS as Record<string, Setting>).map((s) => {
    const left = `  --${s.flag}${s.type === 'list' ? ' A,B' : s.type === 'integer' ? ' N' : ' VALUE'}`;
    const dflt = s.fallback === undefined ? '' : ` (default ${s.fallback})`;
    return `${left.padEnd(30)} ${s.help}${dflt}\n${''.padEnd(31)}env ${envName(s.flag)}`;
  });
  return [
    'Usage: sessiond serve [options]',
    '',
    'Starts the session server: RESP on --host:--port, HTTP/JSON on --http-host:--http-port.',
    'Precedence: flags, then environment variables, then the --config JSON file, then defaults.',
    '',
    '  --config FILE                  JSON file with any of the settings below (keys: camelCase)',
    '                               env SESSIOND_CONFIG',
    ...rows,
  ].join('\n');
}
