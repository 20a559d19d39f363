// Hook payloads and signatures as Supabase Auth makes them live in scripts/lib/supabase-auth.ts,
// shared with `npm run demo`.
export * from '../../scripts/lib/supabase-auth.ts';
