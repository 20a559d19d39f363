// The claims of a user's access token as GoTrue builds them, for the hook tests.

import type { AuthUser } from './gotrue.ts';
import { type AccessTokenClaims, defaultClaims, struct } from './supabase-auth.ts';

/**
 * The claims GoTrue builds from the user it holds in memory (docs/reference/auth-hooks.md#custom-access-token) for a login by
 * `method`; `over` replaces any of them.
 */
export function userTokenClaims(
  user: AuthUser,
  method = 'password',
  over: Partial<AccessTokenClaims> = {},
) {
  const iat = Math.floor(Date.now() / 1000);
  return defaultClaims(user.id, {
    email: user.email ?? '',
    phone: user.phone ?? '',
    app_metadata: user.raw_app_meta_data ?? {},
    user_metadata: user.raw_user_meta_data ?? {},
    is_anonymous: user.is_anonymous,
    amr: [struct([['method', method], ['timestamp', iat]])],
    ...over,
  });
}
