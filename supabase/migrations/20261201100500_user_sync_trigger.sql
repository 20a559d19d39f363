-- supabase-user-sync 6/8: the trigger on auth.users, the safety net under every other path.
--
-- It runs inside the transaction that creates or changes the auth user, so it is the one sync
-- that can never be late, lost or out of order. It maps the user it is given (NEW), through
-- user_sync.mapped by that id, and reads no other auth row: a bulk `insert into auth.users
-- select …` or an update of every user costs the same per row at any size, whatever the
-- planner's statistics say. A new user is one INSERT … SELECT from the view: a primary-key
-- probe of the auth row just written and of the (absent) app row. A change locks the user's
-- app row, by its primary key, then writes what the view says in a new statement, which sees
-- the row as locked.
--
-- It never raises: an exception here becomes "Database error saving new user" and blocks every
-- sign-up. A failure rolls back only the sync (the inner block is a subtransaction), is
-- recorded in user_sync.sync_failures, and the auth write commits; resync repairs it.
--
-- It takes row locks only: that app row, and what the foreign keys' checks lock. On an update
-- the statement that fired it already holds the auth row until the transaction ends, and the
-- API functions skip auth rows held that way; a new auth row is invisible to every other
-- transaction until it commits. So nothing holds locks per user beyond what PostgreSQL keeps
-- in the rows themselves, and a statement over a million users cannot fill the shared lock
-- table.

-- The trigger's function. `enable_seqscan = off` keeps both probes on their primary keys
-- whatever the statistics say (a plan cached while public.users was small would otherwise scan
-- it once per row of a bulk statement). `jit = off`: a plan left with only a disabled scan (a
-- table without an index for it, now or in a project's own trigger) has a cost past JIT's
-- threshold, and every execution would be compiled (about a quarter of a second a row).
create function user_sync.on_auth_user_change()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- Never wait without limit: a row lock held on the user's app row, or on the role row the
-- foreign key checks, would hold the sign-up with it. A timeout is a failure like any other.
set lock_timeout = '1s'
set enable_seqscan = off
set jit = off
as $$
declare
  v_found boolean;
begin
  begin
    -- Names this write in the audit trail (user_sync.on_users_write); cleared right after, and
    -- undone with the block on failure. (A function's SET clause cannot name a custom setting
    -- on hosted Supabase, where the migration role is not a superuser.)
    perform pg_catalog.set_config('user_sync.source', 'trigger', true);
    if tg_op = 'UPDATE' then
      -- The app row as it is, locked until this transaction ends, so that a profile the user
      -- filled in and a self-assigned role are mapped from what is there.
      perform from public.users u where u.id = new.id for update;
      v_found := found;
    end if;
    if v_found then
      update public.users u set
        email = m.email,
        phone = m.phone,
        full_name = m.full_name,
        avatar_url = m.avatar_url,
        role = m.role,
        email_confirmed_at = m.email_confirmed_at,
        is_anonymous = m.is_anonymous,
        deleted_at = m.deleted_at,
        created_at = m.created_at,
        updated_at = now()
      from user_sync.mapped m
      where m.id = new.id and u.id = new.id and not m.in_sync;
    else
      -- A new auth user (or one whose row an earlier failure left missing). Nobody else can
      -- write it meanwhile: a new auth row is invisible to other transactions until this one
      -- commits. Should a row exist all the same, the unique violation is recorded below.
      insert into public.users (
        id, email, phone, full_name, avatar_url, role, email_confirmed_at, is_anonymous,
        deleted_at, created_at, updated_at
      )
      select m.id, m.email, m.phone, m.full_name, m.avatar_url, m.role, m.email_confirmed_at,
        m.is_anonymous, m.deleted_at, m.created_at, now()
      from user_sync.mapped m
      where m.id = new.id;
    end if;
    perform pg_catalog.set_config('user_sync.source', '', true);
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
-- the profile keys user_sync.mapped reads; of app_metadata, only the role matters.
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
