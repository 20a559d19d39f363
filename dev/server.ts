// The pieces of `npm start`, importable: the user-sync app on a Node HTTP server under
// /functions/v1 (the URL shape of a Supabase stack), the embedded database, and the
// development secrets. Used by dev/start.ts, dev/demo.ts and the CLI tests.

import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { PGlite } from '@electric-sql/pglite';
import type { Env } from '../shared/config.ts';
import { createDirectGateway } from '../shared/gateways/direct.ts';
import { pgliteExecutor } from './pglite-executor.ts';
import type { Gateway } from '../shared/gateway.ts';
import { migrate, pgliteExecutor as migrationExecutor } from './migrations.ts';

/**
 * What the Supabase gateway strips before a function sees the path
 * (docs/reference/edge-functions.md#request-path).
 */
export const PREFIX = '/functions/v1';

const UNFETCHABLE_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

/** Anything with a Fetch handler: the Hono app. */
export interface FetchApp {
  fetch(request: Request): Response | Promise<Response>;
}

export function randomSecret(bytes = 32): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('base64');
}

/** A random bearer token: URL-safe characters only, 32 of them. */
export function randomToken(): string {
  return randomSecret(24).replace(/[+/=]/g, '').padEnd(32, '0');
}

/**
 * The environment with a random AUTH_HOOK_SECRET, USER_SYNC_ADMIN_TOKEN and
 * USER_SYNC_WEBHOOK_SECRET for each one that is unset, and the `NAME=value` lines of those
 * generated (for this run only: nothing is written anywhere).
 */
export function withDevSecrets(source: Env): { env: Env; generated: string[] } {
  const env = { ...source };
  const generated: string[] = [];
  if (!env.AUTH_HOOK_SECRET) {
    env.AUTH_HOOK_SECRET = `v1,whsec_${randomSecret()}`;
    generated.push(`AUTH_HOOK_SECRET=${env.AUTH_HOOK_SECRET}`);
  }
  if (!env.USER_SYNC_ADMIN_TOKEN) {
    env.USER_SYNC_ADMIN_TOKEN = randomToken();
    generated.push(`USER_SYNC_ADMIN_TOKEN=${env.USER_SYNC_ADMIN_TOKEN}`);
  }
  if (!env.USER_SYNC_WEBHOOK_SECRET) {
    env.USER_SYNC_WEBHOOK_SECRET = randomToken();
    generated.push(`USER_SYNC_WEBHOOK_SECRET=${env.USER_SYNC_WEBHOOK_SECRET}`);
  }
  return { env, generated };
}

export interface Serving {
  server: ServerType;
  /** The port actually bound (PORT=0 picks one). */
  port: number;
  /** http://127.0.0.1:<port>/functions/v1/user-sync */
  base: string;
  /** Stops accepting connections and ends open ones. */
  close(): Promise<void>;
}

/**
 * Serves the app on 127.0.0.1:<port> under /functions/v1 with @hono/node-server (which turns
 * Node's requests into Fetch ones, answers methods Fetch refuses, and drains bodies a handler
 * did not read); resolves once listening.
 */
export function serve(app: FetchApp, port: number): Promise<Serving> {
  const outer = new Hono();
  outer.use(async (c, next) => {
    // Fetch refuses these methods outright, so the app could not even be asked.
    if (UNFETCHABLE_METHODS.has(c.req.method)) {
      return c.json({
        error: { code: 'method_not_allowed', message: `Method ${c.req.method} is not allowed.` },
      }, 405);
    }
    await next();
    // A refusal (413, 401, 404, 405) may come before the body was read: close the connection,
    // or a keep-alive client would send its next request after a body nobody drained.
    const hasBody = c.req.header('content-length') !== undefined ||
      c.req.header('transfer-encoding') !== undefined;
    if (hasBody && c.res.status >= 400) c.res.headers.set('connection', 'close');
  });
  outer.mount(PREFIX, (request) => app.fetch(request));
  outer.notFound((c) =>
    c.json({ error: { code: 'not_found', message: `Functions live under ${PREFIX}/` } }, 404)
  );
  return new Promise((resolve, reject) => {
    const server = createAdaptorServer({ fetch: outer.fetch, overrideGlobalObjects: false });
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      const bound = (server.address() as AddressInfo).port;
      resolve({
        server,
        port: bound,
        base: `http://127.0.0.1:${bound}${PREFIX}/user-sync`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            if ('closeAllConnections' in server) server.closeAllConnections();
          }),
      });
    });
  });
}

/**
 * An embedded PGlite with the roles, the auth stand-in and every migration. In `dir` (kept
 * between runs, only what is new is applied) or, without one, in memory.
 */
export async function openPglite(
  dir?: string,
  onApply: (file: string) => void = () => {},
): Promise<PGlite> {
  if (dir) await mkdir(dir, { recursive: true });
  const db = dir ? await PGlite.create(dir) : await PGlite.create({ relaxedDurability: true });
  try {
    await migrate(migrationExecutor(db), { onApply: (m) => onApply(m.file) });
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}

/** The direct gateway over a PGlite instance; close() closes the database too. */
export function pgliteGateway(db: PGlite): Gateway {
  const gateway = createDirectGateway(pgliteExecutor(db));
  return { ...gateway, close: () => db.closed ? Promise.resolve() : db.close() };
}

/** A shell snippet that signs a before-user-created call with openssl and sends it with curl. */
export function curlExample(base: string, secret: string): string {
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
