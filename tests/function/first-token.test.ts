// The first access token of a sign-up minted inside the sign-up's own transaction (anonymous
// sign-ins, implicit-flow OAuth, id_token sign-ins: dev/auth/sign-up-paths.ts), through the real
// app and the real migrations. Supabase Auth calls the custom-access-token hook before that
// transaction commits (docs/reference/auth-hooks.md#custom-access-token), so the HTTP hook's
// sync_user cannot see the user and the role comes from the creation rule over the token's
// claims (user_sync.token_role). Here a GoTrue transaction is held open while the app is
// called, then committed, and the token's user_role must be what public.users then holds.
//
// The open-transaction tests need two sessions (GoTrue's and the function's), so they run on
// the server only.

import { describe, expect, it } from 'vitest';
import { type DbClient, SERVER, signUpUser, uid, useServerDb } from '../helpers/db.ts';
import { useDirectApp } from '../helpers/app.ts';
import { userTokenClaims } from '../helpers/claims.ts';
import {
  adminCreateUser,
  type AuthDb,
  type AuthUser,
  signUpAnonymous,
  signUpPhone,
} from '../helpers/gotrue.ts';
import { customAccessTokenBody, hookRequest } from '../helpers/supabase-auth.ts';
import { BASE, baseEnv, HOOK_SECRET } from './fakes.ts';

type Json = Record<string, unknown>;

/** GoTrue's statement sequences inside a transaction that is already open. */
const inTx = (tx: DbClient): AuthDb => ({ asAuthAdmin: (fn) => fn(tx) });

/**
 * The custom-access-token event GoTrue builds from the user it holds in memory
 * (docs/reference/auth-hooks.md#custom-access-token).
 */
const tokenEvent = (user: AuthUser, method: string): string =>
  customAccessTokenBody(user.id, userTokenClaims(user, method), method);

describe.skipIf(!SERVER)(
  'the first token, minted inside the sign-up transaction (server only)',
  () => {
    const db = useServerDb();
    const direct = useDirectApp(db, baseEnv);

    /** The app's answer, as Supabase Auth receives it over HTTP. */
    async function customAccessToken(user: AuthUser, method: string) {
      const res = await direct.app.request(
        await hookRequest(`${BASE}/hooks/custom-access-token`, tokenEvent(user, method), {
          secrets: HOOK_SECRET,
        }),
      );
      expect(res.status).toBe(200);
      const { claims } = (await res.json()) as { claims: Json };
      return { claims, log: direct.logger.entries.at(-1)! };
    }

    /**
     * A GoTrue API call that mints a token before it commits: `create` runs GoTrue's statements in
     * an open supabase_auth_admin transaction, the app answers the token hook from its own session,
     * and only then does the transaction commit.
     */
    async function tokenBeforeCommit(
      create: (auth: AuthDb) => Promise<AuthUser>,
      method = 'password',
    ) {
      const { user, token } = await db.asAuthAdmin(async (tx) => {
        const user = await create(inTx(tx));
        // The function's session cannot see the user: this is the token this file is about.
        expect(await db.query('select 1 from auth.users where id = $1', [user.id])).toEqual([]);
        const token = await customAccessToken(user, method);
        return { user, token };
      });
      const committed = await db.appRow<{ role: string }>(user.id, 'role');
      return { user, ...token, committedRole: committed?.role };
    }

    for (
      const [name, data, expected] of [
        ['a plain sign-up', {}, 'client'],
        ["a sign-up choosing 'artist'", { role: 'artist' }, 'artist'],
        ["a sign-up asking for 'admin'", { role: 'admin' }, 'client'],
      ] as const
    ) {
      it(`${name}: user_role ${expected}, what public.users holds after the commit`, async () => {
        const { claims, log, committedRole } = await tokenBeforeCommit((auth) =>
          signUpUser(auth, 'first', { data: { full_name: 'First Token', ...data } })
        );
        expect(log).toMatchObject({ outcome: 'claims_added', detail: 'not_found' });
        expect({ user_role: claims['user_role'], committedRole }).toEqual({
          user_role: expected,
          committedRole: expected,
        });
      });
    }

    it('phone and anonymous sign-ups (also signed in at once)', async () => {
      const phone = await tokenBeforeCommit((auth) =>
        signUpPhone(auth, {
          phone: `+1555${String(Date.now()).slice(-7)}`,
          autoconfirm: true,
          data: { role: 'producer' },
        })
      );
      expect([phone.claims['user_role'], phone.committedRole]).toEqual(['producer', 'producer']);
      const anonymous = await tokenBeforeCommit((auth) => signUpAnonymous(auth), 'anonymous');
      expect([anonymous.claims['user_role'], anonymous.committedRole]).toEqual([
        'client',
        'client',
      ]);
    });

    it('the next token, after the commit, comes from the row and says the same', async () => {
      const first = await tokenBeforeCommit((auth) =>
        signUpUser(auth, 'next', { data: { role: 'artist' } })
      );
      const next = await customAccessToken(first.user, 'token_refresh');
      expect(next.log).toMatchObject({ outcome: 'claims_added' });
      expect(next.log['detail']).not.toBe('not_found');
      expect(next.claims['user_role']).toBe(first.claims['user_role']);
    });

    // Every combination of the role rule's inputs against the SQL that writes the row. GoTrue
    // mints no token inside admin createUser; here one is, to hold the derived role against what
    // the trigger wrote from the same app_metadata and user_metadata.
    it('for every combination of app_metadata.role and user_metadata.role, the same role as the trigger', async () => {
      const appRoles: unknown[] = [undefined, 'admin', 'producer', 'superuser', 42, ['admin']];
      const userRoles: unknown[] = [undefined, 'artist', 'admin', 'owner', 'Client', null];
      const got: string[] = [];
      const want: string[] = [];
      for (const appRole of appRoles) {
        for (const userRole of userRoles) {
          const { claims, committedRole } = await tokenBeforeCommit((auth) =>
            adminCreateUser(auth, {
              email: `combo-${uid()}@example.com`,
              email_confirm: true,
              ...(appRole === undefined ? {} : { app_metadata: { role: appRole } }),
              ...(userRole === undefined ? {} : { user_metadata: { role: userRole } }),
            })
          );
          const label = `${JSON.stringify(appRole)}/${JSON.stringify(userRole)}`;
          got.push(`${label}: ${String(claims['user_role'])}`);
          want.push(`${label}: ${String(committedRole)}`);
        }
      }
      expect(got).toEqual(want);
      // And the combinations did reach every branch of the rule.
      expect(new Set(want.map((w) => w.split(': ')[1]))).toEqual(
        new Set(['client', 'artist', 'admin', 'producer']),
      );
    });
  },
);
