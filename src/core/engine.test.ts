import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rejectsWith } from '../store/conformance.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import { ManualClock } from './clock.ts';
import { Engine, type EngineOptions } from './engine.ts';
import type { HookContext } from './hooks.ts';
import type { SessionEvent } from './events.ts';
import type { EventTransport, Store, StoreEvent } from '../store/types.ts';

function setup(options: Partial<EngineOptions> = {}) {
  const clock = new ManualClock();
  const errors: unknown[] = [];
  const engine = new Engine({
    store: new MemoryStore(),
    clock,
    onError: (e) => errors.push(e),
    ...options,
  });
  const events: SessionEvent[] = [];
  engine.subscribe((e) => events.push(e));
  return { engine, clock, errors, events };
}

describe('Engine hooks', () => {
  it('a pre hook that returns false vetoes with DENIED and leaves the session as it was', async () => {
    const { engine, events } = setup();
    await engine.create('s1');
    await engine.set('s1', 'a', '1');
    engine.hooks.pre('update', (ctx) => !(ctx.names ?? []).includes('admin'));
    await rejectsWith(engine.set('s1', 'admin', 'yes'), 'DENIED');
    await rejectsWith(engine.inc('s1', 'admin'), 'DENIED');
    assert.equal(await engine.get('s1', 'admin'), null);
    await engine.set('s1', 'a', '2');
    assert.equal(await engine.get('s1', 'a'), '2');
    assert.equal(events.filter((e) => e.type === 'updated').length, 2);
  });

  it('a pre hook that throws fails closed: DENIED, reported, and the process goes on', async () => {
    const { engine, errors } = setup();
    engine.hooks.pre('create', () => {
      throw new Error('guard broke');
    });
    await rejectsWith(engine.create('s1'), 'DENIED');
    assert.equal(await engine.count(), 0);
    assert.equal(errors.length, 1);
  });

  it('a post hook that throws or rejects cannot undo or fail the operation', async () => {
    const { engine, errors } = setup();
    engine.hooks.post('destroy', () => {
      throw new Error('observer broke');
    });
    engine.hooks.post('destroy', () => Promise.reject(new Error('async observer broke')));
    await engine.create('s1');
    assert.equal(await engine.destroy('s1'), true);
    assert.equal(await engine.ctl('s1', 'EXIST'), 0);
    assert.equal(errors.length, 2);
  });

  it('pre and post hooks see every hooked operation with its details', async () => {
    const { engine } = setup();
    const seen: string[] = [];
    const record = (when: string) => (ctx: HookContext) => {
      seen.push(`${when}:${ctx.op}:${ctx.change ?? ''}:${ctx.count ?? ''}`);
    };
    for (const op of ['create', 'update', 'destroy', 'gc', 'empty', 'regenerate'] as const) {
      engine.hooks.pre(op, record('pre'));
      engine.hooks.post(op, record('post'));
    }
    await engine.create('s1');
    await engine.set('s1', 'a', '1');
    await engine.setData('s1', 'd');
    const fresh = await engine.regenerate('s1');
    await engine.setUser(fresh, 'u');
    await engine.destroy(fresh);
    await engine.gc();
    await engine.empty();
    assert.deepEqual(seen, [
      'pre:create::',
      'post:create::',
      'pre:update:set:',
      'post:update:set:',
      'pre:update:data:',
      'post:update:data:',
      'pre:regenerate::',
      'post:regenerate::',
      'pre:update:user:',
      'post:update:user:',
      'pre:destroy::',
      'post:destroy::',
      'pre:gc::',
      'post:gc::0',
      'pre:empty::',
      'post:empty::0',
    ]);
  });

  it('destroyUser() asks the destroy pre hook for each session and skips those it vetoes', async () => {
    const { engine } = setup();
    for (const id of ['a', 'b', 'c']) {
      await engine.create(id);
      await engine.setUser(id, 'alice');
    }
    engine.hooks.pre('destroy', (ctx) => ctx.id !== 'b');
    assert.equal(await engine.destroyUser('alice'), 2);
    assert.deepEqual(await engine.userSessions('alice'), ['b']);
  });

  it('a vetoed gc() or empty() removes nothing', async () => {
    const { engine, clock } = setup();
    await engine.create('s1', { timeout: 1 });
    engine.hooks.pre('gc', () => false);
    engine.hooks.pre('empty', () => false);
    clock.advance(1000);
    await rejectsWith(engine.gc(), 'DENIED');
    await engine.create('s2');
    await rejectsWith(engine.empty(), 'DENIED');
    assert.equal(await engine.count(), 1);
  });
});

describe('Engine events', () => {
  it('a listener that throws is reported and does not stop the operation or other listeners', async () => {
    const { engine, errors, events } = setup();
    engine.subscribe(() => {
      throw new Error('listener broke');
    });
    assert.equal(await engine.create('s1'), true);
    assert.deepEqual(events, [{ type: 'created', id: 's1' }]);
    assert.equal(errors.length, 1);
  });

  it('the sweeper removes expired sessions in the background and announces each once', async () => {
    const { engine, clock, events } = setup();
    for (let i = 0; i < 2500; i++) await engine.create(`s${i}`, { timeout: 1 });
    clock.advance(1000);
    engine.startSweeper(5);
    for (let i = 0; i < 200 && events.filter((e) => e.type === 'expired').length < 2500; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    engine.stopSweeper();
    const expired = events.filter((e) => e.type === 'expired');
    assert.equal(expired.length, 2500);
    assert.equal(new Set(expired.map((e) => (e.type === 'expired' ? e.id : ''))).size, 2500);
  });
});

describe('Engine plugins', () => {
  it('plugin() and call() answer NOPLUGIN until the operator registers functions', async () => {
    const { engine } = setup();
    await rejectsWith(engine.plugin('s1', '3', 'x'), 'NOPLUGIN');
    await rejectsWith(engine.call('uptime'), 'NOPLUGIN');
    engine.plugins.setEscape((sid, val, param) => `${sid}/${val}/${param ?? '-'}`);
    engine.plugins.register('echo', (args) => args.join(','));
    assert.equal(await engine.plugin('s1', '3', 'x'), 's1/3/x');
    assert.equal(await engine.plugin('s1', '3'), 's1/3/-');
    assert.equal(await engine.call('echo', ['a', 'b']), 'a,b');
    await rejectsWith(engine.call('Echo'), 'NOPLUGIN');
  });

  it('a plugin that throws gives ERR to its caller and leaves the engine working', async () => {
    const { engine } = setup();
    engine.plugins.register('boom', () => {
      throw new Error('kaput');
    });
    engine.plugins.register('bad', () => 42 as unknown as string);
    await rejectsWith(engine.call('boom'), 'ERR');
    await rejectsWith(engine.call('bad'), 'ERR');
    assert.equal(await engine.create('s1'), true);
  });
});

describe('Engine options', () => {
  it('refuses an id length that would carry under 128 bits', () => {
    assert.throws(() => setup({ idLength: 21 }), RangeError);
    assert.throws(() => setup({ limits: { maxVars: 0 } }), RangeError);
    assert.throws(() => setup({ limits: { maxIdBytes: 256 } }), RangeError);
  });

  it('newId() and regenerate() make ids of the configured length', async () => {
    const { engine } = setup({ idLength: 40 });
    assert.match(engine.newId(), /^[A-Za-z0-9]{40}$/);
    await engine.create('s1');
    assert.equal((await engine.regenerate('s1')).length, 40);
  });

  it('sessions created without a timeout get the default one', async () => {
    const { engine } = setup({ defaultTimeout: 1440 });
    await engine.create('s1');
    assert.equal(await engine.timeout('s1'), 1440);
  });
});

describe('Engine over a shared store', () => {
  /** One store that two engines share (as two servers would), with a transport that fans out. */
  function sharedStore(): Store {
    const listeners = new Set<(event: StoreEvent) => void>();
    const transport: EventTransport = {
      publish: async (event) => {
        for (const listener of listeners) listener(event);
      },
      subscribe: async (listener) => {
        listeners.add(listener);
        return async () => void listeners.delete(listener);
      },
    };
    return Object.assign(new MemoryStore(), { events: transport });
  }

  it('every engine hears each event once, whichever engine produced it', async () => {
    const store = sharedStore();
    const clock = new ManualClock();
    const engines = [new Engine({ store, clock }), new Engine({ store, clock })];
    await Promise.all(engines.map((engine) => engine.ready()));
    const heard: SessionEvent[][] = [[], []];
    engines.forEach((engine, i) => engine.subscribe((event) => heard[i]!.push(event)));
    await engines[0]!.create('s1');
    await engines[1]!.set('s1', 'a', '1');
    await engines[1]!.destroy('s1');
    const expected = [
      { type: 'created', id: 's1' },
      { type: 'updated', id: 's1' },
      { type: 'destroyed', id: 's1' },
    ];
    assert.deepEqual(heard[0], expected);
    assert.deepEqual(heard[1], expected);
  });
});
