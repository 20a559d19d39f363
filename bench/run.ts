// npm run bench [-- <part>… ] [options]: runs the parts (all by default), prints each part's
// tables and writes BENCHMARKS.md. Every figure is a ratio against a baseline measured in the
// same run on the same data; absolute times are there for context only.

import { parseArgs } from 'node:util';
import { coldstart } from './coldstart.ts';
import { hooks } from './hooks.ts';
import { connect, databaseUrl, useCommit } from './lib/db.ts';
import { machine, met, type PartResult, printPart, writeReport } from './lib/report.ts';
import { bulk } from './bulk.ts';
import { resync } from './resync.ts';
import { signup } from './signup.ts';

const USAGE = `npm run bench -- [signup] [resync] [hooks] [coldstart] [bulk] [options]

  signup     --n 100000 (sign-ups)  --rounds 3  --commit-every 1  --metadata-update
  resync     --users 1000000  --small-users (users/10)  --sample 2000 (per-user loop)  --rounds 3
  hooks      --duration 3 (s per run)  --rounds 3  --concurrency 1,16,64  --hook-users 2000
  coldstart  --runs 7
  bulk       --import-users 100000 (one insert … select)  --ids 50000 (resync_users p_user_ids)
  all        --out BENCHMARKS.md (or --no-write)
             --ref <git ref>: measure that commit (migrations, shared/, the function), not
             the working tree, where others may be mid-change

Needs DATABASE_URL (a PostgreSQL server; scratch databases are created and dropped).`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    n: { type: 'string' },
    rounds: { type: 'string' },
    'commit-every': { type: 'string' },
    'metadata-update': { type: 'boolean' },
    users: { type: 'string' },
    'hook-users': { type: 'string' },
    'small-users': { type: 'string' },
    sample: { type: 'string' },
    duration: { type: 'string' },
    concurrency: { type: 'string' },
    runs: { type: 'string' },
    'import-users': { type: 'string' },
    ids: { type: 'string' },
    out: { type: 'string' },
    ref: { type: 'string' },
    'no-write': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

function int(name: keyof typeof values, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a whole number >= 1, got ${raw}\n\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

function seconds(name: 'duration', fallback: number): number {
  const raw = values[name];
  const n = raw === undefined ? fallback : Number(raw);
  if (!(n > 0)) {
    console.error(`--${name} must be a number of seconds > 0, got ${raw}\n\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

const ALL = ['signup', 'resync', 'hooks', 'coldstart', 'bulk'] as const;
const unknown = positionals.filter((p) => !(ALL as readonly string[]).includes(p));
if (unknown.length) {
  console.error(`Unknown part: ${unknown.join(', ')}\n\n${USAGE}`);
  process.exit(2);
}
const parts = positionals.length ? ALL.filter((p) => positionals.includes(p)) : [...ALL];
const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim().replace(/ --$/, '');
const rounds = int('rounds', 3);
const users = int('users', 1_000_000);

if (values.ref) useCommit(values.ref);

const pg = connect(databaseUrl());
const [{ version }] = [...(await pg<{ version: string }[]>`select version()`)] as [
  { version: string },
];
await pg.end();

const header = [
  '# Benchmarks',
  '',
  'Written by `npm run bench` (bench/run.ts). Every figure that is judged is a ratio against a',
  'baseline measured in the same run, on the same data and machine; absolute times are for',
  'context only. Each part below says when and how it was last run.',
  '',
  ...machine(String(version).replace(/ on .*/, '')).map((l) => `- ${l}`),
];

async function runPart(part: (typeof ALL)[number]): Promise<PartResult> {
  switch (part) {
    case 'signup':
      return await signup({
        n: int('n', 100_000),
        rounds,
        commitEvery: int('commit-every', 1),
        metadataUpdate: values['metadata-update'] ?? false,
      }, command);
    case 'resync':
      return await resync({
        users,
        smallUsers: int('small-users', Math.max(1, Math.round(users / 10))),
        sample: int('sample', 2000),
        rounds,
      }, command);
    case 'hooks':
      return await hooks({
        durationS: seconds('duration', 3),
        concurrency: (values.concurrency ?? '1,16,64').split(',').map(Number),
        users: int('hook-users', 2000),
        rounds,
      }, command);
    case 'coldstart':
      return await coldstart({ runs: int('runs', 7) }, command);
    case 'bulk':
      return await bulk(
        { n: int('import-users', 100_000), ids: int('ids', 50_000), rounds },
        command,
      );
  }
}

// Each part is written as soon as it ends, and a part that fails does not stop the others.
const results: PartResult[] = [];
const failed: string[] = [];
for (const part of parts) {
  console.error(`\n== ${part}`);
  try {
    const result = await runPart(part);
    printPart(result);
    results.push(result);
  } catch (error) {
    console.error(`${part} failed:`, error);
    failed.push(part);
    continue;
  }
  if (!values['no-write']) {
    const out = values.out ?? 'BENCHMARKS.md';
    await writeReport(out, header, results);
    console.error(`wrote ${out}`);
  }
}
const missed = results.flatMap((r) => r.targets.filter((t) => !met(t)));
console.error(
  `\n${results.reduce((n, r) => n + r.targets.length, 0) - missed.length} targets met, ` +
    `${missed.length} missed${missed.length ? `: ${missed.map((t) => t.name).join('; ')}` : ''}`,
);
if (failed.length) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
