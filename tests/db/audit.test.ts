// The audit trail (public.user_sync_audit) and the role rule of migration 3: what each sync path
// records, what it keeps out (email and phone values unless opted in), who can read, change or
// prune the trail, and that a role not backed by app_metadata falls back to the default.
// On the server when DATABASE_URL is set, else on PGlite.

import { beforeEach, describe, expect, it } from 'vitest';
import { type CallerRole, signUpUser, sqlState, uid, useTestDb } from '../helpers/db.ts';
import {
  adminCreateUser,
  adminUpdateAppMetadata,
  changeEmail,
  deleteUser,
  signIn,
  signUpEmail,
  signUpPhone,
  updateUserMetadata,
} from '../helpers/gotrue.ts';

const db = useTestDb();

interface AuditRow {
  user_id: string;
  source: string;
  action: string;
  changed_columns: string[];
  old_values: Record<string, unknown> | null;
  new_values: Record<string, unknown> | null;
  sqlstate: string | null;
}

async function trail(userId: string): Promise<AuditRow[]> {
  return await db.query<AuditRow>(
    `select user_id, source, action, changed_columns, old_values, new_values, sqlstate
       from public.user_sync_audit where user_id = $1 order by id`,
    [userId],
  );
}

async function audit(settings: { enabled: boolean; record_contact_values?: boolean }) {
  await db.query(
    'update user_sync.audit_settings set enabled = $1, record_contact_values = $2',
    [settings.enabled, settings.record_contact_values ?? false],
  );
}

const role = async (id: string) => (await db.appRow<{ role: string }>(id, 'role'))?.role;

describe('the audit trail', () => {
  beforeEach(async () => {
    await audit({ enabled: false });
  });

  it('is off by default: sign-ups, edits and resyncs record nothing', async () => {
    const [settings] = await db.query(
      'select enabled, record_contact_values from user_sync.audit_settings',
    );
    expect(settings).toEqual({ enabled: false, record_contact_values: false });
    const user = await signUpUser(db, 'off', { data: { full_name: 'Off Record' } });
    await changeEmail(db, user.id, `off-new-${uid()}@example.com`);
    await db.query('select public.resync_users()');
    expect(await trail(user.id)).toEqual([]);
  });

  it('records a trigger sign-up: every set column named, email and phone values kept out', async () => {
    await audit({ enabled: true });
    const user = await signUpPhone(db, {
      phone: `+1555${Math.floor(Math.random() * 1e7).toString().padStart(7, '0')}`,
      data: { full_name: 'Pat Phone', role: 'artist' },
      autoconfirm: false,
    });
    const rows = await trail(user.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      user_id: user.id,
      source: 'trigger',
      action: 'inserted',
      old_values: null,
      sqlstate: null,
    });
    expect(rows[0]!.changed_columns).toEqual(
      ['created_at', 'full_name', 'is_anonymous', 'phone', 'role'],
    );
    // The phone changed (it is named) but its value is not recorded.
    expect(Object.keys(rows[0]!.new_values!).sort()).toEqual(
      ['created_at', 'full_name', 'is_anonymous', 'role'],
    );
    expect(rows[0]!.new_values).toMatchObject({
      full_name: 'Pat Phone',
      role: 'artist',
      is_anonymous: false,
    });
    expect(JSON.stringify(rows)).not.toContain(user.phone!);
  });

  it('records an email change by name only, and with its values when the project opts in', async () => {
    await audit({ enabled: true });
    const user = await signUpUser(db, 'before');
    const before = user.email!;
    const first = `after-${uid()}@example.com`;
    await changeEmail(db, user.id, first);
    const [, , change] = await trail(user.id);
    expect(change).toEqual({
      user_id: user.id,
      source: 'trigger',
      action: 'updated',
      changed_columns: ['email'],
      old_values: {},
      new_values: {},
      sqlstate: null,
    });
    expect(JSON.stringify(await trail(user.id))).not.toContain(before.split('@')[0]);

    await audit({ enabled: true, record_contact_values: true });
    const second = `again-${uid()}@example.com`;
    await changeEmail(db, user.id, second);
    const rows = await trail(user.id);
    expect(rows.at(-1)).toMatchObject({
      action: 'updated',
      changed_columns: ['email'],
      old_values: { email: first },
      new_values: { email: second },
    });
  });

  it('records the confirmation of an email sign-up as its own update', async () => {
    await audit({ enabled: true });
    const user = await signUpUser(db, 'confirm');
    const rows = await trail(user.id);
    expect(rows.map((r) => [r.source, r.action, r.changed_columns])).toEqual([
      ['trigger', 'inserted', ['created_at', 'email', 'is_anonymous', 'role']],
      ['trigger', 'updated', ['email_confirmed_at']],
    ]);
    expect(rows[1]!.old_values).toEqual({ email_confirmed_at: null });
    expect(typeof rows[1]!.new_values!['email_confirmed_at']).toBe('string');
  });

  it('records role changes with old and new values, and a sign-in records nothing', async () => {
    await audit({ enabled: true });
    const user = await signUpUser(db, 'role', { autoconfirm: false });
    await adminUpdateAppMetadata(db, user.id, { role: 'admin' });
    await signIn(db, user.id);
    await updateUserMetadata(db, user.id, { role: 'admin', theme: 'dark' });
    const rows = await trail(user.id);
    expect(rows.map((r) => [r.action, r.changed_columns, r.old_values, r.new_values])).toEqual([
      ['inserted', ['created_at', 'email', 'is_anonymous', 'role'], null, expect.any(Object)],
      ['updated', ['role'], { role: 'client' }, { role: 'admin' }],
    ]);
  });

  it('names the path: sync_user from a hook or webhook, sync_my_user as self_heal, resync', async () => {
    const user = await signUpUser(db, 'paths', { autoconfirm: false });
    // Drift made behind the sync's back (as the owner): an admin role app_metadata does not
    // back, which every sync path takes away again.
    const stale = async () =>
      await db.query(`update public.users set role = 'admin', updated_at = now() where id = $1`, [
        user.id,
      ]);
    await audit({ enabled: true });

    const paths = [
      () => db.syncUser(user.id, { source: 'hook:custom-access-token' }),
      () => db.syncUser(user.id, { source: 'webhook' }),
      () => db.syncUser(user.id),
      () => db.asUser(user.id, (tx) => tx.query('select public.sync_my_user()')),
      () => db.resyncUsers('p_user_ids => array[$1]::uuid[]', [user.id]),
      () => db.resyncUsers(),
    ];
    for (const path of paths) {
      await stale();
      await path();
    }

    const rows = await trail(user.id);
    expect(rows.map((r) => r.source)).toEqual([
      'hook:custom-access-token',
      'webhook',
      'sync_user',
      'self_heal',
      'resync',
      'resync',
    ]);
    for (const row of rows) {
      expect(row).toMatchObject({
        action: 'updated',
        changed_columns: ['role'],
        old_values: { role: 'admin' },
        new_values: { role: 'client' },
      });
    }
  });

  it('sync_user refuses a source that is not a sync path, and writes nothing', async () => {
    await audit({ enabled: true });
    const user = await signUpUser(db, 'src', { autoconfirm: false });
    for (const source of ['trigger', 'resync', 'self_heal', '', 'hook:', 'hook:Bad Name']) {
      const state = await sqlState(db.syncUser(user.id, { source }));
      expect({ source, state }).toEqual({ source, state: '22023' });
    }
    expect((await trail(user.id)).map((r) => r.source)).toEqual(['trigger']);
  });

  it('records the deletion of an orphan by resync, and a failed write with its SQLSTATE', async () => {
    const orphan = await signUpUser(db, 'orphan', { autoconfirm: false });
    const blocked = `blocked-${uid()}@audit.test`;
    await audit({ enabled: true });

    // An orphan: the app row stays while its auth user goes (the cascade held back).
    await db.exec('alter table public.users drop constraint users_id_fkey');
    try {
      await deleteUser(db, orphan.id);
      await db.query('select public.resync_users()');
    } finally {
      await db.exec(`delete from public.users u where not exists
                       (select from auth.users a where a.id = u.id);
                     alter table public.users add constraint users_id_fkey foreign key (id)
                       references auth.users (id) on delete cascade`);
    }
    const [deleted] = await trail(orphan.id);
    expect(deleted).toMatchObject({
      source: 'resync',
      action: 'deleted',
      new_values: null,
      old_values: { role: 'client', is_anonymous: false },
    });
    expect(deleted!.changed_columns).toContain('email');

    await db.exec(`alter table public.users add constraint users_email_not_audit_blocked
                     check (email not like '%@audit.test')`);
    try {
      const user = await signUpEmail(db, { email: blocked, autoconfirm: false });
      expect(await trail(user.id)).toEqual([{
        user_id: user.id,
        source: 'trigger',
        action: 'failed',
        changed_columns: [],
        old_values: null,
        new_values: null,
        sqlstate: '23514',
      }]);
    } finally {
      await db.exec('alter table public.users drop constraint users_email_not_audit_blocked');
    }
  });

  it('is readable by service_role only, and nobody but its owner can write, change or delete it', async () => {
    await audit({ enabled: true });
    const user = await signUpUser(db, 'priv', { autoconfirm: false });
    const rows = await db.asServiceRole((tx) =>
      tx.query('select source from public.user_sync_audit where user_id = $1', [user.id])
    );
    expect(rows).toEqual([{ source: 'trigger' }]);

    const attempts: Record<string, string> = {
      select: 'select * from public.user_sync_audit',
      insert: `insert into public.user_sync_audit (user_id, source, action)
                 values ('${user.id}', 'x', 'updated')`,
      update: `update public.user_sync_audit set source = 'forged'`,
      delete: 'delete from public.user_sync_audit',
      truncate: 'truncate public.user_sync_audit',
      setval: `select setval('public.user_sync_audit_id_seq', 1)`,
      settings: 'update user_sync.audit_settings set enabled = false',
      prune: `select user_sync.prune_audit('0 days')`,
    };
    const callers: CallerRole[] = ['anon', 'authenticated', 'service_role', 'supabase_auth_admin'];
    for (const who of callers) {
      for (const [what, sql] of Object.entries(attempts)) {
        if (who === 'service_role' && what === 'select') continue;
        const state = await sqlState(db.as(who, (tx) => tx.query(sql), user.id));
        expect({ who, what, state }).toEqual({ who, what, state: '42501' });
      }
    }
    expect((await trail(user.id)).map((r) => r.source)).toEqual(['trigger']);
    const [settings] = await db.query('select enabled from user_sync.audit_settings');
    expect(settings).toEqual({ enabled: true });
  });

  it('prunes by age with one call, and refuses a negative or missing age', async () => {
    await audit({ enabled: true });
    const user = await signUpUser(db, 'prune');
    expect(await trail(user.id)).toHaveLength(2);
    // Age the sign-up's row by 100 days (as the owner; nobody else can).
    await db.query(
      `update public.user_sync_audit set occurred_at = now() - interval '100 days'
        where id = (select min(id) from public.user_sync_audit where user_id = $1)`,
      [user.id],
    );
    const [pruned] = await db.query<{ pruned: string }>(
      `select user_sync.prune_audit('90 days') as pruned`,
    );
    expect(Number(pruned?.pruned)).toBeGreaterThanOrEqual(1);
    expect((await trail(user.id)).map((r) => r.changed_columns)).toEqual([['email_confirmed_at']]);
    expect(await sqlState(db.query(`select user_sync.prune_audit('-1 day')`))).toBe('22023');
    expect(await sqlState(db.query('select user_sync.prune_audit(null)'))).toBe('22023');
  });
});

describe('roles stay backed by app_metadata', () => {
  it('removing app_metadata.role demotes an admin to the default role', async () => {
    const admin = await adminCreateUser(db, {
      email: `admin-${uid()}@example.com`,
      app_metadata: { role: 'admin' },
      email_confirm: true,
    });
    expect(await role(admin.id)).toBe('admin');
    await adminUpdateAppMetadata(db, admin.id, { role: null });
    expect(await role(admin.id)).toBe('client');
  });

  it('an unknown app_metadata.role demotes too; the user cannot keep or regain it through user_metadata', async () => {
    const admin = await adminCreateUser(db, {
      email: `unknown-${uid()}@example.com`,
      app_metadata: { role: 'admin' },
    });
    await adminUpdateAppMetadata(db, admin.id, { role: 'superuser' });
    expect(await role(admin.id)).toBe('client');
    await updateUserMetadata(db, admin.id, { role: 'admin' });
    expect(await role(admin.id)).toBe('client');
  });

  it('a self-assignable role chosen at sign-up is kept when app_metadata has no role', async () => {
    const artist = await signUpUser(db, 'artist', { data: { role: 'artist' } });
    expect(await role(artist.id)).toBe('artist');
    await adminUpdateAppMetadata(db, artist.id, { plan: 'pro' });
    await db.query('select public.resync_users()');
    expect(await role(artist.id)).toBe('artist');
    // Granted, then withdrawn: back to the default, not to the earlier choice.
    await adminUpdateAppMetadata(db, artist.id, { role: 'admin' });
    expect(await role(artist.id)).toBe('admin');
    await adminUpdateAppMetadata(db, artist.id, { role: null });
    expect(await role(artist.id)).toBe('client');
  });

  it('a role set directly in public.users without app_metadata does not survive the next sync', async () => {
    const user = await signUpUser(db, 'direct', { autoconfirm: false });
    await db.query(`update public.users set role = 'admin' where id = $1`, [user.id]);
    const [report] = await db.query<{ r: { stale: number; updated: number } }>(
      'select public.resync_users(p_dry_run => true) as r',
    );
    expect(report!.r).toMatchObject({ stale: 1 });
    await db.query('select public.resync_users()');
    expect(await role(user.id)).toBe('client');
  });
});
