// The benchmark harness. No timing is asserted: figures on a shared machine prove nothing here.
// By default only the report (fast); with BENCH_SMOKE=1 and DATABASE_URL also every part at toy
// sizes, end to end (about a minute: scratch databases, Deno processes), cleaning up after itself.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bulk } from '../../bench/bulk.ts';
import { coldstart } from '../../bench/coldstart.ts';
import { hooks } from '../../bench/hooks.ts';
import { met, type PartResult, renderPart, writeReport } from '../../bench/lib/report.ts';
import { resync } from '../../bench/resync.ts';
import { signup } from '../../bench/signup.ts';
import { serverUrl } from '../helpers/db.ts';

function wellFormed(r: PartResult) {
  expect(r.tables.length).toBeGreaterThan(0);
  for (const t of r.tables) {
    expect(t.rows.length).toBeGreaterThan(0);
    for (const row of t.rows) expect(row).toHaveLength(t.columns.length);
  }
  expect(r.targets.length).toBeGreaterThan(0);
  for (const t of r.targets) expect(typeof t.value).toBe('number');
  expect(renderPart(r)).toContain(`## ${r.title}`);
}

const part = (name: string, value: number): PartResult => ({
  part: name,
  title: `Part ${name}`,
  command: `npm run bench -- ${name}`,
  date: '2026-01-01T00:00:00.000Z',
  seconds: 1,
  tables: [{ title: 'figures', columns: ['a', 'b'], rows: [['x', value]] }],
  targets: [{ name: `${name} ratio`, value, op: '<=', limit: 1.15 }],
  notes: ['a note'],
});

describe('the report', () => {
  it('judges targets and renders tables, targets and notes as markdown', () => {
    expect(met({ name: 'r', value: 1.1, op: '<=', limit: 1.15 })).toBe(true);
    expect(met({ name: 'r', value: 1.2, op: '<=', limit: 1.15 })).toBe(false);
    expect(met({ name: 'w', value: 0, op: '==', limit: 0 })).toBe(true);
    const text = renderPart(part('signup', 2.06));
    expect(text).toContain('## Part signup');
    expect(text).toContain('`npm run bench -- signup`');
    expect(text).toMatch(/\| signup ratio +\| 2\.06 +\| <= 1\.15 +\| MISSED +\|/);
    expect(text).toContain('- a note');
  });

  it('rewrites the sections of the parts run and keeps the others', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bench-report-'));
    const file = join(dir, 'BENCHMARKS.md');
    try {
      await writeReport(file, ['# B', 'machine 1'], [part('signup', 2), part('hooks', 0.4)]);
      await writeReport(file, ['# B', 'machine 2'], [part('signup', 1.1)]);
      const text = await readFile(file, 'utf8');
      expect(text).toContain('machine 2');
      expect(text).not.toContain('machine 1');
      expect(text.match(/## Part signup/g)).toHaveLength(1);
      expect(text).toContain('| signup ratio | 1.10');
      expect(text).toContain('## Part hooks');
      expect(text.indexOf('## Part signup')).toBeLessThan(text.indexOf('## Part hooks'));
      await writeFile(file, 'no sections at all\n');
      await writeReport(file, ['# B'], [part('resync', 1)]);
      expect(await readFile(file, 'utf8')).not.toContain('no sections');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!process.env.DATABASE_URL || !process.env.BENCH_SMOKE)(
  'npm run bench at toy sizes (BENCH_SMOKE=1, server only)',
  () => {
    // The benchmarks take their server from DATABASE_URL, which in a test run only switches
    // the server suites on: point them at the run's private cluster.
    const switched = process.env.DATABASE_URL;
    beforeAll(() => {
      process.env.DATABASE_URL = serverUrl();
    });
    afterAll(async () => {
      try {
        // Every scratch database of this process is gone.
        const sql = postgres(serverUrl(), { max: 1 });
        const left = await sql`select datname from pg_database
      where datname like ${`usync\\_bench\\_%\\_${process.pid}\\_%`}`;
        await sql.end();
        expect(left.map((r) => r.datname)).toEqual([]);
      } finally {
        process.env.DATABASE_URL = switched;
      }
    });

    it('signup', async () => {
      const r = await signup({ n: 40, rounds: 1, commitEvery: 1, metadataUpdate: false }, 'smoke');
      wellFormed(r);
      expect(r.tables[0]!.rows.map((row) => row[0])).toEqual(
        expect.arrayContaining(['none', 'seed', 'ours']),
      );
    });

    it('resync', async () => {
      const r = await resync({ users: 300, smallUsers: 30, sample: 10, rounds: 1 }, 'smoke');
      wellFormed(r);
      expect(r.targets.find((t) => t.name === 'no-op resync: rows written')?.value).toBe(0);
    });

    it('hooks', async () => {
      const r = await hooks({ durationS: 0.2, concurrency: [2], users: 20, rounds: 1 }, 'smoke');
      wellFormed(r);
      expect(r.targets.filter((t) => t.name.endsWith('failed requests'))).toEqual([]);
    });

    it('coldstart', async () => {
      wellFormed(await coldstart({ runs: 1 }, 'smoke'));
    });

    it('bulk', async () => {
      const r = await bulk({ n: 200, ids: 50, rounds: 1 }, 'smoke');
      wellFormed(r);
      expect(r.tables[0]!.rows.map((row) => row[0])).toEqual(['none', 'seed', 'ours']);
    });
  },
);
