// The real Supabase CLI (npm package `supabase`, pinned in package.json) pointed at a local
// stand-in of the Management API. The CLI takes any profile file holding `name`, `api_url`,
// `dashboard_url` and `project_host`; a token shaped `sbp_` + 40 hex characters passes its
// offline format check, so nothing leaves the machine.

import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type DenoProcess, RUN_FLAGS, spawnDeno, uploadBootEnv } from './deno.ts';

export const CLI = resolve('node_modules/.bin/supabase');
export const PROJECT_REF = 'abcdefghijklmnopqrst';
export const ACCESS_TOKEN = `sbp_${'0123456789'.repeat(4)}`;

/** One function upload as the Management API received it. */
export interface Upload {
  slug: string;
  metadata: {
    entrypoint_path: string;
    import_map_path?: string;
    static_patterns?: string[];
    verify_jwt?: boolean;
    name?: string;
  };
  /** Uploaded path (relative to the CLI's working directory) to content. */
  files: Map<string, string>;
}

export interface ManagementApi {
  url: string;
  uploads: Upload[];
  /** Bodies of PATCH /v1/projects/{ref}/config/auth. */
  authConfigPatches: Record<string, unknown>[];
  /** Names set through POST /v1/projects/{ref}/secrets (values are not kept). */
  secretNames: string[];
  /** Every request, as "METHOD path". */
  requests: string[];
  close(): Promise<void>;
}

/** A Management API stand-in answering the calls `functions deploy`, `secrets set` and a hook PATCH make. */
export async function startManagementApi(): Promise<ManagementApi> {
  const api: Omit<ManagementApi, 'url' | 'close'> = {
    uploads: [],
    authConfigPatches: [],
    secretNames: [],
    requests: [],
  };
  const project = `/v1/projects/${PROJECT_REF}`;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const url = new URL(req.url ?? '/', 'http://stand-in');
      api.requests.push(`${req.method} ${url.pathname}`);
      const body = Buffer.concat(chunks);
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (req.headers.authorization !== `Bearer ${ACCESS_TOKEN}`) {
        return json(401, { message: 'Unauthorized' });
      }
      try {
        if (req.method === 'GET' && url.pathname === project) {
          return json(200, {
            id: PROJECT_REF,
            ref: PROJECT_REF,
            name: 'stand-in',
            organization_id: 'org',
            region: 'us-east-1',
            status: 'ACTIVE_HEALTHY',
            created_at: '2026-01-01T00:00:00Z',
          });
        }
        if (req.method === 'GET' && url.pathname === `${project}/functions`) return json(200, []);
        if (req.method === 'POST' && url.pathname === `${project}/functions/deploy`) {
          // The CLI sends multipart/form-data: one "file" part per source file, one "metadata".
          const form = await new Request('http://stand-in/', {
            method: 'POST',
            headers: { 'content-type': String(req.headers['content-type']) },
            body,
          }).formData();
          const files = new Map<string, string>();
          for (const part of form.getAll('file')) {
            const file = part as File;
            files.set(file.name, await file.text());
          }
          const slug = url.searchParams.get('slug') ?? '';
          api.uploads.push({ slug, metadata: JSON.parse(String(form.get('metadata'))), files });
          return json(201, {
            id: crypto.randomUUID(),
            slug,
            name: slug,
            status: 'ACTIVE',
            version: api.uploads.length,
            created_at: Date.now(),
            updated_at: Date.now(),
          });
        }
        if (req.method === 'POST' && url.pathname === `${project}/secrets`) {
          const secrets = JSON.parse(body.toString()) as { name: string }[];
          api.secretNames.push(...secrets.map((s) => s.name));
          return json(201, {});
        }
        if (req.method === 'PATCH' && url.pathname === `${project}/config/auth`) {
          api.authConfigPatches.push(JSON.parse(body.toString()));
          return json(200, JSON.parse(body.toString()));
        }
        return json(404, { message: `stand-in: no route for ${req.method} ${url.pathname}` });
      } catch (error) {
        return json(400, { message: String(error) });
      }
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  return {
    ...api,
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** The CLI's working directory (holds supabase/). */
  cwd: string;
  /** A Management API stand-in; its profile is written to a temporary HOME. */
  api?: ManagementApi;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * Runs the real CLI with an empty HOME (no login, no linked project, no telemetry) and only
 * the environment given: no AUTH_HOOK_SECRET unless the test sets it.
 */
export async function supabase(args: string[], opts: CliOptions): Promise<CliResult> {
  const home = await mkdtemp(join(tmpdir(), 'usync-cli-home-'));
  try {
    const extra: string[] = [];
    if (opts.api) {
      const profile = join(home, 'stand-in.yaml');
      await writeFile(
        profile,
        [
          'name: stand-in',
          `api_url: ${opts.api.url}`,
          `dashboard_url: ${opts.api.url}/dashboard`,
          'project_host: supabase.red',
          '',
        ].join('\n'),
      );
      extra.push('--profile', profile);
    }
    return await new Promise<CliResult>((done) => {
      execFile(CLI, [...args, ...extra], {
        cwd: opts.cwd,
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 16 * 1024 * 1024,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: home,
          NO_COLOR: '1',
          SUPABASE_TELEMETRY_DISABLED: '1',
          DO_NOT_TRACK: '1',
          ...(opts.api ? { SUPABASE_ACCESS_TOKEN: ACCESS_TOKEN } : {}),
          ...opts.env,
        },
      }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        done({ code, stdout: String(stdout), stderr: String(stderr) });
      });
    });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/**
 * A copy of the repository's supabase/ folder and shared/ (what a deploy reads), to change a
 * setting without touching the working tree.
 */
export async function copyProject(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'usync-project-'));
  await cp('supabase', join(dir, 'supabase'), {
    recursive: true,
    filter: (src) => !/\/\.(temp|branches)\b|\/\.env$/.test(src),
  });
  await cp('shared', join(dir, 'shared'), { recursive: true });
  return dir;
}

/** `supabase functions deploy <slug> --use-api` from `cwd`: the upload the stand-in received. */
export async function deployFunction(
  api: ManagementApi,
  cwd: string,
  slug = 'user-sync',
): Promise<Upload> {
  const before = api.uploads.length;
  const result = await supabase(
    ['functions', 'deploy', slug, '--use-api', '--project-ref', PROJECT_REF],
    { cwd, api },
  );
  const upload = api.uploads[before];
  if (result.code !== 0 || !upload) {
    throw new Error(`supabase functions deploy failed:\n${result.stderr}${result.stdout}`);
  }
  return upload;
}

/** Writes an upload's files into `dir`, at the paths the CLI gave them. */
export async function writeUpload(upload: Upload, dir: string): Promise<void> {
  for (const [path, content] of upload.files) {
    const target = resolve(dir, path);
    if (!target.startsWith(resolve(dir) + '/')) throw new Error(`upload path escapes: ${path}`);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, content);
  }
}

export interface BootedUpload {
  fn: DenoProcess;
  /** The folder the upload was written to and runs in. */
  root: string;
  /** Stops the process and deletes the folders. */
  remove(): Promise<void>;
}

/**
 * An upload booted as the edge runtime boots it: written into an empty folder and run there
 * with its own import map, no node_modules and an empty module cache (every npm package is
 * fetched at boot), with `env` (the function's secrets and database URL) added.
 */
export async function bootUpload(
  upload: Upload,
  env: Record<string, string>,
  onLine?: (line: string) => void,
): Promise<BootedUpload> {
  const root = await mkdtemp(join(tmpdir(), 'usync-upload-'));
  const denoDir = await mkdtemp(join(tmpdir(), 'usync-deno-dir-'));
  const remove = async () => {
    await Promise.all([root, denoDir].map((d) => rm(d, { recursive: true, force: true })));
  };
  try {
    await writeUpload(upload, root);
    const fn = await spawnDeno({
      script: upload.metadata.entrypoint_path,
      flags: [...RUN_FLAGS, '--config', upload.metadata.import_map_path!],
      cwd: root,
      env: { ...uploadBootEnv(root, denoDir), ...env },
      onLine,
    });
    return { fn, root, remove: async () => (await fn.stop(), await remove()) };
  } catch (error) {
    await remove();
    throw error;
  }
}
