-- supabase-user-sync 9/9: an audited write costs one insert.
--
-- The audit trigger (3/9) read the settings twice, called two helper functions and built the
-- changed columns with queries over jsonb_each: four statements and three function calls per
-- audited row, which made an audited sign-up cost 1.9 times the seed's. Here everything but
-- the insert is plain expressions over OLD and NEW, and the settings are read by that insert.
-- What it records is unchanged.
--
-- OLD is null in an INSERT trigger and NEW in a DELETE trigger, so "old.c is distinct from
-- new.c" says, for each column: set to a value (insert), had one (delete), changed (update).
create or replace function user_sync.on_users_write()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  -- Every audited column, alphabetical (changed_columns keeps this order).
  v_changed text[] := array_remove(array[
    case when old.avatar_url is distinct from new.avatar_url then 'avatar_url' end,
    case when old.created_at is distinct from new.created_at then 'created_at' end,
    case when old.deleted_at is distinct from new.deleted_at then 'deleted_at' end,
    case when old.email is distinct from new.email then 'email' end,
    case when old.email_confirmed_at is distinct from new.email_confirmed_at
      then 'email_confirmed_at' end,
    case when old.full_name is distinct from new.full_name then 'full_name' end,
    case when old.is_anonymous is distinct from new.is_anonymous then 'is_anonymous' end,
    case when old.phone is distinct from new.phone then 'phone' end,
    case when old.role is distinct from new.role then 'role' end
  ], null);
  v_unchanged text[] := array_remove(array[
    case when old.avatar_url is not distinct from new.avatar_url then 'avatar_url' end,
    case when old.created_at is not distinct from new.created_at then 'created_at' end,
    case when old.deleted_at is not distinct from new.deleted_at then 'deleted_at' end,
    case when old.email is not distinct from new.email then 'email' end,
    case when old.email_confirmed_at is not distinct from new.email_confirmed_at
      then 'email_confirmed_at' end,
    case when old.full_name is not distinct from new.full_name then 'full_name' end,
    case when old.is_anonymous is not distinct from new.is_anonymous then 'is_anonymous' end,
    case when old.phone is not distinct from new.phone then 'phone' end,
    case when old.role is not distinct from new.role then 'role' end
  ], null);
  v_old jsonb;
  v_new jsonb;
begin
  if tg_op <> 'INSERT' then
    v_old := jsonb_build_object('avatar_url', old.avatar_url, 'created_at', old.created_at,
      'deleted_at', old.deleted_at, 'email', old.email,
      'email_confirmed_at', old.email_confirmed_at, 'full_name', old.full_name,
      'is_anonymous', old.is_anonymous, 'phone', old.phone, 'role', old.role) - v_unchanged;
  end if;
  if tg_op <> 'DELETE' then
    v_new := jsonb_build_object('avatar_url', new.avatar_url, 'created_at', new.created_at,
      'deleted_at', new.deleted_at, 'email', new.email,
      'email_confirmed_at', new.email_confirmed_at, 'full_name', new.full_name,
      'is_anonymous', new.is_anonymous, 'phone', new.phone, 'role', new.role) - v_unchanged;
  end if;
  -- The switch is read here as well as kept in step with the trigger's state (3/9): the WHEN
  -- clause runs as whoever writes, who may not read the settings.
  insert into public.user_sync_audit (
    user_id, source, action, changed_columns, old_values, new_values
  )
  select
    coalesce(new.id, old.id),
    pg_catalog.current_setting('user_sync.source', true),
    case tg_op when 'INSERT' then 'inserted' when 'UPDATE' then 'updated' else 'deleted' end,
    v_changed,
    -- Email and phone values only when the project records contact values.
    case when s.record_contact_values then v_old else v_old - array['email', 'phone'] end,
    case when s.record_contact_values then v_new else v_new - array['email', 'phone'] end
  from user_sync.audit_settings s
  where s.singleton and s.enabled;
  return null;
end;
$$;

drop function user_sync.audited_values(public.users);

revoke all on all functions in schema user_sync from public, anon, authenticated, service_role;
