/**
 * What a crash trial expects to find after each restart, and the check of what it found.
 *
 * Each session the writers touched has three registers: `counter` (changed only by INC),
 * `seq` (a variable SET to 1, 2, 3, ...) and `data` (SETDATA "d0", "d1", ...). A writer sends
 * one command at a time, so each register has at most one write in flight when the server is
 * killed: that write is unknown (it may or may not have been applied); every write before it was
 * acknowledged and must be there.
 */

/** A register written with consecutive values 1, 2, 3, ... (0: never written). */
export interface Sequence {
  /** The value of the last acknowledged write. */
  acked: number;
  /** The value sent and not yet answered, or null. */
  pending: number | null;
}

/** A counter changed only by INC 1. */
export interface Counter {
  /** The value the last acknowledged INC answered (0: none yet). */
  acked: number;
  /** INCs sent and not yet answered. */
  pending: number;
}

/** What must hold of one session at the next restart. */
export interface Expectation {
  readonly id: string;
  /** "acked" once its CREATE was answered; "pending" while (or if, at a kill) it is in flight. */
  created: 'acked' | 'pending';
  readonly counter: Counter;
  readonly seq: Sequence;
  readonly data: Sequence;
}

/** What a session was found to hold after a restart, or null when it was not there. */
export interface Observed {
  readonly counter: number;
  readonly seq: number;
  readonly data: number;
}

/** The outcome of checking one session. */
export interface Verdict {
  /** Acknowledged writes whose effect is missing. */
  lost: number;
  /** Effects that no write could have produced: a counter above every INC sent, a value never sent. */
  phantom: number;
  /** Writes in flight at the kill (unknown either way). */
  inFlight: number;
  /** Of those, the ones found applied. */
  applied: number;
  /** A sentence per finding, for reports. */
  findings: string[];
}

/** A fresh expectation for a session about to be created with data "d0". */
export function expectation(id: string): Expectation {
  return {
    id,
    created: 'pending',
    counter: { acked: 0, pending: 0 },
    seq: { acked: 0, pending: null },
    data: { acked: 0, pending: null },
  };
}

/** The number a data blob "d<n>" stands for; NaN for anything else. */
export function dataNumber(data: string): number {
  return /^d\d+$/.test(data) ? Number(data.slice(1)) : NaN;
}

/**
 * Checks `observed` against `expected` and updates `expected` to what was found, so that each
 * loss is reported once and the next round of writes builds on the recovered state.
 * @returns the verdict, and whether the session is still expected to exist
 */
export function settle(
  expected: Expectation,
  observed: Observed | null,
): { verdict: Verdict; keep: boolean } {
  const verdict: Verdict = { lost: 0, phantom: 0, inFlight: 0, applied: 0, findings: [] };
  const id = expected.id;
  const pendingWrites =
    expected.counter.pending +
    Number(expected.seq.pending !== null) +
    Number(expected.data.pending !== null);
  if (observed === null) {
    if (expected.created === 'pending') {
      verdict.inFlight = 1;
      return { verdict, keep: false };
    }
    // Every acknowledged write to it went with it: the CREATE, each INC, each SET, each SETDATA.
    verdict.lost = 1 + expected.counter.acked + expected.seq.acked + expected.data.acked;
    verdict.inFlight = pendingWrites;
    verdict.findings.push(`${id}: missing, with ${verdict.lost} acknowledged writes`);
    return { verdict, keep: false };
  }
  if (expected.created === 'pending') {
    verdict.inFlight++;
    verdict.applied++;
    expected.created = 'acked';
  }

  const counter = expected.counter;
  verdict.inFlight += counter.pending;
  if (observed.counter < counter.acked) {
    verdict.lost += counter.acked - observed.counter;
    verdict.findings.push(
      `${id}: counter ${observed.counter}, but INC had answered ${counter.acked}`,
    );
  } else if (observed.counter > counter.acked + counter.pending) {
    verdict.phantom += observed.counter - counter.acked - counter.pending;
    verdict.findings.push(
      `${id}: counter ${observed.counter}, above ${counter.acked} acknowledged + ${counter.pending} in flight`,
    );
  } else {
    verdict.applied += observed.counter - counter.acked;
  }
  counter.acked = observed.counter;
  counter.pending = 0;

  checkSequence(`${id}: seq`, expected.seq, observed.seq, verdict);
  checkSequence(`${id}: data`, expected.data, observed.data, verdict);
  return { verdict, keep: true };
}

function checkSequence(what: string, expected: Sequence, found: number, verdict: Verdict): void {
  if (expected.pending !== null) verdict.inFlight++;
  if (found === expected.acked) {
    // As acknowledged; a write in flight was not applied.
  } else if (expected.pending !== null && found === expected.pending) {
    verdict.applied++;
  } else if (found < expected.acked) {
    // Values rise by one per write, so the gap counts the acknowledged writes missing.
    verdict.lost += expected.acked - found;
    verdict.findings.push(`${what} is ${found}, but ${expected.acked} was acknowledged`);
  } else {
    verdict.phantom++;
    verdict.findings.push(
      `${what} is ${found}, never sent (acknowledged ${expected.acked}, in flight ${expected.pending ?? 'none'})`,
    );
  }
  if (Number.isSafeInteger(found)) expected.acked = found;
  expected.pending = null;
}
