// supabase/config.toml: init appends our function's table and the Auth hooks it lacks, as one
// delimited block at the end, so every byte the user wrote stays where it was; uninstall takes the
// block out again (or, once the user has edited it, only [functions.user-sync], through
// toml-patch, which keeps the rest of the document). Both parse the result and check that it says
// what the original said, plus or minus our tables.

import { isDeepStrictEqual } from 'node:util';
import { parse, patch } from '@decimalturn/toml-patch';
import { InstallError } from './errors.ts';
import { sha256 } from './project.ts';

export const FUNCTION_TABLE = 'functions.user-sync';
export const HOOKS = ['before_user_created', 'custom_access_token'] as const;
export type Hook = (typeof HOOKS)[number];

export const BLOCK_BEGIN = '# >>> supabase-user-sync: added by `npx supabase-user-sync init` >>>';
export const BLOCK_END = '# <<< supabase-user-sync <<<';

type Toml = Record<string, unknown>;

function parseToml(text: string, what: string): Toml {
  try {
    return parse(text) as Toml;
  } catch (error) {
    throw new InstallError(`${what} is not valid TOML: ${(error as Error).message}`);
  }
}

function table(doc: Toml, path: string): unknown {
  let node: unknown = doc;
  for (const key of path.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Toml)[key];
  }
  return node;
}

/**
 * `doc` without the table at `path`, copying only what lies on the path. A parent left empty goes
 * too, unless `reference` (the document before our tables were added) has it.
 */
function without(doc: Toml, path: string, reference?: Toml): Toml {
  const [key, ...rest] = path.split('.') as [string, ...string[]];
  if (!(key in doc)) return doc;
  // The parser makes objects without a prototype; the copy keeps that, so that they compare equal.
  const copy: Toml = Object.assign(Object.create(Object.getPrototypeOf(doc)), doc);
  if (rest.length === 0) {
    delete copy[key];
    return copy;
  }
  const child = doc[key];
  if (typeof child !== 'object' || child === null || Array.isArray(child)) return doc;
  const ref = reference?.[key];
  const refChild = typeof ref === 'object' && ref !== null ? (ref as Toml) : undefined;
  const pruned = without(child as Toml, rest.join('.'), refChild);
  if (Object.keys(pruned).length === 0 && refChild === undefined) delete copy[key];
  else copy[key] = pruned;
  return copy;
}

const HOOK_ROUTE: Record<Hook, string> = {
  before_user_created: 'before-user-created',
  custom_access_token: 'custom-access-token',
};

function hookSection(hook: Hook, port: number): string[] {
  const lines = [
    `[auth.hook.${hook}]`,
    'enabled = false',
    `uri = "http://host.docker.internal:${port}/functions/v1/user-sync/hooks/${HOOK_ROUTE[hook]}"`,
    'secrets = "env(AUTH_HOOK_SECRET)"',
    '# Postgres-function alternative (replace the two lines above with this one):',
    `# uri = "pg-functions://postgres/public/hook_${hook}"`,
  ];
  return lines;
}

/** The block init appends: [functions.user-sync] and the given hooks, disabled. */
export function configBlock(hooks: readonly Hook[], port: number, nl = '\n'): string {
  const lines = [
    BLOCK_BEGIN,
    "# supabase-user-sync's edge function and Auth hooks. `npx supabase-user-sync uninstall` removes",
    '# this block, down to the closing line, as long as it is unchanged.',
    '',
    '[functions.user-sync]',
    'enabled = true',
    '# Supabase Auth sends no JWT to hooks, and the database webhook sends its own bearer: the',
    '# function checks signatures and tokens itself. With verify_jwt on, every hook call would be a',
    '# 401. Deploy with `--no-verify-jwt` for the same reason.',
    'verify_jwt = false',
    '# Paths are relative to this directory (supabase/).',
    'import_map = "./functions/user-sync/deno.json"',
    'entrypoint = "./functions/user-sync/index.ts"',
  ];
  if (hooks.length > 0) {
    lines.push(
      '',
      '# Auth hooks for the local stack (`npx supabase start`), off until you enable them; a hosted',
      "# project's hooks are set in the Dashboard (Authentication > Hooks). To enable one, first put",
      "# AUTH_HOOK_SECRET (v1,whsec_<base64>, 32+ base64 characters; the function's secret of the",
      '# same name holds the same value) in supabase/.env or your environment, then set',
      '# enabled = true: with it unset, every CLI command stops with "Invalid hook config".',
      '# An HTTP hook needs `secrets`; the Postgres-function alternative takes none (the CLI rejects',
      '# it), so it replaces both the uri and the secrets line.',
      '# host.docker.internal: how the local auth container reaches the functions server.',
    );
    for (const hook of hooks) lines.push('', ...hookSection(hook, port));
  }
  lines.push(BLOCK_END);
  return lines.join(nl) + nl;
}

export interface ConfigMerge {
  text: string;
  /** The tables added: functions.user-sync, auth.hook.<name>. */
  added: string[];
  /** The appended block, as written (its sha256 goes into the marker). */
  block: string;
  notes: string[];
}

/** config.toml with our block appended; exit 2 when [functions.user-sync] is there already. */
export function mergeConfig(original: string): ConfigMerge {
  const doc = parseToml(original, 'supabase/config.toml');
  if (table(doc, FUNCTION_TABLE) !== undefined) {
    throw new InstallError(
      'supabase/config.toml already has a [functions.user-sync] table. supabase-user-sync adds ' +
        'its own; remove that table (or rename your function) and run init again.',
    );
  }
  const notes: string[] = [];
  const hooks = HOOKS.filter((hook) => {
    if (table(doc, `auth.hook.${hook}`) === undefined) return true;
    notes.push(
      `supabase/config.toml already has [auth.hook.${hook}]: left as it is. To use ` +
        `supabase-user-sync's, point its uri at the function's /hooks/${HOOK_ROUTE[hook]} route ` +
        `or at pg-functions://postgres/public/hook_${hook}.`,
    );
    return false;
  });
  const port = Number(table(doc, 'api.port') ?? 54321) || 54321;
  const nl = original.includes('\r\n') ? '\r\n' : '\n';
  const separator = original === '' ? '' : original.endsWith('\n') ? nl : nl + nl;

  const attempt = (withHooks: readonly Hook[]) => {
    const block = configBlock(withHooks, port, nl);
    const text = original + separator + block;
    try {
      return { text, block, merged: parse(text) as Toml };
    } catch {
      return undefined;
    }
  };
  let result = attempt(hooks);
  if (result === undefined && hooks.length > 0) {
    // The user's [auth] shape (an inline `hook = {…}`, say) does not take sub-tables.
    result = attempt([]);
    if (result !== undefined) {
      notes.push(
        `the hook sections (${hooks.map((h) => `[auth.hook.${h}]`).join(', ')}) could not be ` +
          'added to the way supabase/config.toml defines [auth]: add them by hand if you want them ' +
          'for the local stack.',
      );
      hooks.length = 0;
    }
  }
  if (result === undefined) {
    throw new InstallError(
      'supabase/config.toml would not parse with [functions.user-sync] appended (is `functions` ' +
        'an inline table?). Add the table by hand: see the README\'s "Add it to your project".',
    );
  }
  const added = [FUNCTION_TABLE, ...hooks.map((h) => `auth.hook.${h}`)];
  checkMerge(doc, result.merged, added);
  return { text: result.text, added, block: result.block, notes };
}

/** The merged document says what the original said, plus exactly our tables. */
function checkMerge(original: Toml, merged: Toml, added: string[]): void {
  const fn = table(merged, FUNCTION_TABLE) as Toml | undefined;
  const expected = {
    enabled: true,
    verify_jwt: false,
    import_map: './functions/user-sync/deno.json',
    entrypoint: './functions/user-sync/index.ts',
  };
  let rest = merged;
  for (const path of added) rest = without(rest, path, original);
  if (!isDeepStrictEqual({ ...fn }, expected) || !isDeepStrictEqual(rest, original)) {
    throw new InstallError('merging supabase/config.toml went wrong; it was left as it is', 1);
  }
  for (const path of added.filter((p) => p !== FUNCTION_TABLE)) {
    if ((table(merged, path) as Toml | undefined)?.enabled !== false) {
      throw new InstallError('merging supabase/config.toml went wrong; it was left as it is', 1);
    }
  }
}

export interface ConfigRemoval {
  text: string;
  notes: string[];
}

/**
 * config.toml without what init added: the whole block while it is unchanged, otherwise only
 * [functions.user-sync] (hook sections that still point at us are named in the notes).
 */
export function removeFromConfig(original: string, blockSha: string | null): ConfigRemoval {
  const notes: string[] = [];
  let text = original;
  const begin = text.indexOf(`${BLOCK_BEGIN}`);
  const endAt = begin === -1 ? -1 : text.indexOf(BLOCK_END, begin);
  if (begin !== -1 && endAt !== -1) {
    let end = endAt + BLOCK_END.length;
    if (text.startsWith('\r\n', end)) end += 2;
    else if (text.startsWith('\n', end)) end += 1;
    if (blockSha !== null && sha256(text.slice(begin, end)) === blockSha) {
      // The blank line init put before the block goes with it.
      let start = begin;
      if (text.slice(0, start).endsWith('\r\n\r\n')) start -= 2;
      else if (text.slice(0, start).endsWith('\n\n')) start -= 1;
      text = text.slice(0, start) + text.slice(end);
    } else {
      notes.push(
        'the supabase-user-sync block of supabase/config.toml was edited, so only ' +
          '[functions.user-sync] was taken out of it; remove the rest of the block by hand.',
      );
    }
  }
  const doc = parseToml(text, 'supabase/config.toml');
  if (table(doc, FUNCTION_TABLE) !== undefined) {
    text = patch(text, without(doc, FUNCTION_TABLE));
  }
  const after = parseToml(text, 'supabase/config.toml as uninstall left it');
  if (table(after, FUNCTION_TABLE) !== undefined) {
    throw new InstallError('could not remove [functions.user-sync] from supabase/config.toml', 1);
  }
  for (const hook of HOOKS) {
    const section = table(after, `auth.hook.${hook}`) as Toml | undefined;
    const uri = typeof section?.uri === 'string' ? section.uri : '';
    if (/\/user-sync\/|hook_(before_user_created|custom_access_token)\b/.test(uri)) {
      notes.push(
        `[auth.hook.${hook}] in supabase/config.toml still points at supabase-user-sync (${uri}): ` +
          'remove it or point it elsewhere before the next `npx supabase start`.',
      );
    }
  }
  return { text, notes };
}
