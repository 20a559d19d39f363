// A sync outside the trigger must never overwrite what a concurrent change's trigger wrote with
// values planned from an older snapshot (found by the load-and-fault suite: an admin's role grant
// undone by a webhook that raced it). A change holds its auth row until its transaction ends;
// every sync but the trigger share-locks the auth rows it writes, skipping held ones (deferred),
// and plans again after locking.
//
// Server only: needs two sessions.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type ServerTestDb } from '../helpers/db.ts';
import { signUpEmail } from '../helpers/gotrue.ts';

const SERVER = Boolean(process.env.DATABASE_URL);
let db: ServerTestDb;

beforeAll(async () => {
  if (!SERVER) return;
  const created = await createTestDb();
  if (created.kind !== 'server') throw new Error('expected a server database');
  db = created;
});
afterAll(async () => {
  await db?.close();
});

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

interface Row {
  role: string;
  email: string;
}

async function row(id: string): Promise<Row | undefined> {
  const rows = await db.query<Row>('select role, email from public.users where id = $1', [id]);
  return rows[0];
}

describe.skipIf(!SERVER)('a sync racing a role grant (server only)', () => {
  it('defers while the grant is in flight, and the grant stands after both commit', async () => {
    const email = `race-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const user = await signUpEmail(db, { email, autoconfirm: true });
    // Out of step for a reason of its own (an edit behind the sync's back), so the racing sync
    // has something to write.
    await db.query(`update public.users set email = 'stale@example.com' where id = $1`, [user.id]);

    const gotrue = db.connect('supabase_auth_admin', { max: 1 });
    const webhook = db.connect(undefined, { max: 1 });
    try {
      const updated = gate();
      const commit = gate();
      // An admin grants admin through app_metadata; the transaction stays open.
      const granting = gotrue.begin(async (tx) => {
        await tx.unsafe(
          `UPDATE users SET raw_app_meta_data = raw_app_meta_data || '{"role":"admin"}',
             updated_at = now() WHERE id = $1`,
          [user.id],
        );
        updated.open();
        await commit.opened;
      });
      await updated.opened;

      // Meanwhile a webhook's sync_user runs: it must neither wait nor write.
      const started = performance.now();
      const answer = await webhook.begin(async (tx) => {
        await tx.unsafe('set local role service_role');
        return (await tx.unsafe(`select public.sync_user($1, 'webhook') as r`, [user.id]))[0]!.r;
      });
      const waited = performance.now() - started;
      expect(answer).toEqual({
        user_id: user.id,
        action: 'deferred',
        role: 'client',
        // The grant has not committed: a token minted now carries what is committed.
        user_role: 'client',
      });
      expect(waited).toBeLessThan(5_000);

      commit.open();
      await granting;
      expect(await row(user.id)).toEqual({ role: 'admin', email });

      // With nobody changing the user, the same call writes.
      await db.query(`update public.users set email = 'stale@example.com' where id = $1`, [
        user.id,
      ]);
      const again = await db.asServiceRole((tx) =>
        tx.query<{ r: unknown }>(`select public.sync_user($1, 'webhook') as r`, [user.id])
      );
      expect(again[0]!.r).toEqual({
        user_id: user.id,
        action: 'updated',
        role: 'admin',
        user_role: 'admin',
      });
      expect(await row(user.id)).toEqual({ role: 'admin', email });
    } finally {
      await Promise.all([gotrue, webhook].map((p) => p.end({ timeout: 5 })));
    }
  });

  // The other order, where the lock changes nothing visible (the grant's trigger would wait for
  // the sync's uncommitted row anyway): a guard that taking the lock first neither deadlocks nor
  // lets the older values win.
  it('a sync that writes first, before the grant, does not undo the grant', async () => {
    const email = `first-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const user = await signUpEmail(db, { email, autoconfirm: true });
    await db.query(`update public.users set email = 'stale@example.com' where id = $1`, [user.id]);

    const gotrue = db.connect('supabase_auth_admin', { max: 1 });
    const webhook = db.connect(undefined, { max: 1 });
    try {
      const synced = gate();
      const release = gate();
      // The sync writes first and keeps its transaction open.
      const syncing = webhook.begin(async (tx) => {
        await tx.unsafe('set local role service_role');
        const r = (await tx.unsafe(`select public.sync_user($1, 'webhook') as r`, [user.id]))[0]!.r;
        synced.open();
        await release.opened;
        return r;
      });
      await synced.opened;
      // The grant's trigger waits for the sync's lock, then writes what it knows.
      const granting = gotrue.begin(async (tx) => {
        await tx.unsafe(
          `UPDATE users SET raw_app_meta_data = raw_app_meta_data || '{"role":"admin"}',
             updated_at = now() WHERE id = $1`,
          [user.id],
        );
      });
      await new Promise((r) => setTimeout(r, 200));
      release.open();
      expect(await syncing).toEqual({
        user_id: user.id,
        action: 'updated',
        role: 'client',
        user_role: 'client',
      });
      await granting;
      expect(await row(user.id)).toEqual({ role: 'admin', email });
    } finally {
      await Promise.all([gotrue, webhook].map((p) => p.end({ timeout: 5 })));
    }
  });

  it('a resync batch that planned before the grant committed leaves the granted row alone', async () => {
    const email = `resync-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const user = await signUpEmail(db, { email, autoconfirm: true });
    await db.query(`update public.users set email = 'stale@example.com' where id = $1`, [user.id]);

    const gotrue = db.connect('supabase_auth_admin', { max: 1 });
    const operator = db.connect(undefined, { max: 1 });
    try {
      const updated = gate();
      const commit = gate();
      const granting = gotrue.begin(async (tx) => {
        await tx.unsafe(
          `UPDATE users SET raw_app_meta_data = raw_app_meta_data || '{"role":"admin"}',
             updated_at = now() WHERE id = $1`,
          [user.id],
        );
        updated.open();
        await commit.opened;
      });
      await updated.opened;

      // The resync plans from a snapshot without the grant (the row is stale there: its email),
      // then meets the row the grant's trigger wrote and waits for it.
      const resync = operator.begin(async (tx) => {
        await tx.unsafe('set local role service_role');
        return (await tx.unsafe('select public.resync_users() as r'))[0]!.r as Record<
          string,
          number
        >;
      });
      for (let i = 0; i < 200; i++) {
        const [w] = await db.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity
            where wait_event_type = 'Lock' and query like '%resync_users%'`,
        );
        if (w!.n > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      commit.open();
      await granting;
      const report = await resync;

      expect(report).toMatchObject({ stale: 1, updated: 0, failed: 0 });
      expect(await row(user.id)).toEqual({ role: 'admin', email });
    } finally {
      await Promise.all([gotrue, operator].map((p) => p.end({ timeout: 5 })));
    }
  });
});
