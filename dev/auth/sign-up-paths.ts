// What Supabase Auth sends the function on each way a user comes in: the one description the
// demo (dev/demo/run.ts) and the load test (tests/reliability/traffic.ts) both play. Read from
// supabase/auth internal/api (the call sites of triggerBeforeUserCreated and
// triggerAfterUserCreated: signup.go, anonymous.go, external.go, invite.go, mail.go; admin.go has
// none) and docs/reference/auth-hooks.md.

export type SignUpPath =
  | 'email'
  | 'email-autoconfirm'
  | 'phone'
  | 'phone-autoconfirm'
  | 'anonymous'
  | 'oauth'
  | 'invite'
  | 'admin-create'
  | 'sql-insert';

/** When the first access token is minted, so when custom-access-token is called. */
export type FirstToken =
  /** In the sign-up's own transaction: the user is signed in at once. */
  | 'in-transaction'
  /** In a transaction of its own once the creating one has committed. */
  | 'after-commit'
  /** Not on this path: a confirmation, an invitation link or a first sign-in comes later. */
  | 'later';

export interface AuthCalls {
  /** before-user-created, with the unsaved user, before anything is written. */
  beforeUserCreated: boolean;
  /** after-user-created, after the creating transaction committed. */
  afterUserCreated: boolean;
  firstToken: FirstToken;
  /** The `authentication_method` of that token (the grant GoTrue records). */
  tokenMethod: string | null;
}

export const SIGN_UP_PATHS: Record<SignUpPath, AuthCalls> = {
  // /signup with "Confirm email" on: the user waits for the link.
  email: {
    beforeUserCreated: true,
    afterUserCreated: true,
    firstToken: 'later',
    tokenMethod: null,
  },
  // /signup with autoconfirm: signup.go creates the user, then issues the session in a second
  // transaction and returns it before reaching the after-user-created call, so that hook is
  // never sent for these users.
  'email-autoconfirm': {
    beforeUserCreated: true,
    afterUserCreated: false,
    firstToken: 'after-commit',
    tokenMethod: 'password',
  },
  phone: {
    beforeUserCreated: true,
    afterUserCreated: true,
    firstToken: 'later',
    tokenMethod: null,
  },
  'phone-autoconfirm': {
    beforeUserCreated: true,
    afterUserCreated: false,
    firstToken: 'after-commit',
    tokenMethod: 'password',
  },
  // anonymous.go: the token inside the creating transaction, after-user-created once it commits.
  anonymous: {
    beforeUserCreated: true,
    afterUserCreated: true,
    firstToken: 'in-transaction',
    tokenMethod: 'anonymous',
  },
  // external.go, implicit flow: the callback issues the session inside the transaction that
  // creates the user, and sends after-user-created once it commits. (With PKCE the token comes
  // later, at the code exchange.)
  oauth: {
    beforeUserCreated: true,
    afterUserCreated: true,
    firstToken: 'in-transaction',
    tokenMethod: 'oauth',
  },
  invite: {
    beforeUserCreated: true,
    afterUserCreated: true,
    firstToken: 'later',
    tokenMethod: null,
  },
  // POST /admin/users (admin createUser, the Dashboard's "Add user"): no hook at all.
  'admin-create': {
    beforeUserCreated: false,
    afterUserCreated: false,
    firstToken: 'later',
    tokenMethod: null,
  },
  // A plain INSERT into auth.users (SQL editor, a seed): Auth is not involved.
  'sql-insert': {
    beforeUserCreated: false,
    afterUserCreated: false,
    firstToken: 'later',
    tokenMethod: null,
  },
};
