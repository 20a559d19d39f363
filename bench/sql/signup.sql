-- Sign-ups in GoTrue's statement order (tests/helpers/gotrue.ts: signupNewUser, SetRole,
-- createNewIdentity), driven server-side so no client round trip hides the trigger's cost.
-- Each sign-up is three separate statements, as GoTrue sends them, and (with p_commit_every
-- = 1) its own transaction, as a GoTrue API call is.
create schema bench
-- ;;
create procedure bench.signups(p_n integer, p_commit_every integer, p_metadata_update boolean)
language plpgsql
as $$
declare
  v_id uuid;
  v_email text;
  v_meta jsonb;
begin
  for i in 1..p_n loop
    v_id := gen_random_uuid();
    v_email := 'user' || i || '@bench.example';
    -- A mix of what sign-ups carry: nothing, a name, a name and a self-assignable role, and
    -- OAuth-style name and picture.
    v_meta := case i % 4
      when 0 then '{}'::jsonb
      when 1 then jsonb_build_object('full_name', 'User ' || i)
      when 2 then jsonb_build_object('full_name', 'User ' || i, 'role', 'artist')
      else jsonb_build_object('name', 'User ' || i, 'avatar_url', 'https://example.com/' || i)
    end;
    insert into auth.users (instance_id, id, aud, role, email, encrypted_password,
      email_confirmed_at, invited_at, confirmation_token, confirmation_sent_at, recovery_token,
      recovery_sent_at, email_change_token_new, email_change, email_change_sent_at,
      last_sign_in_at, raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at,
      updated_at, phone, phone_confirmed_at, phone_change, phone_change_token,
      phone_change_sent_at, email_change_token_current, email_change_confirm_status,
      banned_until, reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at,
      is_anonymous)
    values ('00000000-0000-0000-0000-000000000000', v_id, 'authenticated', '', v_email,
      '$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234', null, null, '', null,
      '', null, '', '', null, null, '{"provider":"email","providers":["email"]}'::jsonb, v_meta,
      null, now(), now(), null, null, '', '', null, '', 0, null, '', null, false, null, false);
    update auth.users set role = 'authenticated', updated_at = now() where id = v_id;
    insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at,
      created_at, updated_at, id)
    values (v_id::text, v_id, jsonb_build_object('sub', v_id, 'email', v_email,
      'email_verified', false, 'phone_verified', false), 'email', now(), now(), now(),
      gen_random_uuid());
    if p_metadata_update then
      -- An email sign-up's fourth statement: the identity data merged into user metadata.
      update auth.users set raw_user_meta_data = v_meta || jsonb_build_object('sub', v_id,
        'email', v_email, 'email_verified', false, 'phone_verified', false), updated_at = now()
      where id = v_id;
    end if;
    if i % p_commit_every = 0 then
      commit;
    end if;
  end loop;
end;
$$
-- ;;
grant usage on schema bench to supabase_auth_admin
-- ;;
grant execute on procedure bench.signups(integer, integer, boolean) to supabase_auth_admin
