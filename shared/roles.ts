/**
 * The app roles, as the migrations ship them in the SQL table user_sync.roles (migration
 * 20261124000000_user_sync_tables.sql): a copy, because the function needs them without asking
 * the database.
 *
 * - before-user-created refuses a sign-up that asks for a role it may not choose, with a sentence,
 *   instead of letting the sync silently downgrade it to the default.
 * - custom-access-token derives `user_role` from the token's claims when the database cannot see
 *   the user yet (the first token of an autoconfirm sign-up is minted inside the sign-up's own,
 *   uncommitted transaction), with the same creation rule the SQL mapping uses (roleAtCreation).
 *
 * The database stays the source of truth: every row is written from user_sync.roles. Keep this
 * list equal to that table (tests/function/first-token.test.ts compares them on the migrated
 * database). A project that adds a role with an insert into user_sync.roles must add it here
 * too: until then a first token derives the default role where the trigger writes the new one
 * (never more privilege than the database grants, but not the same role either).
 */
export const ROLES = [
  { role: 'client', selfAssignable: true, isDefault: true },
  { role: 'artist', selfAssignable: true, isDefault: false },
  { role: 'producer', selfAssignable: true, isDefault: false },
  // Never self-assignable: only app_metadata, which only the service role writes, grants it.
  { role: 'admin', selfAssignable: false, isDefault: false },
] as const satisfies readonly { role: string; selfAssignable: boolean; isDefault: boolean }[];

export type Role = (typeof ROLES)[number]['role'];

type RoleRow = (typeof ROLES)[number];
export type SelfAssignableRole = Extract<RoleRow, { selfAssignable: true }>['role'];
export type DefaultRole = Extract<RoleRow, { isDefault: true }>['role'];

/** Every role the sync can write. */
export const KNOWN_ROLES: readonly Role[] = ROLES.map((r) => r.role);

/** Roles a person may ask for at sign-up (in user_metadata.role), the default first. */
export const SELF_ASSIGNABLE_ROLES: readonly SelfAssignableRole[] = ROLES
  .filter((r): r is Extract<RoleRow, { selfAssignable: true }> => r.selfAssignable)
  .map((r) => r.role);

/** The role given when nothing else applies (user_sync.roles has exactly one is_default). */
export const DEFAULT_ROLE: DefaultRole = ROLES
  .filter((r): r is Extract<RoleRow, { isDefault: true }> => r.isDefault)
  .map((r) => r.role)[0]!;

export function isKnownRole(role: unknown): role is Role {
  return typeof role === 'string' && (KNOWN_ROLES as readonly string[]).includes(role);
}

export function isSelfAssignable(role: unknown): role is SelfAssignableRole {
  return typeof role === 'string' && (SELF_ASSIGNABLE_ROLES as readonly string[]).includes(role);
}

/** `meta.role` if meta is a JSON object with an own `role` (what SQL's `meta ->> 'role'` reads). */
function metadataRole(meta: unknown): unknown {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return undefined;
  return Object.hasOwn(meta, 'role') ? (meta as Record<string, unknown>)['role'] : undefined;
}

/**
 * The role a new user gets, by the rule the SQL mapping applies when it creates the
 * public.users row (docs/sql-api.md, "The role rule"): app_metadata.role if it is a known role,
 * else user_metadata.role if that role is self-assignable, else the default role.
 *
 * Only string values count, as in SQL, where `->>` turns a number or an object into text that
 * is never a role name (user_sync.roles allows only `^[a-z][a-z0-9_]*$`). user_metadata is
 * written by the user (supabase.auth.signUp's options.data, updateUser), so from it only a
 * self-assignable role is ever taken: asking for admin there gives the default.
 */
export function roleAtCreation(appMetadata: unknown, userMetadata: unknown): Role {
  const granted = metadataRole(appMetadata);
  if (isKnownRole(granted)) return granted;
  const chosen = metadataRole(userMetadata);
  if (isSelfAssignable(chosen)) return chosen;
  return DEFAULT_ROLE;
}
