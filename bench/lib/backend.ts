// What a PostgreSQL backend process spent, read from /proc/<pid>/ on this machine (the server
// must be local and readable; otherwise the figures are NaN). On a shared machine the backend's
// CPU time is steadier than wall time: other work delays a statement but does not add to its
// CPU time. VmHWM is the peak resident size over the backend's life, shared buffers it touched
// included; RssAnon, sampled while a statement runs, is its private memory.

import { readFileSync } from 'node:fs';
import type { Sql } from 'postgres';

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function statusField(status: string | null, name: string): number {
  const m = status ? new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status) : null;
  return m ? Number(m[1]) * 1024 : NaN;
}

/** utime + stime in ms (Linux USER_HZ is 100 on every common build). */
function cpuMs(pid: number): number {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return NaN;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export interface BackendCost {
  wallMs: number;
  /** CPU time of the backend while fn ran. */
  cpuMs: number;
  /** Peak resident set size (VmHWM) of the backend so far, bytes. */
  hwm: number;
  /** Highest private memory (RssAnon) seen while sampling every 20 ms, bytes. */
  anon: number;
}

export async function backendPid(sql: Sql): Promise<number> {
  const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  return row!.pid;
}

/** Runs fn (which must use the connection whose backend is `pid`) and measures that backend. */
export async function measureBackend<T>(
  pid: number,
  fn: () => Promise<T>,
): Promise<{ value: T; cost: BackendCost }> {
  let anon = NaN;
  const sample = () => {
    const a = statusField(read(`/proc/${pid}/status`), 'RssAnon');
    if (!Number.isNaN(a)) anon = Number.isNaN(anon) ? a : Math.max(anon, a);
  };
  sample();
  const timer = setInterval(sample, 20);
  const cpu0 = cpuMs(pid);
  const started = performance.now();
  try {
    const value = await fn();
    const wallMs = performance.now() - started;
    const cpu = cpuMs(pid) - cpu0;
    sample();
    const hwm = statusField(read(`/proc/${pid}/status`), 'VmHWM');
    return { value, cost: { wallMs, cpuMs: cpu, hwm, anon } };
  } finally {
    clearInterval(timer);
  }
}

export const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
