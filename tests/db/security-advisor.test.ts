// Supabase's Security and Performance Advisors (the Dashboard's "Advisors", built from the
// splinter lints, github.com/supabase/splinter) on a fresh install. CI cannot fetch splinter and
// none of its code is copied here: each test below restates, in SQL of our own, the condition
// under which one lint reports an object, and is named after that lint. Where ours is stricter
// than the lint (it looks at more schemas, privileges or spellings) the comment says so; it is
// never looser. Every test expects no finding on a fresh install, except rls_enabled_no_policy
// (INFO), which expects exactly the deny-all tables listed there.
//
// What the lints treat as "exposed" is the Data API's schema list (PostgREST's db_schemas).
// This project keeps the Supabase default, `public` and `graphql_public` (supabase/config.toml
// has no [api] schemas); a project that exposes more must add them to EXPOSED_SCHEMAS.

import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';

const db = useTestDb();

/** The schemas the Data API serves (PostgREST db_schemas) on a default Supabase project. */
const EXPOSED_SCHEMAS = ['public', 'graphql_public'];

/**
 * Schemas Supabase or PostgreSQL own, which the lints never report on. Ours is a subset of
 * theirs (we skip no schema a lint would look at); `pg_*` schemas are skipped by pattern.
 */
const PLATFORM_SCHEMAS = [
  'information_schema',
  'auth',
  'storage',
  'extensions',
  'graphql',
  'graphql_public',
  'realtime',
  'vault',
  'supabase_migrations',
  'supabase_functions',
];

/**
 * rls_enabled_no_policy is INFO level: it reports tables whose RLS is on with no policy at all,
 * which nobody but their owner and BYPASSRLS roles (service_role) can read or write. These are
 * ours, deny-all on purpose: the internals in user_sync (the Data API does not serve that
 * schema and no API role has USAGE on it) and the audit trail, which the service role reads
 * through the API and only our security definer functions write.
 */
const DENY_ALL_TABLES = [
  'public.user_sync_audit',
  'user_sync.audit_settings',
  'user_sync.releases',
  'user_sync.role_lists',
  'user_sync.roles',
  'user_sync.sync_failures',
];

const sqlTextArray = (items: readonly string[]): string =>
  `array[${items.map((s) => `'${s.replaceAll("'", "''")}'`).join(', ')}]::text[]`;

/** True for a schema the lints look at, given its pg_namespace alias. */
const inScope = (ns: string): string =>
  `(${ns}.nspname !~ '^pg_' and ${ns}.nspname <> all (${sqlTextArray(PLATFORM_SCHEMAS)}))`;

/** True for a schema the Data API serves, given its pg_namespace alias. */
const exposed = (ns: string): string => `(${ns}.nspname = any (${sqlTextArray(EXPOSED_SCHEMAS)}))`;

/** True unless the object with this oid belongs to an extension (the lints skip those). */
const notFromExtension = (oid: string): string =>
  `not exists (select from pg_catalog.pg_depend e where e.objid = ${oid} and e.deptype = 'e')`;

/** `schema.name(argument types)` of a function, independent of the search_path. */
const functionLabel = (p: string, ns: string): string =>
  `${ns}.nspname || '.' || ${p}.proname || '(' ||
     pg_catalog.pg_get_function_identity_arguments(${p}.oid) || ')'`;

/** The findings of one check: one text per reported object. */
async function findings(sql: string): Promise<string[]> {
  const rows = await db.query<{ finding: string }>(sql);
  return rows.map((r) => r.finding).sort();
}

/** Every function, as `p`, with its schema as `n`. */
const FUNCTIONS = `pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace`;

/** Every relation, as `c`, with its schema as `n`. */
const RELATIONS = `pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace`;

/** `schema.name` of the relation `c` of RELATIONS. */
const RELATION = `n.nspname || '.' || c.relname`;

/** True where anon or authenticated may select from the relation `c`. */
const SELECTABLE_BY_API = `(pg_catalog.has_table_privilege('anon', c.oid, 'SELECT')
  or pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT'))`;

/** Every RLS policy in scope with its table, and its USING and WITH CHECK as deparsed text. */
const POLICIES = `
  select n.nspname || '.' || c.relname as table_name, pol.polname,
    c.relkind, c.relrowsecurity as rls_on,
    coalesce(pg_catalog.pg_get_expr(pol.polqual, pol.polrelid), '') as using_text,
    coalesce(pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid), '') as check_text,
    pol.polpermissive, pol.polroles, pol.polcmd
  from pg_catalog.pg_policy pol
  join pg_catalog.pg_class c on c.oid = pol.polrelid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where ${inScope('n')} and ${notFromExtension('c.oid')}`;

const call = String.raw`(auth\.(uid|jwt|role|email)|current_setting)\(`;

const alwaysTrue = (expr: string) =>
  `pg_catalog.regexp_replace(pg_catalog.lower(${expr}), '[\\s()]', '', 'g') in ('true', '1=1')`;

/**
 * A lint as SQL of ours: one `finding` text per object it reports, and what a fresh install
 * must show (nothing, unless `expected` says).
 */
interface Lint {
  lint: string;
  sql: string;
  expected?: string[];
}

const LINTS: Lint[] = [
  // WARN. A function (of any kind) outside the platform schemas, not an extension's, whose
  // proconfig has no search_path entry: its unqualified names resolve through the caller's
  // search_path.
  {
    lint: 'function_search_path_mutable',
    sql: `
      select ${functionLabel('p', 'n')} as finding from ${FUNCTIONS}
      where ${inScope('n')} and ${notFromExtension('p.oid')}
        and not exists (
          select from pg_catalog.unnest(p.proconfig) setting where setting like 'search_path=%'
        )`,
  },
  // WARN. A security definer function in a schema the Data API serves that `anon` may execute
  // (directly, through PUBLIC, or through a role it inherits): callable with the publishable
  // key at /rest/v1/rpc.
  {
    lint: 'anon_security_definer_function_executable',
    sql: `
      select ${functionLabel('p', 'n')} as finding from ${FUNCTIONS}
      where p.prosecdef and ${exposed('n')} and ${inScope('n')}
        and pg_catalog.has_function_privilege('anon', p.oid, 'EXECUTE')`,
  },
  // WARN. The same for `authenticated`: any signed-in user can call it at /rest/v1/rpc.
  // Fails on the second edition: public.sync_my_user() is a security definer function that
  // authenticated may execute. The fix in view: a security invoker function in public that
  // calls a definer in a schema the Data API does not serve.
  {
    lint: 'authenticated_security_definer_function_executable',
    sql: `
      select ${functionLabel('p', 'n')} as finding from ${FUNCTIONS}
      where p.prosecdef and ${exposed('n')} and ${inScope('n')}
        and pg_catalog.has_function_privilege('authenticated', p.oid, 'EXECUTE')`,
  },
  // WARN. A policy on a table with RLS on whose USING or WITH CHECK calls auth.uid(),
  // auth.jwt(), auth.role(), auth.email() or current_setting() other than as `(select …)`, so
  // it is evaluated per row instead of once per statement. The lint accepts a policy once any
  // one call is wrapped; ours requires every call to be.
  {
    lint: 'auth_rls_initplan',
    sql: `
      select p.table_name || ' policy ' || p.polname as finding
      from (${POLICIES}) p
      cross join lateral (values (p.using_text), (p.check_text)) e(expr)
      where p.rls_on
        and pg_catalog.regexp_replace(e.expr, 'select\\s+${call}', '', 'gi') ~* '${call}'
      group by p.table_name, p.polname`,
  },
  // ERROR. A policy whose USING or WITH CHECK reads user_metadata from the JWT (auth.jwt() or
  // the request.jwt.claims setting): every user can write their own user_metadata. Ours
  // reports any mention of user_metadata or raw_user_meta_data in a policy, however it is read.
  {
    lint: 'rls_references_user_metadata',
    sql: `
      select p.table_name || ' policy ' || p.polname as finding
      from (${POLICIES}) p
      where p.using_text ~* 'user_metadata|raw_user_meta_data'
        or p.check_text ~* 'user_metadata|raw_user_meta_data'`,
  },
  // WARN. Two or more permissive policies of one table that apply to the same role for the
  // same command (a FOR ALL policy counts for select, insert, update and delete; a policy for
  // PUBLIC counts for every role). pg_* roles, supabase_*admin roles and BYPASSRLS roles are
  // not counted: RLS does not apply to those.
  {
    lint: 'multiple_permissive_policies',
    sql: `
      select pol.table_name || ' ' || r.rolname || ' ' || cmd.name || ': ' ||
        pg_catalog.string_agg(pol.polname, ', ' order by pol.polname) as finding
      from (${POLICIES}) pol
      join pg_catalog.pg_roles r
        on r.oid = any (pol.polroles) or 0::oid = any (pol.polroles)
      cross join lateral pg_catalog.unnest(case pol.polcmd
        when 'r' then array['select'] when 'a' then array['insert']
        when 'w' then array['update'] when 'd' then array['delete']
        else array['select', 'insert', 'update', 'delete'] end) cmd(name)
      where pol.polpermissive and pol.relkind in ('r', 'p')
        and r.rolname !~ '^pg_' and r.rolname !~ '^supabase.*admin$' and not r.rolbypassrls
      group by pol.table_name, r.rolname, cmd.name
      having count(*) > 1`,
  },
  // ERROR. A table with policies while its RLS is off: the policies do nothing.
  {
    lint: 'policy_exists_rls_disabled',
    sql: `select distinct p.table_name as finding from (${POLICIES}) p where not p.rls_on`,
  },
  // INFO. A foreign key (outside the platform schemas, not an extension's table) with no valid
  // index whose leading columns are the key's columns in the key's order: every delete or key
  // update of the referenced row scans the referencing table.
  {
    lint: 'unindexed_foreign_keys',
    sql: `
      select ${RELATION} || ' ' || con.conname as finding
      from pg_catalog.pg_constraint con
      join ${RELATIONS} on c.oid = con.conrelid
      where con.contype = 'f' and ${inScope('n')} and ${notFromExtension('c.oid')}
        and not exists (
          select from pg_catalog.pg_index i
          where i.indrelid = con.conrelid and i.indisvalid
            and (
              select pg_catalog.array_agg(k.attnum order by k.pos)
              from pg_catalog.unnest(i.indkey::int2[]) with ordinality k(attnum, pos)
              where k.pos <= pg_catalog.cardinality(con.conkey)
            ) = con.conkey
        )`,
  },
  // ERROR. A table in a schema the Data API serves, RLS off, that anon or authenticated may
  // select. Ours also counts insert, update and delete, and column grants. (It covers
  // sensitive_columns_exposed, ERROR, too: that lint looks only at such tables.)
  {
    lint: 'rls_disabled_in_public',
    sql: `
      select ${RELATION} as finding
      from ${RELATIONS}
      cross join (values ('anon'), ('authenticated')) api(role)
      where c.relkind in ('r', 'p') and not c.relrowsecurity and ${exposed('n')}
        and (
          pg_catalog.has_table_privilege(api.role, c.oid, 'SELECT, INSERT, UPDATE, DELETE')
          or pg_catalog.has_any_column_privilege(api.role, c.oid, 'SELECT, INSERT, UPDATE')
        )
      group by n.nspname, c.relname`,
  },
  // ERROR. A view in a schema the Data API serves, selectable by anon or authenticated,
  // without security_invoker: it reads with its owner's rights and RLS. Ours looks at every
  // schema outside the platform ones.
  {
    lint: 'security_definer_view',
    sql: `
      select ${RELATION} as finding from ${RELATIONS}
      where c.relkind = 'v' and ${inScope('n')} and ${notFromExtension('c.oid')}
        and ${SELECTABLE_BY_API}
        and not exists (
          select from pg_catalog.pg_options_to_table(c.reloptions) o
          where o.option_name = 'security_invoker'
            and pg_catalog.lower(o.option_value) in ('true', 'on', 'yes', '1')
        )`,
  },
  // ERROR. A view or materialized view in a schema the Data API serves, selectable by anon or
  // authenticated, that depends on auth.users: a materialized view always, a definer view
  // always, an invoker view unless auth.users has RLS on. Ours reports any such relation in
  // any schema outside the platform ones.
  {
    lint: 'auth_users_exposed',
    sql: `
      select distinct ${RELATION} as finding
      from pg_catalog.pg_depend d
      join pg_catalog.pg_rewrite rw on rw.oid = d.objid
      join ${RELATIONS} on c.oid = rw.ev_class
      where d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
        and d.refobjid = 'auth.users'::pg_catalog.regclass
        and c.relkind in ('v', 'm') and ${inScope('n')} and ${SELECTABLE_BY_API}`,
  },
  // WARN. A permissive policy for PUBLIC, anon or authenticated on a table with RLS on whose
  // expression is always true: USING true for update, delete or all (or no USING at all), or
  // WITH CHECK true (or none, for insert; or none with USING true, for update or all).
  {
    lint: 'rls_policy_always_true',
    sql: `
      select p.table_name || ' policy ' || p.polname as finding
      from (${POLICIES}) p
      where p.rls_on and p.polpermissive
        and (0::oid = any (p.polroles)
          or 'anon'::pg_catalog.regrole = any (p.polroles)
          or 'authenticated'::pg_catalog.regrole = any (p.polroles))
        and (
          (p.polcmd in ('w', 'd', '*') and (p.using_text = '' or ${alwaysTrue('p.using_text')}))
          or (p.check_text <> '' and ${alwaysTrue('p.check_text')})
          or (p.check_text = '' and p.polcmd = 'a')
          or (p.check_text = '' and p.polcmd in ('w', '*') and ${alwaysTrue('p.using_text')})
        )`,
  },
  // WARN. Two indexes of one table with the same definition apart from their names.
  {
    lint: 'duplicate_index',
    sql: `
      select ${RELATION} || ': ' ||
        pg_catalog.string_agg(ic.relname, ', ' order by ic.relname) as finding
      from pg_catalog.pg_index i
      join pg_catalog.pg_class ic on ic.oid = i.indexrelid
      join ${RELATIONS} on c.oid = i.indrelid
      where c.relkind in ('r', 'm') and ${inScope('n')} and ${notFromExtension('c.oid')}
      group by n.nspname, c.relname,
        pg_catalog.replace(pg_catalog.pg_get_indexdef(i.indexrelid), ic.relname, '')
      having count(*) > 1`,
  },
  // ERROR. A foreign key to a unique constraint of an auth table other than its primary key
  // (auth.users.email, say): GoTrue may change those values. Ours looks at every schema.
  {
    lint: 'fkey_to_auth_unique',
    sql: `
      select ${RELATION} || ' ' || con.conname as finding
      from pg_catalog.pg_constraint con
      join ${RELATIONS} on c.oid = con.conrelid
      join pg_catalog.pg_class ref on ref.oid = con.confrelid
      join pg_catalog.pg_index i on i.indexrelid = con.conindid
      where con.contype = 'f' and ref.relnamespace = 'auth'::pg_catalog.regnamespace
        and i.indisunique and not i.indisprimary`,
  },
  // INFO. A table (outside the platform schemas, not an extension's) with no primary key.
  {
    lint: 'no_primary_key',
    sql: `
      select ${RELATION} as finding from ${RELATIONS}
      where c.relkind = 'r' and ${inScope('n')} and ${notFromExtension('c.oid')}
        and not exists (
          select from pg_catalog.pg_index i where i.indrelid = c.oid and i.indisprimary
        )`,
  },
  // WARN. A materialized view (no RLS possible) or a foreign table (RLS not applied) in a
  // schema the Data API serves that anon or authenticated may select. Ours: any schema.
  {
    lint: 'materialized_view_in_api and foreign_table_in_api',
    sql: `
      select ${RELATION} as finding from ${RELATIONS}
      where c.relkind in ('m', 'f') and ${inScope('n')} and ${notFromExtension('c.oid')}
        and ${SELECTABLE_BY_API}`,
  },
  // WARN, and only where pg_graphql is installed (hosted projects have it unless it was
  // dropped; the test databases do not). A table, view, materialized view or foreign table
  // outside the platform schemas of which the role may select any column is listed in the
  // GraphQL schema that role sees. anon must see nothing of ours.
  {
    lint: 'pg_graphql_anon_table_exposed',
    sql: `
      select ${RELATION} as finding from ${RELATIONS}
      where c.relkind in ('r', 'v', 'm', 'f') and ${inScope('n')}
        and pg_catalog.has_any_column_privilege('anon', c.oid, 'SELECT')`,
  },
  // The same for authenticated. public.users is selectable by authenticated by design (a user
  // reads their own row; RLS picks the row), so on a project with pg_graphql this lint reports
  // it (a WARN for public.users) unless pg_graphql is dropped or the finding dismissed. This
  // test pins the exposure to exactly that one table: anything else found here is new.
  {
    lint: 'pg_graphql_authenticated_table_exposed (exactly public.users, by design)',
    sql: `
      select ${RELATION} as finding from ${RELATIONS}
      where c.relkind in ('r', 'v', 'm', 'f') and ${inScope('n')}
        and pg_catalog.has_any_column_privilege('authenticated', c.oid, 'SELECT')`,
    expected: ['public.users'],
  },
];

describe('Security Advisor (splinter) on a fresh install', () => {
  for (const { lint, sql, expected = [] } of LINTS) {
    it(lint, async () => {
      expect(await findings(sql)).toEqual(expected);
    });
  }

  // INFO, not a warning: a table (outside the platform schemas) with RLS on and no policy.
  // Expected on exactly our deny-all tables (DENY_ALL_TABLES, above); any other table found
  // here is either missing its policies or missing from that list.
  it('rls_enabled_no_policy', async () => {
    const found = await findings(`
      select ${RELATION} as finding from ${RELATIONS}
      where c.relkind in ('r', 'p') and c.relrowsecurity
        and ${inScope('n')} and ${notFromExtension('c.oid')}
        and not exists (select from pg_catalog.pg_policy pol where pol.polrelid = c.oid)`);
    expect(found.filter((t) => !DENY_ALL_TABLES.includes(t))).toEqual([]);
    // And each of them that exists is deny-all indeed: RLS on (so not open to the API roles).
    const open = await findings(`
      select t as finding
      from pg_catalog.unnest(${sqlTextArray(DENY_ALL_TABLES)}) t
      join pg_catalog.pg_class c on c.oid = pg_catalog.to_regclass(t)
      where not c.relrowsecurity`);
    expect(open).toEqual([]);
  });
});
