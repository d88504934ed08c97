/**
 * The RESP command path's own CPU per command, without sockets (not a test).
 *
 *   node bench/resp-path.ts [batches] [ping|get|set|inc ...]
 *
 * A RespConnection over a stand-in socket that keeps nothing: each batch of 16 pipelined
 * requests, as redis-benchmark -P 16 sends them, is pushed as one chunk, decoded, run through the
 * command table, the engine and the memory store, and encoded into one reply buffer. The figure
 * is process CPU per command, best of five rounds, so it is what `bench/resp.ts` pays on top of
 * Node's socket I/O (its "node floor" row). Server metrics are on, as `sessiond serve` runs.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Engine } from '../src/core/engine.ts';
import { Auth } from '../src/server/auth.ts';
import { COMMAND_TABLE } from '../src/server/commands/table.ts';
import { Metrics } from '../src/server/observability/metrics.ts';
import { PubSub } from '../src/server/pubsub.ts';
import { CONNECTION_COMMANDS, RespConnection } from '../src/server/resp-connection.ts';
import { VERSION } from '../src/server/server.ts';
import { ServerStats } from '../src/server/stats.ts';
import { MemoryStore } from '../src/store/memory/memory-store.ts';

const batches = Number(process.argv[2] ?? 50_000);
/** Only these cases (all when none is named). */
const only = process.argv.slice(3);
const PIPELINE = 16;

/** A socket that accepts every write and keeps nothing. */
class NullSocket extends EventEmitter {
  destroyed = false;
  writableLength = 0;
  bytes = 0;
  setNoDelay(): this {
    return this;
  }
  write(chunk: string | Buffer): boolean {
    this.bytes += chunk.length;
    return true;
  }
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  end(): this {
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}

const engine = new Engine({ store: new MemoryStore(), defaultTimeout: 3600 });
await engine.create('bench-session');
await engine.set('bench-session', 'counter', '0');
const stats = new ServerStats();
const socket = new NullSocket();
new RespConnection(socket as unknown as Socket, {
  context: { engine, info: () => Promise.resolve('') },
  pubsub: new PubSub(engine),
  auth: new Auth(),
  stats,
  metrics: new Metrics({
    engine,
    stats,
    version: VERSION,
    isCommand: (name) => COMMAND_TABLE.has(name) || CONNECTION_COMMANDS.has(name),
  }),
  decoderLimits: {},
  maxOutputBuffer: 1 << 30,
  version: VERSION,
  onError: (error) => console.error(error),
});

/** One request as redis-benchmark frames it. */
const frame = (args: string[]): string =>
  `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');

const CASES: Record<string, string[]> = {
  ping: ['PING'],
  get: ['GET', 'bench-session', 'counter'],
  set: ['SET', 'bench-session', 'counter', 'xxx'],
  inc: ['INC', 'bench-session', 'counter'],
};

/** CPU nanoseconds per command for one case, best of five rounds. */
function measure(args: string[]): number {
  const chunk = Buffer.from(frame(args).repeat(PIPELINE), 'latin1');
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = process.cpuUsage();
    for (let i = 0; i < batches; i++) socket.emit('data', chunk);
    const used = process.cpuUsage(start);
    best = Math.min(best, ((used.user + used.system) * 1000) / (batches * PIPELINE));
  }
  return best;
}

// INC last: SET leaves a value that is not an integer.
for (const [name, args] of Object.entries(CASES)) {
  if (only.length > 0 && !only.includes(name)) continue;
  if (name === 'inc') await engine.set('bench-session', 'counter', '0');
  console.log(`${name.padEnd(5)} ${measure(args).toFixed(0).padStart(5)} ns/command`);
}
await engine.close();
