// `npm run db:migrate`: the auth stand-in (where the database has no `auth` schema) and every
// pending supabase/migrations/*.sql, on DATABASE_URL, recorded as the Supabase CLI records them.

import postgres from 'postgres';
import { describePgError, migrate, MigrationError, postgresExecutor } from './migrations.ts';

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}

async function main(): Promise<number> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    console.error(
      'DATABASE_URL is not set. Set it to the database to migrate, for example\n' +
        '  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run db:migrate',
    );
    return 1;
  }
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    try {
      await sql`select 1`;
    } catch (error) {
      console.error(`Cannot reach the database at ${redact(url)}: ${describePgError(error)}`);
      return 1;
    }
    const result = await migrate(postgresExecutor(sql), {
      onApply: (m) => console.log(`applying ${m.file}`),
    });
    if (result.standIn) {
      console.log('applied the Supabase auth stand-in (no auth schema was present)');
    }
    for (const file of result.ignored) {
      console.warn(`skipped ${file}: a migration file name must look like <digits>_<name>.sql`);
    }
    console.log(
      result.applied.length === 0
        ? `nothing to apply (${result.alreadyApplied.length} migrations already applied)`
        : `applied ${result.applied.length} migration(s), ${result.alreadyApplied.length} were already applied`,
    );
    return 0;
  } catch (error) {
    if (error instanceof MigrationError) {
      console.error(
        `${error.message}\nNothing of ${error.file} was applied. Statement:\n${error.statement}`,
      );
    } else {
      console.error(`db:migrate failed: ${describePgError(error)}`);
    }
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

process.exitCode = await main();
