/**
 * One connection (standalone) or one cluster client behind the few calls the store makes:
 * a command routed by its key, a script by EVALSHA, and the list of masters for SCAN.
 */
import {
  createClient,
  createCluster,
  ErrorReply,
  RESP_TYPES,
  type RedisArgument,
  type RedisFunctions,
  type RedisModules,
  type RedisScripts,
  type TypeMapping,
} from '@redis/client';
import type { Script } from './scripts.ts';

type Client = ReturnType<
  typeof createClient<RedisModules, RedisFunctions, RedisScripts, 2, TypeMapping>
>;
type Cluster = ReturnType<
  typeof createCluster<RedisModules, RedisFunctions, RedisScripts, 2, TypeMapping>
>;

/** A reply as this module hands it on: strings as Buffers, so that every byte survives. */
export type Reply = Buffer | number | null | Reply[];

/** Bulk and simple strings as Buffers: a reply decoded as UTF-8 would mangle bytes 0x80..0xff. */
const BYTES: TypeMapping = {
  [RESP_TYPES.BLOB_STRING]: Buffer,
  [RESP_TYPES.SIMPLE_STRING]: Buffer,
};

/** Where to connect. */
export interface LinkOptions {
  /** A standalone Redis, `redis://[user:password@]host:port[/db]` or `rediss://`. */
  url?: string;
  /** A Redis Cluster: URLs (or host:port) of some of its nodes. */
  cluster?: { rootNodes: readonly string[] };
  /** Told of connection trouble; commands in flight fail on their own. */
  onError: (error: Error) => void;
}

/** A master, for commands that must run on each one (SCAN). */
export interface Master {
  readonly address: string;
  send(args: RedisArgument[]): Promise<Reply>;
}

/** The store's view of Redis: standalone and cluster alike. */
export interface Link {
  readonly cluster: boolean;
  /** Sends a command to the node that holds `key`. */
  send(key: RedisArgument, args: RedisArgument[], readonly?: boolean): Promise<Reply>;
  /** Runs a script by EVALSHA, loading it (EVAL) on a node that does not know it yet. */
  run(script: Script, keys: RedisArgument[], args: RedisArgument[]): Promise<Reply>;
  /** The masters, sorted by address: the same order on every call while the topology holds. */
  masters(): Promise<Master[]>;
  /** A second connection of the same kind, for pub/sub. */
  duplicate(): Link;
  /** The client itself, for pub/sub. */
  readonly raw: Client | Cluster;
  connect(): Promise<void>;
  close(): Promise<void>;
}

/** Adds the scheme to a bare host:port. */
function asUrl(node: string): string {
  return /^rediss?:\/\//.test(node) ? node : `redis://${node}`;
}

/** Opens a link; rejects when Redis cannot be reached. */
export async function openLink(options: LinkOptions): Promise<Link> {
  const link = options.cluster ? clusterLink(options) : standaloneLink(options);
  try {
    await link.connect();
  } catch (error) {
    await link.close().catch(() => {});
    throw error;
  }
  return link;
}

function standaloneLink(options: LinkOptions): Link {
  const client: Client = createClient({
    url: options.url ?? 'redis://127.0.0.1:6379',
    RESP: 2,
    // Fail fast while disconnected instead of queueing session writes for an unknown time.
    disableOfflineQueue: true,
    commandOptions: { typeMapping: BYTES },
  });
  client.on('error', (error: unknown) => options.onError(asError(error)));
  const send = (args: RedisArgument[]) => client.sendCommand<Reply>(args, { typeMapping: BYTES });
  return {
    cluster: false,
    raw: client,
    send: (_key, args) => send(args),
    run: (script, keys, args) => evalsha(send, script, keys, args),
    masters: async () => [{ address: 'standalone', send }],
    duplicate: () => standaloneLink(options),
    connect: async () => {
      await client.connect();
    },
    close: () => closeClient(client),
  };
}

function clusterLink(options: LinkOptions): Link {
  const urls = options.cluster!.rootNodes.map(asUrl);
  if (urls.length === 0) throw new RangeError('redis store: cluster.rootNodes is empty');
  // The credentials and TLS of the first URL apply to every node the cluster client discovers.
  const first = new URL(urls[0]!);
  const defaults = {
    ...(first.username !== '' && { username: decodeURIComponent(first.username) }),
    ...(first.password !== '' && { password: decodeURIComponent(first.password) }),
    ...(first.protocol === 'rediss:' && { socket: { tls: true as const } }),
    disableOfflineQueue: true,
  };
  const cluster: Cluster = createCluster({
    rootNodes: urls.map((url) => ({ url })),
    defaults,
    RESP: 2,
    commandOptions: { typeMapping: BYTES },
  });
  cluster.on('error', (error: unknown) => options.onError(asError(error)));
  const send = (key: RedisArgument, args: RedisArgument[], readonly = false) =>
    cluster.sendCommand<Reply>(key, readonly, args, { typeMapping: BYTES });
  return {
    cluster: true,
    raw: cluster,
    send,
    run: (script, keys, args) => evalsha((command) => send(keys[0]!, command), script, keys, args),
    masters: async () => {
      const masters = [...cluster.masters].sort((a, b) => (a.address < b.address ? -1 : 1));
      return Promise.all(
        masters.map(async (node) => {
          const client = await cluster.nodeClient(node);
          return {
            address: node.address,
            send: (args: RedisArgument[]) =>
              client.sendCommand<Reply>(args, { typeMapping: BYTES }),
          };
        }),
      );
    },
    duplicate: () => clusterLink(options),
    connect: async () => {
      await cluster.connect();
    },
    close: async () => {
      if (!cluster.isOpen) return;
      await cluster.close().catch(() => cluster.destroy());
    },
  };
}

async function evalsha(
  send: (args: RedisArgument[]) => Promise<Reply>,
  script: Script,
  keys: RedisArgument[],
  args: RedisArgument[],
): Promise<Reply> {
  const tail = [String(keys.length), ...keys, ...args];
  try {
    return await send(['EVALSHA', script.sha, ...tail]);
  } catch (error) {
    // A node that restarted or failed over has an empty script cache: EVAL loads it again.
    if (!(error instanceof ErrorReply) || !error.message.startsWith('NOSCRIPT')) throw error;
    return send(['EVAL', script.source, ...tail]);
  }
}

async function closeClient(client: Client): Promise<void> {
  if (!client.isOpen) return;
  if (client.isReady) await client.close();
  else client.destroy();
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
