/**
 * Roles a person may ask for at sign-up (in user_metadata.role). `admin` is a known role but is
 * never self-assignable: only app_metadata, which only the service role writes, can grant it.
 *
 * The database side has its own source of truth, the SQL table user_sync.roles, which the sync
 * functions read when they map user_metadata.role; this list only lets before-user-created
 * refuse a forbidden request with a sentence instead of silently downgrading it to `client`.
 * Keep both in step.
 */
export const SELF_ASSIGNABLE_ROLES = ['client', 'artist', 'producer'] as const;

export type SelfAssignableRole = (typeof SELF_ASSIGNABLE_ROLES)[number];

export function isSelfAssignable(role: unknown): role is SelfAssignableRole {
  return typeof role === 'string' && (SELF_ASSIGNABLE_ROLES as readonly string[]).includes(role);
}
