// A sync outside the trigger must never overwrite what a concurrent change's trigger wrote with
// values planned from an older snapshot (found by the load-and-fault suite: an admin's role grant
// undone by a webhook that raced it). A change holds its auth row until its transaction ends;
// every sync but the trigger share-locks the auth rows it writes, skipping held ones (deferred),
// and plans again after locking.
//
// Server only: needs two sessions.

import { describe, expect, it } from 'vitest';
import {
  type DbClient,
  openTransaction,
  SERVER,
  signUpUser,
  untilWaitingOnLock,
  useServerDb,
} from '../helpers/db.ts';

const db = useServerDb();

const row = (id: string) => db.appRow(id, 'role, email');

/** A user whose app row is out of step for a reason of its own (an edit behind the sync's back). */
async function staleUser(tag: string) {
  const user = await signUpUser(db, tag);
  await db.query(`update public.users set email = 'stale@example.com' where id = $1`, [user.id]);
  return { id: user.id, email: user.email };
}

/** An admin grants admin through app_metadata, in GoTrue's transaction (search_path auth). */
const grantAdmin = (tx: DbClient, id: string) =>
  tx.query(
    `UPDATE users SET raw_app_meta_data = raw_app_meta_data || '{"role":"admin"}',
       updated_at = now() WHERE id = $1`,
    [id],
  );

/** A webhook's sync_user, in a transaction of the caller's. */
async function webhookSync(tx: DbClient, id: string) {
  await tx.exec('set local role service_role');
  return (await tx.query<{ r: unknown }>(`select public.sync_user($1, 'webhook') as r`, [id]))[0]!
    .r;
}

describe.skipIf(!SERVER)('a sync racing a role grant (server only)', () => {
  it('defers while the grant is in flight, and the grant stands after both commit', async () => {
    const { id, email } = await staleUser('race');
    // The grant's transaction stays open.
    const grant = await openTransaction(db, (tx) => grantAdmin(tx, id), 'supabase_auth_admin');
    try {
      // Meanwhile a webhook's sync_user runs: it must neither wait nor write.
      const started = performance.now();
      const answer = await db.syncUser(id, { source: 'webhook' });
      const waited = performance.now() - started;
      expect(answer).toEqual({
        user_id: id,
        action: 'deferred',
        role: 'client',
        // The grant has not committed: a token minted now carries what is committed.
        user_role: 'client',
      });
      expect(waited).toBeLessThan(5_000);
    } finally {
      await grant.commit();
    }
    expect(await row(id)).toEqual({ role: 'admin', email });

    // With nobody changing the user, the same call writes.
    await db.query(`update public.users set email = 'stale@example.com' where id = $1`, [id]);
    expect(await db.syncUser(id, { source: 'webhook' })).toEqual({
      user_id: id,
      action: 'updated',
      role: 'admin',
      user_role: 'admin',
    });
    expect(await row(id)).toEqual({ role: 'admin', email });
  });

  // The other order, where the lock changes nothing visible (the grant's trigger would wait for
  // the sync's uncommitted row anyway): a guard that taking the lock first neither deadlocks nor
  // lets the older values win.
  it('a sync that writes first, before the grant, does not undo the grant', async () => {
    const { id, email } = await staleUser('first');
    // The sync writes first and keeps its transaction open.
    const sync = await openTransaction(db, (tx) => webhookSync(tx, id));
    // The grant's trigger waits for the sync's lock, then writes what it knows.
    const granting = openTransaction(db, (tx) => grantAdmin(tx, id), 'supabase_auth_admin');
    try {
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await sync.commit();
    }
    expect(sync.result).toEqual({
      user_id: id,
      action: 'updated',
      role: 'client',
      user_role: 'client',
    });
    await (await granting).commit();
    expect(await row(id)).toEqual({ role: 'admin', email });
  });

  it('a resync batch that planned before the grant committed leaves the granted row alone', async () => {
    const { id, email } = await staleUser('resync');
    const grant = await openTransaction(db, (tx) => grantAdmin(tx, id), 'supabase_auth_admin');
    let resync: Promise<unknown> | undefined;
    try {
      // The resync plans from a snapshot without the grant (the row is stale there: its email),
      // then meets the row the grant's trigger wrote and waits for it.
      resync = db.resyncUsers();
      await untilWaitingOnLock(db, '%resync_users%');
    } finally {
      await grant.commit();
    }
    expect(await resync).toMatchObject({ stale: 1, updated: 0, failed: 0 });
    expect(await row(id)).toEqual({ role: 'admin', email });
  });
});
