/**
 * Several sessiond servers over one shared backend (DESIGN.md, "Where users outgrow one
 * machine"): every atomic rule holds across servers because the store enforces it, and every
 * server's subscribers hear each event exactly once.
 *
 * Run: node --test test/multi-server/multi-server.test.ts
 *
 * Needs the machine's PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres) and Redis on
 * 127.0.0.1:6379 (or SESSIOND_TEST_PG and SESSIOND_TEST_REDIS_URL), and redis-server and
 * redis-cli on PATH for the Redis Cluster (three masters) the test starts itself. Each run works
 * in a database (sessiond_ms_<hex>), a key prefix (sessiond-ms:<hex>:) and a cluster of its own,
 * removed at the end even when a test fails.
 *
 * The servers are real: three per backend in this process, each with its own Engine and its own
 * store opened on the backend, and for the SIGKILL case two `sessiond serve` processes. Expiry
 * runs on the real clock with a 200 ms sweep; tests wait for what they expect to happen and never
 * assert how long anything took.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { isClientError } from '../../src/client/client-error.ts';
import type { SessiondClient } from '../../src/client/client.ts';
import type { SessiondServer } from '../../src/server/server.ts';
import { createBackend, type Backend, type BackendKind } from './backends.ts';
import {
  EventLog,
  connect,
  connectAll,
  spawnServe,
  startServers,
  until,
  type ServeProcess,
} from './servers.ts';

const BACKENDS: ReadonlyArray<[BackendKind, string]> = [
  ['postgres', 'PostgreSQL'],
  ['redis-cluster', 'a Redis Cluster of three masters'],
  ['redis', 'one Redis'],
];
const SERVERS = 3;

/** Ids of one test start with this, so its sessions never meet another test's. */
const tag = (name: string) => `ms-${name}-${randomBytes(4).toString('hex')}-`;

/** `keys`, each counted once, sorted as EventLog.about sorts. */
const once = (keys: Iterable<string>): Array<[string, number]> =>
  [...new Set(keys)].sort().map((key) => [key, 1]);

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

for (const [kind, described] of BACKENDS) {
  describe(`${SERVERS} sessiond servers over ${described}`, () => {
    let backend: Backend | undefined;
    let servers: SessiondServer[] = [];
    const clients: SessiondClient[] = [];
    const children: ServeProcess[] = [];
    const problems: unknown[] = [];

    before(async () => {
      backend = await createBackend(kind);
      servers = await startServers(backend, SERVERS, (error) => problems.push(error));
    });

    after(async () => {
      await Promise.allSettled(clients.map((client) => client.disconnect()));
      await Promise.allSettled(children.map((child) => child.kill()));
      await Promise.allSettled(servers.map((server) => server.close()));
      await backend?.remove();
    });

    afterEach(() => {
      // Store failures and bugs are reported here rather than to any client.
      assert.deepEqual(problems.splice(0), []);
    });

    /** `perServer` clients of each server, closed when the suite ends. */
    async function clientsOf(perServer: number): Promise<SessiondClient[][]> {
      const connected = await connectAll(servers, perServer);
      clients.push(...connected.flat());
      return connected;
    }

    /** A subscriber to `events:*` on every server. */
    async function subscribers(): Promise<EventLog[]> {
      const listeners = (await clientsOf(1)).map(([client]) => client!);
      return Promise.all(listeners.map((client) => EventLog.listen(client)));
    }

    /**
     * Creates a marker session on every server and waits until every subscriber has heard all
     * of them, so that events published before the markers have had their way through the
     * backend. @returns the markers' ids
     */
    async function settle(logs: EventLog[], on: SessiondClient[], prefix: string) {
      const markers = on.map((_, i) => `${prefix}mark-${i}`);
      await Promise.all(on.map((client, i) => client.create(markers[i]!)));
      const heard = markers.map((id) => `created ${id}`);
      await until(() => logs.every((log) => log.hasAll(heard)), 'the markers on every server');
      return markers;
    }

    it('INC from many clients spread over the servers ends on the exact total', async () => {
      const sid = `${tag('inc')}counter`;
      const perServer = await clientsOf(10);
      await perServer[0]![0]!.create(sid);
      const INCS = 30;
      const results = (
        await Promise.all(
          perServer
            .flat()
            // Each client sends its INCs at once: they travel pipelined, interleaved with the
            // other clients' on every server.
            .map((client) => Promise.all(range(INCS).map(() => client.inc(sid, 'n')))),
        )
      ).flat();
      const total = SERVERS * 10 * INCS;
      // Every INC saw a value no other INC saw: none was lost or applied twice.
      assert.deepEqual(
        results.map(Number).sort((a, b) => a - b),
        range(total).map((i) => i + 1),
      );
      for (const [client] of perServer) assert.equal(await client!.get(sid, 'n'), String(total));
    });

    it('one LOCK holder at a time across servers, with fencing keys rising in acquisition order', async () => {
      const sid = `${tag('lock')}shared`;
      const perServer = await clientsOf(3);
      await perServer[1]![0]!.create(sid, { timeout: 0 });
      const ROUNDS = 4;
      let holders = 0;
      let overlaps = 0;
      const keys: number[] = [];
      const released: boolean[] = [];
      await Promise.all(
        perServer.flat().map(async (client) => {
          for (let round = 0; round < ROUNDS; round++) {
            // The lease outlasts the test, so only UNLOCK ever frees the lock.
            const key = await client.lock(sid, { leaseMs: 60_000, waitMs: 60_000 });
            // Counted when the reply arrives, and given up before UNLOCK is sent: the next
            // holder's reply can only come after that, so a correct lock never shows overlap.
            if (holders > 0) overlaps++;
            holders++;
            keys.push(key);
            await new Promise((resolve) => setTimeout(resolve, 2));
            holders--;
            released.push(await client.unlock(sid, key));
          }
        }),
      );
      assert.equal(overlaps, 0);
      assert.equal(keys.length, SERVERS * 3 * ROUNDS);
      assert.ok(
        keys.every((key, i) => i === 0 || key > keys[i - 1]!),
        `fencing keys in acquisition order: ${keys.join(' ')}`,
      );
      assert.ok(released.every(Boolean), 'every holder still held the lock it released');
    });

    it('every subscriber on every server gets each event exactly once', async () => {
      const prefix = tag('events');
      const logs = await subscribers();
      const perServer = (await clientsOf(1)).map(([client]) => client!);
      const expected: string[] = [];
      const ids = new Set<string>();
      // Sessions made on one server and changed on the next, so events start on every server.
      await Promise.all(
        perServer.map(async (maker, i) => {
          const other = perServer[(i + 1) % SERVERS]!;
          const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => `${prefix}${name}${i}`);
          for (const id of [a!, b!, c!, d!]) {
            ids.add(id);
            await maker.create(id);
            expected.push(`created ${id}`);
          }
          await other.set(a!, 'colour', 'blue');
          await other.inc(b!, 'visits');
          const renewed = await other.regenerate(c!);
          await other.destroy(d!);
          ids.add(renewed);
          expected.push(
            `updated ${a!}`,
            `updated ${b!}`,
            `regenerated ${renewed}`,
            `destroyed ${d!}`,
          );
        }),
      );
      await until(() => logs.every((log) => log.hasAll(expected)), 'every event on every server');
      for (const marker of await settle(logs, perServer, prefix)) {
        ids.add(marker);
        expected.push(`created ${marker}`);
      }
      for (const [i, log] of logs.entries()) {
        assert.deepEqual(log.about(ids), once(expected), `subscriber on server ${i}`);
      }
    });

    it('each expiry produces exactly one expired event on every subscriber', async () => {
      const prefix = tag('expiry');
      const logs = await subscribers();
      const perServer = (await clientsOf(1)).map(([client]) => client!);
      const ids = new Set(range(6).map((i) => `${prefix}${i}`));
      // All made on one server; whichever server sweeps them, each expiry is reported once.
      for (const id of ids) await perServer[0]!.create(id, { timeout: 1 });
      const expired = [...ids].map((id) => `expired ${id}`);
      await until(() => logs.every((log) => log.hasAll(expired)), 'the sweep on the real clock');
      const markers = await settle(logs, perServer, prefix);
      const expected = [...[...ids].map((id) => `created ${id}`), ...expired];
      for (const marker of markers) {
        ids.add(marker);
        expected.push(`created ${marker}`);
      }
      for (const [i, log] of logs.entries()) {
        assert.deepEqual(log.about(ids), once(expected), `subscriber on server ${i}`);
      }
      for (const client of perServer) {
        for (const id of ids) {
          if (!markers.includes(id)) assert.equal(await client.ctl(id, 'EXIST'), 0);
        }
      }
    });

    it("DESTROYUSER on one server ends the user's sessions for every server", async () => {
      const prefix = tag('user');
      const user = `${prefix}alice`;
      const perServer = (await clientsOf(1)).map(([client]) => client!);
      const sessions: string[] = [];
      for (const [i, client] of perServer.entries()) {
        for (const device of ['laptop', 'phone']) {
          const sid = `${prefix}${device}${i}`;
          await client.create(sid);
          await client.setUser(sid, user);
          sessions.push(sid);
        }
      }
      const [bystander, bob] = [`${prefix}bystander`, `${prefix}bob`];
      await perServer[2]!.create(bystander);
      await perServer[2]!.setUser(bystander, bob);
      const [kept, ...ended] = sessions;
      // "Log out my other devices", asked of server 0 from the session made there.
      assert.equal(await perServer[0]!.destroyUser(user, { except: kept! }), ended.length);
      for (const client of perServer) {
        assert.deepEqual(await client.userSessions(user), [kept]);
        for (const sid of ended) assert.equal(await client.ctl(sid, 'EXIST'), 0);
        assert.equal(await client.ctl(kept!, 'EXIST'), 1);
        assert.equal(await client.getUser(bystander), bob);
      }
    });

    it('a server killed with SIGKILL in the middle of a write load loses no acknowledged write', async (t) => {
      const store = backend?.cliStore;
      assert.ok(store, 'every backend names its store for sessiond serve');
      const prefix = tag('kill');
      const [a, b] = [await spawnServe(store), await spawnServe(store)];
      children.push(a, b);
      const reader = await connect(b.port);
      clients.push(reader);
      const WRITERS = 8;
      const counter = `${prefix}counter`;
      const own = range(WRITERS).map((j) => `${prefix}w${j}`);
      for (const sid of [counter, ...own]) await reader.create(sid, { timeout: 0 });
      const writers = await Promise.all(range(WRITERS).map(() => connect(a.port)));
      clients.push(...writers);

      // Killed when this many writes have been acknowledged, while the others are in flight; a
      // writer's own session stays far below the variable limit (1024).
      const KILL_AT = 400;
      const acknowledged: Array<[sid: string, name: string, value: string]> = [];
      let acked = 0;
      let incSent = 0;
      let incAcked = 0;
      let killed: Promise<void> | undefined;
      const endings = await Promise.all(
        writers.map(async (client, j) => {
          for (let n = 0; ; n++) {
            try {
              if (n % 2 === 0) {
                const value = `${j}:${n}`;
                await client.set(own[j]!, `v${n}`, value);
                acknowledged.push([own[j]!, `v${n}`, value]);
              } else {
                incSent++;
                await client.inc(counter, 'n');
                incAcked++;
              }
            } catch (error) {
              return error;
            }
            if (++acked === KILL_AT) killed = a.kill('SIGKILL');
          }
        }),
      );
      await killed;
      assert.equal(a.child.signalCode, 'SIGKILL');
      // Every writer was cut off by the kill, none by a refusal of its write.
      for (const ending of endings) assert.ok(isClientError(ending), String(ending));
      assert.ok(acknowledged.length > 0 && incAcked > 0);

      const stored = new Map<string, Map<string, string>>();
      for (const sid of own) stored.set(sid, await reader.getArray(sid));
      const lost = acknowledged.filter(
        ([sid, name, value]) => stored.get(sid)?.get(name) !== value,
      );
      assert.deepEqual(lost, [], 'acknowledged SETs missing after the kill');
      const total = Number(await reader.get(counter, 'n'));
      t.diagnostic(
        `${acknowledged.length} SETs acknowledged; INC: ${incAcked} acknowledged, ${incSent} sent, total ${total}`,
      );
      assert.ok(
        total >= incAcked && total <= incSent,
        `INC total ${total}: acknowledged ${incAcked}, sent ${incSent}`,
      );
    });
  });
}
