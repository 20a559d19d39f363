/**
 * The app roles, as the migrations ship them in the SQL table user_sync.roles (migration
 * 20261201000000_user_sync_setup.sql): a copy, because the function needs them without asking
 * the database.
 *
 * before-user-created refuses a sign-up that asks for a role it may not choose, with a sentence,
 * instead of letting the sync silently downgrade it to the default. The role rule itself (what a
 * row and a token get) lives only in SQL: user_sync.role_for and user_sync.token_role.
 *
 * The database stays the source of truth: every row is written from user_sync.roles. Keep this
 * list equal to that table (tests/function/first-token.test.ts compares them on the migrated
 * database). A project that adds a self-assignable role with an insert into user_sync.roles must
 * add it here too: until then before-user-created refuses a sign-up asking for it.
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
