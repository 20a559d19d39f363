// Part 2: resync of many auth users with no app rows, against the seed's one-statement backfill
// (given a hash anti-join) and a per-user upsert loop; then a resync with nothing to do, one
// with 1% stale rows, and the backend's memory at two sizes.

import type { Sql } from 'postgres';
import {
  benchSql,
  connect,
  createScratch,
  migrationsNote,
  type Scratch,
  SEED_BACKFILL,
  timed,
} from './lib/db.ts';
import { type BackendCost, backendPid, measureBackend, mib } from './lib/backend.ts';
import {
  fmt,
  median,
  ms,
  type PartResult,
  partResult,
  ratio,
  type Table,
  type Target,
} from './lib/report.ts';

export interface ResyncOptions {
  users: number;
  /** The smaller size, for memory (and time) growth. */
  smallUsers: number;
  /** Users timed in the per-user loop, extrapolated to `users`. */
  sample: number;
  rounds: number;
}

type Report = Record<string, number | string | boolean | null>;

// The seed's backfill with a fair plan: a hash anti-join of auth.users against public.users.
// Left to itself, with public.users empty and analysed, the planner may pick a nested loop
// that probes the table it is filling (quadratic: 306 s for 200k users, see README).
const SEED_FAIR = [
  'begin',
  // Backend CPU counts the leader only: parallel workers would hide part of either side's work.
  'set local max_parallel_workers_per_gather = 0',
  'set local enable_nestloop = off',
  'set local enable_mergejoin = off',
  'set local jit = off',
];

// The per-user loop: the seed's upsert (syncUserToPublic: upsert onConflict id) for one user,
// one round trip each on a prepared statement over loopback: the fastest a loop can be.
const SEED_UPSERT_ONE = `
insert into public.users (id, email, full_name, role, created_at, updated_at)
select au.id, au.email,
  coalesce(au.raw_user_meta_data ->> 'full_name', au.raw_user_meta_data ->> 'username', au.email),
  coalesce(au.raw_user_meta_data ->> 'role', 'client'), au.created_at, now()
from auth.users au
where au.id = $1
on conflict (id) do update set
  email = excluded.email, full_name = excluded.full_name, role = excluded.role,
  updated_at = excluded.updated_at`;

async function emptyAppTable(admin: Sql): Promise<void> {
  await admin.unsafe('truncate public.users, user_sync.sync_failures');
  // Empty and analysed: the statistics the design warns about (a planner that thinks the
  // table it is filling stays empty).
  await admin.unsafe('analyze public.users');
  await admin.unsafe('checkpoint');
}

interface Run {
  /** Wall time, ms. */
  ms: number;
  /** Backend CPU time, ms. */
  cpu: number;
  peak: BackendCost;
}

/** Our full resync on a new connection (a fresh backend, so its peak memory is this call's). */
async function ourResync(url: string): Promise<Run & { report: Report }> {
  // No parallel workers, as for the seed (SEED_FAIR): backend CPU counts the leader only.
  const sql = connect(url, { connection: { max_parallel_workers_per_gather: 0 } });
  try {
    const { value, cost } = await measureBackend(await backendPid(sql), async () => {
      const [result] = await sql<{ r: Report }[]>`select public.resync_users() as r`;
      return result!.r;
    });
    return { ms: cost.wallMs, cpu: cost.cpuMs, peak: cost, report: value };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function seedBackfill(url: string): Promise<Run & { rows: number; plan: string }> {
  const sql = connect(url);
  try {
    for (const s of SEED_FAIR) await sql.unsafe(s);
    const plan = (await sql.unsafe(`explain ${SEED_BACKFILL}`)).map((r) => r['QUERY PLAN'])
      .join('\n');
    const { value, cost } = await measureBackend(
      await backendPid(sql),
      async () => (await sql.unsafe(SEED_BACKFILL)).count,
    );
    await sql.unsafe('commit');
    return { ms: cost.wallMs, cpu: cost.cpuMs, peak: cost, rows: value, plan };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Rows of public.users rewritten, inserted or deleted by fn (compared by xmin and id). */
async function rowsWritten(admin: Sql, fn: () => Promise<void>): Promise<number> {
  await admin.unsafe(
    'create temp table before_run as select id, xmin::text as x from public.users',
  );
  await fn();
  const [row] = await admin<{ n: number }[]>`
    select (select count(*) from public.users u left join before_run b using (id)
              where b.id is null or b.x <> u.xmin::text)
         + (select count(*) from before_run b where not exists
              (select 1 from public.users u where u.id = b.id)) as n`;
  await admin.unsafe('drop table before_run');
  return Number(row!.n);
}

async function loadUsers(scratch: Scratch, n: number): Promise<{ name: string; url: string }> {
  const db = await scratch.clone(`resync${n}`);
  const admin = connect(db.url);
  try {
    await admin.unsafe('set session_replication_role = replica');
    const ms = await timed(() => admin.unsafe(`call bench.load_users(${n})`));
    await admin.unsafe('vacuum analyze auth.users');
    console.error(`resync: ${n} auth users loaded in ${fmt(ms)} ms`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  return db;
}

function expect(what: string, report: Report, want: Report): void {
  for (const [k, v] of Object.entries(want)) {
    if (report[k] !== v) {
      throw new Error(`${what}: ${k} = ${report[k]}, expected ${v} (${JSON.stringify(report)})`);
    }
  }
}

export async function resync(opts: ResyncOptions, command: string): Promise<PartResult> {
  const started = performance.now();
  const M = opts.users;
  const scratch = await createScratch(await benchSql('resync.sql'));
  const tables: Table[] = [];
  const targets: Target[] = [];
  const notes: string[] = [];
  try {
    // Memory and time at the smaller size: one resync, fresh backend.
    const small = await loadUsers(scratch, opts.smallUsers);
    const smallRun = await ourResync(small.url);
    expect('small resync', smallRun.report, { inserted: opts.smallUsers, failed: 0 });
    await scratch.drop(small.name);

    const big = await loadUsers(scratch, M);
    const admin = connect(big.url);
    try {
      // Per-user loop, sampled on the empty table.
      await emptyAppTable(admin);
      const ids = (await admin<{ id: string }[]>`
        select id from auth.users order by md5(id::text) limit ${opts.sample}`).map((r) => r.id);
      const loop = connect(big.url);
      const perUserMs = await timed(async () => {
        for (const id of ids) await loop.unsafe(SEED_UPSERT_ONE, [id], { prepare: true });
      });
      await loop.end({ timeout: 5 });
      await emptyAppTable(admin);
      const syncUserMs = await timed(() =>
        admin.unsafe(`do $$ declare v uuid; begin
          for v in select id from auth.users order by md5(id::text) limit ${opts.sample} loop
            perform public.sync_user(v);
          end loop; end $$`)
      );
      const perUser = (perUserMs / ids.length) * M;
      const syncUserLoop = (syncUserMs / ids.length) * M;

      // Full resync, seed's backfill then ours, each from an empty, analysed table.
      const seedMs: number[] = [];
      const oursMs: number[] = [];
      const seedCpu: number[] = [];
      const oursCpu: number[] = [];
      let plan = '';
      let bigRun: Awaited<ReturnType<typeof ourResync>> | undefined;
      for (let round = 0; round < opts.rounds; round++) {
        await emptyAppTable(admin);
        const seed = await seedBackfill(big.url);
        if (seed.rows !== M) throw new Error(`seed backfill inserted ${seed.rows} of ${M}`);
        seedMs.push(seed.ms);
        seedCpu.push(seed.cpu);
        plan = seed.plan;
        await emptyAppTable(admin);
        bigRun = await ourResync(big.url);
        expect('resync', bigRun.report, { inserted: M, missing: M, failed: 0, unchanged: 0 });
        oursMs.push(bigRun.ms);
        oursCpu.push(bigRun.cpu);
        console.error(
          `resync round ${round + 1}: seed ${fmt(seed.ms)} ms, ours ${fmt(bigRun.ms)} ms`,
        );
      }
      const seedMed = median(seedMs);
      const oursMed = median(oursMs);

      // Nothing to do: rows written (by xmin), ours vs the seed's backfill finding nothing.
      const noopOurs: number[] = [];
      const noopSeed: number[] = [];
      const noopOursCpu: number[] = [];
      const noopSeedCpu: number[] = [];
      let written = 0;
      for (let round = 0; round < opts.rounds; round++) {
        written += await rowsWritten(admin, async () => {
          const run = await ourResync(big.url);
          expect('no-op resync', run.report, { unchanged: M, inserted: 0, updated: 0 });
          noopOurs.push(run.ms);
          noopOursCpu.push(run.cpu);
        });
        const seed = await seedBackfill(big.url);
        if (seed.rows !== 0) throw new Error(`seed no-op inserted ${seed.rows}`);
        noopSeed.push(seed.ms);
        noopSeedCpu.push(seed.cpu);
      }
      const noopOursMed = median(noopOurs);
      const noopSeedMed = median(noopSeed);

      // 1% stale: an auth-owned column (email) changed behind the sync's back.
      const k = Math.max(1, Math.floor(M / 100));
      const staleMs: number[] = [];
      const staleCpu: number[] = [];
      let staleWritten = 0;
      let staleReport: Report = {};
      for (let round = 0; round < opts.rounds; round++) {
        await admin.unsafe(`update public.users set email = 'stale.' || email
          where id in (select id from public.users order by md5(id::text || '${round}') limit ${k})`);
        staleWritten += await rowsWritten(admin, async () => {
          const run = await ourResync(big.url);
          staleReport = run.report;
          expect('1% stale resync', run.report, {
            stale: k,
            updated: k,
            inserted: 0,
            missing: 0,
            unchanged: M - k,
            failed: 0,
          });
          staleMs.push(run.ms);
          staleCpu.push(run.cpu);
        });
      }
      const staleMed = median(staleMs);

      const seedCpuMed = median(seedCpu);
      const oursCpuMed = median(oursCpu);
      const noopOursCpuMed = median(noopOursCpu);
      const noopSeedCpuMed = median(noopSeedCpu);
      const both = (wall: number, cpu: number) => `${ms(wall)} (CPU ${ms(cpu)})`;
      tables.push({
        title: `${M.toLocaleString('en-US')} auth users, no app rows (median of ${opts.rounds})`,
        columns: ['method', 'wall (backend CPU)', 'vs ours (CPU)', 'vs ours (wall)'],
        rows: [
          ['ours: select public.resync_users()', both(oursMed, oursCpuMed), '1.00x', '1.00x'],
          [
            'seed: one-statement backfill, hash anti-join',
            both(seedMed, seedCpuMed),
            ratio(seedCpuMed / oursCpuMed),
            ratio(seedMed / oursMed),
          ],
          [
            `per-user upsert loop (client, ${ids.length} sampled, extrapolated)`,
            ms(perUser),
            '-',
            ratio(perUser / oursMed),
          ],
          [
            `per-user public.sync_user() loop (server, ${ids.length} sampled, extrapolated)`,
            ms(syncUserLoop),
            '-',
            ratio(syncUserLoop / oursMed),
          ],
        ],
      });
      tables.push({
        title: 'Nothing to do, and 1% stale',
        columns: ['run', 'wall (backend CPU)', 'vs seed no-op (CPU)', 'rows written', 'report'],
        rows: [
          [
            'ours, no-op',
            both(noopOursMed, noopOursCpuMed),
            ratio(noopOursCpuMed / noopSeedCpuMed),
            written / opts.rounds,
            `unchanged ${M}`,
          ],
          [
            'seed backfill, no-op (hash anti-join)',
            both(noopSeedMed, noopSeedCpuMed),
            '1.00x',
            0,
            '0 rows inserted',
          ],
          [
            `ours, 1% stale (${k} rows)`,
            both(staleMed, median(staleCpu)),
            ratio(median(staleCpu) / noopSeedCpuMed),
            staleWritten / opts.rounds,
            ['stale', 'updated', 'unchanged', 'inserted'].map((f) => `${f} ${staleReport[f]}`)
              .join(', '),
          ],
        ],
      });
      tables.push({
        title: 'Memory of the resyncing backend (fresh connection per resync)',
        columns: [
          'auth users',
          'wall (backend CPU)',
          'peak private (RssAnon)',
          'peak RSS (VmHWM)',
          'CPU µs / user',
        ],
        rows: [smallRun, bigRun!].map((r, i) => {
          const n = i === 0 ? opts.smallUsers : M;
          return [
            n,
            both(r.ms, r.cpu),
            `${mib(r.peak.anon)} MiB`,
            `${mib(r.peak.hwm)} MiB`,
            fmt((r.cpu / n) * 1000),
          ];
        }),
      });
      targets.push(
        {
          name: 'resync: ours / seed backfill (backend CPU)',
          value: oursCpuMed / seedCpuMed,
          op: '<=',
          limit: 1.2,
        },
        { name: 'resync: per-user loop / ours', value: perUser / oursMed, op: '>=', limit: 50 },
        { name: 'no-op resync: rows written', value: written, op: '==', limit: 0 },
        {
          name: 'no-op resync: ours / seed anti-join (backend CPU)',
          value: noopOursCpuMed / noopSeedCpuMed,
          op: '<=',
          limit: 2,
        },
        {
          name: `memory: peak private at ${M} / at ${opts.smallUsers}`,
          value: bigRun!.peak.anon / smallRun.peak.anon,
          op: '<=',
          limit: 1.25,
        },
      );
      notes.push(
        migrationsNote(scratch.features),
        `Seed backfill plan (enable_nestloop, enable_mergejoin off): ${
          plan.split('\n').map((l) => l.trim().replace(/\s+\(cost=.*$/, '')).filter((l) =>
            /Join|Scan|Insert/.test(l)
          ).join(' / ')
        }.`,
        'Each full run starts from a truncated, analysed public.users after a checkpoint; both ' +
          'write the same table with the same foreign keys (auth.users, roles).',
        `Rows written are counted by comparing every row's xmin before and after the run.`,
        `1% stale: ${k} rows' email changed directly in public.users (different rows each round); ` +
          'the report must say exactly that many stale and updated.',
        'Ours and seed are judged on the CPU time of the backend running them (steadier than ' +
          'wall time on a shared machine); the per-user loops are wall time (a round trip and a ' +
          'commit per user is what they cost), compared with our wall time.',
        'Memory: "flat" is judged on private memory (RssAnon, sampled every 20 ms); VmHWM also ' +
          'counts the shared buffers the backend touched (shared_buffers caps that part).',
      );
    } finally {
      await admin.end({ timeout: 5 });
    }
  } finally {
    await scratch.close();
  }
  return partResult({ part: 'resync', title: '2. Resync', command, started }, {
    tables,
    targets,
    notes,
  });
}
