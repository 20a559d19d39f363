-- supabase-user-sync 8/8: the Auth hooks as Postgres functions, the no-network alternative to
-- the edge function's HTTP routes. Supabase Auth calls them as supabase_auth_admin
-- (supabase/auth internal/hooks/v0hooks and internal/hooks/pgfunc):
--
--   set local statement_timeout TO '2000';
--   select "public"."hook_custom_access_token"($1);   -- $1: the event JSON
--   set local statement_timeout TO default;
--
-- They follow the same rules as shared/routes/hooks.ts and answer the same JSON. Wire them with
-- `uri = "pg-functions://postgres/public/<function>"` (docs/pg-hooks.md).
--
-- Both are security definer, owned by the migration role: GoTrue's role has no rights in
-- schema user_sync (and RLS denies it user_sync.roles), and granting it the internals would
-- give it more than these two entry points. Hence the pinned search_path and qualified names.

-- The custom access token hook. Every input claim goes back unchanged but user_role, which is
-- ours: user_sync.token_role's answer, never what the event carried. Runs on every sign-in and
-- token refresh, inside Auth's token transaction, so it sees a user created earlier in that
-- transaction (anonymous sign-in, OAuth implicit flow, id_token) and its writes commit with it.
create function public.hook_custom_access_token(event jsonb)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_claims jsonb := event -> 'claims';
  v_user_id uuid;
  v_role text;
begin
  -- The answer replaces the whole JWT payload: without a claims object there is nothing
  -- valid to return, and {"claims": null} would fail with a schema error that says less.
  if jsonb_typeof(v_claims) is distinct from 'object' then
    return jsonb_build_object('error', jsonb_build_object(
      'http_code', 500,
      'message', 'Invalid payload sent to hook: the event has no claims object.'
    ));
  end if;

  -- An incoming user_role is never passed on: GoTrue's claims never carry one, so something
  -- else put it there.
  v_claims := v_claims - 'user_role';
  begin
    v_user_id := (event ->> 'user_id')::uuid;
    if v_user_id is not null then
      -- The one sync: on almost every call the row is in step and nothing is written or
      -- locked. It never raises on a failed write: it records the failure.
      v_role := user_sync.sync_one(v_user_id, 'hook:custom-access-token') ->> 'user_role';
      -- Unless the user was in step already: the role a token may carry, whether or not the
      -- sync wrote (a revoked admin whose sync keeps failing gets the default role, not the
      -- row's stale admin). A statement of its own, to see what the sync wrote.
      if v_role is null then
        v_role := user_sync.token_role(v_user_id, v_claims);
      end if;
    end if;
  exception
    -- Never fail a sign-in or a refresh: an error here would abort Auth's transaction. The
    -- claims go back without user_role (RLS treats a missing user_role as least privilege).
    -- query_canceled is caught too (OTHERS does not match it): the 2 s statement timeout
    -- would otherwise turn a slow sync into a failed login. We return at once after it.
    when others or query_canceled then
      if v_user_id is not null then
        perform user_sync.record_failure(
          v_user_id, 'hook:custom-access-token', sqlstate, sqlerrm);
      end if;
      return jsonb_build_object('claims', v_claims);
  end;

  if v_role is null then
    return jsonb_build_object('claims', v_claims);
  end if;
  return jsonb_build_object('claims', v_claims || jsonb_build_object('user_role', v_role));
end;
$$;

comment on function public.hook_custom_access_token(jsonb) is
  'Custom access token hook as a Postgres function: syncs the user and returns {"claims": input claims + user_role}. Never raises. For supabase_auth_admin only. See docs/pg-hooks.md.';

-- The before-user-created hook: allow, or refuse a sign-up that asks for a role it
-- may not choose. The user does not exist yet and, for OAuth/SSO, this id is not the one that
-- will be stored, so nothing is written. The roles come from user_sync.roles, the same data
-- the mapping reads; the messages are the HTTP hook's.
create function public.hook_before_user_created(event jsonb)
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_asked jsonb := event -> 'user' -> 'user_metadata' -> 'role';
  v_choices text;
begin
  -- The HTTP hook refuses a body without a user (400, which Auth reports as a 500): refuse.
  if jsonb_typeof(event -> 'user') is distinct from 'object' then
    return jsonb_build_object('error', jsonb_build_object(
      'http_code', 500,
      'message', 'Invalid payload sent to hook: the event has no user object.'
    ));
  end if;

  -- No role asked for (absent, null, or ""), or a self-assignable one: allow.
  if v_asked is null
    or jsonb_typeof(v_asked) = 'null'
    or (jsonb_typeof(v_asked) = 'string' and (
      v_asked #>> '{}' = ''
      or exists (
        select 1 from user_sync.roles r
        where r.role = v_asked #>> '{}' and r.self_assignable
      )
    ))
  then
    return '{}'::jsonb;
  end if;

  -- The default role first, then by name: "client, artist, producer" for the shipped roles,
  -- as the HTTP hook lists them.
  select string_agg(r.role, ', ' order by r.is_default desc, r.role) into v_choices
  from user_sync.roles r
  where r.self_assignable;

  -- HTTP code 400: the person asked for something they may not have. Auth reads the error
  -- object from a Postgres hook's return value.
  return jsonb_build_object('error', jsonb_build_object(
    'http_code', 400,
    'message',
    case
      when jsonb_typeof(v_asked) = 'string' then
        format('The role "%s" cannot be chosen at sign-up.', left(v_asked #>> '{}', 40))
      else 'The requested role is not valid.'
    end
    -- (No sentence when no role is self-assignable: v_choices is null.)
    || coalesce(' Choose one of: ' || v_choices || '.', '')
  ));
end;
$$;

comment on function public.hook_before_user_created(jsonb) is
  'Before-user-created hook as a Postgres function: {} to allow, or {"error": {"http_code": 400, "message": …}} for a sign-up asking for a role it may not choose. For supabase_auth_admin, and service_role (the HTTP hook). See docs/pg-hooks.md.';

-- Grants as Supabase documents them for Postgres-function hooks
-- (https://supabase.com/docs/guides/auth/auth-hooks#using-postgres-functions): Auth's
-- role may find and call them; no request role may, but the HTTP hook's (below) (public
-- functions are executable by PUBLIC, and on Supabase by anon, authenticated and service_role,
-- by default).
grant usage on schema public to supabase_auth_admin;

revoke all on function public.hook_custom_access_token(jsonb)
  from public, anon, authenticated, service_role;
revoke all on function public.hook_before_user_created(jsonb)
  from public, anon, authenticated, service_role;
grant execute on function public.hook_custom_access_token(jsonb) to supabase_auth_admin;
grant execute on function public.hook_before_user_created(jsonb) to supabase_auth_admin;
-- The HTTP before-user-created hook asks this function too (as service_role, through the
-- function's gateway), so the rule and its sentence are written once. It reads user_sync.roles
-- and writes nothing.
grant execute on function public.hook_before_user_created(jsonb) to service_role;
