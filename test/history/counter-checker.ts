/**
 * Checks a history of INC (by one) and GET on counter variables: a variable that some INC
 * touched and no SET did. A missing variable reads as 0, and INC returns the value after it
 * (PROTOCOL.md), so with every INC adding one, the INC that returns r is the r-th applied.
 *
 * For each counter the checker finds:
 *
 * - `duplicate-inc`: two acknowledged INCs returned the same value (one was counted twice, or
 *   two were counted once).
 * - `impossible-value`: an INC returned less than 1, or a value (an INC's or a read's) is not an
 *   integer or exceeds the number of INCs that had been invoked before it completed (it saw the
 *   future).
 * - `inc-order`: an INC that began after another operation completed returned a value not above
 *   that operation's.
 * - `stale-read`: a read that began after an INC completed returned less than that INC's value.
 * - `non-monotonic-read`: a read that began after another read completed returned less.
 * - `final-count`: a read begun after every INC had completed returned a total other than the
 *   acknowledged INCs plus at most the unknown ones: an INC lost, or applied twice.
 * - `not-linearizable`: no order of the operations, each at an instant between its invocation
 *   and its completion, explains every value. The rules above are what such an order needs
 *   pair by pair; this is the whole search (for a counter, a greedy pass: the INC returning r
 *   goes at the earliest instant its invocation, INC r-1 and the reads of r-1 allow, and must
 *   still come before its completion and before the completion of every read of r; an unknown
 *   INC fills a value no acknowledged INC returned, the earliest invoked first). Reported only
 *   for a counter with no other finding, which would already explain it.
 */
import { groupBy, originOf, show, type Operation, type Violation } from './history.ts';

/** What {@link checkCounters} found. */
export interface CounterReport {
  /** Counter variables checked. */
  counters: number;
  /** Acknowledged INCs, INCs that ended unknown, and acknowledged reads, over all counters. */
  incs: number;
  unknownIncs: number;
  reads: number;
  violations: Violation[];
}

/** Checks every counter variable in `ops`. */
export function checkCounters(ops: readonly Operation[]): CounterReport {
  const origin = originOf(ops);
  const report: CounterReport = { counters: 0, incs: 0, unknownIncs: 0, reads: 0, violations: [] };
  const byVar = groupBy(
    ops.filter((op) => op.call.f === 'inc' || op.call.f === 'get' || op.call.f === 'set'),
    (op) => JSON.stringify([op.call.sid, (op.call as { name: string }).name]),
  );
  for (const [variable, all] of byVar) {
    if (!all.some((op) => op.call.f === 'inc') || all.some((op) => op.call.f === 'set')) continue;
    report.counters++;
    const found: Violation[] = [];
    checkCounter(variable, all, origin, report, found);
    if (found.length === 0) linearize(variable, all, origin, found);
    report.violations.push(...found);
  }
  return report;
}

/** An acknowledged INC or read, with the counter value it saw. */
interface Seen {
  op: Operation;
  value: number;
  inc: boolean;
}

function checkCounter(
  variable: string,
  all: Operation[],
  origin: bigint,
  report: CounterReport,
  found: Violation[],
): void {
  const flag = (kind: string, message: string) =>
    found.push({ kind, message: `${variable}: ${message}` });
  const seen: Seen[] = [];
  const incs = all.filter((op) => op.call.f === 'inc' && op.outcome !== 'fail');
  let acked = 0;
  let unknown = 0;
  for (const op of all) {
    if (op.outcome === 'unknown' && op.call.f === 'inc') unknown++;
    if (op.outcome !== 'ok') continue;
    const inc = op.call.f === 'inc';
    const value = Number(op.value ?? 0);
    if (inc) acked++;
    else report.reads++;
    if (!Number.isSafeInteger(value) || value < (inc ? 1 : 0)) {
      flag('impossible-value', `returned ${JSON.stringify(op.value)}: ${show(op, origin)}`);
    } else {
      seen.push({ op, value, inc });
    }
  }
  report.incs += acked;
  report.unknownIncs += unknown;

  const byValue = groupBy(
    seen.filter((s) => s.inc),
    (s) => s.value,
  );
  for (const [value, same] of byValue) {
    if (same.length > 1) {
      flag(
        'duplicate-inc',
        `${same.length} INCs returned ${value}: ${same.map((s) => show(s.op, origin)).join('; ')}`,
      );
    }
  }

  // No value above the INCs invoked so far: nothing sees an INC that has not begun.
  const invokes = incs.map((op) => op.invokedAt).sort(cmp);
  for (const s of [...seen].sort((a, b) => cmp(a.op.completedAt, b.op.completedAt))) {
    const begun = countAtOrBefore(invokes, s.op.completedAt);
    if (s.value > begun) {
      flag(
        'impossible-value',
        `saw ${s.value} when only ${begun} INCs had been invoked: ${show(s.op, origin)}`,
      );
    }
  }

  // Real-time order: whatever completed before an operation began, it must not see less.
  const byReply = [...seen].sort((a, b) => cmp(a.op.completedAt, b.op.completedAt));
  let i = 0;
  let topInc: Seen | undefined;
  let topRead: Seen | undefined;
  for (const b of [...seen].sort((x, y) => cmp(x.op.invokedAt, y.op.invokedAt))) {
    while (i < byReply.length && byReply[i]!.op.completedAt < b.op.invokedAt) {
      const a = byReply[i++]!;
      if (a.inc && (!topInc || a.value > topInc.value)) topInc = a;
      if (!a.inc && (!topRead || a.value > topRead.value)) topRead = a;
    }
    if (b.inc) {
      const top = topRead && (!topInc || topRead.value > topInc.value) ? topRead : topInc;
      if (top && top.value >= b.value) {
        flag(
          'inc-order',
          `${show(b.op, origin)} began after ${show(top.op, origin)} completed, yet returned no more`,
        );
      }
    } else {
      if (topInc && topInc.value > b.value) {
        flag(
          'stale-read',
          `${show(b.op, origin)} began after ${show(topInc.op, origin)} completed, yet read less`,
        );
      } else if (topRead && topRead.value > b.value) {
        flag(
          'non-monotonic-read',
          `${show(b.op, origin)} began after ${show(topRead.op, origin)} completed, yet read less`,
        );
      }
    }
  }

  // Every INC counted once: a read after all of them is the acknowledged ones plus some unknown.
  const lastInc = incs.reduce((t, op) => (op.completedAt > t ? op.completedAt : t), 0n);
  for (const s of seen) {
    if (s.inc || s.op.invokedAt <= lastInc) continue;
    if (s.value < acked || s.value > acked + unknown) {
      flag(
        'final-count',
        `read ${s.value} after every INC completed, with ${acked} acknowledged and ${unknown} unknown: ${show(s.op, origin)}`,
      );
    }
  }
}

/** The greedy search for a linearization of one counter (see the module comment). */
function linearize(variable: string, all: Operation[], origin: bigint, found: Violation[]): void {
  const ok = all.filter((op) => op.outcome === 'ok');
  const incAt = new Map<number, Operation>();
  let top = 0;
  for (const op of ok) {
    const value = Number(op.value ?? 0);
    if (op.call.f === 'inc') incAt.set(value, op);
    if (value > top) top = value;
  }
  // The reads of each value: the INC of v must come by the earliest completion among them, the
  // INC of v + 1 after the latest invocation.
  const readDone = new Map<number, bigint>();
  const readBegun = new Map<number, Operation>();
  for (const op of ok) {
    if (op.call.f !== 'get') continue;
    const value = Number(op.value ?? 0);
    const done = readDone.get(value);
    if (done === undefined || op.completedAt < done) readDone.set(value, op.completedAt);
    const begun = readBegun.get(value);
    if (!begun || op.invokedAt > begun.invokedAt) readBegun.set(value, op);
  }
  const unknown = all
    .filter((op) => op.call.f === 'inc' && op.outcome === 'unknown')
    .sort((a, b) => cmp(a.invokedAt, b.invokedAt));
  let spare = 0;
  let previous = -1n;
  for (let value = 1; value <= top; value++) {
    const inc = incAt.get(value) ?? unknown[spare++];
    if (!inc) {
      found.push({
        kind: 'not-linearizable',
        message: `${variable}: no INC, acknowledged or unknown, is left to make ${value}`,
      });
      return;
    }
    const reader = readBegun.get(value - 1);
    let at = inc.invokedAt;
    if (previous + 1n > at) at = previous + 1n;
    if (reader && reader.invokedAt + 1n > at) at = reader.invokedAt + 1n;
    let latest = inc.outcome === 'ok' ? inc.completedAt : undefined;
    const read = readDone.get(value);
    if (read !== undefined && (latest === undefined || read < latest)) latest = read;
    if (latest !== undefined && at > latest) {
      found.push({
        kind: 'not-linearizable',
        message: `${variable}: the INC that made ${value}, ${show(inc, origin)}, cannot take effect after INC ${value - 1}${reader ? ` and ${show(reader, origin)}` : ''} and still before its own completion and that of every read of ${value}`,
      });
      return;
    }
    previous = at;
  }
}

/** How many of `sorted` are at or before `limit`: an INC invoked in the instant it completed counts. */
function countAtOrBefore(sorted: readonly bigint[], limit: bigint): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= limit) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
