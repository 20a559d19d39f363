// GoTrue's own statement sequences (docs/reference/auth-schema.md#sign-up-statement-order;
// supabase/auth internal/api signup.go, external.go, anonymous.go, invite.go, admin.go, user.go,
// verify.go; models/user.go), run the
// way GoTrue runs them: as supabase_auth_admin, in one transaction per API call, with
// unqualified table names that only resolve because the role's search_path is `auth`.
//
// GoTrue writes through an ORM (pop): an INSERT names every column of the model, and every
// UPDATE ("UpdateOnly") also sets updated_at.
//
// Shared by the tests (through tests/helpers/gotrue.ts) and `npm run demo`; it needs only a
// way to run a transaction as GoTrue does (AuthDb), so it imports nothing from the tests.

import { createHash, randomBytes, randomUUID } from 'node:crypto';

/** What the sequences run statements on: one transaction's connection. */
export interface SqlClient {
  query<T extends object = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

/** A database that can run a transaction as GoTrue does: role supabase_auth_admin, search_path auth. */
export interface AuthDb {
  asAuthAdmin<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
}

type Json = Record<string, unknown>;

/** An auth.users row as the tests read it back. */
export interface AuthUser {
  id: string;
  aud: string | null;
  role: string | null;
  email: string | null;
  phone: string | null;
  encrypted_password: string | null;
  email_confirmed_at: Date | null;
  phone_confirmed_at: Date | null;
  confirmed_at: Date | null;
  invited_at: Date | null;
  confirmation_token: string | null;
  email_change: string | null;
  email_change_token_new: string | null;
  email_change_confirm_status: number | null;
  last_sign_in_at: Date | null;
  raw_app_meta_data: Json | null;
  raw_user_meta_data: Json | null;
  is_anonymous: boolean;
  is_sso_user: boolean;
  created_at: Date | null;
  updated_at: Date | null;
  deleted_at: Date | null;
  banned_until: Date | null;
}

export type OAuthProvider = 'google' | 'github';

const NIL_INSTANCE = '00000000-0000-0000-0000-000000000000';

/** A bcrypt hash as GoTrue stores it ($2a$, cost 10, 53 characters of salt and hash). */
export function fakeBcrypt(): string {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(53);
  let out = '$2a$10$';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

/** GoTrue's confirmation tokens: a hex SHA-224 of email and OTP (never numeric). */
function token(): string {
  return randomBytes(28).toString('hex');
}

/** Phone numbers as GoTrue stores them: digits only, no `+`. */
export function formatPhone(phone: string): string {
  return phone.replace(/[^0-9]/g, '');
}

interface NewUser {
  email: string | null;
  phone: string | null;
  password?: string | undefined;
  appMetaData: Json;
  userMetaData: Json;
  isAnonymous?: boolean;
}

async function readUser(tx: SqlClient, id: string): Promise<AuthUser> {
  const rows = await tx.query<AuthUser>('select * from users where id = $1', [id]);
  const row = rows[0];
  if (!row) throw new Error(`auth.users has no row ${id}`);
  return row;
}

/** signupNewUser: `tx.Create(user)`. Role '' and no confirmation yet. */
async function insertUser(tx: SqlClient, user: NewUser): Promise<string> {
  const id = randomUUID();
  await tx.query(
    `INSERT INTO users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
       invited_at, confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
       email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
       raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone,
       phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
       email_change_token_current, email_change_confirm_status, banned_until,
       reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous)
     VALUES ($1, $2, 'authenticated', '', $3, $4, NULL, NULL, '', NULL, '', NULL, '', '', NULL,
       NULL, $5::text::jsonb, $6::text::jsonb, NULL, now(), now(), $7, NULL, '', '', NULL, '', 0,
       NULL, '', NULL, false, NULL, $8)`,
    [
      NIL_INSTANCE,
      id,
      user.email,
      user.password === undefined ? '' : fakeBcrypt(),
      JSON.stringify(user.appMetaData),
      JSON.stringify(user.userMetaData),
      user.phone,
      user.isAnonymous ?? false,
    ],
  );
  return id;
}

/** user.SetRole: the second statement of every sign-up. */
async function setRole(tx: SqlClient, id: string, role = 'authenticated'): Promise<void> {
  await tx.query('UPDATE users SET role = $2, updated_at = now() WHERE id = $1', [id, role]);
}

/** createNewIdentity: after the users INSERT, so an INSERT trigger on users cannot see it. */
async function insertIdentity(
  tx: SqlClient,
  userId: string,
  provider: string,
  providerId: string,
  identityData: Json,
): Promise<void> {
  await tx.query(
    `INSERT INTO identities (provider_id, user_id, identity_data, provider, last_sign_in_at,
       created_at, updated_at, id)
     VALUES ($1, $2, $3::text::jsonb, $4, now(), now(), now(), $5)`,
    [providerId, userId, JSON.stringify(identityData), provider, randomUUID()],
  );
}

/**
 * user.UpdateUserMetaData: merges in memory (a null value deletes the key) and writes the
 * whole map back, which is why a BEFORE trigger's edits to it do not survive.
 */
async function updateUserMetaData(tx: SqlClient, id: string, updates: Json): Promise<void> {
  const current = (await readUser(tx, id)).raw_user_meta_data ?? {};
  const merged: Json = { ...current };
  for (const [key, value] of Object.entries(updates)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  await tx.query(
    'UPDATE users SET raw_user_meta_data = $2::text::jsonb, updated_at = now() WHERE id = $1',
    [id, JSON.stringify(merged)],
  );
}

/** user.UpdateAppMetaData: the same merge on raw_app_meta_data. */
async function updateAppMetaData(tx: SqlClient, id: string, updates: Json): Promise<void> {
  const current = (await readUser(tx, id)).raw_app_meta_data ?? {};
  const merged: Json = { ...current };
  for (const [key, value] of Object.entries(updates)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  await tx.query(
    'UPDATE users SET raw_app_meta_data = $2::text::jsonb, updated_at = now() WHERE id = $1',
    [id, JSON.stringify(merged)],
  );
}

/**
 * user.Confirm (email) and user.ConfirmPhone: the confirmation time set and the token cleared,
 * then email_verified or phone_verified in the metadata.
 */
async function confirm(tx: SqlClient, id: string, channel: 'email' | 'phone'): Promise<void> {
  await tx.query(
    `UPDATE users SET confirmation_token = '', ${channel}_confirmed_at = now(), updated_at = now()
     WHERE id = $1`,
    [id],
  );
  await updateUserMetaData(tx, id, { [`${channel}_verified`]: true });
}

/** Confirmation needed: a token is stored and the send-email (or SMS) hook runs. */
async function sendConfirmation(tx: SqlClient, id: string): Promise<void> {
  await tx.query(
    `UPDATE users SET confirmation_token = $2, confirmation_sent_at = now(), updated_at = now()
     WHERE id = $1`,
    [id, token()],
  );
}

export interface SignUpEmailParams {
  email: string;
  password?: string;
  /** `options.data` of supabase.auth.signUp: becomes raw_user_meta_data. */
  data?: Json;
  /** Auth's "Confirm email" off (mailer_autoconfirm). */
  autoconfirm: boolean;
}

/** POST /signup with an email (signup.go). */
export function signUpEmail(db: AuthDb, params: SignUpEmailParams): Promise<AuthUser> {
  return signUp(db, 'email', params.email.toLowerCase(), params);
}

/**
 * signup.go's shared path for an email or phone sign-up: the user, its role, the identity with
 * its claims copied into the metadata, then the confirmation (or the request for one).
 */
function signUp(
  db: AuthDb,
  channel: 'email' | 'phone',
  address: string,
  params: { password?: string; data?: Json; autoconfirm: boolean },
): Promise<AuthUser> {
  return db.asAuthAdmin(async (tx) => {
    const id = await insertUser(tx, {
      email: channel === 'email' ? address : null,
      phone: channel === 'phone' ? address : null,
      password: params.password ?? 'password123',
      appMetaData: { provider: channel, providers: [channel] },
      userMetaData: params.data ?? {},
    });
    await setRole(tx, id);
    const identityData = {
      sub: id,
      [channel]: address,
      email_verified: false,
      phone_verified: false,
    };
    await insertIdentity(tx, id, channel, id, identityData);
    await updateUserMetaData(tx, id, identityData);
    if (params.autoconfirm) await confirm(tx, id, channel);
    else await sendConfirmation(tx, id);
    return await readUser(tx, id);
  });
}

export interface SignUpPhoneParams {
  /** With or without `+`; stored as digits. */
  phone: string;
  password?: string;
  data?: Json;
  autoconfirm: boolean;
}

/** POST /signup with a phone (signup.go): no email at all. */
export function signUpPhone(db: AuthDb, params: SignUpPhoneParams): Promise<AuthUser> {
  return signUp(db, 'phone', formatPhone(params.phone), params);
}

/** POST /signup with no credentials (anonymous.go): no email, no phone, no identity. */
export function signUpAnonymous(db: AuthDb, params: { data?: Json } = {}): Promise<AuthUser> {
  return db.asAuthAdmin(async (tx) => {
    const id = await insertUser(tx, {
      email: null,
      phone: null,
      appMetaData: {},
      userMetaData: params.data ?? {},
      isAnonymous: true,
    });
    await setRole(tx, id);
    return await readUser(tx, id);
  });
}

/** Claims as GoTrue's Google provider stores them (identity_data and raw_user_meta_data). */
export function googleClaims(
  opts: { email: string; name?: string; sub?: string; picture?: string } = {
    email: 'ada@example.com',
  },
): Json {
  const sub = opts.sub ?? String(100000000000000000000n + BigInt(randomBytes(6).readUIntBE(0, 6)));
  const picture = opts.picture ?? `https://lh3.googleusercontent.com/a/${sub}=s96-c`;
  const name = opts.name ?? 'Ada Lovelace';
  return {
    iss: 'https://accounts.google.com',
    sub,
    name,
    email: opts.email,
    picture,
    full_name: name,
    avatar_url: picture,
    provider_id: sub,
    email_verified: true,
    phone_verified: false,
  };
}

/** Claims as GoTrue's GitHub provider stores them; `name` is absent when the profile has none. */
export function githubClaims(
  opts: { email: string; userName?: string; name?: string | null; id?: string } = {
    email: 'octo@example.com',
  },
): Json {
  const id = opts.id ?? String(1000000 + (randomBytes(3).readUIntBE(0, 3) % 9000000));
  const userName = opts.userName ?? 'octocat';
  const avatar = `https://avatars.githubusercontent.com/u/${id}?v=4`;
  const claims: Json = {
    iss: 'https://api.github.com',
    sub: id,
    email: opts.email,
    user_name: userName,
    avatar_url: avatar,
    provider_id: id,
    email_verified: true,
    phone_verified: false,
    preferred_username: userName,
  };
  const name = opts.name === undefined ? 'The Octocat' : opts.name;
  if (name !== null) {
    claims.name = name;
    claims.full_name = name;
  }
  return claims;
}

export interface SignInOAuthParams {
  provider: OAuthProvider;
  /** The provider's claims (googleClaims(), githubClaims()); `sub` is the provider's user id. */
  claims: Json;
}

/**
 * The OAuth callback (external.go). A new identity creates a user (insert with the claims as
 * raw_user_meta_data, role, identity, confirmation when the provider vouches for the email);
 * a known identity merges the claims into raw_user_meta_data and records the sign-in.
 */
export function signInOAuth(db: AuthDb, params: SignInOAuthParams): Promise<AuthUser> {
  return db.asAuthAdmin(async (tx) => {
    const providerId = String(params.claims.sub ?? params.claims.provider_id);
    const existing = await tx.query<{ user_id: string }>(
      'SELECT user_id FROM identities WHERE provider_id = $1 AND provider = $2',
      [providerId, params.provider],
    );
    const known = existing[0]?.user_id;
    if (known !== undefined) {
      await tx.query(
        `UPDATE identities SET identity_data = $3::text::jsonb, last_sign_in_at = now(),
           updated_at = now() WHERE provider_id = $1 AND provider = $2`,
        [providerId, params.provider, JSON.stringify(params.claims)],
      );
      await updateUserMetaData(tx, known, params.claims);
      await tx.query(
        'UPDATE users SET last_sign_in_at = now(), updated_at = now() WHERE id = $1',
        [known],
      );
      return await readUser(tx, known);
    }
    const email = typeof params.claims.email === 'string'
      ? params.claims.email.toLowerCase()
      : null;
    const id = await insertUser(tx, {
      email,
      phone: null,
      appMetaData: { provider: params.provider, providers: [params.provider] },
      userMetaData: params.claims,
    });
    await setRole(tx, id);
    await insertIdentity(tx, id, params.provider, providerId, params.claims);
    if (email !== null && params.claims.email_verified === true) await confirm(tx, id, 'email');
    await tx.query('UPDATE users SET last_sign_in_at = now(), updated_at = now() WHERE id = $1', [
      id,
    ]);
    return await readUser(tx, id);
  });
}

/** POST /invite (invite.go): a user with an email identity, invited_at and a token. */
export function invite(db: AuthDb, params: { email: string; data?: Json }): Promise<AuthUser> {
  return db.asAuthAdmin(async (tx) => {
    const email = params.email.toLowerCase();
    const id = await insertUser(tx, {
      email,
      phone: null,
      appMetaData: { provider: 'email', providers: ['email'] },
      userMetaData: params.data ?? {},
    });
    await setRole(tx, id);
    await insertIdentity(tx, id, 'email', id, {
      sub: id,
      email,
      email_verified: false,
      phone_verified: false,
    });
    await tx.query(
      `UPDATE users SET invited_at = now(), confirmation_token = $2, confirmation_sent_at = now(),
         updated_at = now() WHERE id = $1`,
      [id, token()],
    );
    return await readUser(tx, id);
  });
}

export interface AdminCreateUserParams {
  email?: string;
  phone?: string;
  password?: string;
  app_metadata?: Json;
  user_metadata?: Json;
  email_confirm?: boolean;
  phone_confirm?: boolean;
}

/**
 * POST /admin/users (admin.go, supabase.auth.admin.createUser): the INSERT carries only
 * {provider, providers}; the caller's app_metadata arrives in a later UPDATE (auth#975), then
 * the role and the confirmation.
 */
export function adminCreateUser(db: AuthDb, params: AdminCreateUserParams): Promise<AuthUser> {
  return db.asAuthAdmin(async (tx) => {
    const email = params.email?.toLowerCase() ?? null;
    const phone = params.phone === undefined ? null : formatPhone(params.phone);
    const provider = email !== null ? 'email' : 'phone';
    const id = await insertUser(tx, {
      email,
      phone,
      password: params.password,
      appMetaData: { provider, providers: [provider] },
      userMetaData: params.user_metadata ?? {},
    });
    const identityData: Json = { sub: id, email_verified: false, phone_verified: false };
    if (email !== null) identityData.email = email;
    if (phone !== null) identityData.phone = phone;
    await insertIdentity(tx, id, provider, id, identityData);
    if (params.app_metadata) await updateAppMetaData(tx, id, params.app_metadata);
    await setRole(tx, id);
    if (params.email_confirm && email !== null) await confirm(tx, id, 'email');
    if (params.phone_confirm && phone !== null) await confirm(tx, id, 'phone');
    return await readUser(tx, id);
  });
}

/** PUT /admin/users/:id with app_metadata (what an admin does to grant a role). */
export function adminUpdateAppMetadata(
  db: AuthDb,
  id: string,
  appMetadata: Json,
): Promise<AuthUser> {
  return db.asAuthAdmin(async (tx) => {
    await updateAppMetaData(tx, id, appMetadata);
    return await readUser(tx, id);
  });
}

/** PUT /user with `data` (supabase.auth.updateUser({ data })): merge into raw_user_meta_data. */
export function updateUserMetadata(db: AuthDb, id: string, data: Json): Promise<AuthUser> {
  return db.asAuthAdmin(async (tx) => {
    await updateUserMetaData(tx, id, data);
    return await readUser(tx, id);
  });
}

/**
 * PUT /user with a new email, then the confirmation link (user.go, verify.go). With
 * `confirm: false` only the request is made: email_change holds the new address.
 */
export function changeEmail(
  db: AuthDb,
  id: string,
  newEmail: string,
  opts: { confirm?: boolean } = {},
): Promise<AuthUser> {
  const email = newEmail.toLowerCase();
  return db.asAuthAdmin(async (tx) => {
    await tx.query(
      `UPDATE users SET email_change = $2, email_change_token_new = $3, email_change_sent_at = now(),
         email_change_confirm_status = 0, updated_at = now() WHERE id = $1`,
      [id, email, token()],
    );
    if (opts.confirm ?? true) {
      await tx.query(
        `UPDATE users SET email = email_change, email_change = '', email_change_token_new = '',
           email_change_token_current = '', email_change_confirm_status = 0, updated_at = now()
         WHERE id = $1`,
        [id],
      );
      await tx.query(
        `UPDATE identities SET identity_data = identity_data || jsonb_build_object('email', $2::text),
           updated_at = now() WHERE user_id = $1 AND provider = 'email'`,
        [id, email],
      );
      await updateUserMetaData(tx, id, { email });
    }
    return await readUser(tx, id);
  });
}

/** A password or OTP sign-in: only the sign-in time changes (the ORM bumps updated_at too). */
export function signIn(db: AuthDb, id: string): Promise<AuthUser> {
  return db.asAuthAdmin(async (tx) => {
    await tx.query('UPDATE users SET last_sign_in_at = now(), updated_at = now() WHERE id = $1', [
      id,
    ]);
    return await readUser(tx, id);
  });
}

/** DELETE /admin/users/:id (hard delete): identities go by the foreign key's cascade. */
export function deleteUser(db: AuthDb, id: string): Promise<AuthUser> {
  return db.asAuthAdmin(async (tx) => {
    const rows = await tx.query<AuthUser>('DELETE FROM users WHERE id = $1 RETURNING *', [id]);
    if (!rows[0]) throw new Error(`auth.users has no row ${id}`);
    return rows[0];
  });
}

/** What GoTrue writes over a soft-deleted user's address: a value derived from it, not it. */
function obfuscated(id: string, value: string): string {
  return createHash('sha256').update(`${id}${value}`).digest('hex');
}

/**
 * DELETE /admin/users/:id with should_soft_delete (models/user.go, SoftDeleteUser): the row
 * stays. Email, phone and pending changes are obfuscated, the password and every token cleared
 * and deleted_at set; then every user_metadata key is removed and app_metadata emptied, each in
 * its own UPDATE; identities lose their identity_data.
 */
export function softDeleteUser(db: AuthDb, id: string): Promise<AuthUser> {
  return db.asAuthAdmin(async (tx) => {
    const user = await readUser(tx, id);
    const email = user.email === null ? null : `${obfuscated(id, user.email)}@deleted.invalid`;
    const phone = user.phone === null ? null : obfuscated(id, user.phone).slice(0, 15);
    await tx.query(
      `UPDATE users SET email = $2, phone = $3, encrypted_password = NULL,
         email_change = '', phone_change = '', confirmation_token = '', recovery_token = '',
         email_change_token_current = '', email_change_token_new = '', phone_change_token = '',
         reauthentication_token = '', deleted_at = now(), updated_at = now()
       WHERE id = $1`,
      [id, email, phone],
    );
    const removeAll = Object.fromEntries(
      Object.keys(user.raw_user_meta_data ?? {}).map((k) => [k, null]),
    );
    await updateUserMetaData(tx, id, removeAll);
    await tx.query(
      `UPDATE users SET raw_app_meta_data = '{}'::jsonb, updated_at = now() WHERE id = $1`,
      [id],
    );
    await tx.query(
      `UPDATE identities SET identity_data = '{}'::jsonb, updated_at = now() WHERE user_id = $1`,
      [id],
    );
    return await readUser(tx, id);
  });
}
