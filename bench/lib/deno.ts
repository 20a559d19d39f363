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
  /** Milliseconds from spawn to the first ready answer (a 200). */
  startMs: number;
  /** Milliseconds from spawn to Deno's "Listening on" line. */
  listenMs: number;
  /** The last few kilobytes of its output (logs are one line per request). */
  output(): string;
  stop(): Promise<void>;
}

/** A script of bench/deno/, by absolute path (Deno runs in codeRoot()). */
export const benchScript = (name: string) => resolve('bench/deno', name);

/** What `deno run` is given: the script, flags before it, its folder and its whole environment. */
export interface DenoRun {
  script: string;
  /** Flags between `run` and the script. */
  flags: string[];
  cwd: string;
  /** The child's environment, complete (nothing else is inherited); PORT is added. */
  env: Record<string, string>;
  /**
   * Whether the process is up: called with the port until it resolves true, again 2 ms after
   * each `false` (not listening yet). A throw is a wrong answer: the process is stopped and the
   * error passed on.
   */
  ready(port: number): Promise<boolean>;
}

/** Spawns `deno run` and resolves at its first ready answer, timed from the spawn. */
export async function spawnDeno(run: DenoRun): Promise<DenoProcess> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(DENO, ['run', ...run.flags, run.script], {
    env: { ...run.env, PORT: String(port) },
    cwd: run.cwd,
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
  for (;;) {
    if (!running()) throw new Error(`${run.script} exited with ${child.exitCode}:\n${tail}`);
    // The first boot of a fresh DENO_DIR downloads every npm package.
    if (performance.now() - started > 180_000) {
      await stop();
      throw new Error(`${run.script} was not ready within 180 s:\n${tail}`);
    }
    let up: boolean;
    try {
      up = await run.ready(port);
    } catch (error) {
      await stop();
      throw new Error(`${run.script}: ${(error as Error).message}\n${tail}`);
    }
    if (up) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  const startMs = performance.now() - started;
  return { child, port, startMs, listenMs, output: () => tail, stop };
}

/** A GET that answers 200 (the body read, so the connection is free); any other answer: later. */
export function answers200(path: string): (port: number) => Promise<boolean> {
  return async (port) => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      await res.arrayBuffer();
      return res.status === 200;
    } catch {
      return false;
    }
  };
}

/**
 * Spawns `deno run` on a script (relative to codeRoot()) with the function's config and the
 * repository's node_modules, and waits, polling every 2 ms, for the first 200 on `readyPath`.
 */
export async function startDeno(
  script: string,
  env: Record<string, string>,
  readyPath: string,
): Promise<DenoProcess> {
  return await spawnDeno({
    script,
    flags: [
      '--allow-net',
      '--allow-env',
      '--allow-read',
      '--node-modules-dir=manual',
      '--config',
      CONFIG,
    ],
    cwd: codeRoot(),
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(process.env.DENO_DIR ? { DENO_DIR: process.env.DENO_DIR } : {}),
      ...env,
    },
    ready: answers200(readyPath),
  });
}
