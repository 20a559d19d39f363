#!/usr/bin/env bash
# `supabase db lint --fail-on warning` over a fresh install, as CI runs it: creates a scratch
# database on the local server (127.0.0.1:5432, as the superuser `postgres`), applies the test
# stand-in (dev/sql/supabase-roles.sql, dev/sql/auth-schema.sql) and every
# supabase/migrations/*.sql in name order (each file in one transaction, stopping at the first
# error), runs the Supabase CLI's plpgsql_check lint over our schemas, and drops the database
# again whatever happened. Exits non-zero on any finding of level warning or error, or when a
# step fails.
#
# Needs psql and the plpgsql_check extension on the server (Debian/Ubuntu:
# apt-get install -y postgresql-15-plpgsql-check); the CLI creates the extension itself, which
# is why it connects as the superuser. Run `npm ci` first (the CLI is node_modules/.bin/supabase).
#
# Overrides: PGHOST, PGPORT, PGUSER (default 127.0.0.1, 5432, postgres; PGPASSWORD as psql
# reads it) and DB_LINT_SCHEMAS (a comma-separated list; default: every schema of the scratch
# database except PostgreSQL's own and the stand-in's `auth` and `extensions`, so a schema a new
# migration creates is linted too).
set -euo pipefail
cd "$(dirname "$0")/.."

export PGHOST="${PGHOST:-127.0.0.1}"
export PGPORT="${PGPORT:-5432}"
export PGUSER="${PGUSER:-postgres}"
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"

supabase_cli="node_modules/.bin/supabase"
if [ ! -x "${supabase_cli}" ]; then
  echo "ci-db-lint: ${supabase_cli} not found: run npm ci first" >&2
  exit 2
fi

db="usync_db_lint_$$_${RANDOM}"
psql_admin=(psql -X -q -v ON_ERROR_STOP=1 -d postgres)
psql_db=(psql -X -q -v ON_ERROR_STOP=1 -d "${db}")

if [ "$("${psql_admin[@]}" -Atc \
  "select count(*) from pg_catalog.pg_available_extensions where name = 'plpgsql_check'")" \
  != 1 ]; then
  echo "ci-db-lint: the server at ${PGHOST}:${PGPORT} has no plpgsql_check extension" \
    "(apt-get install -y postgresql-15-plpgsql-check)" >&2
  exit 2
fi

drop_db() {
  "${psql_admin[@]}" -c "drop database if exists \"${db}\" with (force)" ||
    echo "ci-db-lint: could not drop the scratch database ${db}" >&2
}
"${psql_admin[@]}" -c "create database \"${db}\""
trap drop_db EXIT

echo "ci-db-lint: installing into ${db} on ${PGHOST}:${PGPORT} as ${PGUSER}"
for file in dev/sql/supabase-roles.sql dev/sql/auth-schema.sql; do
  # The roles fixture says NOTICE about memberships that already exist on a reused server.
  PGOPTIONS='-c client_min_messages=warning' "${psql_db[@]}" -1 -f "${file}"
done
mapfile -t migrations < <(find supabase/migrations -maxdepth 1 -name '*.sql' | LC_ALL=C sort)
if [ "${#migrations[@]}" -eq 0 ]; then
  echo "ci-db-lint: no migrations in supabase/migrations" >&2
  exit 2
fi
for file in "${migrations[@]}"; do
  echo "ci-db-lint:   ${file}"
  "${psql_db[@]}" -1 -f "${file}"
done

schemas="${DB_LINT_SCHEMAS:-$("${psql_db[@]}" -Atc "
  select pg_catalog.string_agg(nspname, ',' order by nspname)
  from pg_catalog.pg_namespace
  where nspname !~ '^pg_' and nspname not in ('information_schema', 'auth', 'extensions')")}"
echo "ci-db-lint: supabase db lint --fail-on warning over: ${schemas}"

url="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${db}?sslmode=disable"
# The CLI prints what it found as JSON on stdout, or "No schema errors found", and exits 1 on a
# finding at or above --fail-on.
status=0
"${supabase_cli}" db lint --db-url "${url}" --schema "${schemas}" \
  --level warning --fail-on warning || status=$?
if [ "${status}" -ne 0 ]; then
  echo "ci-db-lint: FAILED (exit ${status}): findings above, or the lint did not run" >&2
  exit 1
fi
echo "ci-db-lint: no findings"
