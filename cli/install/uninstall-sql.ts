// The migration `uninstall` writes: everything supabase-user-sync's migrations
// (supabase/migrations/) created, dropped, but public.users and public.user_sync_audit, which
// keep their rows unless --drop-data. It never drops an object of the user's along with ours: it
// first looks for anything outside our schemas that depends on what it drops and stops, naming
// it, if there is one.

export interface UninstallSqlOptions {
  version: string;
  dropData: boolean;
  /** When it was written (a comment). */
  date: Date;
}

/** The functions of ours in public, with the signatures the migrations give them. */
export const PUBLIC_FUNCTIONS = [
  'public.sync_user(uuid, text, jsonb)',
  'public.sync_my_user()',
  'public.resync_users(boolean, uuid[], integer, uuid)',
  'public.hook_custom_access_token(jsonb)',
  'public.hook_before_user_created(jsonb)',
] as const;

export const SCHEMAS = ['user_sync', 'user_sync_api'] as const;
export const AUTH_TRIGGERS = ['user_sync_after_insert', 'user_sync_after_update'] as const;
export const TABLES = ['public.users', 'public.user_sync_audit'] as const;

const list = (items: readonly string[]) => items.map((i) => `'${i}'`).join(', ');

export function uninstallSql({ version, dropData, date }: UninstallSqlOptions): string {
  const day = date.toISOString().slice(0, 10);
  const keep = dropData
    ? [
      '-- With --drop-data, public.users and public.user_sync_audit are dropped too, with their',
      '-- rows. Without cascade: if a table, view or function of yours refers to them, the check',
      '-- below stops first and names it.',
    ]
    : [
      '-- public.users and public.user_sync_audit stay, with their rows, row level security, grants',
      '-- and the two policies on public.users (users_select_own and users_update_own_profile read',
      '-- only auth.uid()): they are your data now, and nothing writes them any more. public.users',
      '-- keeps its role column, without the foreign key to user_sync.roles.',
    ];
  const sql = [
    `-- supabase-user-sync ${version}: uninstall, written by \`npx supabase-user-sync uninstall\``,
    `-- on ${day}.`,
    '--',
    "-- Removes what supabase-user-sync's migrations created: the triggers on auth.users, its",
    '-- functions in public (sync_user, sync_my_user, resync_users, hook_custom_access_token,',
    '-- hook_before_user_created), and the schemas user_sync and user_sync_api with everything in',
    '-- them (the role list, recorded sync failures, audit settings, the mapping and internals).',
    ...keep,
    '--',
    '-- Unwire the Auth hooks before you push this (Dashboard > Authentication > Hooks): a hook',
    '-- that points at a dropped Postgres function, or at the deleted edge function, fails every',
    '-- sign-up or sign-in it runs for.',
    '--',
    '-- Left in place on purpose: `grant usage on schema public to supabase_auth_admin`, which the',
    "-- Postgres-function hooks needed. Your own hooks, or another extension's, may need it too, and",
    '-- nothing here can tell; revoke it yourself if nothing else uses it.',
    '',
    '-- Nothing of yours may depend on what follows: a view over user_sync.mapped, a foreign key to',
    '-- user_sync.roles, a trigger or policy calling one of our functions, a function with a',
    '-- BEGIN ATOMIC body using them' +
    (dropData ? ', or a foreign key or view on the two tables.' : '.'),
    '-- Objects that belong to ours (in our schemas, on our tables, our two auth.users triggers) are',
    '-- dropped with them. If one of yours is found, this stops and nothing is changed.',
    'do $$',
    'declare',
    '  v_schemas oid[] := array(',
    `    select n.oid from pg_catalog.pg_namespace n where n.nspname in (${list(SCHEMAS)}));`,
    '  v_tables oid[] := array(',
    `    select c.oid from pg_catalog.pg_class c where c.oid in (${
      TABLES.map((t) => `pg_catalog.to_regclass('${t}')`).join(',\n      ')
    }));`,
    '  v_functions oid[] := array(',
    `    select p.oid from pg_catalog.pg_proc p where p.oid in (${
      PUBLIC_FUNCTIONS.map((f) => `pg_catalog.to_regprocedure('${f}')`).join(',\n      ')
    }));`,
    '  v_found text;',
    'begin',
    '  with dependent as (',
    '    select d.classid, d.objid, d.objsubid,',
    '      (pg_catalog.pg_identify_object(d.classid, d.objid, 0)).schema as schema,',
    '      -- The table a trigger, constraint, policy, default or rule belongs to.',
    '      case d.classid',
    "        when 'pg_catalog.pg_trigger'::pg_catalog.regclass then",
    '          (select t.tgrelid from pg_catalog.pg_trigger t where t.oid = d.objid)',
    "        when 'pg_catalog.pg_constraint'::pg_catalog.regclass then",
    '          (select c.conrelid from pg_catalog.pg_constraint c where c.oid = d.objid)',
    "        when 'pg_catalog.pg_policy'::pg_catalog.regclass then",
    '          (select p.polrelid from pg_catalog.pg_policy p where p.oid = d.objid)',
    "        when 'pg_catalog.pg_attrdef'::pg_catalog.regclass then",
    '          (select a.adrelid from pg_catalog.pg_attrdef a where a.oid = d.objid)',
    "        when 'pg_catalog.pg_rewrite'::pg_catalog.regclass then",
    '          (select r.ev_class from pg_catalog.pg_rewrite r where r.oid = d.objid)',
    "        when 'pg_catalog.pg_class'::pg_catalog.regclass then d.objid",
    '      end as rel',
    '    from pg_catalog.pg_depend d',
    "    -- 'n': a dependency that DROP without CASCADE refuses to break; the automatic ones ('a',",
    '    -- an index or a policy on a dropped table) go with what they belong to.',
    "    where d.deptype = 'n'",
    '      and (',
    "        (d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass",
    '          and d.refobjid = any (v_schemas))',
    "        or (d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass and (",
    '          select c.relnamespace from pg_catalog.pg_class c where c.oid = d.refobjid',
    '        ) = any (v_schemas))',
    "        or (d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass and ((",
    '          select p.pronamespace from pg_catalog.pg_proc p where p.oid = d.refobjid',
    '        ) = any (v_schemas) or d.refobjid = any (v_functions)))',
    "        or (d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass and (",
    '          select t.typnamespace from pg_catalog.pg_type t where t.oid = d.refobjid',
    '        ) = any (v_schemas))',
    ...(dropData
      ? [
        "        or (d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass",
        '          and d.refobjid = any (v_tables))',
      ]
      : []),
    '      )',
    '  )',
    '  -- Named as pg_identify_object names them, schema-qualified: "view public.x", "table',
    '  -- constraint x_fkey on public.t" (a view is named, not its rule).',
    "  select pg_catalog.string_agg(distinct o.type || ' ' || o.identity, '; ')",
    '    into v_found',
    '  from dependent x',
    '  cross join lateral pg_catalog.pg_identify_object(',
    "    case when x.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass",
    "      then 'pg_catalog.pg_class'::pg_catalog.regclass else x.classid end,",
    "    case when x.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass then x.rel else x.objid end,",
    '    0) o',
    "  where coalesce(x.schema, '') not in (" + list(SCHEMAS) + ')',
    '    and coalesce((select c.relnamespace from pg_catalog.pg_class c where c.oid = x.rel), 0)',
    '      <> all (v_schemas)',
    // With the data kept, the two tables stay, and so does whatever of the user's is on them:
    // a policy or default there that uses ours would be dropped silently by the cascade (a
    // restrictive policy gone gives users more access). Only our own objects on them are exempt:
    // the audit trigger and the role column's foreign key, dropped explicitly below.
    ...(dropData ? ['    and coalesce(x.rel, 0) <> all (v_tables)'] : [
      '    and not exists (',
      '      select from pg_catalog.pg_trigger t',
      "      where x.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass and t.oid = x.objid",
      "        and t.tgrelid = pg_catalog.to_regclass('public.users') and t.tgname = 'user_sync_audit')",
      '    and not exists (',
      '      select from pg_catalog.pg_constraint c',
      "      where x.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass and c.oid = x.objid",
      "        and c.conrelid = pg_catalog.to_regclass('public.users') and c.contype = 'f'",
      "        and c.confrelid = pg_catalog.to_regclass('user_sync.roles'))",
    ]),
    '    and x.objid <> all (v_functions)',
    '    and not exists (',
    '      select from pg_catalog.pg_trigger t',
    "      where x.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass and t.oid = x.objid",
    "        and t.tgrelid = pg_catalog.to_regclass('auth.users')",
    `        and t.tgname in (${list(AUTH_TRIGGERS)}));`,
    '  if v_found is not null then',
    "    raise exception using errcode = '2BP01',",
    "      message = 'supabase-user-sync uninstall: objects of yours depend on what it drops: '",
    "        || v_found || '.',",
    "      hint = 'Drop or change them in a migration that sorts before this one, then push '",
    "        || 'again. Nothing was changed.';",
    '  end if;',
    'end',
    '$$;',
    '',
    '-- The triggers on auth.users. `drop trigger … on auth.users` needs ownership of auth.users,',
    '-- which the migration role (`postgres`) does not have on hosted Supabase; dropping the',
    '-- function they execute, which it owns, removes them with it (cascade), and the check above',
    '-- made sure that nothing else uses that function.',
    'drop function if exists user_sync.on_auth_user_change() cascade;',
    '',
  ];
  if (!dropData) {
    sql.push(
      '-- What ties public.users to the sync: the audit trigger (it calls',
      '-- user_sync.on_users_write()) and the foreign key of its role column to user_sync.roles.',
      'drop trigger if exists user_sync_audit on public.users;',
      'do $$',
      'declare',
      '  v_constraint name;',
      'begin',
      '  for v_constraint in',
      '    select c.conname from pg_catalog.pg_constraint c',
      '    join pg_catalog.pg_class r on r.oid = c.confrelid',
      "    where c.conrelid = pg_catalog.to_regclass('public.users') and c.contype = 'f'",
      "      and r.relnamespace = pg_catalog.to_regnamespace('user_sync')",
      '  loop',
      "    execute pg_catalog.format('alter table public.users drop constraint %I', v_constraint);",
      '  end loop;',
      'end',
      '$$;',
      '',
    );
  }
  sql.push(
    '-- The API and the Postgres-function hooks (their grants go with them).',
    ...PUBLIC_FUNCTIONS.map((f) => `drop function if exists ${f};`),
    '',
    "-- Everything else. These schemas are supabase-user-sync's own, and all they hold goes: the",
    '-- role list (roles you added too), the mapping, the recorded failures, the audit settings and',
    '-- the internal functions.',
    'drop schema if exists user_sync_api cascade;',
    'drop schema if exists user_sync cascade;',
  );
  if (dropData) {
    sql.push(
      '',
      '-- The data, last: the mapping view read it. No cascade: the check above made sure that',
      '-- nothing of yours depends on these tables.',
      'drop table if exists public.user_sync_audit;',
      'drop table if exists public.users;',
    );
  } else {
    sql.push(
      '',
      '-- The tables stay; their comments no longer promise a sync.',
      'do $$',
      'begin',
      ...TABLES.map((t) =>
        `  if pg_catalog.to_regclass('${t}') is not null then\n` +
        `    comment on table ${t} is\n      '${
          t === 'public.users'
            ? 'Was kept in step with auth.users by supabase-user-sync'
            : 'What supabase-user-sync changed in public.users'
        } until it was uninstalled on ${day}; nothing ${
          t === 'public.users' ? 'syncs' : 'writes'
        } it now.';\n  end if;`
      ),
      'end',
      '$$;',
    );
  }
  return `${sql.join('\n')}\n`;
}
