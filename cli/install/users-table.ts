// Whether the user's project already has a public.users of its own, which our migrations would
// collide with ("relation users already exists"). Read from their migrations, in the order the
// CLI applies them, so a table that a later migration renames or drops (docs/migrating.md, step 2)
// does not count; or asked of the database itself with --db-url.

import { MIGRATIONS_DIR } from './payload.ts';
import { type ProjectMigration, readProjectFile } from './project.ts';
import { sqlSegments } from '../sql-scan.ts';

/**
 * The SQL with comments removed and single-quoted string contents blanked (so neither can look
 * like a statement), quoted identifiers kept, and dollar-quoted bodies treated the same way
 * inside (a DO block can create a table). Offsets are kept: every removed character becomes a
 * space.
 */
export function codeOnly(sql: string): string {
  const out = sql.split('');
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  for (const { kind, start, end } of sqlSegments(sql)) {
    if (kind === 'comment') blank(start, end);
    else if (kind === 'string') blank(start + 1, end - 1);
    else if (kind === 'dollar') {
      const tag = /^\$[A-Za-z0-9_]*\$/.exec(sql.slice(start))![0];
      const bodyEnd = Math.max(start + tag.length, end - tag.length);
      const body = codeOnly(sql.slice(start + tag.length, bodyEnd));
      out.splice(start + tag.length, body.length, ...body.split(''));
    }
  }
  return out.join('');
}

const IDENT = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const QNAME = String.raw`${IDENT}(?:\s*\.\s*${IDENT}){0,2}`;
const KIND = String.raw`(?:table|view|materialized\s+view)`;

/** One identifier as PostgreSQL folds it: quoted kept as written, unquoted in lower case. */
function identifier(text: string): string {
  return text.startsWith('"') ? text.slice(1, -1).replaceAll('""', '"') : text.toLowerCase();
}

/** The parts of a qualified name. */
function nameParts(text: string): string[] {
  return [...text.matchAll(new RegExp(IDENT, 'g'))].map((m) => identifier(m[0]));
}

/** public.users, written any way: users, "users", public.users, "public"."users", db.public.users. */
function isPublicUsers(text: string): boolean {
  const parts = nameParts(text);
  const name = parts[parts.length - 1];
  const schema = parts.length >= 2 ? parts[parts.length - 2] : 'public';
  return name === 'users' && schema === 'public';
}

/** An unqualified or public name (what `rename to` keeps the schema of). */
function inPublic(text: string): boolean {
  const parts = nameParts(text);
  return parts.length === 1 || parts[parts.length - 2] === 'public';
}

const STATEMENTS = new RegExp(
  [
    // create [or replace] [unlogged] table|view|materialized view [if not exists] <name>
    String
      .raw`\bcreate\s+(?:or\s+replace\s+)?(?:(?:global|local)\s+)?(?<temp>(?:temp|temporary)\s+)?(?:unlogged\s+)?${KIND}\s+(?:if\s+not\s+exists\s+)?(?<created>${QNAME})`,
    // drop table|view … <names>
    String.raw`\bdrop\s+${KIND}\s+(?:if\s+exists\s+)?(?<dropped>${QNAME}(?:\s*,\s*${QNAME})*)`,
    // alter table|view [if exists] [only] <name> rename to <name> | set schema <schema>
    String
      .raw`\balter\s+${KIND}\s+(?:if\s+exists\s+)?(?:only\s+)?(?<altered>${QNAME})\s+(?:rename\s+to\s+(?<renamed>${IDENT})|set\s+schema\s+(?<moved>${IDENT}))`,
  ].join('|'),
  'gi',
);

export interface UsersTableFinding {
  /** The migration file whose statement leaves public.users in place. */
  file: string;
  /** 1-based line of that statement. */
  line: number;
}

/**
 * Follows the statements that create, drop, rename or move public.users through the migrations,
 * in order; returns where the table that is left at the end was made, or undefined.
 */
export function usersTableIn(
  migrations: Array<{ file: string; sql: string }>,
): UsersTableFinding | undefined {
  let found: UsersTableFinding | undefined;
  for (const { file, sql } of migrations) {
    const code = codeOnly(sql);
    for (const m of code.matchAll(STATEMENTS)) {
      const g = m.groups ?? {};
      const line = code.slice(0, m.index).split('\n').length;
      if (g.created !== undefined) {
        if (g.temp === undefined && isPublicUsers(g.created)) found ??= { file, line };
      } else if (g.dropped !== undefined) {
        const names = g.dropped.split(new RegExp(String.raw`\s*,\s*(?=${IDENT})`));
        if (names.some(isPublicUsers)) found = undefined;
      } else if (g.altered !== undefined) {
        if (isPublicUsers(g.altered)) {
          const stays = g.renamed !== undefined
            ? identifier(g.renamed) === 'users'
            : identifier(g.moved ?? '') === 'public';
          if (!stays) found = undefined;
        } else if (
          g.renamed !== undefined && identifier(g.renamed) === 'users' && inPublic(g.altered)
        ) {
          found ??= { file, line };
        } else if (
          g.moved !== undefined && identifier(g.moved) === 'public' &&
          nameParts(g.altered).at(-1) === 'users'
        ) {
          found ??= { file, line };
        }
      }
    }
  }
  return found;
}

/** usersTableIn over the project's migration files (exit 2 at the first one it cannot read). */
export async function usersTableInProject(
  root: string,
  migrations: ProjectMigration[],
): Promise<UsersTableFinding | undefined> {
  const files: Array<{ file: string; sql: string }> = [];
  for (const m of migrations) {
    const file = `${MIGRATIONS_DIR}/${m.file}`;
    files.push({ file, sql: await readProjectFile(root, file) });
  }
  return usersTableIn(files);
}

/** What --db-url asks the database (one row). */
export const DATABASE_CHECK_SQL = `select
  pg_catalog.to_regclass('public.users') is not null as has_users,
  exists (select from pg_catalog.pg_namespace where nspname = 'user_sync') as has_schema`;

export interface DatabaseState {
  hasUsers: boolean;
  hasSchema: boolean;
}

/** Runs DATABASE_CHECK_SQL with a postgres.js connection to `url`. */
export async function checkDatabaseUrl(url: string): Promise<DatabaseState> {
  const { default: postgres } = await import('postgres');
  const sql = postgres(url, { max: 1, connect_timeout: 15, onnotice: () => {} });
  try {
    const [row] = await sql.unsafe<Array<{ has_users: boolean; has_schema: boolean }>>(
      DATABASE_CHECK_SQL,
    );
    return { hasUsers: row?.has_users === true, hasSchema: row?.has_schema === true };
  } finally {
    await sql.end({ timeout: 5 });
  }
}
