#!/usr/bin/env bash
# The pgTAP acceptance suite (supabase/tests/database/*.test.sql) as CI runs it, on a private
# PostgreSQL cluster shaped like hosted Supabase (tests/helpers/cluster.ts), started and deleted
# by tests/pgtap/run.ts:
#   - the migrations applied by the real `supabase db push` as the non-superuser `postgres`;
#   - pgtap created in schema `extensions` by the superuser supabase_admin, as Supabase does;
#   - pg_prove as `postgres`, with the arguments `supabase test db` gives it: it must pass, and
#     leave the users, rows and objects made before it as they were;
#   - then on four broken copies of the install (the trigger on auth.users disabled, UPDATE on
#     public.users granted to authenticated, RLS on public.users disabled, resync_users
#     executable by anon): pg_prove must fail on each, and the failed assertions are printed.
# Exits non-zero when the suite fails on the install or passes on any broken copy.
#
# `npm test` with DATABASE_URL set runs the same (tests/pgtap/pgtap.test.ts) where pg_prove is
# on PATH. Needs PostgreSQL 15's server binaries (PG_BIN, default /usr/lib/postgresql/15/bin),
# psql, and Debian's postgresql-15-pgtap and libtap-parser-sourcehandler-pgtap-perl (pg_prove).
# Run `npm ci` first.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pg_prove >/dev/null 2>&1; then
  echo "ci-pgtap: pg_prove not found (apt-get install -y libtap-parser-sourcehandler-pgtap-perl)" >&2
  exit 2
fi
if [ ! -x node_modules/.bin/tsx ]; then
  echo "ci-pgtap: node_modules/.bin/tsx not found: run npm ci first" >&2
  exit 2
fi
exec node_modules/.bin/tsx tests/pgtap/run.ts
