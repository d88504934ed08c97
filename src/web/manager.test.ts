import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSessions, type HeaderSink, type RequestLike, type Session } from './index.ts';
import { BACKINGS, useBacking } from './test-support.ts';

declare module './index.ts' {
  interface SessionData {
    typedCart: string[];
  }
}

/** Checked by the compiler only: declared variables are typed. */
export function typedVariables(session: Session): string[] | undefined {
  // @ts-expect-error a number is not a string[]
  session.set('typedCart', 5);
  return session.get('typedCart');
}

/** A HeaderSink over a plain map, as a framework adapter would write one. */
function sinkOf(
  headers = new Map<string, string[]>(),
): HeaderSink & { lines(name: string): string[] } {
  return {
    get: (name) => headers.get(name)?.join(', '),
    set: (name, value) => void headers.set(name, [value]),
    append: (name, value) => void headers.set(name, [...(headers.get(name) ?? []), value]),
    lines: (name) => headers.get(name) ?? [],
  };
}

const request = (cookie?: string): RequestLike => ({
  url: '/',
  headers: cookie === undefined ? {} : { cookie },
});

for (const make of BACKINGS) {
  describe(`the framework-agnostic core (${make.name})`, () => {
    const context = useBacking(make);

    it('begin, commit through a HeaderSink, and begin again with the cookie it set', async () => {
      const sessions = createSessions({ ...context.backing.options, className: 'core', gc: false });
      const first = await sessions.begin(request());
      first.session.set('typedCart', ['apple']);
      const sink = sinkOf();
      await first.commit(sink);
      const [line] = sink.lines('set-cookie');
      assert.equal(sink.get('cache-control'), 'no-store');
      const cookie = line!.split(';')[0]!;
      const second = await sessions.begin(request(cookie));
      const cart: string[] | undefined = second.session.get('typedCart');
      assert.deepEqual(cart, ['apple']);
      await second.commit(sinkOf());
    });

    it('abandon() releases the lock and writes nothing', async () => {
      const sessions = createSessions({
        ...context.backing.options,
        className: 'core-lock',
        gc: false,
        concurrency: 'lock',
        lock: { waitMs: 0 },
      });
      const created = await sessions.begin(request());
      created.session.set('n', 1);
      const sink = sinkOf();
      await created.commit(sink);
      const cookie = sink.lines('set-cookie')[0]!.split(';')[0]!;
      const holder = await sessions.begin(request(cookie));
      await assert.rejects(sessions.begin(request(cookie)), { code: 'LOCKED' });
      holder.session.set('n', 2);
      await holder.abandon();
      const next = await sessions.begin(request(cookie));
      assert.equal(next.session.get('n'), 1);
      await next.commit(sinkOf());
    });

    it('save() may run before the response and again at the end; only new changes are written', async () => {
      const sessions = createSessions({
        ...context.backing.options,
        className: 'core-twice',
        gc: false,
      });
      const tx = await sessions.begin(request());
      tx.session.set('a', 1);
      const sink = sinkOf();
      await tx.save(sink);
      tx.session.set('b', 2);
      await tx.end();
      assert.equal(sink.lines('set-cookie').length, 1);
      const id = tx.session.id!;
      assert.deepEqual(Object.fromEntries((await context.backing.engine.getAll(id))!), {
        a: '1',
        b: '2',
      });
    });
  });
}
