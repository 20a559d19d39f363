-- supabase-user-sync 5/7: the trigger on auth.users, the safety net under every other path.
--
-- It runs inside the transaction that creates or changes the auth user, so it is the one sync
-- that can never be late, lost or out of order. It maps NEW, the row it is given, and reads no
-- other auth row: a bulk `insert into auth.users select …` or an update of every user costs
-- the same per row at any size, whatever the planner's statistics say. On a change it reads
-- the user's own app row, by its primary key, and locks it.
--
-- It never raises: an exception here becomes "Database error saving new user" and blocks every
-- sign-up. A failure rolls back only the sync (the inner block is a subtransaction), is
-- recorded in user_sync.sync_failures, and the auth write commits; resync repairs it.
--
-- It takes no lock of its own. On an update the statement that fired it already holds the auth
-- row until the transaction ends, and the API functions (6/7) skip auth rows held that way; a
-- new auth row is invisible to every other transaction until it commits. So nothing holds
-- locks per user beyond what PostgreSQL keeps in the rows themselves, and a statement over a
-- million users cannot fill the shared lock table.

create function user_sync.on_auth_user_change()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- Never wait without limit: a row lock held on the user's app row (a profile edit left open,
-- a session holding it on purpose) would hold the sign-up or the admin's change with it. A
-- timeout is a failure like any other: recorded, and repaired by resync.
set lock_timeout = '1s'
-- The app row is found by its primary key whatever the statistics say: a plan cached while
-- public.users was (or was analysed as) empty would otherwise scan it once per row. Disabled
-- scans inflate cost estimates past the JIT threshold: without jit = off a query on the tiny
-- roles table would be compiled on every call (about 100 ms each).
set enable_seqscan = off
set jit = off
as $$
declare
  v_cur public.users;
  v user_sync.user_values;
begin
  begin
    -- Names this write in the audit trail (3/7); cleared right after.
    perform set_config('user_sync.source', 'trigger', true);
    if tg_op = 'UPDATE' then
      -- The row as it is, locked until this transaction ends, so that a profile the user
      -- filled in and a self-assigned role are mapped from what is there.
      select * into v_cur from public.users u where u.id = new.id for update;
    end if;
    v := user_sync.map_user(new, v_cur);
    if v_cur.id is null then
      -- A new auth user (or one whose row an earlier failure left missing). Nobody else can
      -- write it meanwhile: a new auth row is invisible to other transactions until this one
      -- commits, and a changed one is held by this transaction, which every other sync skips.
      -- Should a row exist all the same, the unique violation is recorded below.
      insert into public.users (
        id, email, phone, full_name, avatar_url, role, email_confirmed_at, is_anonymous,
        deleted_at, created_at, updated_at
      ) values (
        v.id, v.email, v.phone, v.full_name, v.avatar_url, v.role, v.email_confirmed_at,
        v.is_anonymous, v.deleted_at, v.created_at, now()
      );
    elsif user_sync.values_of(v_cur) is distinct from v then
      -- A row already in step is not written: no new row version, no updated_at bump.
      update public.users u set
        email = v.email,
        phone = v.phone,
        full_name = v.full_name,
        avatar_url = v.avatar_url,
        role = v.role,
        email_confirmed_at = v.email_confirmed_at,
        is_anonymous = v.is_anonymous,
        deleted_at = v.deleted_at,
        created_at = v.created_at,
        updated_at = now()
      where u.id = new.id;
    end if;
    perform set_config('user_sync.source', '', true);
  exception when others then
    perform user_sync.record_failure(new.id, 'trigger', sqlstate, sqlerrm);
  end;
  return null;
end;
$$;

revoke all on function user_sync.on_auth_user_change()
  from public, anon, authenticated, service_role;

-- Creating a trigger on auth.users needs the TRIGGER privilege, which Supabase grants the
-- migration role; dropping or replacing it would need ownership, which it does not have.
-- Upgrades therefore replace the function, never the triggers.
create trigger user_sync_after_insert
  after insert on auth.users
  for each row execute function user_sync.on_auth_user_change();

-- Updates sync only when a column the mapping reads really changed: a sign-in
-- (last_sign_in_at), GoTrue's rewrite of unchanged metadata and the keys it adds to
-- user_metadata during sign-up (sub, email_verified) cost nothing. The user_metadata keys are
-- map_user's; only the role in app_metadata matters.
create trigger user_sync_after_update
  after update of email, phone, email_confirmed_at, is_anonymous, deleted_at, created_at,
    raw_app_meta_data, raw_user_meta_data
  on auth.users
  for each row
  when (
    old.email is distinct from new.email
    or old.phone is distinct from new.phone
    or old.email_confirmed_at is distinct from new.email_confirmed_at
    or old.is_anonymous is distinct from new.is_anonymous
    or old.deleted_at is distinct from new.deleted_at
    or old.created_at is distinct from new.created_at
    or old.raw_app_meta_data -> 'role' is distinct from new.raw_app_meta_data -> 'role'
    or old.raw_user_meta_data -> 'full_name' is distinct from new.raw_user_meta_data -> 'full_name'
    or old.raw_user_meta_data -> 'name' is distinct from new.raw_user_meta_data -> 'name'
    or old.raw_user_meta_data -> 'user_name' is distinct from new.raw_user_meta_data -> 'user_name'
    or old.raw_user_meta_data -> 'username' is distinct from new.raw_user_meta_data -> 'username'
    or old.raw_user_meta_data -> 'preferred_username'
      is distinct from new.raw_user_meta_data -> 'preferred_username'
    or old.raw_user_meta_data -> 'avatar_url'
      is distinct from new.raw_user_meta_data -> 'avatar_url'
    or old.raw_user_meta_data -> 'picture' is distinct from new.raw_user_meta_data -> 'picture'
  )
  execute function user_sync.on_auth_user_change();
