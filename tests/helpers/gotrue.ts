// GoTrue's statement sequences live in scripts/lib/gotrue.ts, shared with `npm run demo`.
export * from '../../scripts/lib/gotrue.ts';
