// The deployed entry (supabase/functions/user-sync/index.ts) in its own Deno process, as the
// edge runtime runs it: Deno.serve, the direct gateway on DATABASE_URL, one JSON log line per
// request on stdout. Its own process, so that a crash of the function (an uncaught exception in
// the driver, say) shows as the process ending, not as an error inside the test runner.

import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { freePort } from '../helpers/ports.ts';

const ENTRY = 'supabase/functions/user-sync/index.ts';
const CONFIG = 'supabase/functions/user-sync/deno.json';
const DENO = 'node_modules/.bin/deno';

export interface FunctionProcess {
  /** http://127.0.0.1:<port>/user-sync */
  readonly base: string;
  readonly pid: number;
  /** The JSON log lines written so far. */
  readonly logs: Record<string, unknown>[];
  /** Non-JSON output (stack traces, warnings). */
  readonly other: string[];
  /** null while running. */
  exitCode(): number | null;
  stop(): Promise<void>;
}

/** Marks the processes this helper starts, with the test process that owns them. */
const OWNER = 'USYNC_FUNCTION_OWNER';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Function processes left by killed test runs (their owner is gone): ended. */
function stopLeftovers(): void {
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    let environ: string;
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
    } catch {
      continue;
    }
    const owner = Number(/(?:^|\0)USYNC_FUNCTION_OWNER=(\d+)/.exec(environ)?.[1]);
    if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
      try {
        process.kill(Number(entry), 'SIGKILL');
      } catch { /* gone already */ }
    }
  }
}

export async function startFunction(env: Record<string, string>): Promise<FunctionProcess> {
  if (process.platform === 'linux') stopLeftovers();
  const port = await freePort();
  const child: ChildProcess = spawn(DENO, [
    'run',
    '--allow-net',
    '--allow-env',
    '--allow-read',
    '--node-modules-dir=manual',
    '--config',
    CONFIG,
    ENTRY,
  ], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DENO_DIR: process.env.DENO_DIR,
      PORT: String(port),
      [OWNER]: String(process.pid),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const logs: Record<string, unknown>[] = [];
  const other: string[] = [];
  let exit: number | null = null;
  child.once('exit', (code, signal) => (exit = code ?? (signal ? 128 : 1)));
  // If the test process ends first, the function must not outlive it.
  const kill = () => {
    if (exit === null) process.kill(-child.pid!, 'SIGKILL');
  };
  process.once('exit', kill);
  const lines = (stream: NodeJS.ReadableStream) => {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        if (line.startsWith('{')) {
          try {
            logs.push(JSON.parse(line));
            continue;
          } catch { /* not a log line */ }
        }
        if (line.trim()) other.push(line);
      }
    });
  };
  lines(child.stdout!);
  lines(child.stderr!);
  await new Promise<void>((resolve, reject) => {
    const started = Date.now();
    const check = () => {
      if (other.some((l) => l.includes('Listening on'))) return resolve();
      if (exit !== null) return reject(new Error(`deno exited with ${exit}:\n${other.join('\n')}`));
      if (Date.now() - started > 60_000) return reject(new Error('deno did not start'));
      setTimeout(check, 50);
    };
    check();
  });
  return {
    base: `http://127.0.0.1:${port}/user-sync`,
    pid: child.pid!,
    logs,
    other,
    exitCode: () => exit,
    async stop() {
      process.removeListener('exit', kill);
      if (exit !== null) return;
      const ended = new Promise((r) => child.once('exit', r));
      process.kill(-child.pid!, 'SIGTERM');
      await ended;
    },
  };
}
