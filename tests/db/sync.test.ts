// Every way GoTrue creates or changes a user, run as GoTrue runs it (tests/helpers/gotrue.ts),
// and the public.users row the migrations make of it: every column, against README's
// "Who owns which column". On the server when DATABASE_URL is set, else on PGlite.

import { describe, expect, it } from 'vitest';
import { type AppRow, signUpUser, uid, useTestDb } from '../helpers/db.ts';
import {
  adminCreateUser,
  adminUpdateAppMetadata,
  type AuthUser,
  changeEmail,
  deleteUser,
  githubClaims,
  googleClaims,
  invite,
  signIn,
  signInOAuth,
  signUpAnonymous,
  signUpEmail,
  signUpPhone,
  updateUserMetadata,
} from '../helpers/gotrue.ts';

const db = useTestDb();

const COLUMNS = `id, email, phone, full_name, avatar_url, role, email_confirmed_at, is_anonymous,
  created_at, updated_at`;

async function appRows(id: string): Promise<AppRow[]> {
  return await db.query<AppRow>(`select ${COLUMNS} from public.users where id = $1`, [id]);
}

const xmin = async (id: string) =>
  (await db.appRow<{ xmin: string }>(id, 'xmin::text as xmin'))?.xmin;

/**
 * The row the mapping must produce for an auth user written in one GoTrue transaction: the
 * auth-owned columns copied, created_at and updated_at those of the auth row (the sync ran in
 * the same transaction, so its now() is GoTrue's now()).
 */
function expected(
  auth: AuthUser,
  profile: Pick<AppRow, 'full_name' | 'avatar_url' | 'role'>,
): AppRow {
  return {
    id: auth.id,
    email: auth.email,
    phone: auth.phone,
    email_confirmed_at: auth.email_confirmed_at,
    is_anonymous: auth.is_anonymous,
    created_at: auth.created_at as Date,
    updated_at: auth.updated_at as Date,
    ...profile,
  };
}

/** The profile columns of a row nobody named: the default role, no name, no picture. */
const NO_PROFILE = { full_name: null, avatar_url: null, role: 'client' };

/** A way GoTrue creates a user, and the profile columns its app row must get. */
interface SignUpPath {
  path: string;
  signUp: () => Promise<AuthUser>;
  profile: Pick<AppRow, 'full_name' | 'avatar_url' | 'role'>;
  /** What else must hold of the auth user and its app row. */
  also?: (auth: AuthUser, row: AppRow) => void;
}

const googleNameOnly = () => {
  const claims = googleClaims({
    email: `pic-${uid()}@gmail.com`,
    name: 'Only Name',
    picture: 'https://lh3.googleusercontent.com/a/only=s96-c',
  });
  delete claims.full_name;
  delete claims.avatar_url;
  return claims;
};

const SIGN_UP_PATHS: SignUpPath[] = [
  {
    path: 'email sign-up with confirmation on: no email_confirmed_at, the self-chosen role',
    signUp: () =>
      signUpEmail(db, {
        email: `Pending-${uid()}@Example.com`,
        autoconfirm: false,
        data: { full_name: 'Grace Hopper', role: 'artist' },
      }),
    profile: { full_name: 'Grace Hopper', avatar_url: null, role: 'artist' },
    also: (auth, row) => {
      expect(auth.email_confirmed_at).toBeNull();
      expect(row.email).toMatch(/^pending-.*@example\.com$/);
    },
  },
  {
    path: 'email sign-up with confirmation off: email_confirmed_at follows, no name stays null',
    signUp: () => signUpUser(db, 'auto'),
    profile: NO_PROFILE,
    also: (auth) => expect(auth.email_confirmed_at).toBeInstanceOf(Date),
  },
  {
    path: 'Google OAuth: name → full_name, picture/avatar_url → avatar_url, confirmed email',
    signUp: () =>
      signInOAuth(db, {
        provider: 'google',
        claims: googleClaims({
          email: `ada-${uid()}@gmail.com`,
          name: 'Ada Lovelace',
          picture: 'https://lh3.googleusercontent.com/a/ada=s96-c',
        }),
      }),
    profile: {
      full_name: 'Ada Lovelace',
      avatar_url: 'https://lh3.googleusercontent.com/a/ada=s96-c',
      role: 'client',
    },
    also: (auth) => expect(auth.email_confirmed_at).toBeInstanceOf(Date),
  },
  {
    path: 'Google-style claims with only name and picture still fill both columns',
    signUp: () => signInOAuth(db, { provider: 'google', claims: googleNameOnly() }),
    profile: {
      full_name: 'Only Name',
      avatar_url: 'https://lh3.googleusercontent.com/a/only=s96-c',
      role: 'client',
    },
    also: (auth) => {
      expect(auth.raw_user_meta_data).not.toHaveProperty('full_name');
      expect(auth.raw_user_meta_data).not.toHaveProperty('avatar_url');
    },
  },
  {
    path: 'GitHub OAuth: full_name from the profile name, avatar_url',
    signUp: () =>
      signInOAuth(db, {
        provider: 'github',
        claims: githubClaims({
          email: `octo-${uid()}@example.com`,
          userName: 'octocat',
          id: '583231',
        }),
      }),
    profile: {
      full_name: 'The Octocat',
      avatar_url: 'https://avatars.githubusercontent.com/u/583231?v=4',
      role: 'client',
    },
  },
  {
    path: 'GitHub OAuth without a profile name: full_name from user_name',
    signUp: () =>
      signInOAuth(db, {
        provider: 'github',
        claims: githubClaims({
          email: `noname-${uid()}@example.com`,
          userName: 'hubber',
          name: null,
          id: '4242',
        }),
      }),
    profile: {
      full_name: 'hubber',
      avatar_url: 'https://avatars.githubusercontent.com/u/4242?v=4',
      role: 'client',
    },
  },
  {
    path: 'phone sign-up without email: phone as GoTrue stores it, email null',
    signUp: () => signUpPhone(db, { phone: '+46 70 555 01 23', autoconfirm: true }),
    profile: NO_PROFILE,
    also: (auth, row) => {
      expect(auth.phone).toBe('46705550123');
      expect(row).toMatchObject({ email: null, phone: '46705550123', email_confirmed_at: null });
    },
  },
  {
    path: 'anonymous sign-up: no email, no phone, is_anonymous',
    signUp: () => signUpAnonymous(db),
    profile: NO_PROFILE,
    also: (_, row) => expect(row).toMatchObject({ email: null, phone: null, is_anonymous: true }),
  },
  {
    path: 'invite: an unconfirmed email user with the invitation data',
    signUp: () =>
      invite(db, {
        email: `invited-${uid()}@example.com`,
        data: { full_name: 'Invited Person', role: 'producer' },
      }),
    profile: { full_name: 'Invited Person', avatar_url: null, role: 'producer' },
    also: (auth) => expect(auth.invited_at).toBeInstanceOf(Date),
  },
  {
    path: 'admin createUser: app_metadata {role: admin} arrives in a later UPDATE and is honoured',
    signUp: () =>
      adminCreateUser(db, {
        email: `boss-${uid()}@example.com`,
        password: 'secret123',
        app_metadata: { role: 'admin' },
        user_metadata: { full_name: 'The Boss' },
        email_confirm: true,
      }),
    profile: { full_name: 'The Boss', avatar_url: null, role: 'admin' },
    also: (auth) =>
      expect(auth.raw_app_meta_data).toMatchObject({ role: 'admin', provider: 'email' }),
  },
  {
    path: 'admin createUser without app_metadata: the default role',
    signUp: () => adminCreateUser(db, { email: `plain-${uid()}@example.com` }),
    profile: NO_PROFILE,
  },
];

describe('sign-up paths', () => {
  for (const { path, signUp, profile, also } of SIGN_UP_PATHS) {
    it(path, async () => {
      const auth = await signUp();
      const rows = await appRows(auth.id);
      expect(rows).toEqual([expected(auth, profile)]);
      also?.(auth, rows[0]!);
    });
  }

  it('confirming the email later updates email_confirmed_at and updated_at', async () => {
    const auth = await signUpUser(db, 'later', { autoconfirm: false });
    const confirmed = await db.asAuthAdmin(async (tx) => {
      await tx.query(
        `UPDATE users SET confirmation_token = '', email_confirmed_at = now(), updated_at = now()
         WHERE id = $1`,
        [auth.id],
      );
      return (await tx.query<AuthUser>('SELECT * FROM users WHERE id = $1', [auth.id]))[0]!;
    });
    expect(confirmed.email_confirmed_at).toBeInstanceOf(Date);
    expect(await appRows(auth.id)).toEqual([
      expected(confirmed, { full_name: null, avatar_url: null, role: 'client' }),
    ]);
  });
});

describe('changes after sign-up', () => {
  it('email change: the email follows once confirmed, not while only requested', async () => {
    const auth = await signUpUser(db, 'old', { data: { full_name: 'Changer', role: 'artist' } });
    const before = await appRows(auth.id);
    const beforeXmin = await xmin(auth.id);

    const requested = await changeEmail(db, auth.id, `New-${uid()}@example.com`, {
      confirm: false,
    });
    expect(requested.email_change).toMatch(/^new-/);
    expect(await appRows(auth.id)).toEqual(before);
    expect(await xmin(auth.id)).toBe(beforeXmin);

    const newEmail = `new-${uid()}@example.com`;
    const changed = await changeEmail(db, auth.id, newEmail);
    expect(changed.email).toBe(newEmail);
    expect(await appRows(auth.id)).toEqual([
      expected(changed, { full_name: 'Changer', avatar_url: null, role: 'artist' }),
    ]);
    expect(changed.updated_at!.getTime()).toBeGreaterThan(before[0]!.updated_at.getTime());
  });

  it('hard delete: the app row goes with the auth user', async () => {
    const auth = await signUpUser(db, 'gone');
    expect(await appRows(auth.id)).toHaveLength(1);
    await deleteUser(db, auth.id);
    expect(await appRows(auth.id)).toEqual([]);
    expect(await db.query('select 1 from user_sync.sync_failures where user_id = $1', [auth.id]))
      .toEqual([]);
  });

  it('a sign-in (last_sign_in_at, updated_at) does not write public.users', async () => {
    const auth = await signUpUser(db, 'signin');
    const before = await appRows(auth.id);
    const beforeXmin = await xmin(auth.id);
    const signedIn = await signIn(db, auth.id);
    expect(signedIn.last_sign_in_at).toBeInstanceOf(Date);
    expect(signedIn.updated_at!.getTime()).toBeGreaterThan(auth.updated_at!.getTime());
    expect(await appRows(auth.id)).toEqual(before);
    expect(await xmin(auth.id)).toBe(beforeXmin);
  });

  it('GoTrue rewriting unchanged metadata does not write public.users', async () => {
    const auth = await signUpUser(db, 'same', { data: { full_name: 'Same' } });
    const before = await appRows(auth.id);
    const beforeXmin = await xmin(auth.id);
    await updateUserMetadata(db, auth.id, { full_name: 'Same' });
    // A metadata change that the mapping ignores (the name is already set) writes nothing either.
    await updateUserMetadata(db, auth.id, { theme: 'dark' });
    expect(await appRows(auth.id)).toEqual(before);
    expect(await xmin(auth.id)).toBe(beforeXmin);
  });

  it("a user's profile edit survives an OAuth re-login that rewrites user_metadata", async () => {
    const claims = googleClaims({ email: `relogin-${uid()}@gmail.com`, name: 'Provider Name' });
    const first = await signInOAuth(db, { provider: 'google', claims });
    expect((await appRows(first.id))[0]).toMatchObject({
      full_name: 'Provider Name',
      avatar_url: claims.picture,
    });

    const edited = await db.asUser(first.id, (tx) =>
      tx.query<{ id: string }>(
        `update public.users set full_name = 'My Own Name', avatar_url = 'https://me.example/a.png'
          where id = $1 returning id`,
        [first.id],
      ));
    expect(edited).toEqual([{ id: first.id }]);
    const afterEdit = await appRows(first.id);

    const again = await signInOAuth(db, {
      provider: 'google',
      claims: {
        ...claims,
        name: 'Provider Renamed',
        full_name: 'Provider Renamed',
        picture: 'https://lh3.googleusercontent.com/a/new',
        avatar_url: 'https://lh3.googleusercontent.com/a/new',
      },
    });
    expect(again.id).toBe(first.id);
    expect(again.raw_user_meta_data).toMatchObject({ full_name: 'Provider Renamed' });
    expect(await appRows(first.id)).toEqual(afterEdit);
    expect(afterEdit[0]).toMatchObject({
      full_name: 'My Own Name',
      avatar_url: 'https://me.example/a.png',
    });
  });

  it('an empty profile column is filled from later metadata, a filled one is not', async () => {
    const auth = await signUpUser(db, 'fill');
    expect((await appRows(auth.id))[0]).toMatchObject({ full_name: null, avatar_url: null });
    const named = await updateUserMetadata(db, auth.id, {
      full_name: 'Filled Later',
      avatar_url: 'https://img.example/1.png',
    });
    expect(await appRows(auth.id)).toEqual([
      expected(named, {
        full_name: 'Filled Later',
        avatar_url: 'https://img.example/1.png',
        role: 'client',
      }),
    ]);
    const before = await appRows(auth.id);
    await updateUserMetadata(db, auth.id, { full_name: 'Overwritten?', avatar_url: 'x' });
    expect(await appRows(auth.id)).toEqual(before);
  });
});

describe('user_sync.roles is data', () => {
  it('a new self-assignable role is granted at sign-up without touching functions', async () => {
    // The mapping reads the role list from the table; no function changes.
    const functionsBefore = await db.query(
      `select p.oid, md5(p.prosrc) from pg_proc p where p.pronamespace in
         ('user_sync'::regnamespace, 'public'::regnamespace) order by 1`,
    );
    await db.query(
      `insert into user_sync.roles (role, self_assignable, description)
       values ('moderator', true, 'Added by a project'), ('staff', false, 'Not self-assignable')`,
    );
    const moderator = await signUpUser(db, 'mod', { data: { role: 'moderator' } });
    expect(await appRows(moderator.id)).toEqual([
      expected(moderator, { full_name: null, avatar_url: null, role: 'moderator' }),
    ]);
    // A role that is known but not self-assignable is not granted through user_metadata...
    const staff = await signUpUser(db, 'staff', { data: { role: 'staff' } });
    expect((await appRows(staff.id))[0]?.role).toBe('client');
    // ...but through app_metadata it is.
    await adminUpdateAppMetadata(db, staff.id, { role: 'staff' });
    expect((await appRows(staff.id))[0]?.role).toBe('staff');
    // An unknown role asked for gets the default.
    const unknown = await signUpUser(db, 'unknown', { data: { role: 'wizard' } });
    expect((await appRows(unknown.id))[0]?.role).toBe('client');
    expect(
      await db.query(
        `select p.oid, md5(p.prosrc) from pg_proc p where p.pronamespace in
           ('user_sync'::regnamespace, 'public'::regnamespace) order by 1`,
      ),
    ).toEqual(functionsBefore);
  });
});
