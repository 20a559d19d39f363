// resync_users() against drift made by hand: exact reports for dry and real runs, in one call,
// in keyset batches and for listed ids; argument errors; and the failures table (a trigger
// that cannot write records instead of blocking sign-up, and resync drains it).

import { beforeEach, describe, expect, it } from 'vitest';
import {
  insertAuthUser,
  pgError,
  signUpUser,
  uid,
  useTestDb,
  withoutTriggers,
} from '../helpers/db.ts';
import {
  REPORT_COUNT_KEYS,
  REPORT_KEYS,
  type ResyncReport,
  zeroCounts,
} from '../../shared/resync-report.ts';
import {
  adminUpdateAppMetadata,
  type AuthUser,
  invite,
  signUpEmail,
  updateUserMetadata,
} from '../helpers/gotrue.ts';

const db = useTestDb();

/** Every test starts from no users, the foreign key and both triggers in place. */
beforeEach(async () => {
  await db.exec(`
    alter table auth.users enable trigger user_sync_after_insert;
    alter table auth.users enable trigger user_sync_after_update;
    alter table public.users drop constraint if exists users_email_not_blocked;
    delete from auth.users;
    delete from public.users;
    delete from user_sync.sync_failures;
    alter table public.users drop constraint if exists users_id_fkey;
    alter table public.users add constraint users_id_fkey
      foreign key (id) references auth.users (id) on delete cascade;
  `);
});

const resync = (args = '') => db.resyncUsers(args);

/** The report resync_users must give: every key of shared/resync-report.ts, these values. */
function report(dryRun: boolean, counts: Partial<ResyncReport>): ResyncReport {
  return {
    dry_run: dryRun,
    scope: 'all',
    ...zeroCounts(),
    failures_pending: 0,
    next_cursor: null,
    done: true,
    ...counts,
  };
}

/** Every row of both sync tables, with xmin: any write shows. */
async function snapshot() {
  return {
    users: await db.query('select u.*, u.xmin::text as xmin from public.users u order by u.id'),
    failures: await db.query('select * from user_sync.sync_failures order by user_id'),
  };
}

/** Rows that differ from auth.users where they must not (ids, emails, the granted role). */
async function drift() {
  return await db.query(
    `select coalesce(a.id, u.id) as id, a.email as auth_email, u.email as app_email,
            a.raw_app_meta_data ->> 'role' as granted, u.role
       from auth.users a full join public.users u on u.id = a.id
      where a.id is null or u.id is null or a.email is distinct from u.email
         or (a.raw_app_meta_data ? 'role' and a.raw_app_meta_data ->> 'role' <> u.role)`,
  );
}

interface Drift {
  users: AuthUser[];
  missing: string[];
  stale: string[];
  untriggered: string[];
  orphans: string[];
}

/**
 * 10 users signed up, then: 2 app rows deleted, 1 email and 1 granted role corrupted, 2 auth
 * users inserted with the triggers off, the foreign key dropped and 2 orphan app rows added.
 * 12 auth users, 10 app rows: missing 4, stale 2, orphaned 2, unchanged 6.
 */
async function makeDrift(): Promise<Drift> {
  const users: AuthUser[] = [];
  for (let i = 0; i < 10; i++) {
    users.push(
      await signUpEmail(db, {
        email: `drift-${i}-${uid()}@example.com`,
        autoconfirm: true,
        data: { full_name: `User ${i}` },
      }),
    );
  }
  await adminUpdateAppMetadata(db, users[3]!.id, { role: 'producer' });
  const [a, b, c, d] = users.map((u) => u.id) as [string, string, string, string];
  await db.query('delete from public.users where id = any($1::uuid[])', [[a, b]]);
  await db.query(`update public.users set email = 'corrupt@example.com' where id = $1`, [c]);
  await db.query(`update public.users set role = 'client' where id = $1`, [d]);

  const untriggered = await withoutTriggers(db, async () => [
    (await insertAuthUser(db, {
      email: `direct-1-${uid()}@example.com`,
      user_metadata: { full_name: 'Direct One', role: 'artist' },
    })).id,
    (await insertAuthUser(db, { email: `direct-2-${uid()}@example.com` })).id,
  ]);
  await db.exec('alter table public.users drop constraint users_id_fkey');
  const orphans = [crypto.randomUUID(), crypto.randomUUID()];
  for (const id of orphans) {
    await db.query(
      `insert into public.users (id, email, role) values ($1, 'orphan@example.com', 'client')`,
      [id],
    );
  }
  return { users, missing: [a, b], stale: [c, d], untriggered, orphans };
}

describe('drift made by hand', () => {
  let d: Drift;
  beforeEach(async () => {
    d = await makeDrift();
  });

  const found = { auth_users: 12, app_users: 10, missing: 4, stale: 2, orphaned: 2 };

  it('a dry run reports it exactly and writes nothing', async () => {
    const before = await snapshot();
    expect(await resync('p_dry_run => true')).toEqual(report(true, { ...found, unchanged: 6 }));
    expect(await snapshot()).toEqual(before);
    expect(await drift()).toHaveLength(8);
  });

  it('a real run repairs it and reports what it did; a second run writes nothing', async () => {
    expect(await resync()).toEqual(
      report(false, { ...found, inserted: 4, updated: 2, deleted: 2, unchanged: 6 }),
    );
    expect(await drift()).toEqual([]);
    const rows = await db.query<{ id: string; full_name: string | null; role: string }>(
      'select id, full_name, role from public.users where id = any($1::uuid[]) order by id',
      [[...d.missing, ...d.stale, ...d.untriggered]],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(byId.get(d.missing[0]!)).toMatchObject({ full_name: 'User 0', role: 'client' });
    expect(byId.get(d.stale[1]!)).toMatchObject({ full_name: 'User 3', role: 'producer' });
    expect(byId.get(d.untriggered[0]!)).toMatchObject({ full_name: 'Direct One', role: 'artist' });
    expect(byId.get(d.untriggered[1]!)).toMatchObject({ full_name: null, role: 'client' });
    expect(await db.query('select 1 from public.users where id = any($1::uuid[])', [d.orphans]))
      .toEqual([]);

    const before = await snapshot();
    expect(await resync()).toEqual(report(false, { auth_users: 12, app_users: 12, unchanged: 12 }));
    expect(await snapshot()).toEqual(before);
  });

  for (const dryRun of [true, false]) {
    it(`batches of 3 walked to done add up to a full run (dry run: ${dryRun})`, async () => {
      const sum: Record<string, number> = zeroCounts();
      let cursor: string | null = null;
      const cursors: string[] = [];
      for (let call = 1;; call++) {
        expect(call).toBeLessThanOrEqual(6);
        const r = await resync(
          `p_dry_run => ${dryRun}, p_batch_size => 3` +
            (cursor === null ? '' : `, p_cursor => '${cursor}'`),
        );
        expect(r).toMatchObject({ dry_run: dryRun, scope: 'batch' });
        for (const k of REPORT_COUNT_KEYS) sum[k]! += r[k] as number;
        if (r.done === true) {
          expect(r.next_cursor).toBeNull();
          break;
        }
        cursor = r.next_cursor as string;
        cursors.push(cursor);
      }
      // Keyset: each cursor is the third auth id after the previous one.
      const ids = (await db.query<{ id: string }>('select id from auth.users order by id')).map((
        r,
      ) => r.id);
      expect(cursors).toEqual([ids[2], ids[5], ids[8], ids[11]]);
      const full = dryRun
        ? report(true, { ...found, unchanged: 6 })
        : report(false, { ...found, inserted: 4, updated: 2, deleted: 2, unchanged: 6 });
      expect(sum).toEqual(Object.fromEntries(REPORT_COUNT_KEYS.map((k) => [k, full[k]])));
      expect(await drift()).toHaveLength(dryRun ? 8 : 0);
    });
  }

  it('p_user_ids repairs exactly those users', async () => {
    const unknown = crypto.randomUUID();
    const ids = [d.missing[0]!, d.stale[0]!, d.orphans[0]!, unknown, d.missing[0]!];
    const before = await snapshot();
    expect(await resync(`p_user_ids => array['${ids.join("','")}']::uuid[]`)).toEqual({
      ...report(false, {
        auth_users: 2,
        app_users: 2,
        missing: 1,
        stale: 1,
        orphaned: 1,
        inserted: 1,
        updated: 1,
        deleted: 1,
      }),
      scope: 'ids',
    });
    const touched = new Set([d.missing[0], d.stale[0], d.orphans[0]]);
    const after = await snapshot();
    expect(after.users.filter((r) => !touched.has(r.id as string))).toEqual(
      before.users.filter((r) => !touched.has(r.id as string)),
    );
    expect(await drift()).toHaveLength(5);
    expect(await resync('p_dry_run => true')).toEqual(
      report(true, {
        auth_users: 12,
        app_users: 10,
        missing: 3,
        stale: 1,
        orphaned: 1,
        unchanged: 8,
      }),
    );
  });
});

// The SQL writes the report's keys out itself (user_sync.add_counts, resync_users' state); this
// ties them to the one TypeScript list the function and the CLI read them by.
describe('the report carries exactly the keys of shared/resync-report.ts', () => {
  const sorted = (keys: readonly string[]) => [...keys].sort();

  it.each([
    ['a full run', ''],
    ['a dry run', 'p_dry_run => true'],
    ['a batch', 'p_batch_size => 2'],
    ['listed ids', `p_user_ids => array['${crypto.randomUUID()}']::uuid[]`],
  ])('resync_users, %s: REPORT_KEYS', async (_, args) => {
    await signUpUser(db, 'keys');
    expect(sorted(Object.keys(await resync(args)))).toEqual(sorted(REPORT_KEYS));
  });

  it.each([
    ['missing', 'delete from public.users where id = $1'],
    ['stale', `update public.users set email = 'stale@example.com' where id = $1`],
    ['gone from auth.users', 'delete from auth.users where id = $1'],
  ])('sync_one of a user whose row is %s: counts with REPORT_COUNT_KEYS', async (_, drift) => {
    const user = await signUpUser(db, 'one');
    await db.query(drift, [user.id]);
    const [row] = await db.query<{ counts: Record<string, number> }>(
      `select user_sync.sync_one($1, 'sync_user', true) -> 'counts' as counts`,
      [user.id],
    );
    expect(sorted(Object.keys(row!.counts))).toEqual(sorted(REPORT_COUNT_KEYS));
  });

  // The in-step shortcut (taken on almost every token) builds its counts by hand: only keys of
  // the list, and no other.
  it('sync_one of a user in step: counts with keys of REPORT_COUNT_KEYS only', async () => {
    const user = await signUpUser(db, 'same');
    const [row] = await db.query<{ counts: Record<string, number> }>(
      `select user_sync.sync_one($1, 'sync_user', true) -> 'counts' as counts`,
      [user.id],
    );
    expect(row!.counts).toEqual({ auth_users: 1, app_users: 1, unchanged: 1 });
    expect(REPORT_COUNT_KEYS).toEqual(expect.arrayContaining(Object.keys(row!.counts)));
  });
});

describe('argument errors', () => {
  for (
    const [args, message] of [
      [
        'p_batch_size => 0',
        'resync_users: p_batch_size must be between 1 and 50000, got 0.',
      ],
      [
        'p_batch_size => 50001',
        'resync_users: p_batch_size must be between 1 and 50000, got 50001.',
      ],
      [
        `p_cursor => '${crypto.randomUUID()}'`,
        'resync_users: p_cursor needs p_batch_size (one batch after the cursor).',
      ],
      [
        `p_user_ids => array['${crypto.randomUUID()}']::uuid[], p_batch_size => 10`,
        'resync_users: p_user_ids cannot be combined with p_batch_size or p_cursor.',
      ],
    ] as const
  ) {
    it(`${args.replace(/'[^']*'/, "'…'")} raises 22023`, async () => {
      expect(await pgError(resync(args))).toEqual({ code: '22023', message });
    });
  }
});

describe('a failure inside the trigger', () => {
  const blockEmails = `alter table public.users add constraint users_email_not_blocked
    check (email is null or email not like '%@blocked.test')`;

  async function failure(userId: string) {
    const rows = await db.query<Record<string, unknown>>(
      `select user_id, source, sqlstate, message, attempts,
              last_failed_at >= first_failed_at as ordered
         from user_sync.sync_failures where user_id = $1`,
      [userId],
    );
    return rows[0];
  }

  const violation = {
    sqlstate: '23514',
    message: 'new row for relation "users" violates check constraint "users_email_not_blocked"',
    ordered: true,
  };

  it('leaves the sign-up committed and records the failure; resync repairs and drains it', async () => {
    await db.exec(blockEmails);
    const ok = await signUpUser(db, 'fine');
    const blocked = await invite(db, { email: `someone-${uid()}@blocked.test` });

    expect(await db.query('select id from auth.users where id = $1', [blocked.id])).toEqual([
      { id: blocked.id },
    ]);
    expect(await db.query('select id from public.users where id = $1', [blocked.id])).toEqual([]);
    expect(await failure(blocked.id)).toEqual({
      user_id: blocked.id,
      source: 'trigger',
      attempts: 1,
      ...violation,
    });

    // A second failing write of the same user counts as a second attempt.
    await updateUserMetadata(db, blocked.id, { full_name: 'Still Blocked' });
    expect(await failure(blocked.id)).toEqual({
      user_id: blocked.id,
      source: 'trigger',
      attempts: 2,
      ...violation,
    });
    // GoTrue's identity metadata merge during an email sign-up (sub, email_verified) changes no
    // key the mapping reads, so the trigger does not fire again: one attempt, not two.
    const signedUp = await signUpEmail(db, {
      email: `other-${uid()}@blocked.test`,
      autoconfirm: false,
    });
    expect(await failure(signedUp.id)).toMatchObject({ attempts: 1, ...violation });
    expect(await failure(ok.id)).toBeUndefined();

    await db.exec('alter table public.users drop constraint users_email_not_blocked');
    expect(await resync()).toEqual(
      report(false, {
        auth_users: 3,
        app_users: 1,
        missing: 2,
        inserted: 2,
        unchanged: 1,
      }),
    );
    expect(await db.query('select * from user_sync.sync_failures')).toEqual([]);
    expect(
      await db.query<{ id: string; full_name: string | null }>(
        'select id, full_name from public.users where id = any($1::uuid[]) order by id',
        [[blocked.id, signedUp.id]],
      ),
    ).toEqual(
      [
        { id: blocked.id, full_name: 'Still Blocked' },
        { id: signedUp.id, full_name: null },
      ].sort((x, y) => (x.id < y.id ? -1 : 1)),
    );
  });

  it('a resync with one still-failing row syncs the others and reports failed 1', async () => {
    const users: AuthUser[] = [];
    for (let i = 0; i < 3; i++) {
      users.push(
        await signUpEmail(db, { email: `ok-${i}-${uid()}@example.com`, autoconfirm: true }),
      );
    }
    await db.exec(blockEmails);
    const blocked = await invite(db, { email: `stuck-${uid()}@blocked.test` });
    await db.query('delete from public.users where id = any($1::uuid[])', [
      [users[0]!.id, users[1]!.id],
    ]);

    expect(await resync('p_dry_run => true')).toEqual(
      report(true, { auth_users: 4, app_users: 1, missing: 3, unchanged: 1, failures_pending: 1 }),
    );
    // The batch fails as a whole, is redone user by user: the blocked user is still missing,
    // fails and is recorded again; the others are repaired.
    expect(await resync()).toEqual(
      report(false, {
        auth_users: 4,
        app_users: 1,
        missing: 3,
        inserted: 2,
        unchanged: 1,
        failed: 1,
        failures_pending: 1,
      }),
    );
    expect(await failure(blocked.id)).toEqual({
      user_id: blocked.id,
      source: 'resync',
      attempts: 2,
      ...violation,
    });
    expect(await drift()).toEqual([
      { id: blocked.id, auth_email: blocked.email, app_email: null, granted: null, role: null },
    ]);

    await db.exec('alter table public.users drop constraint users_email_not_blocked');
    expect(await resync()).toEqual(
      report(false, { auth_users: 4, app_users: 3, missing: 1, inserted: 1, unchanged: 3 }),
    );
    expect(await db.query('select * from user_sync.sync_failures')).toEqual([]);
    expect(await drift()).toEqual([]);
  });

  it('a failing sync_user is recorded and reported as failed with its SQLSTATE', async () => {
    await db.exec(blockEmails);
    const blocked = await invite(db, { email: `direct-${uid()}@blocked.test` });
    expect(await db.syncUser(blocked.id)).toEqual({
      user_id: blocked.id,
      action: 'failed',
      sqlstate: '23514',
      role: null,
      // What a token may carry all the same: no app_metadata role, no row, the default.
      user_role: 'client',
    });
    expect(await failure(blocked.id)).toEqual({
      user_id: blocked.id,
      source: 'sync_user',
      attempts: 2,
      ...violation,
    });
  });
});
