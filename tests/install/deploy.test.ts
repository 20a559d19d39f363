// The function as init installs it deploys from the user's repository: the real Supabase CLI
// (`functions deploy user-sync`, to a Management API stand-in) uploads the entry from
// supabase/functions/user-sync/ and, through its rewritten imports, the code in
// supabase/functions/_shared/user-sync/, with the import map config.toml names. On a server run
// the upload also boots as the edge runtime boots it (no node_modules) and answers.

import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DenoProcess, RUN_FLAGS, spawnDeno, uploadBootEnv } from '../../dev/deno.ts';
import {
  deployFunction,
  type ManagementApi,
  startManagementApi,
  type Upload,
  writeUpload,
} from '../../dev/supabase-cli.ts';
import { init } from '../../cli/install/init.ts';
import { loadPayload } from '../../cli/install/payload.ts';
import { createTestDb, SERVER, type ServerTestDb } from '../helpers/db.ts';
import { capture, cleanup, makeProject, tempDir } from './fixtures/projects.ts';

let api: ManagementApi;
let upload: Upload;

beforeAll(async () => {
  api = await startManagementApi();
  const dir = await makeProject();
  expect(await init({ project: dir, io: capture().io })).toBe(0);
  upload = await deployFunction(api, dir);
});

afterAll(async () => {
  await api?.close();
  await cleanup();
});

it('supabase functions deploy user-sync uploads the installed function from the user project', async () => {
  expect(upload.slug).toBe('user-sync');
  expect(upload.metadata.verify_jwt).toBe(false);
  expect(upload.metadata.entrypoint_path).toMatch(/supabase\/functions\/user-sync\/index\.ts$/);
  expect(upload.metadata.import_map_path).toMatch(/supabase\/functions\/user-sync\/deno\.json$/);
  const uploaded = [...upload.files.keys()];
  const payload = await loadPayload();
  // Every module of the function, and nothing of the user's other function.
  for (
    const f of payload.files.filter((f) =>
      f.path.startsWith('supabase/functions/') && f.path.endsWith('.ts')
    )
  ) {
    expect(uploaded.some((p) => p.endsWith(f.path)), f.path).toBe(true);
  }
  expect(uploaded.some((p) => p.includes('functions/hello/'))).toBe(false);
});

describe.skipIf(!SERVER)('the upload, booted as the edge runtime boots it (server only)', () => {
  let db: ServerTestDb;
  let fn: DenoProcess | undefined;

  beforeAll(async () => {
    db = (await createTestDb()) as ServerTestDb;
    const root = await tempDir('upload');
    const denoDir = await mkdtemp(join(tmpdir(), 'usync-deno-dir-'));
    await writeUpload(upload, root);
    fn = await spawnDeno({
      script: upload.metadata.entrypoint_path,
      flags: [...RUN_FLAGS, '--config', upload.metadata.import_map_path!],
      cwd: root,
      env: { ...uploadBootEnv(root, denoDir), SUPABASE_DB_URL: db.urlAs('postgres') },
    });
  }, 180_000);

  afterAll(async () => {
    await fn?.stop();
    await db?.close();
  });

  it('answers health with a reachable database', async () => {
    const res = await fetch(`http://127.0.0.1:${fn!.port}/user-sync/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', database: 'ok' });
  });
});
