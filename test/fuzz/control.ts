/**
 * The control client: honest work against the fuzzed server, checked every round, over both
 * ports, with each command's latency recorded. It runs in a worker thread of its own so the
 * fuzzer's busy event loop does not count as server latency.
 */
import { Agent, request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { RespClient, type Value } from './resp-client.ts';

export interface ControlOptions {
  respPort: number;
  httpPort: number;
  /** A round every this many ms. */
  intervalMs: number;
  /** A command without an answer after this long is a failure: the server stalled. */
  timeoutMs: number;
}

export interface ControlReport {
  /** Commands run and checked. */
  ops: number;
  respOps: number;
  httpOps: number;
  /** Every failed check, in order (the first few are enough to debug from). */
  failures: string[];
  /** Command latencies in ms. */
  p50: number;
  p99: number;
  max: number;
}

interface Progress {
  type: 'progress';
  ops: number;
  failures: string[];
}

/** A control client running in its own thread; {@link stop} ends it and reports. */
export class Control {
  #worker: Worker;
  #report: Promise<ControlReport>;
  ops = 0;
  failures: string[] = [];

  private constructor(worker: Worker) {
    this.#worker = worker;
    this.#report = new Promise((resolve, reject) => {
      worker.on('message', (message: Progress | { type: 'report'; report: ControlReport }) => {
        if (message.type === 'report') resolve(message.report);
        else {
          this.ops = message.ops;
          this.failures = message.failures;
        }
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`control worker exited with ${code}`)));
    });
    // Nobody may be waiting on the report yet; a crash is still reported by stop().
    this.#report.catch(() => {});
  }

  /** Starts the control client; resolves once its first round has passed. */
  static async start(options: ControlOptions): Promise<Control> {
    const worker = new Worker(new URL(import.meta.url), { workerData: options });
    const control = new Control(worker);
    await new Promise<void>((resolve, reject) => {
      const ready = (message: Progress) => {
        if (message.type !== 'progress') return;
        worker.off('message', ready);
        if (message.failures.length > 0) reject(new Error(`control: ${message.failures[0]!}`));
        else resolve();
      };
      worker.on('message', ready);
      worker.once('error', reject);
    });
    return control;
  }

  async stop(): Promise<ControlReport> {
    this.#worker.postMessage('stop');
    try {
      return await this.#report;
    } finally {
      await this.#worker.terminate();
    }
  }
}

/** The worker's side: rounds every intervalMs until told to stop. */
async function runWorker(options: ControlOptions): Promise<void> {
  const port = parentPort!;
  const latencies: number[] = [];
  const failures: string[] = [];
  let respOps = 0;
  let httpOps = 0;
  let stopping = false;
  port.on('message', () => (stopping = true));

  const newAgent = () => new Agent({ keepAlive: true, maxSockets: 1 });
  let agent = newAgent();
  let resp: RespClient | undefined;
  const timed = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        work(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${what}: no answer in ${options.timeoutMs} ms`)),
            options.timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      latencies.push(performance.now() - started);
    }
  };
  const respCall = async (...args: string[]): Promise<Value> => {
    resp ??= await RespClient.connect(options.respPort);
    const client = resp;
    respOps++;
    return timed(`RESP ${args[0]!}`, () => client.call(...args));
  };
  const httpCall = (...args: string[]): Promise<unknown> => {
    httpOps++;
    return timed(`HTTP ${args[0]!}`, () => httpCommand(options.httpPort, agent, args));
  };
  const expect = (what: string, got: unknown, wanted: unknown) => {
    if (JSON.stringify(got) !== JSON.stringify(wanted)) {
      throw new Error(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(wanted)}`);
    }
  };

  const sid = `ctl-${randomBytes(16).toString('hex')}`;
  let counter = 0;
  let round = 0;
  const report = () =>
    port.postMessage({ type: 'progress', ops: respOps + httpOps, failures } satisfies Progress);
  let lastReport = 0;
  while (!stopping) {
    const started = Date.now();
    try {
      if (round === 0) {
        // TIMEOUT 0: the control session never idle-expires, however long the run.
        expect('RESP CREATE', await respCall('CREATE', sid, 'TIMEOUT', '0'), 1);
      }
      const value = `r${round}-${randomBytes(6).toString('base64')}`;
      expect('RESP SET', await respCall('SET', sid, 'v', value), 1);
      // Written over RESP, read over HTTP: one engine behind both ports.
      expect('HTTP GET', await httpCall('GET', sid, 'v'), value);
      counter++;
      expect('HTTP INC', await httpCall('INC', sid, 'n'), counter);
      expect('RESP GET', await respCall('GET', sid, 'n'), String(counter));
      if (round % 20 === 0) {
        const other = `ctl-${randomBytes(16).toString('hex')}`;
        expect('HTTP CREATE', await httpCall('CREATE', other), 1);
        expect('RESP GET (new)', await respCall('GET', other, 'v'), null);
        expect('RESP DESTROY', await respCall('DESTROY', other), 1);
      }
    } catch (error) {
      failures.push(`round ${round}: ${error instanceof Error ? error.message : String(error)}`);
      // Start the next round on a fresh connection; INC's count is unknown after a failure.
      resp?.close();
      resp = undefined;
      agent.destroy();
      agent = newAgent();
      counter = Number(await httpCall('INC', sid, 'n', '0').catch(() => counter));
    }
    round++;
    if (round === 1 || Date.now() - lastReport >= 1000) {
      report();
      lastReport = Date.now();
    }
    const wait = options.intervalMs - (Date.now() - started);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  resp?.close();
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  port.postMessage({
    type: 'report',
    report: {
      ops: respOps + httpOps,
      respOps,
      httpOps,
      failures,
      p50: at(0.5),
      p99: at(0.99),
      max: latencies.at(-1) ?? 0,
    } satisfies ControlReport,
  });
}

/** POST /v1/command; the result, or throws with the error code the server answered. */
function httpCommand(port: number, agent: Agent, args: string[]): Promise<unknown> {
  const body = JSON.stringify(args);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/command',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          try {
            const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
              result?: unknown;
              error?: { code: string; message: string };
            };
            if (parsed.error) reject(new Error(`${parsed.error.code} ${parsed.error.message}`));
            else resolve(parsed.result);
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

if (!isMainThread && (workerData as Partial<ControlOptions> | null)?.respPort !== undefined) {
  await runWorker(workerData as ControlOptions);
}
