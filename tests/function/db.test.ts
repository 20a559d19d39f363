// The app against the real migrations: each route's effect on public.users. Runs on the
// server when DATABASE_URL is set, else on PGlite (tests/helpers/db.ts decides).
import { beforeEach, describe, expect, it } from 'vitest';
import { insertAuthUser, useTestDb } from '../helpers/db.ts';
import { useDirectApp } from '../helpers/app.ts';
import {
  afterUserCreatedBody,
  beforeUserCreatedBody,
  customAccessTokenBody,
  defaultClaims,
  hookRequest,
} from '../helpers/supabase-auth.ts';
import { ADMIN_TOKEN, baseEnv, HOOK_SECRET, WEBHOOK_SECRET } from './fakes.ts';

const BASE = 'http://localhost/user-sync';
const db = useTestDb();
const direct = useDirectApp(db, baseEnv);
const logger = direct.logger;

beforeEach(async () => {
  await db.exec(
    'delete from auth.users; delete from public.users; delete from user_sync.sync_failures',
  );
});

interface NewUser {
  id?: string;
  email?: string;
  app?: Record<string, unknown>;
  meta?: Record<string, unknown>;
}

/**
 * A sign-up as GoTrue writes it: insert, then the role update
 * (docs/reference/auth-schema.md#sign-up-statement-order).
 */
function signUp(u: NewUser = {}) {
  return db.asAuthAdmin(async (tx) => {
    const { id, email } = await insertAuthUser(tx, {
      id: u.id,
      email: u.email,
      role: '',
      app_metadata: u.app,
      user_metadata: u.meta,
    });
    await tx.query(`update auth.users set role = 'authenticated' where id = $1`, [id]);
    return { id, email: email! };
  });
}

async function appRow(id: string) {
  const row = await db.appRow<{ email: string; role: string; full_name: string | null }>(
    id,
    'email, role, full_name',
  );
  return row ?? null;
}

async function authRow(id: string) {
  const rows = await db.query<Record<string, unknown>>('select * from auth.users where id = $1', [
    id,
  ]);
  return rows[0]!;
}

const count = async (table: string) =>
  Number((await db.query<{ n: string }>(`select count(*)::text as n from ${table}`))[0]!.n);

const hook = async (path: string, body: string) =>
  await direct.app.request(
    await hookRequest(`${BASE}/hooks/${path}`, body, { secrets: HOOK_SECRET }),
  );

const webhook = (type: string, record: unknown, old_record: unknown) =>
  direct.app.request(`${BASE}/webhooks/auth-users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${WEBHOOK_SECRET}`, 'content-type': 'application/json' },
    body: JSON.stringify({ type, table: 'users', record, schema: 'auth', old_record }),
  });

const resync = async (body: unknown) => {
  const res = await direct.app.request(`${BASE}/resync`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return await res.json();
};

describe(`hooks against the database`, () => {
  it('before-user-created writes nothing, allowed or refused', async () => {
    const before = await count('public.users');
    const ok = await hook('before-user-created', beforeUserCreatedBody({ email: 'x@example.com' }));
    expect(await ok.json()).toEqual({});
    const refused = await hook(
      'before-user-created',
      beforeUserCreatedBody({ raw_user_meta_data: { role: 'admin' } }),
    );
    expect((await refused.json()).error.http_code).toBe(400);
    expect(await count('public.users')).toBe(before);
    expect(await count('auth.users')).toBe(0);
  });

  it('after-user-created creates the row the trigger missed', async () => {
    const { id, email } = await signUp({ meta: { full_name: 'Ada Lovelace', role: 'artist' } });
    await db.exec(`delete from public.users where id = '${id}'`);
    const res = await hook('after-user-created', afterUserCreatedBody(await authRow(id) as never));
    expect(await res.json()).toEqual({});
    expect(res.status).toBe(200);
    expect(await appRow(id)).toEqual({ email, role: 'artist', full_name: 'Ada Lovelace' });
    expect(logger.entries.at(-1)).toMatchObject({ outcome: 'synced', detail: 'inserted' });
  });

  it('after-user-created leaves an in-sync row alone', async () => {
    const { id } = await signUp();
    const before = await db.query('select updated_at from public.users where id = $1', [id]);
    const res = await hook('after-user-created', afterUserCreatedBody(await authRow(id) as never));
    expect(res.status).toBe(200);
    expect(logger.entries.at(-1)).toMatchObject({ detail: 'unchanged' });
    expect(await db.query('select updated_at from public.users where id = $1', [id])).toEqual(
      before,
    );
  });

  it('custom-access-token ensures the row and adds the synced role', async () => {
    const { id } = await signUp({
      app: { provider: 'email', providers: ['email'], role: 'producer' },
    });
    await db.exec(`delete from public.users where id = '${id}'`);
    const body = customAccessTokenBody(id, defaultClaims(id));
    const res = await hook('custom-access-token', body);
    expect(res.status).toBe(200);
    const out = await res.json();
    expect(out.claims).toEqual({ ...JSON.parse(body).claims, user_role: 'producer' });
    expect((await appRow(id))?.role).toBe('producer');
  });

  it('a role asked for in user_metadata never becomes admin', async () => {
    const { id } = await signUp({ meta: { role: 'admin' } });
    const res = await hook('custom-access-token', customAccessTokenBody(id, defaultClaims(id)));
    expect((await res.json()).claims.user_role).toBe('client');
    expect((await appRow(id))?.role).toBe('client');
  });
});

describe('database webhook against the database', () => {
  it('INSERT creates the missing row', async () => {
    const { id } = await signUp();
    await db.exec(`delete from public.users where id = '${id}'`);
    const res = await webhook('INSERT', { id, encrypted_password: 'x' }, null);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ user_id: id, action: 'inserted', role: 'client' });
    expect(await appRow(id)).not.toBeNull();
  });

  it('UPDATE repairs a stale row from auth.users, not from the payload', async () => {
    const { id, email } = await signUp();
    await db.exec(`update public.users set email = 'stale@example.com' where id = '${id}'`);
    const res = await webhook('UPDATE', { id, email: 'payload-lies@example.com' }, { id });
    expect(await res.json()).toMatchObject({ action: 'updated' });
    expect((await appRow(id))?.email).toBe(email);
  });

  it('DELETE leaves no row for a deleted auth user', async () => {
    const { id } = await signUp();
    await db.exec(`delete from auth.users where id = '${id}'`);
    const res = await webhook('DELETE', null, { id });
    expect(res.status).toBe(200);
    expect(['deleted', 'not_found']).toContain((await res.json()).action);
    expect(await appRow(id)).toBeNull();
  });
});

describe('resync against the database', () => {
  it('reports drift in a dry run, repairs it, then finds nothing, across batches', async () => {
    const users = [];
    for (let i = 0; i < 5; i++) users.push(await signUp());
    const [a, b, c] = users;
    await db.exec(`delete from public.users where id in ('${a!.id}', '${b!.id}')`);
    await db.exec(`update public.users set email = 'stale@example.com' where id = '${c!.id}'`);

    const dry = await resync({ dry_run: true, batch_size: 2 });
    expect(dry).toMatchObject({
      dry_run: true,
      done: true,
      batches: 3,
      auth_users: 5,
      app_users: 3,
      missing: 2,
      stale: 1,
      orphaned: 0,
      inserted: 0,
      updated: 0,
      deleted: 0,
      unchanged: 2,
      next_cursor: null,
    });
    expect(await appRow(a!.id)).toBeNull();

    const real = await resync({ batch_size: 2 });
    expect(real).toMatchObject({
      dry_run: false,
      missing: 2,
      stale: 1,
      inserted: 2,
      updated: 1,
      unchanged: 2,
    });
    expect((await appRow(c!.id))?.email).toBe(c!.email);

    const again = await resync({});
    expect(again).toMatchObject({
      missing: 0,
      stale: 0,
      inserted: 0,
      updated: 0,
      unchanged: 5,
      done: true,
    });
  });

  it('resyncs exactly the given user_ids', async () => {
    const a = await signUp();
    const b = await signUp();
    await db.exec(`delete from public.users where id in ('${a.id}', '${b.id}')`);
    const report = await resync({ user_ids: [a.id] });
    expect(report).toMatchObject({ scope: 'ids', inserted: 1 });
    expect(await appRow(a.id)).not.toBeNull();
    expect(await appRow(b.id)).toBeNull();
  });
});
