// Hook payloads and signatures as Supabase Auth makes them live in dev/auth/supabase-auth.ts,
// shared with `npm run demo`.
export * from '../../dev/auth/supabase-auth.ts';
