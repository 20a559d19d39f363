// What the seed document checked by hand ("24 auth.users, 22 public.users"), per user: each
// auth user beside its app row, whether the row is what the sync mapping says it should be, and
// if not, which columns differ and what failure was recorded. Read as the database owner.

import type { DemoDb } from './db.ts';
import { type Column, renderTable } from '../../cli/table.ts';

export type SyncStatus = 'in sync' | 'MISSING' | 'STALE' | 'ORPHANED';

export interface UserState {
  id: string;
  /** The way the user was created (the demo's label), or null for a user it did not create. */
  path: string | null;
  /** email, +phone, or (anonymous) */
  who: string;
  status: SyncStatus;
  /** The app row as it is (null: none). */
  app:
    | { email: string | null; phone: string | null; full_name: string | null; role: string }
    | null;
  /** What the mapping wants for role (null for orphans). */
  wantRole: string | null;
  /** Columns whose value differs from the mapping, with both values. */
  differs: string[];
  /** A recorded sync failure: SQLSTATE, message, who recorded it last, attempts. */
  failure: string | null;
}

export interface Snapshot {
  authUsers: number;
  appUsers: number;
  failuresPending: number;
  users: UserState[];
}

interface Row {
  id: string;
  auth_email: string | null;
  auth_phone: string | null;
  auth_anonymous: boolean | null;
  has_auth: boolean;
  has_app: boolean;
  in_sync: boolean | null;
  app_email: string | null;
  app_phone: string | null;
  app_full_name: string | null;
  app_role: string | null;
  app_avatar_url: string | null;
  app_email_confirmed_at: string | null;
  app_is_anonymous: boolean | null;
  app_created_at: string | null;
  want_email: string | null;
  want_phone: string | null;
  want_full_name: string | null;
  want_avatar_url: string | null;
  want_role: string | null;
  want_email_confirmed_at: string | null;
  want_is_anonymous: boolean | null;
  want_created_at: string | null;
  failure_sqlstate: string | null;
  failure_message: string | null;
  failure_source: string | null;
  failure_attempts: number | null;
}

// user_sync.plan is the one mapping (the migrations); the demo only reads it.
const STATE_SQL = `
  select coalesce(a.id, u.id) as id,
         a.email::text as auth_email, a.phone::text as auth_phone, a.is_anonymous as auth_anonymous,
         a.id is not null as has_auth, u.id is not null as has_app,
         p.in_sync,
         u.email as app_email, u.phone as app_phone, u.full_name as app_full_name,
         u.role as app_role, u.avatar_url as app_avatar_url,
         u.email_confirmed_at::text as app_email_confirmed_at, u.is_anonymous as app_is_anonymous,
         u.created_at::text as app_created_at,
         p.email as want_email, p.phone as want_phone, p.full_name as want_full_name,
         p.avatar_url as want_avatar_url, p.role as want_role,
         p.email_confirmed_at::text as want_email_confirmed_at,
         p.is_anonymous as want_is_anonymous, p.created_at::text as want_created_at,
         f.sqlstate as failure_sqlstate, f.message as failure_message, f.source as failure_source,
         f.attempts as failure_attempts
  from auth.users a
  full join public.users u on u.id = a.id
  left join lateral user_sync.plan(a.id, a.id) p on a.id is not null
  left join user_sync.sync_failures f on f.user_id = coalesce(a.id, u.id)
  order by coalesce(a.created_at, u.created_at), coalesce(a.id, u.id)`;

const COMPARED = [
  'email',
  'phone',
  'full_name',
  'avatar_url',
  'role',
  'email_confirmed_at',
  'is_anonymous',
  'created_at',
] as const;

function short(value: unknown, max = 40): string {
  if (value === null || value === undefined) return 'null';
  const s = String(value);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Reads both tables now. `paths` names the users the demo created, by id. */
export async function snapshot(db: DemoDb, paths: ReadonlyMap<string, string>): Promise<Snapshot> {
  const rows = await db.query<Row>(STATE_SQL);
  const [counts] = await db.query<{ auth: number; app: number; failures: number }>(
    `select (select count(*) from auth.users)::int as auth,
            (select count(*) from public.users)::int as app,
            (select count(*) from user_sync.sync_failures)::int as failures`,
  );
  const users = rows.map((r): UserState => {
    const status: SyncStatus = !r.has_auth
      ? 'ORPHANED'
      : !r.has_app
      ? 'MISSING'
      : r.in_sync
      ? 'in sync'
      : 'STALE';
    const differs = status === 'STALE'
      ? COMPARED.filter((c) =>
        String(r[`app_${c}` as keyof Row] ?? null) !== String(r[`want_${c}` as keyof Row] ?? null)
      ).map((c) =>
        `${c}: ${short(r[`app_${c}` as keyof Row])} → ${short(r[`want_${c}` as keyof Row])}`
      )
      : [];
    return {
      id: r.id,
      path: paths.get(r.id) ?? null,
      who: r.auth_email
        ? r.auth_email
        : r.auth_phone
        ? `+${r.auth_phone}`
        : r.auth_anonymous
        ? '(anonymous)'
        : r.app_email ?? r.id,
      status,
      app: r.has_app
        ? {
          email: r.app_email,
          phone: r.app_phone,
          full_name: r.app_full_name,
          role: r.app_role ?? '',
        }
        : null,
      wantRole: r.want_role,
      differs,
      failure: r.failure_sqlstate
        ? `SQLSTATE ${r.failure_sqlstate}, ${short(r.failure_message, 120)} ` +
          `(last by ${r.failure_source}, ${r.failure_attempts} attempt(s))`
        : null,
    };
  });
  return {
    authUsers: counts?.auth ?? 0,
    appUsers: counts?.app ?? 0,
    failuresPending: counts?.failures ?? 0,
    users,
  };
}

export function allInSync(s: Snapshot): boolean {
  return s.failuresPending === 0 && s.authUsers === s.appUsers &&
    s.users.every((u) => u.status === 'in sync');
}

/**
 * The per-user table, and under it a numbered note for each user out of step: which columns
 * differ, the failure recorded, and `notes` (what the demo did to that user).
 */
export function stateTable(s: Snapshot, notes: ReadonlyMap<string, string> = new Map()): string {
  const footnotes: string[] = [];
  const marks = new Map<string, number>();
  for (const u of s.users) {
    if (u.status === 'in sync') continue;
    const why = [
      ...u.differs,
      u.failure ? `failure recorded: ${u.failure}` : '',
      notes.get(u.id) ?? '',
    ].filter(Boolean);
    marks.set(u.id, footnotes.length + 1);
    footnotes.push(`  [${footnotes.length + 1}] ${u.who}: ${why.join('\n      ') || u.status}`);
  }
  const columns: Column<UserState>[] = [
    { header: 'created by', value: (u) => u.path ?? '(not by the demo)' },
    { header: 'auth.users', value: (u) => u.who },
    {
      header: 'public.users row',
      value: (u) => (u.app ? `${u.app.role}, ${u.app.full_name ?? 'no name'}` : null),
    },
    { header: 'status', value: (u) => u.status + (marks.has(u.id) ? ` [${marks.get(u.id)}]` : '') },
  ];
  return [renderTable(s.users, columns), ...footnotes].join('\n');
}

export function countsLine(s: Snapshot): string {
  const by = (status: SyncStatus) => s.users.filter((u) => u.status === status).length;
  const parts = [
    `${s.authUsers} auth.users`,
    `${s.appUsers} public.users`,
    `${by('MISSING')} missing`,
    `${by('STALE')} stale`,
    `${by('ORPHANED')} orphaned`,
    `${s.failuresPending} failure(s) recorded`,
  ];
  return parts.join(', ');
}
