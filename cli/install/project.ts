// The user's project as the installer sees it: its supabase/ folder, its migrations and their
// newest version, and our install marker (supabase/user-sync.json).

import { createHash } from 'node:crypto';
import { existsSync, lstatSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { InstallError } from './errors.ts';
import { MIGRATIONS_DIR, PACKAGE_NAME } from './payload.ts';

export const CONFIG_PATH = 'supabase/config.toml';
export const MARKER_PATH = 'supabase/user-sync.json';
export const MIGRATING_DOC =
  'https://github.com/supabase-user-sync/supabase-user-sync/blob/main/docs/migrating.md';

export function sha256(content: string | Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

/** Whether anything is at `path` under `root`, a symbolic link to nothing too. */
export function entryExists(root: string, path: string): boolean {
  return lstatSync(join(root, path), { throwIfNoEntry: false }) !== undefined;
}

/**
 * What an fs error on the project's `path` means to its owner, as an exit-2 error naming the
 * path: a project entry we cannot read is theirs to mend, not an unexpected error.
 */
function unreadable(root: string, path: string, error: unknown, folder = false): InstallError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason = code === 'ENOENT' && entryExists(root, path)
    ? 'it is a symbolic link to nothing'
    : code === 'ELOOP'
    ? 'it is a loop of symbolic links'
    : code === 'EISDIR'
    ? 'it is a folder, not a file'
    : code === 'ENOTDIR'
    ? (folder ? 'it is a file, not a folder' : 'a folder on its path is a file')
    : code === 'EACCES' || code === 'EPERM'
    ? 'permission denied'
    : (error as Error).message;
  return new InstallError(`cannot read ${path}: ${reason}`);
}

/** A text file of the project (`path` relative to `root`), or exit 2 naming it. */
export async function readProjectFile(root: string, path: string): Promise<string> {
  try {
    return await readFile(join(root, path), 'utf8');
  } catch (error) {
    throw unreadable(root, path, error);
  }
}

/** readProjectFile, or undefined where nothing is there (a link to nothing is something). */
export async function readProjectFileIfExists(
  root: string,
  path: string,
): Promise<string | undefined> {
  try {
    return await readFile(join(root, path), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !entryExists(root, path)) {
      return undefined;
    }
    throw unreadable(root, path, error);
  }
}

/** The project root (holding supabase/config.toml), or exit 2 with what is missing. */
export function findProject(dir: string): string {
  const root = resolve(dir);
  if (!existsSync(join(root, CONFIG_PATH))) {
    throw new InstallError(
      `no ${CONFIG_PATH} in ${root}. Run this from the root of your Supabase project (the folder ` +
        `holding supabase/), or pass --project <dir>; \`npx supabase init\` creates one.`,
    );
  }
  return root;
}

export interface ProjectMigration {
  version: string;
  file: string;
}

/** The project's migrations as the Supabase CLI takes them (`<digits>_<name>.sql`), in name order. */
export async function projectMigrations(root: string): Promise<ProjectMigration[]> {
  let entries: string[];
  try {
    entries = await readdir(join(root, MIGRATIONS_DIR));
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT' &&
      !entryExists(root, MIGRATIONS_DIR);
    if (missing) return [];
    throw unreadable(root, MIGRATIONS_DIR, error, true);
  }
  return entries
    .map((file) => ({ file, match: /^(\d+)_.*\.sql$/.exec(file) }))
    .filter((e) => e.match !== null)
    .map((e) => ({ version: e.match![1]!, file: e.file }))
    .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

/** The numerically greatest version, or undefined. */
export function newestVersion(migrations: ProjectMigration[]): string | undefined {
  let newest: string | undefined;
  for (const m of migrations) {
    if (newest === undefined || BigInt(m.version) > BigInt(newest)) newest = m.version;
  }
  return newest;
}

function timestampToDate(version: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(version);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // A version like 20240101999999 is a number, not a time: no date arithmetic on it.
  return formatTimestamp(date) === version ? date : undefined;
}

function formatTimestamp(date: Date): string {
  return date.toISOString().slice(0, 19).replace(/[-:T]/g, '');
}

/**
 * `count` new versions, one second apart (YYYYMMDDHHMMSS), that sort after the project's newest
 * and are not earlier than `now`: the Supabase CLI applies them after the project's migrations
 * and in the given order, and a migration the user creates next (`supabase migration new` names
 * it by the clock) sorts after them. Our own versions are never reused: they may lie in the
 * future of the user's clock, and then their next migration would run before ours.
 */
export function versionsAfter(
  newest: string | undefined,
  count: number,
  now: Date = new Date(),
): string[] {
  const clock = formatTimestamp(new Date(Math.floor(now.getTime() / 1000) * 1000));
  // The first version: the second after the newest, or now if that is later.
  const next = newest === undefined ? undefined : nextVersion(newest);
  const first = next !== undefined && BigInt(next) > BigInt(clock) ? next : clock;
  const versions = [first];
  while (versions.length < count) versions.push(nextVersion(versions.at(-1)!));
  return versions;
}

/** The version one second after `version`, or one more where it is not a time. */
function nextVersion(version: string): string {
  const date = timestampToDate(version);
  return date
    ? formatTimestamp(new Date(date.getTime() + 1000))
    : (BigInt(version) + 1n).toString();
}

export interface MarkerMigration {
  /** Our file name, as the package ships it. */
  ours: string;
  /** The name it was written under in the project. */
  file: string;
  /** sha256 of what was written. */
  sha256: string;
}

export interface MarkerConfig {
  /** The tables init appended to config.toml: functions.user-sync, auth.hook.<name>. */
  added: string[];
  /** sha256 of the block init appended (uninstall removes it only while it is unchanged). */
  block: string | null;
}

/** supabase/user-sync.json: what is installed, so that upgrade and uninstall touch only ours. */
export interface Marker {
  package: typeof PACKAGE_NAME;
  version: string;
  migrations: MarkerMigration[];
  /** Project-relative path → sha256 of what we wrote (the function and the pgTAP files). */
  files: Record<string, string>;
  config: MarkerConfig;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** What compareVersions takes: x.y.z, a pre-release after a dash, build metadata after a plus. */
const VERSION = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A path we may have written: relative, inside supabase/, no `..`. upgrade and uninstall delete
 * the marker's files, so a marker edited by hand must not reach outside the project.
 */
function isInstallPath(path: string): boolean {
  const parts = path.split(/[\\/]/);
  return !isAbsolute(path) && !/^[A-Za-z]:/.test(path) && parts[0] === 'supabase' &&
    parts.length > 1 && !parts.includes('..') && !parts.includes('');
}

/** What is wrong with a parsed marker, as a phrase; undefined where nothing is. */
function markerProblem(marker: unknown): string | undefined {
  if (!isObject(marker)) {
    return `it holds ${Array.isArray(marker) ? 'a list' : JSON.stringify(marker)}, not an object`;
  }
  const { package: name, version, migrations, files, config } = marker;
  if (name !== PACKAGE_NAME) {
    return `package is ${JSON.stringify(name)}, not ${JSON.stringify(PACKAGE_NAME)}`;
  }
  if (typeof version !== 'string' || !VERSION.test(version)) {
    return `version ${JSON.stringify(version)} is not a version like 0.3.0`;
  }
  if (!Array.isArray(migrations)) return 'migrations is not a list';
  const bad = migrations.findIndex((m) =>
    !isObject(m) || typeof m.ours !== 'string' || typeof m.file !== 'string' ||
    typeof m.sha256 !== 'string'
  );
  if (bad >= 0) return `migrations[${bad}] is not an object with the strings ours, file and sha256`;
  if (!isObject(files)) return 'files is not an object of paths and sha256s';
  for (const [path, sha] of Object.entries(files)) {
    if (!isInstallPath(path)) {
      return `files has ${JSON.stringify(path)}, which is not a path inside supabase/`;
    }
    if (typeof sha !== 'string' || !SHA256.test(sha)) {
      return `files[${JSON.stringify(path)}] is not a sha256 (64 hex digits)`;
    }
  }
  const configOk = config === undefined || config === null ||
    (isObject(config) && Array.isArray(config.added) &&
      config.added.every((t) => typeof t === 'string') &&
      (config.block === null || typeof config.block === 'string'));
  if (!configOk) {
    return 'config is not an object with added (a list of table names) and block (a sha256 or null)';
  }
  return undefined;
}

export async function readMarker(root: string): Promise<Marker | undefined> {
  const text = await readProjectFileIfExists(root, MARKER_PATH);
  if (text === undefined) return undefined;
  let marker: unknown;
  try {
    marker = JSON.parse(text);
  } catch (error) {
    throw new InstallError(`${MARKER_PATH} is not valid JSON (${(error as Error).message})`);
  }
  const problem = markerProblem(marker);
  if (problem !== undefined) {
    throw new InstallError(
      `${MARKER_PATH} is not a ${PACKAGE_NAME} install marker: ${problem}. upgrade and uninstall ` +
        'go by it: put back the one init or upgrade wrote (from your version control).',
    );
  }
  const valid = marker as unknown as Marker;
  return {
    package: PACKAGE_NAME,
    version: valid.version,
    migrations: valid.migrations.map(({ ours, file, sha256 }) => ({ ours, file, sha256 })),
    files: { ...valid.files },
    config: valid.config ?? { added: [], block: null },
  };
}

export function markerText(marker: Marker): string {
  return `${JSON.stringify(marker, null, 2)}\n`;
}

/** Compares x.y.z versions (a pre-release sorts before its release). */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const m = VERSION.exec(v.trim());
    if (!m) throw new InstallError(`not a version: ${v}`, 1);
    return { nums: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) {
    const d = x.nums[i]! - y.nums[i]!;
    if (d !== 0) return Math.sign(d);
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === undefined) return 1;
  if (y.pre === undefined) return -1;
  return x.pre < y.pre ? -1 : 1;
}
