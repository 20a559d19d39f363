// Deno processes for the hook and cold-start parts: the deployed entry run exactly as
// tests/function/deno-entry.test.ts runs it (node_modules/.bin/deno, the function's deno.json),
// and the small baseline servers in bench/deno/.

import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { codeRoot } from './db.ts';

export const DENO = resolve('node_modules/.bin/deno');
export const ENTRY = 'supabase/functions/user-sync/index.ts';
export const CONFIG = 'supabase/functions/user-sync/deno.json';

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface DenoProcess {
  child: ChildProcess;
  port: number;
  /** Milliseconds from spawn to the first 200 of `readyPath`. */
  startMs: number;
  /** Milliseconds from spawn to Deno's "Listening on" line. */
  listenMs: number;
  /** The last few kilobytes of its output (logs are one line per request). */
  output(): string;
  stop(): Promise<void>;
}

/** A script of bench/deno/, by absolute path (Deno runs in codeRoot()). */
export const benchScript = (name: string) => resolve('bench/deno', name);

/**
 * Spawns `deno run` on a script (relative to codeRoot()) with the function's config and waits, polling every 2 ms,
 * for the first 200 on `readyPath`.
 */
export async function startDeno(
  script: string,
  env: Record<string, string>,
  readyPath: string,
): Promise<DenoProcess> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(DENO, [
    'run',
    '--allow-net',
    '--allow-env',
    '--allow-read',
    '--node-modules-dir=manual',
    '--config',
    CONFIG,
    script,
  ], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(process.env.DENO_DIR ? { DENO_DIR: process.env.DENO_DIR } : {}),
      PORT: String(port),
      ...env,
    },
    cwd: codeRoot(),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let tail = '';
  let listenMs = NaN;
  const keep = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4096);
    if (Number.isNaN(listenMs) && tail.includes('Listening on')) {
      listenMs = performance.now() - started;
    }
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const running = () => child.exitCode === null && child.signalCode === null;
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch { /* already gone */ }
  };
  const stop = async () => {
    if (!running() || child.pid === undefined) return;
    const exited = new Promise((r) => child.once('exit', r));
    kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (running()) kill('SIGKILL');
  };
  const url = `http://127.0.0.1:${port}${readyPath}`;
  for (;;) {
    if (!running()) throw new Error(`${script} exited with ${child.exitCode}:\n${tail}`);
    if (performance.now() - started > 60_000) {
      await stop();
      throw new Error(`${script} gave no 200 on ${readyPath} within 60 s:\n${tail}`);
    }
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 2));
  }
  const startMs = performance.now() - started;
  return { child, port, startMs, listenMs, output: () => tail, stop };
}
