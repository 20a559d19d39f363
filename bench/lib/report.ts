// What a benchmark part returns, and how it is shown: markdown tables, on the terminal and in
// BENCHMARKS.md (where each part keeps its own section, so one part can be re-run alone).

import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';

export interface Table {
  title: string;
  columns: string[];
  rows: (string | number)[][];
}

export interface Target {
  name: string;
  /** The measured figure (a ratio, or ms for latency targets). */
  value: number;
  op: '<=' | '>=' | '<' | '==';
  limit: number;
  unit?: string;
}

export interface PartResult {
  part: string;
  title: string;
  command: string;
  date: string;
  seconds: number;
  tables: Table[];
  targets: Target[];
  notes: string[];
}

/** A part's result: what it measured, stamped with the command, the date and how long it ran. */
export function partResult(
  head: { part: string; title: string; command: string; started: number },
  body: Pick<PartResult, 'tables' | 'targets' | 'notes'>,
): PartResult {
  const { started, ...rest } = head;
  const seconds = (performance.now() - started) / 1000;
  return { ...rest, date: new Date().toISOString(), seconds, ...body };
}

/** One round's progress line on stderr. */
export function logRound(
  part: string,
  round: number,
  variant: string,
  wallMs: number,
  cpuMs: number,
) {
  console.error(
    `${part} round ${round + 1} ${variant}: ${fmt(wallMs)} ms, backend CPU ${fmt(cpuMs)} ms`,
  );
}

export function met(t: Target): boolean {
  switch (t.op) {
    case '<=':
      return t.value <= t.limit;
    case '<':
      return t.value < t.limit;
    case '>=':
      return t.value >= t.limit;
    case '==':
      return t.value === t.limit;
  }
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** The p-th percentile (0..100), nearest rank. */
export const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
};

/** A number with a sensible number of digits. */
export function fmt(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return String(x);
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  if (Math.abs(x) >= 100) return x.toFixed(0);
  return x.toFixed(digits);
}

export const ratio = (x: number) => `${fmt(x)}x`;
export const ms = (x: number) => `${fmt(x, x < 10 ? 2 : 1)} ms`;

function markdownTable(t: Table): string {
  const cells = [t.columns, ...t.rows.map((r) => r.map(String))];
  const widths = t.columns.map((_, i) => Math.max(3, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    line(t.columns),
    `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`,
    ...cells.slice(1).map((r) => line(r as string[])),
  ].join('\n');
}

export function targetsTable(targets: Target[]): Table {
  return {
    title: 'Targets',
    columns: ['target', 'measured', 'limit', 'result'],
    rows: targets.map((t) => [
      t.name,
      `${fmt(t.value)}${t.unit ?? ''}`,
      `${t.op} ${fmt(t.limit)}${t.unit ?? ''}`,
      met(t) ? 'met' : 'MISSED',
    ]),
  };
}

export function renderPart(r: PartResult): string {
  const out = [
    `## ${r.title}`,
    '',
    `Run ${r.date} (${Math.round(r.seconds)} s): \`${r.command}\``,
    '',
  ];
  for (const t of [...r.tables, targetsTable(r.targets)]) {
    out.push(`**${t.title}**`, '', markdownTable(t), '');
  }
  for (const n of r.notes) out.push(`- ${n}`);
  if (r.notes.length) out.push('');
  return out.join('\n');
}

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

export function machine(pgVersion: string): string[] {
  const cpus = os.cpus();
  return [
    `CPU: ${
      cpus[0]?.model ?? 'unknown'
    } x ${cpus.length} (shared with other work: ratios, not absolutes)`,
    `Memory: ${Math.round(os.totalmem() / 2 ** 30)} GiB; OS: ${os.type()} ${os.release()}`,
    `PostgreSQL: ${pgVersion}`,
    `Node.js: ${process.version}; Deno: ${
      version('node_modules/.bin/deno', ['--version']).replace(/ \(.*/, '')
    }`,
  ];
}

// `analysis` is written by hand (why a target is missed) and kept as it is by every run.
const PARTS = ['signup', 'resync', 'hooks', 'coldstart', 'bulk', 'analysis'];
const begin = (part: string) => `<!-- bench:${part} -->`;
const end = (part: string) => `<!-- /bench:${part} -->`;

/**
 * Writes BENCHMARKS.md: the header (machine) afresh, the sections of the parts just run, and
 * the sections of parts not run this time, and the hand-written analysis, kept as they were.
 */
export async function writeReport(file: string, header: string[], results: PartResult[]) {
  let old = '';
  try {
    old = await readFile(file, 'utf8');
  } catch { /* first run */ }
  const sections = PARTS.map((part) => {
    const fresh = results.find((r) => r.part === part);
    if (fresh) return `${begin(part)}\n${renderPart(fresh)}${end(part)}`;
    const at = old.indexOf(begin(part));
    const to = old.indexOf(end(part));
    return at >= 0 && to > at ? old.slice(at, to + end(part).length) : null;
  }).filter((s): s is string => s !== null);
  await writeFile(file, `${[...header, '', ...sections].join('\n')}\n`);
}

export function printPart(r: PartResult): void {
  console.log(`\n${renderPart(r)}`);
}
