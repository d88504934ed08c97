/**
 * Checks a history of LOCK → critical section → UNLOCK (PROTOCOL.md: LOCK sid LEASE WAIT returns
 * a fencing key, UNLOCK sid key answers 1 released / 0 not held).
 *
 * A critical section is what one process does between a successful LOCK and its UNLOCK of the
 * same session. What the client saw bounds what the server did: the server granted the lock
 * between LOCK's invocation and its reply, and released it between UNLOCK's invocation and its
 * reply, or when the lease ran out (at least `leaseMs` after LOCK's invocation, less the
 * {@link CLOCK_SLACK_MS} of a server clock that counts whole milliseconds). So the section
 * certainly held the lock over [LOCK's reply, min(UNLOCK's invocation, LOCK's invocation +
 * lease - slack)], its *held interval*, and two held intervals of one session that overlap prove
 * two holders at once. The checker finds:
 *
 * - `overlap`: two sections of one session whose held intervals overlap.
 * - `duplicate-key`: two grants of one session with the same fencing key.
 * - `key-order`: keys not strictly increasing in the order of grants: a grant whose LOCK began
 *   after another's reply, or whose held interval began after another's (the grant order, once
 *   exclusion holds), with a key not above the other's.
 * - `lease-lost-early`: UNLOCK answered 0 although its reply came before the lease could have
 *   run out. Every UNLOCK that answered 0 is also listed in {@link LockReport.leaseLost}.
 * - `lost-update`: the register. Inside each section the workload reads a variable and writes it
 *   back plus one, a read-modify-write that loses updates unless exclusion holds. Taking the
 *   sections in key order, each read must return what the sections before it left, and a read
 *   outside any section begun after every section ended must return the final value (with
 *   every write acknowledged: the number of completed sections). A write that completed after
 *   its lease could have run out was not protected by the lock, and may land anywhere: the
 *   variable it wrote is not checked from there on (counted in {@link LockReport.unprotected}).
 */
import { groupBy, originOf, show, type Operation, type Violation } from './history.ts';

/** One critical section, from its LOCK to its UNLOCK (if it got that far). */
export interface Section {
  sid: string;
  lock: Operation;
  key: number;
  /** The GETs and SETs it made on `sid`, in order. */
  body: Operation[];
  unlock?: Operation;
  /** Its held interval, in hrtime nanoseconds; empty when end <= start. */
  start: bigint;
  end: bigint;
}

/** What {@link checkLocks} found. */
export interface LockReport {
  /** LOCKs granted (with a key). */
  grants: number;
  /** LOCKs answered LOCKED after their wait. */
  refused: number;
  /** LOCKs that ended unknown: the lock may have been granted to nobody's knowledge. */
  unknown: number;
  /** Sections whose write to the register was acknowledged. */
  completed: number;
  /** Sections whose UNLOCK answered 0: the lease had run out, or the lock was not theirs. */
  leaseLost: Section[];
  /** Register reads outside any section, after every section ended. */
  finalReads: number;
  /** Register writes that completed after their lease could have run out. */
  unprotected: number;
  violations: Violation[];
}

const NS_PER_MS = 1_000_000n;

/**
 * How much sooner than the client's clock says a lease may end: the servers stamp the grant and
 * compare lease ends in whole milliseconds of their own clock (Date.now), which can truncate
 * up to a millisecond off the start; the rest covers the two clocks' rates drifting apart.
 */
export const CLOCK_SLACK_MS = 2;

/** Checks the LOCK/UNLOCK operations in `ops` (in invocation order) and the register reads. */
export function checkLocks(ops: readonly Operation[]): LockReport {
  const origin = originOf(ops);
  const violations: Violation[] = [];
  const report: LockReport = {
    grants: 0,
    refused: 0,
    unknown: 0,
    completed: 0,
    leaseLost: [],
    finalReads: 0,
    unprotected: 0,
    violations,
  };
  const sections = collectSections(ops, report);
  const inSection = new Set<Operation>(sections.flatMap((s) => [s.lock, ...s.body]));

  for (const section of sections) {
    const unlock = section.unlock;
    if (unlock?.outcome !== 'ok' || unlock.value !== false) continue;
    report.leaseLost.push(section);
    if (unlock.completedAt < leaseEnd(section.lock)) {
      violations.push({
        kind: 'lease-lost-early',
        message: `UNLOCK answered 0 before the lease could run out: ${show(section.lock, origin)}, then ${show(unlock, origin)}`,
      });
    }
  }

  const bySid = groupBy(sections, (s) => s.sid);
  for (const [sid, held] of bySid) {
    checkOverlap(held, origin, violations);
    checkKeys(held, origin, violations);
    const outside = ops.filter(
      (op) => !inSection.has(op) && op.call.f === 'get' && op.call.sid === sid,
    );
    checkRegister(held, outside, origin, report);
  }
  return report;
}

/** Walks each process's operations, opening a section at a granted LOCK. */
function collectSections(ops: readonly Operation[], report: LockReport): Section[] {
  const sections: Section[] = [];
  const open = new Map<number, Section>();
  for (const op of ops) {
    const current = open.get(op.process);
    const call = op.call;
    switch (call.f) {
      case 'lock': {
        if (op.outcome === 'fail') report.refused++;
        if (op.outcome === 'unknown') report.unknown++;
        if (op.outcome !== 'ok') break;
        report.grants++;
        const section: Section = {
          sid: call.sid,
          lock: op,
          key: Number(op.value),
          body: [],
          start: op.completedAt,
          end: leaseEnd(op),
        };
        sections.push(section);
        open.set(op.process, section);
        break;
      }
      case 'unlock':
        if (current && current.sid === call.sid && current.key === call.key) {
          current.unlock = op;
          if (op.invokedAt < current.end) current.end = op.invokedAt;
          open.delete(op.process);
        }
        break;
      default:
        if (current && current.sid === call.sid) current.body.push(op);
    }
  }
  return sections;
}

/** The earliest instant at which the lease LOCK `op` got may have run out. */
function leaseEnd(op: Operation): bigint {
  const leaseMs = (op.call as { leaseMs: number }).leaseMs;
  return op.invokedAt + BigInt(leaseMs - CLOCK_SLACK_MS) * NS_PER_MS;
}

function checkOverlap(held: Section[], origin: bigint, violations: Violation[]): void {
  const byStart = held.filter((s) => s.end > s.start).sort((a, b) => cmp(a.start, b.start));
  let latest: Section | undefined;
  for (const section of byStart) {
    if (latest && section.start < latest.end) {
      violations.push({
        kind: 'overlap',
        message: `two holders of ${section.sid} at once: key ${latest.key} held until ${show(latest.unlock ?? latest.lock, origin)}, key ${section.key} from ${show(section.lock, origin)}`,
      });
    }
    if (!latest || section.end > latest.end) latest = section;
  }
}

function checkKeys(held: Section[], origin: bigint, violations: Violation[]): void {
  const reported = new Set<string>();
  const report = (a: Section, b: Section, why: string) => {
    const pair = `${a.key} ${b.key}`;
    if (reported.has(pair)) return;
    reported.add(pair);
    violations.push({
      kind: a.key === b.key ? 'duplicate-key' : 'key-order',
      message: `${why}: ${show(a.lock, origin)}, then ${show(b.lock, origin)}`,
    });
  };

  // Real time: a LOCK that began after another's reply was granted after it.
  const byReply = [...held].sort((a, b) => cmp(a.lock.completedAt, b.lock.completedAt));
  const byInvoke = [...held].sort((a, b) => cmp(a.lock.invokedAt, b.lock.invokedAt));
  let i = 0;
  let highest: Section | undefined;
  for (const b of byInvoke) {
    while (i < byReply.length && byReply[i]!.lock.completedAt < b.lock.invokedAt) {
      const a = byReply[i++]!;
      if (!highest || a.key > highest.key) highest = a;
    }
    if (highest && highest.key >= b.key)
      report(highest, b, 'a later grant got a key not above an earlier one');
  }

  // Grant order: while exclusion holds, the held intervals are in the order of the grants.
  const byStart = held.filter((s) => s.end > s.start).sort((a, b) => cmp(a.start, b.start));
  for (let j = 1; j < byStart.length; j++) {
    const [a, b] = [byStart[j - 1]!, byStart[j]!];
    if (a.key >= b.key) report(a, b, 'keys not increasing in the order of the holders');
  }

  const byKey = groupBy(held, (s) => s.key);
  for (const same of byKey.values()) {
    if (same.length > 1) report(same[0]!, same[1]!, 'two grants with one key');
  }
}

/**
 * Replays the sections in key order over each register variable, keeping the values it may
 * hold: one after an acknowledged SET, one more after a SET that ended unknown.
 */
function checkRegister(
  held: Section[],
  outside: Operation[],
  origin: bigint,
  report: LockReport,
): void {
  const possible = new Map<string, Set<string>>();
  const may = (name: string) => possible.get(name) ?? new Set(['0']);
  const unchecked = new Set<string>();
  let lastEnd = 0n;
  for (const section of [...held].sort((a, b) => a.key - b.key)) {
    let wrote = false;
    for (const op of [section.lock, ...section.body, ...(section.unlock ? [section.unlock] : [])]) {
      if (op.completedAt > lastEnd) lastEnd = op.completedAt;
    }
    for (const op of section.body) {
      if (op.call.f !== 'get' && op.call.f !== 'set') continue;
      if (op.outcome !== 'ok' && !(op.call.f === 'set' && op.outcome === 'unknown')) continue;
      if (op.call.f === 'set' && op.outcome === 'ok') wrote = true;
      if (op.call.f === 'set' && op.completedAt > leaseEnd(section.lock)) {
        report.unprotected++;
        unchecked.add(op.call.name);
      }
      if (unchecked.has(op.call.name)) continue;
      if (op.call.f === 'get') {
        const value = (op.value as string | null) ?? '0';
        if (!may(op.call.name).has(value)) {
          report.violations.push({
            kind: 'lost-update',
            message: `the holder of key ${section.key} read ${value} where the holders before it left ${[...may(op.call.name)].join(' or ')}: ${show(op, origin)}`,
          });
        }
        possible.set(op.call.name, new Set([value]));
      } else if (op.call.f === 'set') {
        const next = op.outcome === 'ok' ? new Set<string>() : may(op.call.name);
        possible.set(op.call.name, next.add(op.call.value));
      }
    }
    if (wrote) report.completed++;
  }
  for (const op of outside) {
    if (op.call.f !== 'get' || op.outcome !== 'ok' || op.invokedAt <= lastEnd) continue;
    if (unchecked.has(op.call.name)) continue;
    report.finalReads++;
    const value = (op.value as string | null) ?? '0';
    if (!may(op.call.name).has(value)) {
      report.violations.push({
        kind: 'lost-update',
        message: `after every section, ${op.call.name} is ${value}, but the ${held.length} sections before it left ${[...may(op.call.name)].join(' or ')}: ${show(op, origin)}`,
      });
    }
  }
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
