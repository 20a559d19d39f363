// A failure record must not be lost to a race (found while building the load-and-fault suite).
//
// user_sync.sync_users (behind resync_users and sync_one) first writes, then drains
// user_sync.sync_failures in a later statement. Under READ COMMITTED each statement takes a new snapshot, so a failure
// recorded by a sign-up that commits between the two was deleted although the sync never saw
// that user (no app row, no failure record, failures_pending 0). The drain now removes only the
// records it saw before the sync, unchanged.
// A row lock held by anyone on a row the resync must update (a user editing their profile)
// stretches the window from microseconds to as long as the lock is held; this test uses one.
//
// Server only: needs several sessions.

import { describe, expect, it } from 'vitest';
import { SERVER, useServerDb } from '../helpers/db.ts';

const db = useServerDb();

const insertUser = (id: string, email: string) =>
  `INSERT INTO users (instance_id, id, aud, role, email, raw_app_meta_data, raw_user_meta_data,
     created_at, updated_at, is_anonymous)
   VALUES ('00000000-0000-0000-0000-000000000000', '${id}', 'authenticated', 'authenticated',
     '${email}', '{"provider":"email","providers":["email"]}', '{}', now(), now(), false)`;

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

describe.skipIf(!SERVER)('a failure recorded while a resync runs (server only)', () => {
  it(
    'is kept: the resync that never saw the user does not drain it',
    async () => {
      const a = crypto.randomUUID(); // a user whose app row the resync must update
      const u = crypto.randomUUID(); // a user whose sync fails while the resync runs
      await db.asAuthAdmin((tx) => tx.exec(insertUser(a, 'a@example.com')));
      await db.exec(`
        update public.users set email = 'stale@example.com' where id = '${a}';
        -- Only u's write fails.
        alter table public.users add constraint only_u_fails
          check (email is distinct from 'u@example.com') not valid;
      `);

      const editor = db.connect(undefined, { max: 1 });
      const gotrue = db.connect('supabase_auth_admin', { max: 1 });
      const operator = db.connect(undefined, { max: 1 });
      try {
        // 1. Someone holds a's app row (a profile edit in progress).
        const release = gate();
        const locked = gate();
        const editing = editor.begin(async (tx) => {
          await tx.unsafe(`select 1 from public.users where id = $1 for update`, [a]);
          locked.open();
          await release.opened;
        });
        await locked.opened;

        // 2. u signs up; the trigger's write fails and is recorded (not committed yet).
        const commit = gate();
        const inserted = gate();
        const signingUp = gotrue.begin(async (tx) => {
          await tx.unsafe(insertUser(u, 'u@example.com'));
          inserted.open();
          await commit.opened;
        });
        await inserted.opened;

        // 3. A resync starts: its sync does not see u, and waits for a's row.
        const resync = operator.begin(async (tx) => {
          await tx.unsafe('set local role service_role');
          return (await tx.unsafe('select public.resync_users() as r'))[0]!.r;
        });
        for (let i = 0; i < 100; i++) {
          const [w] = await db.query<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity
              where wait_event_type = 'Lock' and query like '%resync_users%'`,
          );
          if (w!.n > 0) break;
          await new Promise((r) => setTimeout(r, 20));
        }

        // 4. u's sign-up commits, with its failure record; then the edit ends.
        commit.open();
        await signingUp;
        expect(
          await db.query(
            'select source, sqlstate from user_sync.sync_failures where user_id = $1',
            [
              u,
            ],
          ),
        ).toEqual([{ source: 'trigger', sqlstate: '23514' }]);
        release.open();
        await editing;
        const report = await resync;

        // u has no app row; its failure must still be on record (or the report must count it).
        const [state] = await db.query<{ app_row: boolean; recorded: boolean }>(
          `select exists (select 1 from public.users where id = $1) as app_row,
                  exists (select 1 from user_sync.sync_failures where user_id = $1) as recorded`,
          [u],
        );
        console.log('resync report:', JSON.stringify(report), 'u:', JSON.stringify(state));
        expect(state).toEqual({ app_row: false, recorded: true });
      } finally {
        await Promise.all([editor, gotrue, operator].map((p) => p.end({ timeout: 5 })));
      }
    },
  );
});
