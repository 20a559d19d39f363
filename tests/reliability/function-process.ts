// The deployed entry (supabase/functions/user-sync/index.ts) in its own Deno process, as the
// edge runtime runs it: Deno.serve, the direct gateway on DATABASE_URL, one JSON log line per
// request on stdout. Its own process, so that a crash of the function (an uncaught exception in
// the driver, say) shows as the process ending, not as an error inside the test runner.

import { readdirSync, readFileSync } from 'node:fs';
import { startEntry } from '../../dev/deno.ts';
import { alive } from '../helpers/cluster.ts';

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
  const logs: Record<string, unknown>[] = [];
  const other: string[] = [];
  const onLine = (line: string) => {
    if (line.startsWith('{')) {
      try {
        logs.push(JSON.parse(line));
        return;
      } catch { /* not a log line */ }
    }
    if (line.trim()) other.push(line);
  };
  const fn = await startEntry({ [OWNER]: String(process.pid), ...env }, { onLine });
  // If the test process ends first, the function must not outlive it.
  const kill = () => {
    if (fn.exitCode() === null) process.kill(-fn.child.pid!, 'SIGKILL');
  };
  process.once('exit', kill);
  return {
    base: `http://127.0.0.1:${fn.port}/user-sync`,
    pid: fn.child.pid!,
    logs,
    other,
    exitCode: fn.exitCode,
    async stop() {
      process.removeListener('exit', kill);
      await fn.stop();
    },
  };
}
