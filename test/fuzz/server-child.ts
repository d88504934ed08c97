/**
 * `sessiond serve --store memory` as a child process on free loopback ports, with the limits
 * the fuzzer aims at, its resident memory read from /proc, and its error logs collected.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FuzzLimits } from './attack.ts';

const BIN = fileURLToPath(new URL('../../bin/sessiond.js', import.meta.url));

/** pino's level number for "error": lines at or above it are the server's unexpected errors. */
const PINO_ERROR = 50;

/** The `serve` flags that set each limit. */
function limitFlags(limits: FuzzLimits): string[] {
  return [
    ['--max-clients', limits.maxClients],
    ['--max-query-buffer', limits.maxQueryBuffer],
    ['--max-bulk-length', limits.maxBulkLength],
    ['--max-args', limits.maxArgs],
    ['--max-inline', limits.maxInline],
    ['--max-output-buffer', limits.maxOutputBuffer],
    ['--max-value-bytes', limits.maxValueBytes],
    ['--max-vars', limits.maxVars],
    ['--max-data-bytes', limits.maxDataBytes],
  ].flatMap(([flag, value]) => [String(flag), String(value)]);
}

export class ServerChild {
  readonly pid: number;
  readonly respPort: number;
  readonly httpPort: number;
  /** Log lines at level error or above, and anything on standard error. */
  readonly errors: string[];
  #child: ChildProcess;
  #exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  private constructor(child: ChildProcess, ports: [number, number], errors: string[]) {
    this.#child = child;
    this.pid = child.pid!;
    [this.respPort, this.httpPort] = ports;
    this.errors = errors;
    this.#exit = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        this.exited = { code, signal };
        resolve(this.exited);
      };
      if (child.exitCode !== null || child.signalCode !== null)
        done(child.exitCode, child.signalCode);
      else child.once('exit', done);
    });
  }

  /** Starts the server; resolves once it listens, with the ports it picked. */
  static async start(limits: FuzzLimits): Promise<ServerChild> {
    const child = spawn(
      process.execPath,
      [
        BIN,
        'serve',
        '--store',
        'memory',
        '--port',
        '0',
        '--http-port',
        '0',
        '--log-level',
        'info',
        // Sessions that attackers create by accident expire: the store stays small.
        '--default-timeout',
        '30',
        ...limitFlags(limits),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const errors: string[] = [];
    let pending = '';
    let onStart: ((ports: [number, number]) => void) | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        const started = /RESP on [^:]+:(\d+); HTTP on [^:]+:(\d+)/.exec(line);
        if (started) onStart?.([Number(started[1]), Number(started[2])]);
        try {
          if ((JSON.parse(line) as { level?: number }).level! >= PINO_ERROR) errors.push(line);
        } catch {
          errors.push(`not a log line: ${line.slice(0, 200)}`);
        }
      }
    });
    child.stderr.on('data', (chunk: Buffer) => errors.push(chunk.toString('utf8').trim()));
    const ports = await new Promise<[number, number]>((resolve, reject) => {
      onStart = resolve;
      child.once('error', reject);
      child.once('exit', (code) =>
        reject(new Error(`sessiond exited with ${code} before listening: ${errors.join('\n')}`)),
      );
    });
    return new ServerChild(child, ports, errors);
  }

  get alive(): boolean {
    return this.exited === undefined;
  }

  /** Resident memory in bytes (VmRSS), or undefined once the process is gone. */
  rss(): number | undefined {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
      return kb ? Number(kb[1]) * 1024 : undefined;
    } catch {
      return undefined;
    }
  }

  /** SIGTERM, a graceful stop; SIGKILL if it has not exited after `ms`. */
  async stop(ms = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.exited) return this.exited;
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), ms);
    try {
      return await this.#exit;
    } finally {
      clearTimeout(timer);
    }
  }
}
