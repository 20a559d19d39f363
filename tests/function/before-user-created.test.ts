// before-user-created against the real migrations. The function has no role list of its own: it
// asks public.hook_before_user_created (the Postgres hook Auth can call too), so its answers are
// the database's word for word (tests/db/pg-hooks.test.ts sends every event to both), and a role
// a project adds to user_sync.roles counts at once, with no redeploy.
import { describe, expect, it } from 'vitest';
import { useDirectApp } from '../helpers/app.ts';
import { useTestDb } from '../helpers/db.ts';
import { beforeUserCreatedBody, hookRequest } from '../helpers/supabase-auth.ts';
import { BASE, baseEnv, HOOK_SECRET } from './fakes.ts';

const db = useTestDb();
const direct = useDirectApp(db, baseEnv);

async function ask(role: unknown): Promise<Record<string, unknown>> {
  const body = beforeUserCreatedBody({ email: 'new@example.com', raw_user_meta_data: { role } });
  const res = await direct.app.request(
    await hookRequest(`${BASE}/hooks/before-user-created`, body, { secrets: HOOK_SECRET }),
  );
  expect(res.status).toBe(200);
  return await res.json();
}

describe('POST /hooks/before-user-created asks the database', () => {
  it('allows the self-assignable roles user_sync.roles ships', async () => {
    for (const role of ['client', 'artist', 'producer']) expect(await ask(role), role).toEqual({});
  });

  it("refuses admin, unknown roles and roles that are not strings, in the database's words", async () => {
    expect(await ask('admin')).toEqual({
      error: {
        http_code: 400,
        message:
          'The role "admin" cannot be chosen at sign-up. Choose one of: client, artist, producer.',
      },
    });
    expect(await ask('Admin')).toMatchObject({ error: { http_code: 400 } });
    expect(await ask(42)).toEqual({
      error: {
        http_code: 400,
        message: 'The requested role is not valid. Choose one of: client, artist, producer.',
      },
    });
    expect(await ask(['admin'])).toMatchObject({ error: { http_code: 400 } });
  });

  it('follows user_sync.roles as it is now: a role added there is offered at once', async () => {
    await db.exec(
      "insert into user_sync.roles (role, self_assignable, is_default) values ('reviewer', true, false)",
    );
    try {
      expect(await ask('reviewer')).toEqual({});
      expect(await ask('admin')).toMatchObject({
        error: {
          message: expect.stringMatching(/Choose one of: client, artist, producer, reviewer\.$/),
        },
      });
    } finally {
      await db.exec("delete from user_sync.roles where role = 'reviewer'");
    }
    expect(await ask('reviewer')).toMatchObject({ error: { http_code: 400 } });
  });

  it('writes nothing, allowed or refused', async () => {
    const before = await db.query('select count(*)::int as n from public.users');
    await ask('artist');
    await ask('admin');
    expect(await db.query('select count(*)::int as n from public.users')).toEqual(before);
  });
});
