// Memory of a PostgreSQL backend, read from /proc/<pid>/status on this machine (the server must
// be local and readable). VmHWM is the peak resident size over the backend's life, shared
// buffers it touched included; RssAnon, sampled while a statement runs, is its private memory.

import { readFileSync } from 'node:fs';

function field(status: string, name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

function status(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
}

export interface MemoryPeak {
  /** Peak resident set size (VmHWM), bytes; NaN when /proc is not readable. */
  hwm: number;
  /** Highest private memory (RssAnon) seen while sampling, bytes. */
  anon: number;
}

/** Samples the backend every `everyMs` while fn runs. */
export async function watchMemory<T>(
  pid: number,
  fn: () => Promise<T>,
  everyMs = 20,
): Promise<{ value: T; peak: MemoryPeak }> {
  let anon = NaN;
  const sample = () => {
    const s = status(pid);
    if (s) anon = Math.max(Number.isNaN(anon) ? 0 : anon, field(s, 'RssAnon'));
  };
  sample();
  const timer = setInterval(sample, everyMs);
  try {
    const value = await fn();
    sample();
    const s = status(pid);
    return { value, peak: { hwm: s ? field(s, 'VmHWM') : NaN, anon } };
  } finally {
    clearInterval(timer);
  }
}

export const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
