import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../shared/gateway.ts';
import { createSupabaseJsGateway, serviceKey } from '../../shared/gateways/supabase-js.ts';

const URL_ = 'http://127.0.0.1:54321';
const KEY = 'sb_secret_0123456789abcdefghij';

/** A fetch that records each request and answers as PostgREST would. */
function stubFetch(answer: (req: Request) => Response | Promise<Response>) {
  const requests: Array<{ req: Request; body: string }> = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    requests.push({ req, body: await req.clone().text() });
    return answer(req);
  };
  return { fetch: fetch as typeof globalThis.fetch, requests };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });

describe('supabase-js gateway', () => {
  // docs/reference/postgrest.md#supabase-js-requests
  it('sends the RPC exactly as PostgREST expects', async () => {
    const { fetch, requests } = stubFetch(() =>
      json(200, { user_id: 'u', action: 'inserted', role: 'client' })
    );
    const gateway = createSupabaseJsGateway({ url: URL_, key: KEY, fetch });
    const ids = ['8ccaa7af-909f-44e7-84cb-67cdccb56be6'];
    const result = await gateway.rpc('resync_users', {
      p_dry_run: true,
      p_user_ids: ids,
      p_cursor: null,
    });
    expect(result).toEqual({ user_id: 'u', action: 'inserted', role: 'client' });
    expect(requests).toHaveLength(1);
    const { req, body } = requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe(`${URL_}/rest/v1/rpc/resync_users`);
    expect(req.headers.get('apikey')).toBe(KEY);
    expect(req.headers.get('authorization')).toBe(`Bearer ${KEY}`);
    expect(req.headers.get('content-profile')).toBe('public');
    expect(req.headers.get('content-type')).toBe('application/json');
    expect(req.headers.get('prefer')).toBeNull();
    expect(req.headers.get('x-client-info')).toMatch(/^supabase-js\//);
    expect(JSON.parse(body)).toEqual({ p_dry_run: true, p_user_ids: ids, p_cursor: null });
  });

  it('uses SUPABASE_SECRET_KEYS before the legacy service_role key', () => {
    expect(serviceKey({ secretKeys: ['sb_secret_a'], serviceRoleKey: 'jwt' })).toBe('sb_secret_a');
    expect(serviceKey({ secretKeys: [], serviceRoleKey: 'jwt' })).toBe('jwt');
    expect(serviceKey({ secretKeys: [], serviceRoleKey: null })).toBeNull();
  });

  it.each([
    [
      400,
      { code: '22023', message: 'p_batch_size must be between 1 and 50000.' },
      'invalid_argument',
    ],
    [403, { code: '42501', message: 'permission denied for function sync_user' }, 'forbidden'],
    [401, { code: '42501', message: 'permission denied' }, 'forbidden'],
    [404, { code: 'PGRST202', message: 'Could not find the function' }, 'not_found'],
    [404, { code: '42883', message: 'function does not exist' }, 'not_found'],
    [401, { code: 'PGRST301', message: 'JWT invalid' }, 'forbidden'],
    [504, { code: 'PGRST003', message: 'Timed out acquiring connection' }, 'unavailable'],
    [503, { code: '08006', message: 'connection failure' }, 'unavailable'],
    [503, { code: '53300', message: 'too many connections' }, 'unavailable'],
    [500, { code: '57014', message: 'canceling statement due to statement timeout' }, 'timeout'],
    [409, { code: '23505', message: 'duplicate key value' }, 'failed'],
    [500, { code: 'XX000', message: 'internal' }, 'failed'],
  ])('maps PostgREST %i %j to %s', async (status, body, kind) => {
    const { fetch } = stubFetch(() => json(status, { details: null, hint: null, ...body }));
    const gateway = createSupabaseJsGateway({ url: URL_, key: KEY, fetch });
    const err = await gateway.rpc('sync_user', { p_user_id: 'x' }).then(
      () => null,
      (e: GatewayError) => e,
    );
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ kind, code: body.code });
    if (kind === 'invalid_argument') expect(err!.message).toBe(body.message);
    else expect(err!.message).not.toContain(body.message);
  });

  it('maps a gateway HTML 502 to unavailable', async () => {
    const { fetch } = stubFetch(() => new Response('<html>Bad Gateway</html>', { status: 502 }));
    const gateway = createSupabaseJsGateway({ url: URL_, key: KEY, fetch });
    await expect(gateway.rpc('sync_user', {})).rejects.toMatchObject({ kind: 'unavailable' });
  });

  it('maps a failed connection to unavailable', async () => {
    const { fetch } = stubFetch(() => {
      throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    });
    const gateway = createSupabaseJsGateway({ url: URL_, key: KEY, fetch });
    await expect(gateway.rpc('sync_user', {})).rejects.toMatchObject({ kind: 'unavailable' });
  });

  it('aborts a call that takes longer than timeoutMs and calls it a timeout', async () => {
    const { fetch } = stubFetch((req) =>
      new Promise((_, reject) =>
        req.signal.addEventListener(
          'abort',
          () => reject(new DOMException('aborted', 'AbortError')),
        )
      )
    );
    const gateway = createSupabaseJsGateway({ url: URL_, key: KEY, fetch });
    const started = Date.now();
    await expect(gateway.rpc('sync_user', {}, { timeoutMs: 100 })).rejects.toMatchObject({
      kind: 'timeout',
    });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('pings with a call that reaches the database', async () => {
    const { fetch, requests } = stubFetch(() =>
      json(200, {
        user_id: '00000000-0000-0000-0000-000000000000',
        action: 'not_found',
        role: null,
      })
    );
    await createSupabaseJsGateway({ url: URL_, key: KEY, fetch }).ping();
    expect(requests[0]!.req.url).toBe(`${URL_}/rest/v1/rpc/sync_user`);
  });

  it('refuses a function name that is not a plain SQL name', async () => {
    const { fetch, requests } = stubFetch(() => json(200, null));
    const gateway = createSupabaseJsGateway({ url: URL_, key: KEY, fetch });
    await expect(gateway.rpc('sync_user?select=*', {})).rejects.toMatchObject({
      kind: 'invalid_argument',
    });
    expect(requests).toEqual([]);
  });
});
