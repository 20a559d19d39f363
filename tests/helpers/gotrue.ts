// GoTrue's statement sequences live in dev/auth/gotrue.ts, shared with `npm run demo`.
export * from '../../dev/auth/gotrue.ts';
