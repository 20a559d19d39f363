-- supabase-user-sync 4/8: the failures table, where a sync that could not be written is
-- remembered, so that nothing is lost: the trigger on auth.users never raises, it records here
-- instead, and resync drains this table.

create table user_sync.sync_failures (
  user_id uuid primary key,
  source text not null,
  sqlstate text not null,
  message text not null,
  first_failed_at timestamptz not null default now(),
  last_failed_at timestamptz not null default now(),
  attempts integer not null default 1
);
comment on table user_sync.sync_failures is
  'Syncs that failed (dead letters). One row per user; attempts counts the failures. public.resync_users() repairs and removes them.';
alter table user_sync.sync_failures enable row level security;
revoke all on table user_sync.sync_failures from public, anon, authenticated, service_role;

-- Remembers a sync that could not be written (and audits it while the trail is on). Never
-- raises: it is called from the trigger, where raising would block sign-up.
create function user_sync.record_failure(
  p_user_id uuid,
  p_source text,
  p_sqlstate text,
  p_message text
)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  insert into user_sync.sync_failures as f (user_id, source, sqlstate, message)
  values (p_user_id, p_source, p_sqlstate, left(p_message, 2000))
  on conflict (user_id) do update set
    source = excluded.source,
    sqlstate = excluded.sqlstate,
    message = excluded.message,
    last_failed_at = now(),
    attempts = f.attempts + 1;
  if user_sync.audit_enabled() then
    insert into public.user_sync_audit (user_id, source, action, sqlstate)
    values (p_user_id, p_source, 'failed', p_sqlstate);
  end if;
exception when others then
  raise warning 'user_sync: could not record a sync failure for user %: % (%)',
    p_user_id, sqlerrm, sqlstate;
end;
$$;

revoke all on all functions in schema user_sync from public, anon, authenticated, service_role;
