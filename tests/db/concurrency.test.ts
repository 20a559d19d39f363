// Many sessions syncing the same users at once: sync_user, resync_users (whole and in batches),
// sync_my_user, user profile edits and GoTrue's own updates (the trigger path), for a few
// seconds on 8 connections. Needs a server: PGlite has one session, so nothing runs at once.

import { describe, expect, it } from 'vitest';
import type { Sql } from 'postgres';
import {
  inRequest,
  insertAuthUser,
  insertAuthUsersSql,
  keyClaims,
  openTransaction,
  SERVER,
  uid,
  userClaims,
  useServerDb,
} from '../helpers/db.ts';
import { zeroCounts } from '../../shared/resync-report.ts';

const USERS = 200;
const WORKERS = 8;
const RUN_MS = 3000;
const ROLES = ['client', 'artist', 'producer', 'admin'];

const db = useServerDb();

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

describe.skipIf(!SERVER)('concurrency (server only: PGlite has a single session)', () => {
  it(`${WORKERS} sessions on the same ${USERS} users end with one correct row each`, async () => {
    await db.exec(insertAuthUsersSql(USERS, {
      emailPrefix: 'c',
      userMetadataSql: `jsonb_build_object('full_name', 'User ' || i, 'role', 'artist')`,
    }));
    const ids = (await db.query<{ id: string }>('select id from auth.users order by id')).map(
      (r) => r.id,
    );
    expect(ids).toHaveLength(USERS);
    expect(await db.query<{ n: number }>('select count(*)::int as n from public.users')).toEqual([
      { n: USERS },
    ]);

    const errors: string[] = [];
    const failed: unknown[] = [];
    const counts: Record<string, number> = {};
    const deadline = Date.now() + RUN_MS;
    const pools: Sql[] = [];
    const open = (role?: string) => {
      const sql = db.connect(role, { max: 1 });
      pools.push(sql);
      return sql;
    };

    // PostgREST's transactions, each on the worker's own session.
    const asServiceRole = <T>(sql: Sql, text: string, params: unknown[] = []) =>
      inRequest(sql, keyClaims('service_role'), (tx) => tx.query(text, params)) as Promise<T>;
    const asUser = <T>(sql: Sql, id: string, text: string, params: unknown[] = []) =>
      inRequest(sql, userClaims(id), (tx) => tx.query(text, params)) as Promise<T>;

    const checkReport = (r: Record<string, unknown>) => {
      if (r.failed !== 0) failed.push(r);
    };
    const checkResult = (r: Record<string, unknown>) => {
      if (r.action === 'failed') failed.push(r);
    };

    // What the final state must be: the last email and app role GoTrue wrote for each user,
    // and the last profile name the user set (ours, or the provider's while never edited).
    const work: Record<string, (sql: Sql, n: number) => Promise<void>> = {
      syncUser: async (sql) => {
        const [row] = await asServiceRole<{ r: Record<string, unknown> }[]>(
          sql,
          'select public.sync_user($1) as r',
          [pick(ids)],
        );
        checkResult(row!.r);
      },
      resyncAll: async (sql) => {
        const [row] = await asServiceRole<{ r: Record<string, unknown> }[]>(
          sql,
          'select public.resync_users() as r',
        );
        checkReport(row!.r);
      },
      resyncBatches: async (sql) => {
        let cursor: string | null = null;
        for (;;) {
          const [row]: { r: Record<string, unknown> }[] = await asServiceRole(
            sql,
            'select public.resync_users(p_batch_size => 37, p_cursor => $1::uuid) as r',
            [cursor],
          );
          checkReport(row!.r);
          if (row!.r.done === true) break;
          cursor = row!.r.next_cursor as string;
        }
      },
      resyncIds: async (sql) => {
        const some = Array.from({ length: 10 }, () => pick(ids));
        const [row] = await asServiceRole<{ r: Record<string, unknown> }[]>(
          sql,
          'select public.resync_users(p_user_ids => $1::uuid[]) as r',
          [some],
        );
        checkReport(row!.r);
      },
      gotrueMetadata: async (sql, n) => {
        // GoTrue's connection (supabase_auth_admin, search_path auth): one user per transaction.
        const id = pick(ids);
        await sql.begin(async (tx) => {
          await tx.unsafe(
            `UPDATE users SET raw_user_meta_data = raw_user_meta_data || $2::text::jsonb,
               updated_at = now() WHERE id = $1`,
            [id, JSON.stringify({ full_name: `Provider ${n}`, avatar_url: `https://a/${n}` })],
          );
        });
      },
      gotrueEmailAndRole: async (sql, n) => {
        const id = pick(ids);
        await sql.begin(async (tx) => {
          if (n % 2 === 0) {
            await tx.unsafe(
              `UPDATE users SET email = split_part(email, '@', 1) || '.' || $2 || '@example.com',
                 updated_at = now() WHERE id = $1`,
              [id, String(n)],
            );
          } else {
            await tx.unsafe(
              `UPDATE users SET raw_app_meta_data = raw_app_meta_data || $2::text::jsonb,
                 updated_at = now() WHERE id = $1`,
              [id, JSON.stringify({ role: pick(ROLES) })],
            );
          }
        });
      },
      userEdits: async (sql, n) => {
        const id = pick(ids);
        if (n % 2 === 0) {
          await asUser(sql, id, `update public.users set full_name = $2 where id = $1`, [
            id,
            `Edited ${n}`,
          ]);
        } else {
          const [row] = await asUser<{ r: Record<string, unknown> }[]>(
            sql,
            id,
            'select public.sync_my_user() as r',
          );
          checkResult(row!.r);
        }
      },
    };
    const plan: [string, string | undefined][] = [
      ['syncUser', undefined],
      ['syncUser', undefined],
      ['resyncAll', undefined],
      ['resyncBatches', undefined],
      ['resyncIds', undefined],
      ['gotrueMetadata', 'supabase_auth_admin'],
      ['gotrueEmailAndRole', 'supabase_auth_admin'],
      ['userEdits', undefined],
    ];
    expect(plan).toHaveLength(WORKERS);

    try {
      await Promise.all(
        plan.map(async ([name, role]) => {
          const sql = open(role);
          let n = 0;
          while (Date.now() < deadline) {
            n++;
            try {
              await work[name]!(sql, n);
            } catch (error) {
              const e = error as { code?: string; message: string };
              errors.push(`${name}: ${e.code} ${e.message}`);
            }
          }
          counts[name] = n;
        }),
      );
    } finally {
      await Promise.all(pools.map((p) => p.end({ timeout: 5 })));
    }

    expect(errors).toEqual([]);
    expect(failed).toEqual([]);
    // Every worker got through several rounds: the run really overlapped.
    for (const [name, n] of Object.entries(counts)) expect(n, name).toBeGreaterThan(2);

    // Nothing was recorded as failed, and nothing is out of step.
    expect(await db.query('select * from user_sync.sync_failures')).toEqual([]);
    const wrong = await db.query(
      `select a.id, a.email as auth_email, u.email, a.raw_app_meta_data ->> 'role' as granted,
              u.role, u.full_name, a.raw_user_meta_data ->> 'full_name' as provider_name,
              (select count(*) from public.users x where x.id = a.id) as rows
         from auth.users a left join public.users u on u.id = a.id
        where u.id is null
           or u.email is distinct from a.email
           or u.role <> coalesce(a.raw_app_meta_data ->> 'role', 'artist')
           or u.full_name is null
           or not (u.full_name like 'Edited %' or u.full_name like 'User %')`,
    );
    expect(wrong).toEqual([]);
    expect(await db.query<{ n: number }>('select count(*)::int as n from public.users')).toEqual([
      { n: USERS },
    ]);
    expect(await db.resyncUsers('p_dry_run => true')).toEqual({
      ...zeroCounts(),
      dry_run: true,
      scope: 'all',
      auth_users: USERS,
      app_users: USERS,
      unchanged: USERS,
      failures_pending: 0,
      next_cursor: null,
      done: true,
    });
  });
});

describe.skipIf(!SERVER)('held rows and role edits (server only)', () => {
  it('a sync of a missing row never waits on a transaction changing that auth user: deferred at once', async () => {
    const user = await insertAuthUser(db, { email: `held-${uid()}@example.com` });
    // Its row missing (a failed sync, say), and a change of the user in flight, whose trigger
    // is inserting the row right now.
    await db.query('delete from public.users where id = $1', [user.id]);
    const holder = await openTransaction(
      db,
      (tx) => tx.query(`update auth.users set email = 'moved-' || email where id = $1`, [user.id]),
    );
    try {
      const started = performance.now();
      expect((await db.syncUser(user.id)).action).toBe('deferred');
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      await holder.commit();
    }
    // The holder's own trigger wrote the row, from its change.
    const [row] = await db.query<{ email: string }>(
      'select email from public.users where id = $1',
      [user.id],
    );
    expect(row?.email).toMatch(/^moved-held-/);
  });

  it('role edits in two transactions at once both reach the lists the mapping reads', async () => {
    const a = `conc_a_${uid()}`;
    const b = `conc_b_${uid()}`;
    const insertRole = 'insert into user_sync.roles (role, self_assignable) values ($1, true)';
    try {
      const first = await openTransaction(db, (tx) => tx.query(insertRole, [a]));
      let two: Promise<unknown>;
      try {
        // It waits on the first one's lists.
        two = db.query(insertRole, [b]);
        await new Promise((resolve) => setTimeout(resolve, 300));
      } finally {
        await first.commit();
      }
      await two;
      const [lists] = await db.query<{ known: string[]; mine: string[] }>(
        'select known, self_assignable as mine from user_sync.role_lists',
      );
      expect(lists!.known).toEqual(expect.arrayContaining([a, b]));
      expect(lists!.mine).toEqual(expect.arrayContaining([a, b]));
    } finally {
      await db.query('delete from user_sync.roles where role = any ($1)', [[a, b]]);
    }
  });
});
