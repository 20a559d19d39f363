// `npm start`: the user-sync function under Node on
// http://127.0.0.1:$PORT/functions/v1/user-sync/... (the URL shape of a local Supabase stack),
// with the direct gateway on DATABASE_URL, or on an embedded PGlite database (roles, auth
// stand-in and migrations applied, kept in USER_SYNC_PGLITE_DIR, default .data/pglite) when
// DATABASE_URL is unset. PORT defaults to 54321, the local Supabase API port; 0 picks one.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { PGlite } from '@electric-sql/pglite';
import { createApp } from '../shared/app.ts';
import { systemClock } from '../shared/clock.ts';
import { ConfigError, parseConfig } from '../shared/config.ts';
import { createDirectGateway } from '../shared/gateways/direct.ts';
import { createGateway } from '../shared/gateways/from-config.ts';
import { pgliteExecutor } from '../shared/gateways/pglite-executor.ts';
import type { Gateway } from '../shared/gateway.ts';
import { jsonLogger } from '../shared/logger.ts';
import { migrate, pgliteExecutor as migrationExecutor } from './lib/migrations.ts';

/** What the Supabase gateway strips before a function sees the path (spec §6.3). */
const PREFIX = '/functions/v1';

function randomSecret(bytes = 32): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('base64');
}

/** Node request → Fetch Request, with /functions/v1 stripped; null for other paths. */
function toRequest(req: IncomingMessage, port: number): Request | null {
  const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
  if (url.pathname !== PREFIX && !url.pathname.startsWith(`${PREFIX}/`)) return null;
  url.pathname = url.pathname.slice(PREFIX.length) || '/';
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  return new Request(url, {
    method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
    // @ts-expect-error: Node's fetch needs duplex for a streamed body (not in the DOM types)
    duplex: 'half',
  });
}

async function send(res: ServerResponse, response: Response): Promise<void> {
  res.writeHead(response.status, [...response.headers.entries()].flat());
  if (response.body) {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      res.write(chunk);
    }
  }
  res.end();
}

/** PGlite in USER_SYNC_PGLITE_DIR (default .data/pglite), migrated to the latest. */
async function embeddedGateway(dir: string): Promise<Gateway> {
  await mkdir(dir, { recursive: true });
  const db = await PGlite.create(dir);
  await migrate(migrationExecutor(db), { onApply: (m) => console.error(`applying ${m.file}`) });
  const gateway = createDirectGateway(pgliteExecutor(db));
  return { ...gateway, close: () => db.close() };
}

function curlExample(base: string, secret: string): string {
  const keyHex = Buffer.from(secret.replace(/^v1,whsec_/, ''), 'base64').toString('hex');
  const body = JSON.stringify({
    metadata: {
      uuid: '8b34dcdd-9df1-4c10-850a-b3277c653040',
      time: '2025-01-01T00:00:00Z',
      name: 'before-user-created',
    },
    user: {
      id: 'ff7fc9ae-3b1b-4642-9241-64adb9848a03',
      aud: 'authenticated',
      role: '',
      email: 'new@example.com',
      phone: '',
      app_metadata: { provider: 'email', providers: ['email'] },
      user_metadata: { role: 'admin' },
      identities: [],
      created_at: '0001-01-01T00:00:00Z',
      updated_at: '0001-01-01T00:00:00Z',
      is_anonymous: false,
    },
  });
  return [
    `BODY='${body}'`,
    `ID=msg_$(date +%s%N); TS=$(date +%s)`,
    `SIG=$(printf '%s' "$ID.$TS.$BODY" | openssl dgst -sha256 -mac HMAC -macopt hexkey:${keyHex} -binary | base64)`,
    `curl -s ${base}/hooks/before-user-created -H 'content-type: application/json' \\`,
    `  -H "webhook-id: $ID" -H "webhook-timestamp: $TS" -H "webhook-signature: v1,$SIG" -d "$BODY"`,
  ].join('\n');
}

async function main(): Promise<void> {
  const env = { ...process.env };
  const generated: string[] = [];
  if (!env.AUTH_HOOK_SECRET) {
    env.AUTH_HOOK_SECRET = `v1,whsec_${randomSecret()}`;
    generated.push(`AUTH_HOOK_SECRET=${env.AUTH_HOOK_SECRET}`);
  }
  if (!env.USER_SYNC_ADMIN_TOKEN) {
    env.USER_SYNC_ADMIN_TOKEN = randomSecret(24).replace(/[+/=]/g, '');
    generated.push(`USER_SYNC_ADMIN_TOKEN=${env.USER_SYNC_ADMIN_TOKEN}`);
  }
  if (!env.USER_SYNC_WEBHOOK_SECRET) {
    env.USER_SYNC_WEBHOOK_SECRET = randomSecret(24).replace(/[+/=]/g, '');
    generated.push(`USER_SYNC_WEBHOOK_SECRET=${env.USER_SYNC_WEBHOOK_SECRET}`);
  }
  const config = parseConfig(env);
  const port = Number(env.PORT ?? 54321);
  const pgliteDir = env.USER_SYNC_PGLITE_DIR || '.data/pglite';
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError('PORT: must be a port number');
  }

  const gateway = config.databaseUrl || config.gateway === 'supabase-js'
    ? await createGateway(config)
    : await embeddedGateway(pgliteDir);
  const app = createApp({ config, gateway, clock: systemClock, logger: jsonLogger() });

  const server = createServer((req, res) => {
    const request = toRequest(req, port);
    const respond = request ? app.fetch(request) : Response.json(
      { error: { code: 'not_found', message: `Functions live under ${PREFIX}/` } },
      {
        status: 404,
      },
    );
    Promise.resolve(respond).then((r) => send(res, r)).catch((err) => {
      console.error(
        JSON.stringify({ level: 'error', event: 'server_error', error: String(err?.name) }),
      );
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  server.listen(port, '127.0.0.1', () => {
    const address = server.address();
    const actual = typeof address === 'object' && address ? address.port : port;
    const base = `http://127.0.0.1:${actual}${PREFIX}/user-sync`;
    const db = config.databaseUrl
      ? 'DATABASE_URL'
      : config.gateway === 'supabase-js'
      ? 'SUPABASE_URL (supabase-js)'
      : `embedded PGlite in ${pgliteDir}`;
    const lines = [`user-sync listening on ${base} (database: ${db})`];
    if (generated.length) {
      lines.push('', 'Generated for this run only (set them in the environment to keep them):');
      lines.push(...generated.map((g) => `  ${g}`));
      lines.push('', 'Try a signed before-user-created call (asks for admin, so it is refused):');
      lines.push(curlExample(base, env.AUTH_HOOK_SECRET!));
    }
    console.error(lines.join('\n'));
  });

  const stop = () => {
    server.close();
    void gateway.close?.().finally(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
