// Load with faults (issue 6). Thousands of sign-ups from several GoTrue sessions in GoTrue's
// statement order, while the signed hooks and pg_net webhooks for the same users reach the
// deployed entry (its own Deno process, direct gateway) over loopback HTTP early (inside the
// sign-up's transaction), late, twice and out of order, and a resync runs. Meanwhile the function's connections are terminated, public.users writes fail
// (a CHECK constraint, then a held lock), and the database restarts. Afterwards: every sign-up
// committed, nobody doubled, every user left out of step has a failure record, one resync
// restores zero drift, and the function recovered by itself, in one process, within seconds.
//
// Server only (PGlite has one session). The restart needs a database of its own: a private
// cluster started for this file (cluster.ts), never the run's cluster the other files use.

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as gotrue from '../helpers/gotrue.ts';
import type { AuthUser } from '../helpers/gotrue.ts';
import { newHookSecret } from '../helpers/supabase-auth.ts';
import { type FaultableDatabase, faultableDatabase } from './cluster.ts';
import { type FunctionProcess, startFunction } from './function-process.ts';
import {
  authEvents,
  type Delivery,
  expectedRole,
  gotrueDb,
  isConnectionError,
  limiter,
  type ResilientPool,
  resilientPool,
  Sender,
  signUp,
  SIGNUP_KINDS,
  type SignUpKind,
  sleep,
} from './traffic.ts';

const SERVER = Boolean(process.env.DATABASE_URL);

/** Sign-ups in the run, spread over LOAD_MS by SESSIONS GoTrue connections. */
const SIGNUPS = 2000;
const SESSIONS = 12;
const LOAD_MS = 15_000;
/** Hook and webhook requests in flight at once (besides the early ones, sent from inside sign-ups). */
const EVENT_CONCURRENCY = 8;
/** Pause between the passes of the resync that runs during the load. */
const RESYNC_PAUSE_MS = 1500;
/** How long public.users writes fail in each write fault. */
const FAULT_MS = 1500;
/** GoTrue's sessions give up waiting for a lock after this long (then the trigger records). */
const GOTRUE_LOCK_TIMEOUT_MS = 250;
/** Generous: "within seconds". Recovery is measured, this only catches a function that hangs. */
const RECOVERY_BOUND_MS = 15_000;
/**
 * Supabase Auth's whole budget for one hook call, retries included
 * (docs/reference/auth-hooks.md#time-budget-and-retries).
 */
const HOOK_BUDGET_MS = 5000;

const FIRST_ID = '00000000-0000-0000-0000-000000000000';
const LAST_ID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
const APP_NAME = 'user-sync'; // the direct gateway's application_name

const secrets = {
  hook: newHookSecret(),
  webhook: randomUUID().replaceAll('-', ''),
  admin: randomUUID().replaceAll('-', ''),
};

let db: FaultableDatabase;
let fallbackReason: string | null = null;
let admin: ResilientPool;
let fn: FunctionProcess;

beforeAll(async () => {
  if (!SERVER) return;
  ({ db, fallbackReason } = await faultableDatabase());
  admin = resilientPool(db.url, {
    max: 3,
    connect_timeout: 5,
    connection: { application_name: 'usync-load-admin' },
  });
  // A log of every failure recorded, including those a later sync or resync drained. The logging
  // functions are the superuser's (security definer): the records are written by our functions
  // as `postgres`, which has no rights on this test's schema.
  await admin.use((sql) =>
    sql.unsafe(`
    create schema reliability;
    create table reliability.failure_log (
      user_id uuid not null, source text not null, sqlstate text not null,
      at timestamptz not null default clock_timestamp());
    create function reliability.log_failure() returns trigger language plpgsql
      security definer set search_path = pg_catalog, pg_temp as $$
    begin
      insert into reliability.failure_log (user_id, source, sqlstate)
      values (new.user_id, new.source, new.sqlstate);
      return null;
    end $$;
    create trigger log_failure after insert or update on user_sync.sync_failures
      for each row execute function reliability.log_failure();
    -- Who removed a record, for the report when one goes missing.
    create table reliability.drain_log (
      user_id uuid not null, by_statement text not null,
      at timestamptz not null default clock_timestamp());
    create function reliability.log_drain() returns trigger language plpgsql
      security definer set search_path = pg_catalog, pg_temp as $$
    begin
      insert into reliability.drain_log (user_id, by_statement)
      values (old.user_id, left(regexp_replace(current_query(), '[[:space:]]+', ' ', 'g'), 80));
      return null;
    end $$;
    create trigger log_drain after delete on user_sync.sync_failures
      for each row execute function reliability.log_drain();
  `).simple()
  );
  fn = await startFunction({
    AUTH_HOOK_SECRET: secrets.hook,
    USER_SYNC_WEBHOOK_SECRET: secrets.webhook,
    USER_SYNC_ADMIN_TOKEN: secrets.admin,
    // The function logs in as `postgres`, the role behind SUPABASE_DB_URL on hosted.
    DATABASE_URL: db.urlAs('postgres'),
  });
}, 120_000);

afterAll(async () => {
  await fn?.stop();
  await admin?.end();
  await db?.close();
});

/** A superuser statement that waits out a restart. */
async function adminQuery<T extends object = Record<string, unknown>>(
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  for (let attempt = 1;; attempt++) {
    try {
      // deno-lint-ignore no-explicit-any -- postgres.js types parameters per registered type
      return [...(await admin.use((sql) => sql.unsafe(text, params as any[])))] as unknown as T[];
    } catch (error) {
      if (!isConnectionError(error) || attempt >= 100) throw error;
      await sleep(100);
    }
  }
}

interface Fault {
  name: string;
  detail: string;
  /** Milliseconds since the run started. */
  at: number;
  lastedMs: number;
  /** From the fault's end to the first hook answered with the database part done. */
  hookRecoveryMs: number;
  webhookRecoveryMs: number;
  healthRecoveryMs: number;
  /** Right after the fault: users out of step, and those of them with no failure record. */
  outOfStep: number;
  unrecorded: string[];
}

/**
 * Users whose public.users row is missing or differs from the mapping, and those of them that
 * have no failure record, in one statement (one snapshot: a sign-up's row and its failure record
 * commit together).
 */
async function outOfStep(): Promise<{ outOfStep: number; unrecorded: string[] }> {
  const rows = await adminQuery<{ id: string; recorded: boolean }>(
    `select p.id, exists (select 1 from user_sync.sync_failures f where f.user_id = p.id)
              as recorded
       from user_sync.plan($1, $2) p
      where not p.in_sync`,
    [FIRST_ID, LAST_ID],
  );
  return { outOfStep: rows.length, unrecorded: rows.filter((r) => !r.recorded).map((r) => r.id) };
}

describe.skipIf(!SERVER)('load with faults (server only: needs several sessions)', () => {
  it(`${SIGNUPS} sign-ups, their hooks and webhooks, a resync, and five faults`, async () => {
    const t0 = performance.now();
    const cpuAtStart = process.cpuUsage();
    const since = () => Math.round(performance.now() - t0);
    const sender = new Sender(fn.base, secrets, t0);
    const prober = new Sender(fn.base, secrets, t0);
    const events = limiter(EVENT_CONCURRENCY);
    const errors: string[] = [];
    const runKey = `run${Date.now().toString(36)}`;

    // GoTrue's connections, one per session. They give up waiting for a lock after
    // GOTRUE_LOCK_TIMEOUT_MS (as a project may set for supabase_auth_admin), except where
    // `lockTimeout` is false.
    const pools: ResilientPool[] = [];
    const open = (lockTimeout = true) => {
      const pool = resilientPool(db.urlAs('supabase_auth_admin'), {
        max: 1,
        connect_timeout: 5,
        connection: {
          application_name: 'usync-gotrue',
          ...(lockTimeout ? { lock_timeout: GOTRUE_LOCK_TIMEOUT_MS } : {}),
        },
      });
      pools.push(pool);
      return pool;
    };

    // The probe user: recovery is "this user's hooks and webhook work again".
    const probe = await gotrue.signUpEmail(gotrueDb(open()), {
      email: 'probe@example.com',
      data: { load_key: 'probe' },
      autoconfirm: true,
    });

    const stats = {
      retriedSignUps: 0,
      commitsFoundAfterError: 0,
      early: 0,
      late: 0,
      duplicated: 0,
      outOfOrder: 0,
      unguardedSignUpMs: 0,
    };
    const expected = new Map<string, string>(); // user id → the app role it must end with
    const roleClaims: { id: string; allowed: (string | undefined)[]; got: unknown }[] = [];
    /** The tokens minted inside a sign-up's transaction, before the user has committed. */
    const firstTokens: { id: string; got: unknown }[] = [];

    async function findByKey(key: string): Promise<AuthUser | null> {
      const rows = await adminQuery<AuthUser>(
        `select * from auth.users where raw_user_meta_data ->> 'load_key' = $1`,
        [key],
      );
      return rows[0] ?? null;
    }

    /** A GoTrue call that is retried after a connection error, once it is known not to have committed. */
    async function withRetry<T>(
      call: () => Promise<T>,
      committed: () => Promise<T | null>,
    ): Promise<T> {
      for (let attempt = 1;; attempt++) {
        try {
          return await call();
        } catch (error) {
          if (!isConnectionError(error) || attempt >= 100) throw error;
          stats.retriedSignUps++;
          const found = await committed();
          if (found) {
            stats.commitsFoundAfterError++;
            return found;
          }
          await sleep(100);
        }
      }
    }

    // ------------------------------------------------------------------ events per user
    function checkClaims(d: Delivery, id: string, allowed: (string | undefined)[]) {
      const claims = (d.body as { claims?: Record<string, unknown> } | null)?.claims;
      roleClaims.push({ id, allowed, got: claims?.['user_role'] });
    }

    /**
     * What Supabase sends once the sign-up has committed (see authEvents), some of it late,
     * twice or out of order. Returns when any follow-up GoTrue call is done; events go on.
     */
    async function afterCommit(user: AuthUser, n: number, kind: SignUpKind, sql: ResilientPool) {
      const role = expectedRole(kind);
      const plan = authEvents(kind);
      const late = n % 9 === 0;
      const send = <T>(task: () => Promise<T>, extraDelay = 0) => {
        const delay = (late ? 1000 + ((n * 37) % 3000) : 0) + extraDelay;
        return delay > 0 ? events.later(delay, task) : events.run(task);
      };
      if (late) stats.late++;
      const times = n % 7 === 0 ? 2 : 1; // a retry: the same body, a new webhook-id
      if (times === 2) stats.duplicated++;
      const aucUuid = randomUUID();
      const catUuid = randomUUID();

      if (n % 10 === 5) {
        // An admin grants a role right after sign-up. The UPDATE webhook overtakes the
        // INSERT one, after-user-created carries the user as it was, then a new token.
        stats.outOfOrder++;
        expected.set(user.id, 'producer');
        const updated = await withRetry(
          () => gotrue.adminUpdateAppMetadata(gotrueDb(sql), user.id, { role: 'producer' }),
          async () => {
            const found = await findByKey(`${runKey}-${n}`);
            return found?.raw_app_meta_data?.['role'] === 'producer' ? found : null;
          },
        );
        for (let i = 0; i < times; i++) {
          send(() => sender.webhook('UPDATE', updated, user));
          send(() => sender.webhook('INSERT', user, null), 100);
          if (plan.afterUserCreated) send(() => sender.afterUserCreated(user, aucUuid), 150);
          send(async () => {
            const d = await sender.customAccessToken(updated, catUuid);
            checkClaims(d, user.id, [undefined, 'producer', role]);
            return d;
          });
        }
        return;
      }
      expected.set(user.id, role);
      for (let i = 0; i < times; i++) {
        send(() => sender.webhook('INSERT', user, null));
        if (plan.afterUserCreated) send(() => sender.afterUserCreated(user, aucUuid));
        if (plan.tokenAfterCommit) {
          send(async () => {
            const d = await sender.customAccessToken(user, catUuid);
            checkClaims(d, user.id, [undefined, role]);
            return d;
          });
        }
      }
    }

    // ------------------------------------------------------------------ sign-ups
    let nextUser = 0;
    let signedUp = 0;
    async function session() {
      const sql = open();
      for (;;) {
        const n = nextUser++;
        if (n >= SIGNUPS) return;
        const due = t0 + (n * LOAD_MS) / SIGNUPS;
        if (due > performance.now()) await sleep(due - performance.now());
        const kind = SIGNUP_KINDS[n % SIGNUP_KINDS.length]!;
        const key = `${runKey}-${n}`;
        const early = authEvents(kind).tokenInTransaction;
        try {
          const user = await withRetry(
            () =>
              signUp(
                gotrueDb(
                  sql,
                  early
                    ? async (u) => {
                      // The first token of an anonymous or implicit-flow OAuth sign-up is
                      // minted inside the sign-up's transaction: custom-access-token arrives
                      // before the user has committed, so sync_user answers not_found and the
                      // role is derived from the claims. Without user_role only while the
                      // database is away.
                      stats.early++;
                      const d = await sender.customAccessToken(u, randomUUID());
                      checkClaims(d, u.id, [undefined, expectedRole(kind)]);
                      const claims = (d.body as { claims?: Record<string, unknown> } | null)
                        ?.claims;
                      firstTokens.push({ id: u.id, got: claims?.['user_role'] });
                    }
                    : undefined,
                ),
                kind,
                n,
                key,
              ),
            () => findByKey(key),
          );
          signedUp++;
          await afterCommit(user, n, kind, sql);
        } catch (error) {
          const e = error as { code?: string; message?: string };
          errors.push(`sign-up ${n} (${kind}): ${e.code ?? ''} ${e.message ?? error}`);
        }
      }
    }

    // ------------------------------------------------------------------ resync meanwhile
    let loadDone = false;
    // An operator's resync, in small batches, again and again while the load runs (each pass
    // walks every user: paced so that it does not become the load).
    async function resyncLoop() {
      while (!loadDone) {
        await sender.resync({ batch_size: 100 });
        await sleep(RESYNC_PAUSE_MS);
      }
    }

    // ------------------------------------------------------------------ faults
    const faults: Fault[] = [];

    async function recovery(): Promise<
      Pick<Fault, 'hookRecoveryMs' | 'webhookRecoveryMs' | 'healthRecoveryMs'>
    > {
      const end = performance.now();
      let hook = -1;
      let webhook = -1;
      let health = -1;
      while (performance.now() - end < RECOVERY_BOUND_MS + 5000) {
        const [cat, wh, h] = await Promise.all([
          hook < 0 ? prober.customAccessToken(probe, randomUUID()) : null,
          webhook < 0 ? prober.webhook('UPDATE', probe, probe) : null,
          health < 0 ? fetch(`${fn.base}/health`).then((r) => r.status).catch(() => 0) : null,
        ]);
        const now = Math.round(performance.now() - end);
        const claims = (cat?.body as { claims?: Record<string, unknown> } | null)?.claims;
        if (cat && cat.status === 200 && claims?.['user_role'] === 'client') hook = now;
        const action = (wh?.body as { action?: string } | null)?.action;
        if (wh && wh.status === 200 && action !== undefined && action !== 'failed') webhook = now;
        if (h === 200) health = now;
        if (hook >= 0 && webhook >= 0 && health >= 0) break;
        await sleep(100);
      }
      const never = Number.POSITIVE_INFINITY;
      return {
        hookRecoveryMs: hook < 0 ? never : hook,
        webhookRecoveryMs: webhook < 0 ? never : webhook,
        healthRecoveryMs: health < 0 ? never : health,
      };
    }

    async function fault(name: string, inject: () => Promise<string>) {
      const at = since();
      const started = performance.now();
      const detail = await inject();
      const lastedMs = Math.round(performance.now() - started);
      const step = await outOfStep();
      faults.push({ name, detail, at, lastedMs, ...step, ...(await recovery()) });
    }

    const terminateApp = async () => {
      const [row] = await adminQuery<{ n: number }>(
        `select count(*)::int as n from (
           select pg_terminate_backend(pid) from pg_stat_activity
            where application_name = $1 and pid <> pg_backend_pid()) t`,
        [APP_NAME],
      );
      return `${row!.n} connections of the function terminated`;
    };

    async function injectFaults() {
      const at = async (ms: number) => {
        const wait = t0 + ms - performance.now();
        if (wait > 0) await sleep(wait);
      };
      await at(1500);
      await fault('connections terminated', terminateApp);

      await at(3500);
      await fault('public.users writes fail (CHECK constraint)', async () => {
        await adminQuery(
          `alter table public.users add constraint reliability_fault check (false) not valid`,
        );
        await sleep(FAULT_MS);
        await adminQuery(`alter table public.users drop constraint reliability_fault`);
        return `constraint held ${FAULT_MS} ms`;
      });

      await at(6500);
      await fault('public.users locked (writers time out)', async () => {
        let unguarded: Promise<number> | null = null;
        const holder = postgres(db.url, { max: 1, onnotice: () => {}, fetch_types: false });
        await holder.begin(async (tx) => {
          await tx.unsafe('lock table public.users in share row exclusive mode');
          // A GoTrue without lock_timeout: the sign-up waits as long as the lock is held.
          const sql = open(false);
          const started = performance.now();
          unguarded = gotrue.signUpEmail(gotrueDb(sql), {
            email: `unguarded-${runKey}@example.com`,
            data: { load_key: `unguarded-${runKey}` },
            autoconfirm: true,
          }).then(() => performance.now() - started);
          await sleep(FAULT_MS);
        }).finally(() => holder.end({ timeout: 5 }));
        stats.unguardedSignUpMs = Math.round(await unguarded!);
        return `lock held ${FAULT_MS} ms; GoTrue lock_timeout ${GOTRUE_LOCK_TIMEOUT_MS} ms`;
      });

      await at(9500);
      await fault(`database restart (${db.kind})`, async () => {
        const { downMs } = await db.restart();
        return `down for ${Math.round(downMs)} ms`;
      });

      await at(12500);
      await fault('connections terminated under load', terminateApp);
    }

    // ------------------------------------------------------------------ run
    const progress = setInterval(() => {
      if (process.env.DEBUG_LOAD) {
        console.error(
          `${since()} ms: signed up ${signedUp}, next ${nextUser}, deliveries ${sender.deliveries.length}, faults ${faults.length}`,
        );
      }
    }, 2000);
    const resyncing = resyncLoop();
    const injecting = injectFaults().catch((e) => {
      errors.push(`fault injection: ${e instanceof Error ? e.message : e}`);
    });
    await Promise.all(Array.from({ length: SESSIONS }, session));
    const signUpsMs = since();
    await injecting;
    await events.idle();
    loadDone = true;
    await resyncing;
    const loadMs = since();
    const cpu = { test: process.cpuUsage(cpuAtStart), function: processCpuMs(fn.pid) };
    clearInterval(progress);
    await Promise.all(pools.map((p) => p.end()));

    // ------------------------------------------------------------------ before the resync
    const ids = [...expected.keys()];
    const { outOfStep: drift, unrecorded } = await outOfStep();
    const orphans = await adminQuery<{ id: string }>(
      `select u.id from public.users u where not exists (select 1 from auth.users a where a.id = u.id)`,
    );
    const pending = await adminQuery<{ user_id: string; source: string; sqlstate: string }>(
      'select user_id, source, sqlstate from user_sync.sync_failures',
    );
    const failureLog = await adminQuery<{ sqlstate: string; source: string; n: number }>(
      `select sqlstate, source, count(*)::int as n from reliability.failure_log
        group by 1, 2 order by 3 desc`,
    );
    const failedUsers = await adminQuery<{ n: number }>(
      'select count(distinct user_id)::int as n from reliability.failure_log',
    );

    // What became of the users that were out of step without a record, for the report.
    const lostIds = [...new Set([...faults.flatMap((f) => f.unrecorded), ...unrecorded])];
    const lostHistory = lostIds.length === 0 ? [] : await adminQuery(
      `select l.user_id, l.source, l.sqlstate, to_char(l.at, 'HH24:MI:SS.MS') as at,
              exists (select 1 from public.users u where u.id = l.user_id) as app_row_now
         from reliability.failure_log l
        where l.user_id in (select jsonb_array_elements_text($1::text::jsonb)::uuid)
        order by l.user_id, l.at`,
      [JSON.stringify(lostIds)],
    );
    const lostDrains = lostIds.length === 0 ? [] : await adminQuery(
      `select user_id, by_statement, to_char(at, 'HH24:MI:SS.MS') as at from reliability.drain_log
        where user_id in (select jsonb_array_elements_text($1::text::jsonb)::uuid)
        order by user_id, at`,
      [JSON.stringify(lostIds)],
    );
    const lostToResyncDrain = lostIds.filter((id) =>
      lostDrains.some((d) => d['user_id'] === id && /resync_users/.test(String(d['by_statement'])))
    );
    const dryBefore = await sender.resync({ dry_run: true }, 'probe');
    const resync = await sender.resync({}, 'probe');
    const dryAfter = await sender.resync({ dry_run: true }, 'probe');

    const [totals] = await adminQuery<{ auth: number; keys: number; app: number }>(
      `select (select count(*)::int from auth.users
                where raw_user_meta_data ->> 'load_key' like $1) as auth,
              (select count(distinct raw_user_meta_data ->> 'load_key')::int from auth.users
                where raw_user_meta_data ->> 'load_key' like $1) as keys,
              (select count(*)::int from public.users) -
              (select count(*)::int from auth.users) as app`,
      [`${runKey}-%`],
    );
    const wrongRoles = await adminQuery<{ id: string; role: string }>(
      `select u.id, u.role from public.users u
        where u.id in (select jsonb_array_elements_text($1::text::jsonb)::uuid)`,
      [JSON.stringify(ids)],
    ).then((rows) => rows.filter((r) => expected.get(r.id) !== r.role));

    // ------------------------------------------------------------------ figures
    const byKind = new Map<string, { sent: number; statuses: Record<string, number> }>();
    for (const d of sender.deliveries) {
      const k = byKind.get(d.kind) ?? { sent: 0, statuses: {} };
      k.sent++;
      k.statuses[d.status] = (k.statuses[d.status] ?? 0) + 1;
      byKind.set(d.kind, k);
    }
    const outcomes: Record<string, number> = {};
    for (const e of fn.logs) {
      if (e.event !== 'request') continue;
      const key = `${String(e.route).replace(/^\/user-sync/, '')} ${e.outcome}`;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
    const hooks = sender.deliveries.filter((d) =>
      d.kind === 'after-user-created' || d.kind === 'custom-access-token'
    );
    const slowestHook = Math.round(Math.max(...hooks.map((d) => d.ms)));
    // Users whose custom-access-token call found no database (the claims went back unchanged).
    const tokenWithoutDb = new Set(
      fn.logs.filter((e) =>
        e.event === 'request' && String(e.route).endsWith('/hooks/custom-access-token') &&
        e.outcome === 'claims_unchanged'
      ).map((e) => e.user_id),
    );
    const firstWithoutRole = firstTokens.filter((t) => t.got === undefined);
    const figures = [
      `load and faults on ${db.kind}${
        fallbackReason ? ` (fallback: ${fallbackReason})` : ''
      }; the function: Deno process ${fn.pid}, still running: ${fn.exitCode() === null}`,
      `  sign-ups: ${signedUp} of ${SIGNUPS} in ${SESSIONS} GoTrue sessions, run ${loadMs} ms; ` +
      `sign-ups done at ${signUpsMs} ms; retried after a connection error ${stats.retriedSignUps}, of which already committed ` +
      `${stats.commitsFoundAfterError}`,
      `  users with early events (inside the sign-up transaction) ${stats.early}, late ` +
      `${stats.late}, every event twice ${stats.duplicated}, out of order ${stats.outOfOrder}`,
      `  first tokens (inside the sign-up transaction) without user_role: ` +
      `${firstWithoutRole.length} of ${firstTokens.length}, ` +
      `${
        firstWithoutRole.filter((t) => tokenWithoutDb.has(t.id)).length
      } of them without the database`,
      `  events sent: ${
        [...byKind].map(([k, v]) => `${k} ${v.sent} ${JSON.stringify(v.statuses)}`).join('; ')
      }`,
      `  CPU used: test process ${Math.round((cpu.test.user + cpu.test.system) / 1000)} ms, ` +
      `function process ${cpu.function} ms (whole life); ${cpus().length} cores, load average ` +
      `${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
      `  slowest hook answer ${slowestHook} ms; app outcomes ${JSON.stringify(outcomes)}`,
      `  faults:`,
      ...faults.map((f) =>
        `    at ${f.at} ms ${f.name}: ${f.detail}; lasted ${f.lastedMs} ms; recovered: hook ` +
        `${f.hookRecoveryMs} ms, webhook ${f.webhookRecoveryMs} ms, health ${f.healthRecoveryMs} ms; ` +
        `right after it ${f.outOfStep} users out of step, ${f.unrecorded.length} without a record`
      ),
      `  a sign-up without lock_timeout waited ${stats.unguardedSignUpMs} ms behind the lock`,
      `  failures recorded ${JSON.stringify(failureLog)} for ${failedUsers[0]!.n} users; ` +
      `pending before the resync ${pending.length}`,
      `  before the resync: ${drift} users out of step, ${orphans.length} orphans, ` +
      `${unrecorded.length} of them without a failure record; dry run ${
        JSON.stringify(pick(dryBefore.body, ['missing', 'stale', 'orphaned', 'failures_pending']))
      }`,
      `  resync: ${
        JSON.stringify(pick(resync.body, ['inserted', 'updated', 'deleted', 'failed', 'batches']))
      } in ${Math.round(resync.ms)} ms; dry run after ${
        JSON.stringify(pick(dryAfter.body, ['missing', 'stale', 'orphaned', 'failures_pending']))
      }`,
    ];
    if (lostIds.length) {
      figures.push(
        `  out of step without a record: ${JSON.stringify(lostIds)}, of which ` +
          `${lostToResyncDrain.length} of them drained by a resync`,
      );
      figures.push(`  their failure history: ${JSON.stringify(lostHistory)}`);
      figures.push(`  their records removed by: ${JSON.stringify(lostDrains)}`);
    }
    console.log(figures.join('\n'));

    // ------------------------------------------------------------------ assertions
    expect(errors).toEqual([]);
    // Every sign-up committed, once.
    expect(signedUp).toBe(SIGNUPS);
    expect(totals).toEqual({ auth: SIGNUPS, keys: SIGNUPS, app: 0 });
    // Nobody got a role they were not given, in a token or in the table.
    expect(roleClaims.filter((c) => !c.allowed.includes(c.got as string | undefined))).toEqual(
      [],
    );
    expect(wrongRoles).toEqual([]);
    // A first token lacks user_role only when the function could not reach the database.
    expect(firstTokens).toHaveLength(stats.early);
    expect(firstWithoutRole.filter((t) => !tokenWithoutDb.has(t.id))).toEqual([]);
    // Every user out of step had a failure record, at the end and right after each fault. Two
    // races once broke this, both pinned by their own tests: a resync draining a record it had
    // not repaired (failure-drain-race.test.ts), and a sync planned from an older snapshot
    // writing over a concurrent role grant (stale-sync.test.ts).
    expect(lostIds).toEqual([]);
    expect(orphans).toEqual([]);
    expect(failureLog.map((f) => f.sqlstate)).toEqual(
      expect.arrayContaining(['23514', '55P03']),
    );
    // One resync restores zero drift.
    expect(resync.status).toBe(200);
    expect(resync.body).toMatchObject({ failed: 0, done: true, failures_pending: 0 });
    expect(dryAfter.body).toMatchObject({
      missing: 0,
      stale: 0,
      orphaned: 0,
      failures_pending: 0,
    });
    // Supabase Auth never saw an error or a timeout from a hook, whatever the database did.
    expect(hooks.filter((d) => d.status !== 200)).toEqual([]);
    expect(slowestHook).toBeLessThan(HOOK_BUDGET_MS);
    // Webhooks and resync answer 200, or 503/504 while the database is away; never a dropped
    // connection or a 500.
    expect(
      sender.deliveries.filter((d) => ![200, 503, 504].includes(d.status)).map((d) =>
        `${d.kind} ${d.status}`
      ),
    ).toEqual([]);
    // The function never crashed or restarted: one process served the whole run.
    expect(fn.exitCode()).toBeNull();
    expect(fn.other.filter((l) => /uncaught|panic|error/i.test(l))).toEqual([]);
    // Each fault bit, and the same process recovered from each within seconds.
    expect(faults).toHaveLength(5);
    expect(faults[0]!.detail).not.toMatch(/^0 /);
    for (const f of faults) {
      expect(f.hookRecoveryMs, f.name).toBeLessThan(RECOVERY_BOUND_MS);
      expect(f.webhookRecoveryMs, f.name).toBeLessThan(RECOVERY_BOUND_MS);
      expect(f.healthRecoveryMs, f.name).toBeLessThan(RECOVERY_BOUND_MS);
    }
  }, 180_000);
});

/** CPU time of a process so far (Linux /proc), in ms; -1 where unknown. */
function processCpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in 1/100 s
  } catch {
    return -1;
  }
}

function pick(body: Record<string, unknown> | null, keys: string[]) {
  return Object.fromEntries(keys.map((k) => [k, body?.[k]]));
}
