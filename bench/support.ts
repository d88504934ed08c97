import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A private redis-server on a free loopback port that keeps nothing on disk, for anchors. */
export async function startRedis(): Promise<{
  port: number;
  cli: (...args: string[]) => Promise<string>;
  stop: () => void;
}> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const cli = async (...args: string[]) =>
    (await run('redis-cli', ['-p', String(port), ...args], { maxBuffer: 1 << 30 })).stdout;
  for (let i = 0; i < 50; i++) {
    if ((await cli('ping').catch(() => '')).trim() === 'PONG') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { port, cli, stop: () => child.kill() };
}
