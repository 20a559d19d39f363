// `npm run demo`: every way a user comes into Supabase Auth, played against a throw-away
// database (embedded PGlite, or a scratch database on DATABASE_URL's server), with the signed
// hooks sent to the function over HTTP; then auth.users vs public.users before and after a
// resync. Exits 1 if the end state is not fully in sync. The story: dev/demo/run.ts.

import { runDemo } from './demo/run.ts';

runDemo({ databaseUrl: process.env.DATABASE_URL || undefined, out: (text) => console.log(text) })
  .then((result) => {
    process.exitCode = result.inSync ? 0 : 1;
  }, (err) => {
    console.error('demo failed:', err instanceof Error ? err.stack ?? err.message : err);
    process.exitCode = 1;
  });
