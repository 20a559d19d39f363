// The demo, as a function the tests call: every way a user comes into Supabase Auth, played as
// GoTrue plays it against a throw-away database, with the signed hooks sent over HTTP to the
// function running on an ephemeral port; one sign-up whose app row cannot be written and one
// change that no trigger or webhook ever sees; then the state of both tables, a resync through
// POST /resync, and the state again. Returns what it saw, so a test asserts data, not text.

import { randomUUID } from 'node:crypto';
import { createApp } from '../../shared/app.ts';
import { systemClock } from '../../shared/clock.ts';
import { parseConfig } from '../../shared/config.ts';
import type { LogEntry } from '../../shared/logger.ts';
import { memoryLogger } from '../memory-logger.ts';
import { type HookCall, SimulatedAuth } from '../auth/simulated-auth.ts';
import type { SignUpPath } from '../auth/sign-up-paths.ts';
import { type DemoDb, openDemoDb } from './db.ts';
import { allInSync, countsLine, type Snapshot, snapshot, stateTable } from './state.ts';
import * as gotrue from '../auth/gotrue.ts';
import type { AuthUser } from '../auth/gotrue.ts';
import { inSync, resyncEndpoint, type ResyncReport, runResync } from '../../cli/resync-client.ts';
import { serve, withDevSecrets } from '../server.ts';

export interface DemoOptions {
  /** A PostgreSQL server to create the scratch database on; unset: PGlite in memory. */
  databaseUrl?: string;
  /** A migrated database to use instead (the tests pass their own); closed by the demo. */
  db?: DemoDb;
  /** Where the narration goes (default: nowhere). */
  out?: (text: string) => void;
}

/** One step of the story: what Auth did, and each call it made to the function. */
export interface DemoStep {
  path: string;
  userId: string | null;
  calls: HookCall[];
  note: string;
}

export interface DemoResult {
  database: string;
  steps: DemoStep[];
  before: Snapshot;
  /** The dry run's report (drift, nothing written). */
  drift: ResyncReport;
  /** The real resync's report. */
  repair: ResyncReport & { requests: number };
  /** A dry run after the repair: what was left (nothing, when all went well). */
  verify: ResyncReport;
  after: Snapshot;
  /** The function's log lines (never a secret, a token or a body). */
  logs: LogEntry[];
  /** Every auth user has its correct app row, nothing orphaned, no failure pending. */
  inSync: boolean;
}

/** The app's mistake that makes one sign-up's row unwritable (the seed's NOT NULL email). */
const FAULTY_CONSTRAINT = 'users_email_required';

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const say = options.out ?? (() => {});
  const db = options.db ?? await openDemoDb(options.databaseUrl);
  const logger = memoryLogger();
  const { env } = withDevSecrets({});
  const config = parseConfig(env);
  const app = createApp({ config, gateway: db.gateway, clock: systemClock, logger });
  const serving = await serve(app, 0);
  try {
    say(`Database: ${db.label}`);
    say(`Function: ${serving.base} (signed hooks over HTTP, as Supabase Auth sends them)\n`);
    const auth = new SimulatedAuth({
      db,
      base: serving.base,
      hookSecret: env.AUTH_HOOK_SECRET!,
      webhookSecret: env.USER_SYNC_WEBHOOK_SECRET!,
      logs: logger.entries,
    });
    const steps: DemoStep[] = [];
    const paths = new Map<string, string>();
    const notes = new Map<string, string>();

    /** Runs one path and records the hook calls it made. */
    const step = async (
      path: string,
      note: string,
      run: () => Promise<AuthUser | null>,
    ): Promise<AuthUser | null> => {
      const first = auth.calls.length;
      const user = await run();
      if (user) paths.set(user.id, path);
      steps.push({ path, userId: user?.id ?? null, calls: auth.calls.slice(first), note });
      return user;
    };
    const unsaved = (u: {
      email?: string;
      phone?: string;
      app?: Record<string, unknown>;
      data?: Record<string, unknown>;
      anonymous?: boolean;
    }) => ({
      id: randomUUID(),
      aud: 'authenticated',
      email: u.email ?? '',
      phone: u.phone ?? '',
      raw_app_meta_data: u.app ?? { provider: 'email', providers: ['email'] },
      raw_user_meta_data: u.data ?? {},
      is_anonymous: u.anonymous ?? false,
    });
    /** A sign-up on `path`, with what Auth sends on it (dev/auth/sign-up-paths.ts). */
    const signUp = (
      path: SignUpPath,
      u: Parameters<typeof unsaved>[0],
      create: () => Promise<AuthUser>,
    ) => auth.signUp(path, unsaved(u), create);
    /** An email sign-up through /signup, with "Confirm email" on or off. */
    const emailSignUp = (
      path: 'email' | 'email-autoconfirm',
      email: string,
      data: Record<string, unknown>,
    ) =>
      signUp(
        path,
        { email, data },
        () =>
          gotrue.signUpEmail(db.auth, { email, data, autoconfirm: path === 'email-autoconfirm' }),
      );

    say('1. Sign-ups, each the way Supabase Auth runs it');

    await step(
      'email, confirmation on',
      'no session until the link is clicked',
      () => emailSignUp('email', 'ada@example.com', { full_name: 'Ada Lovelace', role: 'artist' }),
    );

    const grace = await step(
      'email, confirmation off',
      'autoconfirm: Auth sends no after-user-created for it',
      () =>
        emailSignUp('email-autoconfirm', 'grace@example.com', {
          username: 'grace',
          role: 'producer',
        }),
    );

    await step(
      'email, asks for admin',
      'before-user-created refuses: admin cannot be chosen at sign-up; no user is created',
      () => emailSignUp('email-autoconfirm', 'mallory@example.com', { role: 'admin' }),
    );

    /** The OAuth callback's sign-up, with the claims the provider returned. */
    const oauthSignUp = (provider: 'google' | 'github', claims: Record<string, unknown>) =>
      signUp(
        'oauth',
        { email: String(claims['email']), app: { provider }, data: claims },
        () => gotrue.signInOAuth(db.auth, { provider, claims }),
      );
    await step(
      'Google OAuth',
      'name and picture from the Google profile',
      () =>
        oauthSignUp(
          'google',
          gotrue.googleClaims({ email: 'katherine@example.com', name: 'Katherine Johnson' }),
        ),
    );
    const octo = await step(
      'GitHub OAuth',
      'no display name: user_name is used',
      () =>
        oauthSignUp(
          'github',
          gotrue.githubClaims({ email: 'octo@example.com', userName: 'octocat', name: null }),
        ),
    );

    // The app's own migration made email required, which every phone and anonymous user
    // breaks. With a plain handle_new_user trigger this sign-up would fail with "Database
    // error saving new user"; here it succeeds, and the failure is recorded.
    await db.query(
      `alter table public.users add constraint ${FAULTY_CONSTRAINT} check (email is not null) not valid`,
    );
    await step(
      'phone (SMS)',
      `app row not written: the app's faulty "${FAULTY_CONSTRAINT}" check (no email on a phone user)`,
      () =>
        signUp(
          'phone',
          { phone: '15550100', app: { provider: 'phone', providers: ['phone'] } },
          () => gotrue.signUpPhone(db.auth, { phone: '+1 555 0100', autoconfirm: false }),
        ),
    );
    const phoneUser = steps.at(-1)?.userId;
    if (phoneUser) notes.set(phoneUser, `the app's "${FAULTY_CONSTRAINT}" check refused it`);
    await db.query(`alter table public.users drop constraint ${FAULTY_CONSTRAINT}`);

    await step(
      'anonymous',
      'no email, no phone',
      () =>
        signUp('anonymous', { anonymous: true, app: {} }, () => gotrue.signUpAnonymous(db.auth)),
    );

    await step('invite', 'invited by an admin; no session until accepted', () =>
      signUp(
        'invite',
        { email: 'hedy@example.com' },
        () =>
          gotrue.invite(db.auth, { email: 'hedy@example.com', data: { full_name: 'Hedy Lamarr' } }),
      ));

    await step(
      'admin createUser, role admin',
      'admin API: Auth calls no hook; app_metadata arrives in a second UPDATE, which the trigger sees',
      async () => {
        const user = await gotrue.adminCreateUser(db.auth, {
          email: 'barbara@example.com',
          password: 'correct horse battery staple',
          email_confirm: true,
          app_metadata: { role: 'admin' },
          user_metadata: { full_name: 'Barbara Liskov' },
        });
        await auth.accessToken(user, 'password'); // her first sign-in
        return user;
      },
    );

    await step(
      'Dashboard / SQL insert',
      'a plain INSERT: no Auth hook; the database webhook reports what the trigger did',
      async () => {
        const [user] = await db.query<AuthUser>(
          `insert into auth.users (instance_id, id, aud, role, email, email_confirmed_at,
             raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
           values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated',
             'authenticated', 'margaret@example.com', now(),
             '{"provider":"email","providers":["email"]}', '{"name":"Margaret Hamilton"}',
             now(), now())
           returning *`,
        );
        await auth.databaseWebhook('INSERT', user!, null);
        return user!;
      },
    );

    const width = Math.max(...steps.flatMap((st) => st.calls.map((c) => c.hook.length)));
    for (const st of steps) {
      say(` • ${st.path}: ${st.note}`);
      if (st.calls.length === 0) say('     (Auth calls no hook on this path)');
      for (const c of st.calls) say(`     ${c.hook.padEnd(width)} → ${c.result}`);
    }
    say('\n2. Later: role and email changes');
    // Anyone can rewrite their own user_metadata; it must not move their role.
    const ada = steps[0]?.userId;
    if (ada) {
      const [adaUser] = await db.query<AuthUser>('select * from auth.users where id = $1', [ada]);
      const self = await gotrue.updateUserMetadata(db.auth, adaUser!.id, { role: 'admin' });
      const token = await auth.accessToken(self, 'token_refresh');
      say(
        `   ada@ calls updateUser({ data: { role: 'admin' } }); her next token: user_role=${
          String(token.userRole)
        } (unchanged)`,
      );
    }
    if (grace) {
      const token = await auth.accessToken(grace, 'token_refresh');
      say(`   grace@ refreshes her session: user_role=${String(token.userRole)}`);
    }
    // The lost event: a bulk fix run with triggers off. No trigger and no database webhook
    // fires, so nothing but a comparison of the two tables can notice.
    if (octo) {
      await gotrue.changeEmail(db.authTriggersOff, octo.id, 'octocat@example.org');
      notes.set(
        octo.id,
        'changed with triggers off (session_replication_role = replica): no trigger, no webhook; the event is lost',
      );
      say(
        '   octo@ gets a new email in a bulk fix run with triggers off: no trigger and no webhook fires',
      );
    }

    const before = await snapshot(db, paths);
    say('\n3. Before the resync: auth.users vs public.users');
    say(`   ${countsLine(before)}`);
    say(stateTable(before, notes));

    const endpoint = resyncEndpoint(serving.base);
    const token = env.USER_SYNC_ADMIN_TOKEN!;
    const drift = await runResync(endpoint, token, { dryRun: true, batchSize: 4 });
    say(
      `\n4. POST /resync {"dry_run": true}: missing ${drift.missing}, stale ${drift.stale}, ` +
        `orphaned ${drift.orphaned}, failures pending ${drift.failures_pending} (nothing written)`,
    );
    const repair = await runResync(endpoint, token, { dryRun: false, batchSize: 4 });
    say(
      `   POST /resync: inserted ${repair.inserted}, updated ${repair.updated}, deleted ${repair.deleted}, ` +
        `unchanged ${repair.unchanged}, failed ${repair.failed}, failures pending ${repair.failures_pending} ` +
        `(${repair.batches ?? '?'} batches of 4)`,
    );

    const after = await snapshot(db, paths);
    say('\n5. After the resync');
    say(`   ${countsLine(after)}`);
    say(stateTable(after, notes));

    // Checked, not assumed: a second dry run must find nothing left to do.
    const verify = await runResync(endpoint, token, { dryRun: true, batchSize: 4 });
    const ok = allInSync(after) && inSync(verify) && repair.failed === 0;
    say(ok ? '\nAll synced.' : '\nNOT in sync: see the table above.');
    return {
      database: db.label,
      steps,
      before,
      drift,
      repair,
      verify,
      after,
      logs: logger.entries,
      inSync: ok,
    };
  } finally {
    await serving.close();
    await db.close();
  }
}
