// The SQL hardening of issue 13, one finding each: soft-deleted users, the role a token may
// carry (both hooks, one rule, whatever the sync did), a trigger that never waits without
// limit, and profile values with a bound. On the server when DATABASE_URL is set, else PGlite;
// the lock test needs two sessions (server only).

import { describe, expect, it } from 'vitest';
import {
  type DbClient,
  openTransaction,
  pgError,
  SERVER,
  signUpUser,
  uid,
  useTestDb,
  whileEmailsBlocked,
} from '../helpers/db.ts';
import {
  adminCreateUser,
  adminUpdateAppMetadata,
  type AuthUser,
  changeEmail,
  softDeleteUser,
} from '../helpers/gotrue.ts';
import { defaultClaims } from '../helpers/supabase-auth.ts';

const db = useTestDb();

type Row = Record<string, unknown>;

/** The Postgres-function hook as Auth calls it (as supabase_auth_admin, in a transaction). */
async function pgHook(userId: string, claims: Row): Promise<Row> {
  const event = { user_id: userId, claims, authentication_method: 'password' };
  const [row] = await db.asAuthAdmin((tx) =>
    tx.query<{ r: { claims: Row } }>(
      `select public.hook_custom_access_token($1::text::jsonb) as r`,
      [JSON.stringify(event)],
    )
  );
  return row!.r.claims;
}

const claimsOf = (user: AuthUser, extra: Row = {}): Row => ({
  ...defaultClaims(user.id, { email: user.email ?? '' }),
  app_metadata: user.raw_app_meta_data ?? {},
  user_metadata: user.raw_user_meta_data ?? {},
  ...extra,
});

async function failure(id: string): Promise<Row | undefined> {
  return (await db.query<Row>(
    'select source, sqlstate from user_sync.sync_failures where user_id = $1',
    [id],
  ))[0];
}

const whileBlocked = <T>(fn: () => Promise<T>) => whileEmailsBlocked(db, 'hardening_blocked', fn);

describe('a soft-deleted user (admin deleteUser(id, true))', () => {
  it('keeps a marked row: deleted_at set, no contact data, no profile, the default role', async () => {
    const admin = await adminCreateUser(db, {
      email: `soft-${uid()}@example.com`,
      phone: `+1555${Math.floor(Math.random() * 1e7).toString().padStart(7, '0')}`,
      email_confirm: true,
      user_metadata: { full_name: 'Soft Admin', avatar_url: 'https://example.com/a.png' },
      app_metadata: { role: 'admin' },
    });
    expect(await db.appRow(admin.id)).toMatchObject({ role: 'admin', full_name: 'Soft Admin' });
    await db.exec('update user_sync.audit_settings set enabled = true');
    try {
      const deleted = await softDeleteUser(db, admin.id);
      expect(deleted.deleted_at).not.toBeNull();
      expect(deleted.email).toMatch(/@deleted\.invalid$/);
      const row = await db.appRow(admin.id);
      expect(row).toMatchObject({
        email: null,
        phone: null,
        full_name: null,
        avatar_url: null,
        role: 'client',
      });
      expect(row!.deleted_at).toEqual(deleted.deleted_at);
      // The obfuscated address reaches neither the row nor the audit trail.
      const trail = await db.query<{ text: string }>(
        'select a::text as text from public.user_sync_audit a where user_id = $1',
        [admin.id],
      );
      expect(trail.length).toBeGreaterThan(0);
      for (const { text } of trail) expect(text).not.toContain('deleted.invalid');
    } finally {
      await db.exec('update user_sync.audit_settings set enabled = false');
    }
    // Resync does the same: in step as it is, and a lost row comes back marked the same way.
    const resyncAdmin = () => db.resyncUsers('p_user_ids => array[$1]::uuid[]', [admin.id]);
    expect(await resyncAdmin()).toMatchObject({ missing: 0, stale: 0, unchanged: 1 });
    await db.query('delete from public.users where id = $1', [admin.id]);
    await resyncAdmin();
    expect(await db.appRow(admin.id)).toMatchObject({ email: null, phone: null, role: 'client' });
    // And a token (were one ever minted) carries no admin.
    expect((await db.syncUser(admin.id)).user_role).toBe('client');
  });
});

describe('the role a token carries (both hooks, one rule)', () => {
  it("a revoked admin whose sync keeps failing gets the default, not the row's stale admin", async () => {
    const user = await adminCreateUser(db, {
      email: `revoked-${uid()}@example.com`,
      email_confirm: true,
      app_metadata: { role: 'admin' },
    });
    expect((await db.appRow(user.id))!.role).toBe('admin');
    await whileBlocked(async () => {
      // The admin loses the role and, in the same change, the address moves somewhere the
      // app row cannot take: the trigger's sync fails and is recorded; the row still says admin.
      await adminUpdateAppMetadata(db, user.id, { role: null });
      const moved = await changeEmail(db, user.id, `revoked-${uid()}@blocked.test`);
      expect(await failure(user.id)).toMatchObject({ source: 'trigger', sqlstate: '23514' });
      expect((await db.appRow(user.id))!.role).toBe('client');
      // Back to admin in the row by hand (a write behind the sync's back), sync still failing:
      await db.query(`update public.users set role = 'admin' where id = $1`, [user.id]);
      const result = await db.syncUser(user.id);
      expect(result).toMatchObject({ action: 'failed', role: 'admin', user_role: 'client' });
      expect((await pgHook(user.id, claimsOf(moved))).user_role).toBe('client');
    });
  });

  it('an incoming user_role never survives either hook', async () => {
    const user = await signUpUser(db, 'incoming');
    const out = await pgHook(user.id, claimsOf(user, { user_role: 'admin' }));
    expect(out.user_role).toBe('client');
  });

  it('after creation user_metadata is never read: asking for a role later changes nothing', async () => {
    const user = await signUpUser(db, 'later');
    await db.asAuthAdmin((tx) =>
      tx.query(
        `update users set raw_user_meta_data = raw_user_meta_data || '{"role":"producer"}' where id = $1`,
        [user.id],
      )
    );
    expect((await db.syncUser(user.id)).user_role).toBe('client');
    expect(
      (await pgHook(user.id, claimsOf(user, { user_metadata: { role: 'producer' } })))
        .user_role,
    ).toBe('client');
  });

  // A user the database cannot see yet: the first token of a sign-up minted inside its own
  // uncommitted transaction, seen from the edge function's session. The creation rule applies
  // to the claims Auth signed. The same cases through sync_user's p_claims (the HTTP hook) and
  // the Postgres-function hook (which then sees no user either).
  const cases: [string, unknown, unknown, string][] = [
    ['a known role in app_metadata', { provider: 'email', role: 'admin' }, {}, 'admin'],
    ['app_metadata wins over user_metadata', { role: 'producer' }, { role: 'artist' }, 'producer'],
    ['admin in app_metadata over less in user_metadata', { role: 'admin' }, {
      role: 'client',
    }, 'admin'],
    [
      'a self-assignable role in user_metadata',
      { provider: 'email' },
      { role: 'artist' },
      'artist',
    ],
    ['admin asked for in user_metadata', { provider: 'email' }, { role: 'admin' }, 'client'],
    ['an unknown app role falls through to user_metadata', { role: 'superuser' }, {
      role: 'artist',
    }, 'artist'],
    ['unknown roles in both', { role: 'superuser' }, { role: 'owner' }, 'client'],
    ['lookalikes', { role: 'Admin' }, { role: 'artist ' }, 'client'],
    ['roles that are not strings', { role: ['admin'] }, { role: { name: 'artist' } }, 'client'],
    ['a number or null', { role: 42 }, { role: null }, 'client'],
    ['empty metadata', {}, {}, 'client'],
    ['metadata that is not an object', 'admin', ['artist'], 'client'],
  ];
  for (const [name, app_metadata, user_metadata, expected] of cases) {
    it(`a user the database cannot see, ${name}: ${expected}`, async () => {
      const ghost = crypto.randomUUID();
      const claims = { ...defaultClaims(ghost), app_metadata, user_metadata };
      const viaSyncUser = await db.syncUser(ghost, { claims });
      expect(viaSyncUser).toMatchObject({ action: 'not_found', role: null, user_role: expected });
      expect((await pgHook(ghost, { ...claims, user_role: 'admin' })).user_role).toBe(expected);
      expect(await db.appRow(ghost)).toBeUndefined();
    });
  }
});

describe('bounded profile values', () => {
  it('cuts a long name from metadata to 200 characters and leaves out a URL too long to keep', async () => {
    const user = await signUpUser(db, 'long', {
      data: {
        full_name: 'N'.repeat(5000),
        avatar_url: `https://example.com/${'a'.repeat(3000)}`,
        picture: 'https://example.com/p.png',
      },
    });
    const row = await db.appRow(user.id);
    expect(row!.full_name).toBe('N'.repeat(200));
    // The too-long avatar_url is skipped; the next key that names a picture is taken.
    expect(row!.avatar_url).toBe('https://example.com/p.png');
  });

  it("refuses a user's own edit over the limit with a constraint that names it", async () => {
    const user = await signUpUser(db, 'edit');
    const edit = (sql: string, value: string) =>
      db.asUser(user.id, (tx: DbClient) => tx.query(sql, [value, user.id]));
    expect(
      await pgError(edit('update public.users set full_name = $1 where id = $2', 'x'.repeat(201))),
    ).toEqual({
      code: '23514',
      message:
        'new row for relation "users" violates check constraint "full_name_at_most_200_characters"',
    });
    expect(
      await pgError(
        edit('update public.users set avatar_url = $1 where id = $2', 'x'.repeat(2049)),
      ),
    ).toMatchObject({ code: '23514', message: expect.stringContaining('avatar_url_at_most_2048') });
    await edit('update public.users set full_name = $1 where id = $2', 'y'.repeat(200));
    expect((await db.appRow(user.id))!.full_name).toBe('y'.repeat(200));
  });
});

describe.skipIf(!SERVER)('the trigger never waits without limit (server only)', () => {
  it('a change of a user whose row another session holds commits, records lock_not_available, and resync repairs', async () => {
    const user = await signUpUser(db, 'held');
    const holder = await openTransaction(
      db,
      (tx) => tx.query('select 1 from public.users where id = $1 for update', [user.id]),
    );
    try {
      const newEmail = `moved-${uid()}@example.com`;
      // Without a limit this would wait for as long as the holder holds: it must return.
      await changeEmail(db, user.id, newEmail);
      expect(await failure(user.id)).toEqual({ source: 'trigger', sqlstate: '55P03' });
      expect((await db.appRow(user.id))!.email).toBe(user.email);
    } finally {
      await holder.commit();
    }
    expect(await db.resyncUsers()).toMatchObject({ failures_pending: 0 });
    expect(await failure(user.id)).toBeUndefined();
    expect((await db.appRow(user.id))!.email).toMatch(/^moved-/);
  });
});
