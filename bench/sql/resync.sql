-- Auth users for the resync benchmark, written in bulk with triggers off (the caller sets
-- session_replication_role = replica), so public.users starts empty. The metadata mix is the
-- sign-up benchmark's.
create schema bench
-- ;;
create procedure bench.load_users(p_n integer)
language sql
as $$
  insert into auth.users (instance_id, id, aud, role, email, encrypted_password,
    confirmation_token, recovery_token, email_change_token_new, email_change,
    raw_app_meta_data, raw_user_meta_data, created_at, updated_at, email_confirmed_at,
    is_sso_user, is_anonymous)
  select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated',
    'authenticated', 'user' || i || '@bench.example',
    '$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234', '', '', '', '',
    '{"provider":"email","providers":["email"]}'::jsonb,
    case i % 4
      when 0 then '{}'::jsonb
      when 1 then jsonb_build_object('full_name', 'User ' || i)
      when 2 then jsonb_build_object('full_name', 'User ' || i, 'role', 'artist')
      else jsonb_build_object('name', 'User ' || i, 'avatar_url', 'https://example.com/' || i)
    end,
    now() - make_interval(secs => i), now(), case when i % 3 = 0 then null else now() end,
    false, false
  from generate_series(1, p_n) as i
$$
