// Runs the pgTAP acceptance suite (supabase/tests/database/*.test.sql) the way CI runs it, and
// proves that it notices a broken install.
//
// On a private cluster shaped like hosted Supabase (tests/helpers/cluster.ts: superuser
// supabase_admin, `postgres` a non-superuser, the auth stand-in, the migrations applied by the
// real `supabase db push` as postgres):
//   1. pgtap is created in schema `extensions` by the superuser, as Supabase does (and as
//      `supabase test db` does before it runs pg_prove);
//   2. the database gets a little life of its own, like a live project: users made before the
//      suite, some of them out of step, a failure on record, the audit trail on, a security
//      definer function of the project's own. A snapshot of all of it is taken;
//   3. pg_prove runs the suite as `postgres`, with the arguments `supabase test db` gives it
//      (--ext .pg --ext .sql -r supabase/tests): it must pass, and the snapshot must be
//      unchanged afterwards (every file rolls back, and reads or writes no user of the
//      project's);
//   4. four copies of that database are each broken one way (BREAKAGES) as the superuser, and
//      the suite must fail on every one.

import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { type Cluster, startHostedCluster, withSql } from '../helpers/cluster.ts';

const ROOT = resolve(new URL('../../', import.meta.url).pathname);
/** What `supabase test db` hands pg_prove: the tests folder, recursively. */
const TESTS_DIR = 'supabase/tests';
const DATABASE = 'usync_pgtap';

/** One way to break an install, applied as the superuser to a copy of the database. */
export interface Breakage {
  name: string;
  sql: string;
}

export const BREAKAGES: readonly Breakage[] = [
  {
    name: 'trigger on auth.users disabled',
    sql: 'alter table auth.users disable trigger user_sync_after_insert',
  },
  {
    name: 'update on public.users granted to authenticated',
    sql: 'grant update on public.users to authenticated',
  },
  {
    name: 'row level security on public.users disabled',
    sql: 'alter table public.users disable row level security',
  },
  {
    name: 'resync_users executable by anon',
    sql: 'grant execute on function public.resync_users(boolean, uuid[], integer, uuid) to anon',
  },
];

/** One pg_prove run. */
export interface ProveRun {
  /** pg_prove's exit code (0: every test passed). */
  code: number;
  /** stdout and stderr, interleaved as they came. */
  output: string;
  /** The tests pg_prove reported as failed, as `file: Failed test N: "description"`. */
  failed: string[];
  /** Files that stopped early (an SQL error, or a plan not met). */
  dubious: string[];
  ms: number;
}

export interface BrokenRun extends ProveRun {
  breakage: Breakage;
}

export interface AcceptanceReport {
  /** Cluster, roles, stand-in, `supabase db push`, pgtap, the project's own data. */
  setupMs: number;
  good: ProveRun;
  /** The snapshot of the project's data and objects was the same after the good run. */
  projectUnchanged: boolean;
  /** What differed, when something did. */
  projectDiff: string[];
  broken: BrokenRun[];
  totalMs: number;
}

/** pg_prove is on PATH. */
export function hasPgProve(): Promise<boolean> {
  return new Promise((done) => {
    execFile('pg_prove', ['--version'], (error) => done(!error));
  });
}

/**
 * A live project's own life, made before the suite runs, as `postgres`: 300 users (a tenth of
 * them granted the shipped admin role), three whose app rows were lost, two whose role was
 * written behind app_metadata's back, two failures on record, the audit trail on, and a
 * security definer function of the project's own with no pinned search_path. The suite must
 * neither depend on any of it nor change it.
 */
const PROJECT_LIFE = `
insert into auth.users (instance_id, id, aud, role, email, raw_app_meta_data, raw_user_meta_data,
  created_at, updated_at)
select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated',
  'authenticated', 'project-' || g || '@example.com',
  case when g % 10 = 0 then '{"provider": "email", "role": "admin"}'::jsonb
    else '{"provider": "email", "providers": ["email"]}'::jsonb end,
  jsonb_build_object('full_name', 'Project User ' || g), now(), now()
from generate_series(1, 300) g;
delete from public.users where id in (select id from auth.users order by id limit 3);
update public.users set role = 'producer'
where id in (select id from public.users where role = 'client' order by id desc limit 2);
select user_sync.record_failure(f.id, 'trigger', '55P03', 'the project''s own failure')
from (select id from auth.users order by id limit 2) f;
update user_sync.audit_settings set enabled = true;
create function public.project_own_definer() returns integer
language sql security definer as 'select 1';
`;

/**
 * Everything the suite could leave behind or change, as lines: the rows of every table the
 * sync touches, and the objects, grants, triggers and roles around them. (Sequences are left
 * out: nextval is not transactional, so the audit trail's id moves even in a rolled-back
 * transaction; no row stays.)
 */
const SNAPSHOT = `
select x from (
  select 'auth.users ' || a::text from auth.users a
  union all select 'auth.identities ' || i::text from auth.identities i
  union all select 'public.users ' || u::text from public.users u
  union all select 'public.user_sync_audit ' || a::text from public.user_sync_audit a
  union all select 'user_sync.roles ' || r::text from user_sync.roles r
  union all select 'user_sync.sync_failures ' || f::text from user_sync.sync_failures f
  union all select 'user_sync.audit_settings ' || s::text from user_sync.audit_settings s
  union all select 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text || ' rls='
      || c.relrowsecurity || ' acl=' || coalesce(c.relacl::text, '')
    from pg_class c
    where c.relnamespace::regnamespace::text in
      ('public', 'auth', 'user_sync', 'user_sync_api', 'extensions')
  union all select 'function ' || p.oid::regprocedure::text || ' acl='
      || coalesce(p.proacl::text, '') || ' config=' || coalesce(p.proconfig::text, '')
    from pg_proc p
    where p.pronamespace::regnamespace::text in ('public', 'auth', 'user_sync', 'user_sync_api')
  union all select 'schema ' || n.nspname || ' acl=' || coalesce(n.nspacl::text, '')
    from pg_namespace n
  union all select 'trigger ' || t.tgrelid::regclass::text || '.' || t.tgname || ' '
      || t.tgenabled::text
    from pg_trigger t
  union all select 'policy ' || pol.polrelid::regclass::text || '.' || pol.polname
    from pg_policy pol
  union all select 'role ' || r.rolname from pg_roles r
) s (x)
order by x
`;

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

async function snapshot(url: string): Promise<string[]> {
  return await withSql(url, async (sql) => {
    const rows = await sql.unsafe<{ x: string }[]>(SNAPSHOT);
    return rows.map((r) => r.x);
  });
}

function diff(before: string[], after: string[]): string[] {
  const a = new Set(before);
  const b = new Set(after);
  return [
    ...before.filter((x) => !b.has(x)).map((x) => `- ${x}`),
    ...after.filter((x) => !a.has(x)).map((x) => `+ ${x}`),
  ];
}

/** Parses pg_prove's (non-verbose) report: failed tests and files that stopped early. */
export function parseProve(output: string): { failed: string[]; dubious: string[] } {
  const failed: string[] = [];
  const dubious: string[] = [];
  let file = '';
  for (const line of output.split('\n')) {
    const start = /^(\S+\.(?:sql|pg))\s+(?:\.+|\(Wstat)/.exec(line);
    if (start) file = start[1]!;
    const fail = /^# (Failed test \d+: .*)$/.exec(line.trim());
    if (fail) failed.push(`${file}: ${fail[1]}`);
    if (/Dubious, test returned|Parse errors: Bad plan/.test(line)) dubious.push(file);
  }
  return { failed, dubious: [...new Set(dubious)] };
}

/**
 * pg_prove as `supabase test db` runs it, logging in as `postgres`, on `dir` (a project's
 * supabase/tests; ours by default).
 */
export function prove(
  cluster: Pick<Cluster, 'port'>,
  database: string,
  dir: string = TESTS_DIR,
): Promise<ProveRun> {
  const started = performance.now();
  return new Promise((done) => {
    const child = execFile(
      'pg_prove',
      ['--ext', '.pg', '--ext', '.sql', '-r', dir],
      {
        cwd: ROOT,
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
        env: {
          ...process.env,
          PGHOST: '127.0.0.1',
          PGPORT: String(cluster.port),
          PGUSER: 'postgres',
          PGDATABASE: database,
          PGPASSWORD: '',
          PGOPTIONS: '',
          PGCONNECT_TIMEOUT: '10',
        },
      },
      (error) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        done({ code, output, ...parseProve(output), ms: Math.round(performance.now() - started) });
      },
    );
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  });
}

/** pgtap in schema `extensions`, by the superuser: as Supabase does, and as `supabase test db`
 * does before it runs pg_prove. */
export async function createPgtap(superuserUrl: string): Promise<void> {
  await withSql(superuserUrl, async (sql) => {
    const [row] = await sql.unsafe<{ n: number }[]>(
      `select count(*)::int as n from pg_catalog.pg_available_extensions where name = 'pgtap'`,
    );
    if (!row || row.n === 0) {
      throw new Error(
        'The pgtap extension is not installed for this PostgreSQL ' +
          '(Debian: apt-get install postgresql-15-pgtap).',
      );
    }
    await sql.unsafe('create extension if not exists pgtap with schema extensions');
  });
}

export interface RunOptions {
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** The whole acceptance run on a cluster of its own, stopped at the end whatever happens. */
export async function runAcceptance(opts: RunOptions = {}): Promise<AcceptanceReport> {
  const log = opts.log ?? (() => {});
  const t0 = performance.now();
  log('starting a hosted-shaped cluster; supabase db push applies the migrations as postgres');
  const cluster = await startHostedCluster(DATABASE);
  try {
    const admin = cluster.url(DATABASE);
    await createPgtap(admin);
    await withSql(
      cluster.url(DATABASE, 'postgres'),
      (sql) => sql.begin((tx) => tx.unsafe(PROJECT_LIFE).simple()),
    );
    const before = await snapshot(admin);
    const setupMs = Math.round(performance.now() - t0);
    log(`ready in ${setupMs} ms; pg_prove on the install as postgres`);

    const good = await prove(cluster, DATABASE);
    const after = await snapshot(admin);
    const projectDiff = diff(before, after);

    log('four broken copies, pg_prove on each');
    const copies = BREAKAGES.map((breakage, i) => ({ breakage, name: `${DATABASE}_broken_${i}` }));
    await withSql(cluster.url(), async (sql) => {
      for (const copy of copies) {
        await sql.unsafe(
          `create database ${quoteIdent(copy.name)} template ${
            quoteIdent(DATABASE)
          } owner postgres`,
        );
      }
    });
    for (const copy of copies) {
      await withSql(cluster.url(copy.name), (sql) => sql.unsafe(copy.breakage.sql));
    }
    const broken = await Promise.all(
      copies.map(async (copy) => ({ breakage: copy.breakage, ...await prove(cluster, copy.name) })),
    );
    return {
      setupMs,
      good,
      projectUnchanged: projectDiff.length === 0,
      projectDiff,
      broken,
      totalMs: Math.round(performance.now() - t0),
    };
  } finally {
    await cluster.stop();
  }
}

/** Whether the run proves what it must: the install passes, untouched; every breakage fails. */
export function verdict(report: AcceptanceReport): { ok: boolean; problems: string[] } {
  const problems: string[] = [];
  if (report.good.code !== 0) {
    problems.push(`the suite failed on a good install (exit ${report.good.code})`);
  }
  if (!report.projectUnchanged) {
    problems.push(`the suite left the project changed:\n${report.projectDiff.join('\n')}`);
  }
  for (const run of report.broken) {
    if (run.code === 0) problems.push(`the suite passed on a broken install: ${run.breakage.name}`);
    else if (run.failed.length === 0) {
      problems.push(`on "${run.breakage.name}" pg_prove failed without a failed assertion`);
    }
  }
  return { ok: problems.length === 0, problems };
}

/** A plain-text account of the run, for CI logs. */
export function describeReport(report: AcceptanceReport): string {
  const lines: string[] = [];
  const tests = /Files=(\d+), Tests=(\d+)/.exec(report.good.output);
  lines.push(
    `good install: ${report.good.code === 0 ? 'PASS' : `FAIL (exit ${report.good.code})`}` +
      (tests ? `, ${tests[2]} assertions in ${tests[1]} files` : '') + `, ${report.good.ms} ms`,
  );
  if (report.good.code !== 0) lines.push(report.good.output.trimEnd());
  lines.push(
    report.projectUnchanged
      ? "the project's own users, rows and objects: unchanged"
      : `the project's own data CHANGED:\n${report.projectDiff.join('\n')}`,
  );
  for (const run of report.broken) {
    const status = run.code === 0 ? 'PASSED (the suite did not notice)' : 'failed, as it must';
    lines.push(`broken install, ${run.breakage.name}: ${status} (exit ${run.code}, ${run.ms} ms)`);
    for (const f of run.failed) lines.push(`    ${f}`);
    for (const d of run.dubious) lines.push(`    ${d}: stopped early`);
  }
  lines.push(`setup ${report.setupMs} ms, total ${report.totalMs} ms`);
  return lines.join('\n');
}
