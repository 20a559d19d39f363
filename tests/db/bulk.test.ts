// Issue 12, finding 4: statements over many users at once, as an admin runs them.
//
// a. After ANALYZE of the empty tables, one INSERT … SELECT of 40,000 users into auth.users
//    (as supabase_auth_admin, with GoTrue's columns) gives every user a correct app row, and no
//    sequential scan of auth.users or public.users happens while it runs. The old trigger's
//    one-user plan, cached while the statistics called the tables empty, scanned a table once
//    per row (here: 40,000 scans of public.users for 40,000 users): quadratic (10k rows 4.0 s,
//    40k rows 61 s). The plan's shape is asserted, never a time: the tables' seq_scan counters
//    before and after, flushed with pg_stat_force_next_flush().
// b. One UPDATE of every user's app_metadata role succeeds and every row follows, with no
//    failure on record. The old trigger took a per-user advisory lock held to the end of the
//    transaction: past max_locks_per_transaction × max_connections users the shared lock table
//    ran out ("out of shared memory"), and recording the failure failed the same way.
// c. resync_users(p_user_ids => all of them) as service_role, after their app rows are deleted,
//    succeeds and repairs every one (the old SQL failed at 20,000 ids the same way).
// d. After every statement, no user is out of step without a failure record.
//
// The user count exceeds the cluster's lock table (checked), so a lock per user cannot fit.
// USER_SYNC_BULK_USERS overrides it (to show the old quadratic insert at a size that finishes).
//
// Server only: the lock table, the statistics and the sizes are a server's.

import { beforeAll, describe, expect, it } from 'vitest';
import { insertAuthUsersSql, SERVER, useServerDb } from '../helpers/db.ts';

const USERS = Number(process.env.USER_SYNC_BULK_USERS ?? 40_000);
const ZERO = '00000000-0000-0000-0000-000000000000';
const LAST = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

interface TableStats {
  relname: string;
  seq_scan: number;
  n_tup_ins: number;
}

describe.skipIf(!SERVER)(`bulk statements over ${USERS} users (server only)`, () => {
  const db = useServerDb();

  beforeAll(async () => {
    const [limits] = await db.query<{ connections: number; locks: number; prepared: number }>(
      `select current_setting('max_connections')::int as connections,
         current_setting('max_locks_per_transaction')::int as locks,
         current_setting('max_prepared_transactions')::int as prepared`,
    );
    const lockTable = limits!.locks * (limits!.connections + limits!.prepared);
    console.info(
      `bulk: ${USERS} users; shared lock table ${lockTable} entries ` +
        `(max_locks_per_transaction ${limits!.locks} x max_connections ${limits!.connections}` +
        ` + max_prepared_transactions ${limits!.prepared})`,
    );
    if (!process.env.USER_SYNC_BULK_USERS) {
      // A lock per user must not fit, or b and c would prove nothing.
      expect(USERS).toBeGreaterThan(lockTable * 2);
    }
  }, 240_000);

  /** d: every user out of step has a failure on record. */
  async function expectNoSilentDrift(): Promise<void> {
    const [drift] = await db.query<{ silent: number; out_of_step: number; failures: number }>(
      `select
         (select count(*) from user_sync.plan($1, $2) p
          where not p.in_sync
            and not exists (select from user_sync.sync_failures f where f.user_id = p.id))::int
           as silent,
         (select count(*) from user_sync.plan($1, $2) p where not p.in_sync)::int as out_of_step,
         (select count(*) from user_sync.sync_failures)::int as failures`,
      [ZERO, LAST],
    );
    expect(drift!.silent, 'users out of step with no failure record').toBe(0);
    expect(drift).toEqual({ silent: 0, out_of_step: 0, failures: 0 });
  }

  /** The app rows, those of them with `role`, and the failures on record. */
  async function appRowsWithRole(role: string) {
    const [counts] = await db.query<{ app: number; role: number; failures: number }>(
      `select count(*)::int as app, (count(*) filter (where role = $1))::int as role,
         (select count(*) from user_sync.sync_failures)::int as failures
       from public.users`,
      [role],
    );
    return counts;
  }

  async function tableStats(): Promise<Record<string, TableStats>> {
    await db.query('select pg_stat_clear_snapshot()');
    const rows = await db.query<TableStats>(
      `select schemaname || '.' || relname as relname, seq_scan::int as seq_scan,
         n_tup_ins::int as n_tup_ins
       from pg_stat_user_tables
       where relid in ('auth.users'::regclass, 'public.users'::regclass)`,
    );
    return Object.fromEntries(rows.map((r) => [r.relname, r]));
  }

  it(
    'a. INSERT … SELECT into auth.users after ANALYZE of the empty tables: every user synced, no table scan',
    async () => {
      // One connection of its own: its statistics are flushed on demand (pg_stat_force_next_flush
      // takes effect when the statement ends, before the next one can start), so the counters
      // read in between hold everything it did.
      const sql = db.connect(undefined, { max: 1 });
      const flush = async () => {
        await sql.unsafe('select pg_stat_force_next_flush()');
        await sql.unsafe('select 1');
      };
      let before: Record<string, TableStats>;
      try {
        const [counts] = await sql.unsafe<{ auth: number; app: number }[]>(
          `select (select count(*) from auth.users)::int as auth,
           (select count(*) from public.users)::int as app`,
        );
        expect(counts).toEqual({ auth: 0, app: 0 });
        await sql.unsafe('analyze auth.users');
        await sql.unsafe('analyze public.users');
        await flush();
        before = await tableStats();

        // The import, as GoTrue's role.
        await sql.begin(async (tx) => {
          await tx.unsafe('set local role supabase_auth_admin');
          await tx.unsafe('set local search_path = auth');
          await tx.unsafe(insertAuthUsersSql(USERS, { emailPrefix: 'bulk-' }));
        });
        await flush();
      } finally {
        await sql.end({ timeout: 5 });
      }

      // The counters include the insert (so they were flushed; the loop is only a guard should
      // the flush land late), and no scan was added.
      let after = await tableStats();
      for (
        let i = 0;
        i < 50 && after['auth.users']!.n_tup_ins < before['auth.users']!.n_tup_ins + USERS;
        i += 1
      ) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        after = await tableStats();
      }
      expect(after['auth.users']!.n_tup_ins - before['auth.users']!.n_tup_ins).toBe(USERS);
      expect(after['public.users']!.n_tup_ins - before['public.users']!.n_tup_ins).toBe(USERS);
      expect({
        'auth.users': after['auth.users']!.seq_scan - before['auth.users']!.seq_scan,
        'public.users': after['public.users']!.seq_scan - before['public.users']!.seq_scan,
      }, 'sequential scans during the insert').toEqual({ 'auth.users': 0, 'public.users': 0 });

      expect(await appRowsWithRole('client')).toEqual({ app: USERS, role: USERS, failures: 0 });
      await expectNoSilentDrift();
    },
    240_000,
  );

  it('b. one UPDATE of every user’s app_metadata role: every row follows, no failure', async () => {
    // As an admin in the SQL editor: the hosted `postgres` role.
    const sql = db.connect('postgres', { max: 1 });
    try {
      const updated = await sql.unsafe(
        `update auth.users set raw_app_meta_data = raw_app_meta_data || '{"role":"artist"}'`,
      );
      expect(updated.count).toBe(USERS);
    } finally {
      await sql.end({ timeout: 5 });
    }
    expect(await appRowsWithRole('artist')).toEqual({ app: USERS, role: USERS, failures: 0 });
    await expectNoSilentDrift();
  }, 240_000);

  it(
    'c. resync_users(p_user_ids) of every user, their app rows deleted: all repaired',
    async () => {
      await db.query('delete from public.users');
      const rows0 = await db.query<{ id: string }>('select id from auth.users order by id');
      const ids = rows0.map((r) => r.id);
      expect(ids).toHaveLength(USERS);
      const r = await db.resyncUsers('p_user_ids => $1::uuid[]', [`{${ids.join(',')}}`]);
      expect(r).toMatchObject({ auth_users: USERS, missing: USERS, inserted: USERS, failed: 0 });
      expect(await appRowsWithRole('artist')).toEqual({ app: USERS, role: USERS, failures: 0 });
      await expectNoSilentDrift();
    },
    240_000,
  );
});
