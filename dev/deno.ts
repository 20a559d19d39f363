// Deno processes, started one way for every caller: the deployed entry as the tests and the
// benchmarks run it (node_modules/.bin/deno, the function's deno.json, node_modules resolved by
// hand), an upload booted as the edge runtime boots it, and the benchmarks' baseline servers.

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';

/** The repository root (this file is dev/deno.ts). */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const DENO = `${REPO_ROOT}node_modules/.bin/deno`;
export const ENTRY = 'supabase/functions/user-sync/index.ts';
export const CONFIG = 'supabase/functions/user-sync/deno.json';

/** What the edge runtime allows a function; a local run needs the same. */
export const RUN_FLAGS = ['--allow-net', '--allow-env', '--allow-read'];

/** The first boot of a fresh DENO_DIR downloads every npm package. */
export const BOOT_TIMEOUT_MS = 180_000;

export interface DenoRun {
  /** The script, relative to cwd or absolute. */
  script: string;
  /** Flags between `run` and the script; RUN_FLAGS when absent. */
  flags?: string[];
  cwd?: string;
  /** The child's environment, complete (nothing else is inherited); PORT is added. */
  env: Record<string, string | undefined>;
  /**
   * Whether the process is up, asked with its port until it resolves true (again 2 ms after
   * each false); a throw is a wrong answer: the process is stopped and the error passed on.
   * Absent: up once Deno prints "Listening on".
   */
  ready?(port: number): Promise<boolean>;
  /** Each line the process writes, stdout and stderr. */
  onLine?(line: string): void;
  timeoutMs?: number;
}

export interface DenoProcess {
  child: ChildProcess;
  port: number;
  /** Milliseconds from spawn to ready. */
  startMs: number;
  /** Milliseconds from spawn to Deno's "Listening on" line (NaN if not seen). */
  listenMs: number;
  /** The last 4 KiB of its output. */
  output(): string;
  /** null while running. */
  exitCode(): number | null;
  /** SIGTERM to its process group, SIGKILL after 3 s. */
  stop(): Promise<void>;
}

/** Spawns `deno run` in its own process group and resolves once it is ready. */
export async function spawnDeno(run: DenoRun): Promise<DenoProcess> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(DENO, ['run', ...(run.flags ?? RUN_FLAGS), run.script], {
    env: { ...run.env, PORT: String(port) },
    cwd: run.cwd ?? REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let tail = '';
  let listenMs = NaN;
  let exit: number | null = null;
  child.once('exit', (code, signal) => (exit = code ?? (signal ? 128 : 1)));
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      tail = (tail + chunk).slice(-4096);
      if (Number.isNaN(listenMs) && tail.includes('Listening on')) {
        listenMs = performance.now() - started;
      }
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      if (run.onLine) { for (const line of lines) run.onLine(line); }
    });
  }
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch { /* already gone */ }
  };
  const stop = async () => {
    if (exit !== null || child.pid === undefined) return;
    const exited = new Promise((r) => child.once('exit', r));
    kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (exit === null) kill('SIGKILL');
  };
  const ready = run.ready ?? (() => Promise.resolve(!Number.isNaN(listenMs)));
  const timeoutMs = run.timeoutMs ?? BOOT_TIMEOUT_MS;
  for (;;) {
    if (exit !== null) throw new Error(`${run.script} exited with ${exit}:\n${tail}`);
    if (performance.now() - started > timeoutMs) {
      await stop();
      throw new Error(`${run.script} was not ready within ${timeoutMs / 1000} s:\n${tail}`);
    }
    let up: boolean;
    try {
      up = await ready(port);
    } catch (error) {
      await stop();
      throw new Error(`${run.script}: ${(error as Error).message}\n${tail}`);
    }
    if (up) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  return {
    child,
    port,
    startMs: performance.now() - started,
    listenMs,
    output: () => tail,
    exitCode: () => exit,
    stop,
  };
}

/** The variables a Deno child needs from this process: PATH, HOME and DENO_DIR if set. */
export function denoBaseEnv(): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
  };
  if (process.env.DENO_DIR) env.DENO_DIR = process.env.DENO_DIR;
  return env;
}

/**
 * The environment of an upload booted as the edge runtime boots it (tests/deploy, the cold-start
 * benchmark): its own HOME and an empty DENO_DIR, so every npm package is fetched at boot from
 * the registry npm uses here, through the same trust store and proxy.
 */
export function uploadBootEnv(home: string, denoDir: string): Record<string, string> {
  const passed = ['NPM_CONFIG_REGISTRY', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY']
    .flatMap((n) => [n, n.toLowerCase()])
    .filter((n) => process.env[n]);
  return {
    PATH: process.env.PATH ?? '',
    HOME: home,
    DENO_DIR: denoDir,
    NO_COLOR: '1',
    DENO_TLS_CA_STORE: 'system',
    ...Object.fromEntries(passed.map((n) => [n, process.env[n]!])),
  };
}

/**
 * The deployed entry (or another script of the repository) with the function's deno.json and the
 * repository's node_modules, as the tests and benchmarks run it.
 */
export async function startEntry(
  env: Record<string, string | undefined>,
  options: Partial<Pick<DenoRun, 'script' | 'cwd' | 'ready' | 'onLine'>> = {},
): Promise<DenoProcess> {
  return await spawnDeno({
    script: options.script ?? ENTRY,
    flags: [...RUN_FLAGS, '--node-modules-dir=manual', '--config', CONFIG],
    cwd: options.cwd,
    env: { ...denoBaseEnv(), ...env },
    ready: options.ready,
    onLine: options.onLine,
  });
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
