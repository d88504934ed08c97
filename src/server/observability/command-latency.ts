/**
 * Upper bounds of the latency buckets in seconds: from 25 µs (an in-memory GET) to 10 s (a
 * LOCK ... WAIT). Prometheus adds +Inf.
 */
export const LATENCY_BUCKETS: readonly number[] = [
  0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1, 2.5, 5, 10,
];

/** The label of commands that no table knows: every unknown name shares it. */
export const UNKNOWN_COMMAND = 'unknown';

/** Spellings of command names remembered as sent, to skip toUpperCase; more are not. */
const MAX_SPELLINGS = 1024;
/** Longer than any command name: not upper-cased at all (it may be megabytes long). */
const MAX_NAME_LENGTH = 32;

/** One command's histogram. */
export class LatencySeries {
  readonly command: string;
  /** Per bucket, not cumulative; the last slot is past the largest bound. */
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  constructor(command: string) {
    this.command = command;
  }
}

/** A sample as prom-client's registry reads it from a metric's `get()`. */
interface Value {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * The command latency histogram, `sessiond_command_duration_seconds{command}`, kept by hand
 * and handed to a prom-client Registry as a collector (its `get()` is what the registry reads).
 * prom-client's own Histogram costs about 240 ns an observation (label hashing, string bucket
 * keys); this one costs a Map lookup and a few comparisons, which matters on the RESP hot path.
 *
 * @example
 * const latency = new CommandLatency((name) => COMMAND_TABLE.has(name));
 * latency.observe('get', 0.00004); // counted under command="GET"
 */
export class CommandLatency {
  readonly name = 'sessiond_command_duration_seconds';
  readonly help = 'Time from a command read to its reply ready, by command';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  #known: (upperCaseName: string) => boolean;
  /** By the name as the client spelled it, so the common case skips toUpperCase. */
  #bySpelling = new Map<string, LatencySeries>();
  #byCommand = new Map<string, LatencySeries>();

  /** `known` says whether an upper-case name is a command; others count as "unknown". */
  constructor(known: (upperCaseName: string) => boolean) {
    this.#known = known;
  }

  /** Counts one command that took `seconds`; returns the series it went to. */
  observe(name: string, seconds: number): LatencySeries {
    const series = this.#bySpelling.get(name) ?? this.#series(name);
    let bucket = 0;
    while (bucket < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[bucket]!) bucket++;
    series.counts[bucket]!++;
    series.sum += seconds;
    series.count++;
    return series;
  }

  /** The series of one command by its upper-case name, if it has run. */
  series(command: string): LatencySeries | undefined {
    return this.#byCommand.get(command);
  }

  /** What prom-client's registry reads: cumulative buckets, sum and count per command. */
  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: Value[];
  }> {
    const values: Value[] = [];
    for (const series of this.#byCommand.values()) {
      let cumulative = 0;
      for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
        cumulative += series.counts[i]!;
        values.push({
          metricName: `${this.name}_bucket`,
          labels: { command: series.command, le: LATENCY_BUCKETS[i]! },
          value: cumulative,
        });
      }
      const { command } = series;
      values.push(
        { metricName: `${this.name}_bucket`, labels: { command, le: '+Inf' }, value: series.count },
        { metricName: `${this.name}_sum`, labels: { command }, value: series.sum },
        { metricName: `${this.name}_count`, labels: { command }, value: series.count },
      );
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }

  /** Forgets every observation (prom-client's `registry.resetMetrics()`). */
  reset(): void {
    this.#bySpelling.clear();
    this.#byCommand.clear();
  }

  #series(name: string): LatencySeries {
    const upper = name.length <= MAX_NAME_LENGTH ? name.toUpperCase() : '';
    // Unknown names share one label, and only known ones are remembered by spelling: defends
    // against a client inflating the metrics, and the memory behind them, with made-up names.
    const known = this.#known(upper);
    const command = known ? upper : UNKNOWN_COMMAND;
    let series = this.#byCommand.get(command);
    if (!series) {
      series = new LatencySeries(command);
      this.#byCommand.set(command, series);
    }
    // Bounded too: 'get', 'Get', 'gEt', ... are as many spellings as a client likes.
    if (known && this.#bySpelling.size < MAX_SPELLINGS) this.#bySpelling.set(name, series);
    return series;
  }
}
