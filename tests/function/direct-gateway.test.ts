import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../shared/gateway.ts';
import { useTestDb } from '../helpers/db.ts';
import { gatewayFor } from '../helpers/app.ts';

// The adapter alone, against small functions made for it, through the executor of whichever
// database the run uses (postgres.js on DATABASE_URL, else PGlite): the drivers serialise
// parameters differently, and that is what these tests are about.
const db = useTestDb();
let gateway: Gateway;

beforeAll(async () => {
  await db.exec(`
    create function public.echo(p_id uuid, p_ids uuid[] default null, p_flag boolean default false,
                                p_n integer default null, p_doc jsonb default null)
      returns jsonb language sql as $$
        select jsonb_build_object('id', p_id, 'ids', p_ids, 'flag', p_flag, 'n', p_n,
                                  'doc', p_doc, 'who', current_user)
      $$;
    revoke execute on function public.echo from public, anon, authenticated;
    grant execute on function public.echo to service_role;
    create function public.anon_only() returns int language sql as 'select 1';
    revoke execute on function public.anon_only from public, service_role;
    grant execute on function public.anon_only to anon;
    create function public.refuse(p_n integer) returns jsonb language plpgsql as $$
      begin
        raise exception using errcode = '22023', message = 'p_n must be positive.';
      end $$;
    grant execute on function public.refuse to service_role;
  `);
  gateway = gatewayFor(db);
});

afterAll(async () => {
  await gateway?.close?.();
});

describe('direct gateway', () => {
  it('calls public."<fn>" with named, typed arguments as service_role', async () => {
    const id = '8ccaa7af-909f-44e7-84cb-67cdccb56be6';
    const result = await gateway.rpc('echo', {
      p_id: id,
      p_ids: [id, 'ff7fc9ae-3b1b-4642-9241-64adb9848a03'],
      p_flag: true,
      p_n: 42,
      p_doc: { a: [1, 'x"y'] },
    });
    expect(result).toEqual({
      id,
      ids: [id, 'ff7fc9ae-3b1b-4642-9241-64adb9848a03'],
      flag: true,
      n: 42,
      doc: { a: [1, 'x"y'] },
      who: 'service_role',
    });
  });

  it('passes false as false (a dry run must never turn into a real one)', async () => {
    const result = await gateway.rpc<Record<string, unknown>>('echo', {
      p_id: null,
      p_flag: false,
      p_ids: ['8ccaa7af-909f-44e7-84cb-67cdccb56be6'],
    });
    expect(result).toMatchObject({ flag: false, ids: ['8ccaa7af-909f-44e7-84cb-67cdccb56be6'] });
    const on = await gateway.rpc<Record<string, unknown>>('echo', { p_id: null, p_flag: true });
    expect(on).toMatchObject({ flag: true });
  });

  it('leaves omitted arguments to their defaults and passes null as null', async () => {
    const result = await gateway.rpc<Record<string, unknown>>('echo', { p_id: null });
    expect(result).toMatchObject({ id: null, ids: null, flag: false, n: null });
  });

  it('exercises the real grants: a function service_role may not run is forbidden', async () => {
    await expect(gateway.rpc('anon_only', {})).rejects.toMatchObject({
      kind: 'forbidden',
      code: '42501',
    });
  });

  it('passes a 22023 message through and maps a missing function to not_found', async () => {
    await expect(gateway.rpc('refuse', { p_n: 0 })).rejects.toMatchObject({
      kind: 'invalid_argument',
      message: 'p_n must be positive.',
    });
    await expect(gateway.rpc('no_such_fn', {})).rejects.toMatchObject({ kind: 'not_found' });
  });

  it('refuses names that are not plain SQL names, before any SQL runs', async () => {
    for (
      const [fn, args] of [
        ['echo"; drop table x; --', {}],
        ['Echo', {}],
        ['echo', { 'p_id) ; --': 1 }],
      ] as const
    ) {
      await expect(gateway.rpc(fn, args)).rejects.toMatchObject({ kind: 'invalid_argument' });
    }
  });

  it('rolls back: the role switch does not outlive the call', async () => {
    await gateway.rpc('echo', { p_id: null });
    await gateway.rpc('echo', { p_id: null });
    const rows = await db.query<{ u: string }>('select current_user as u');
    expect(rows[0]!.u).not.toBe('service_role');
  });

  it('pings', async () => {
    await expect(gateway.ping()).resolves.toBeUndefined();
  });
});
