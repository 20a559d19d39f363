// The HTTP ceiling of the hook benchmark: a bare Deno.serve that reads the body and answers the
// JSON our hooks answer ({"claims": …, user_role} or {}), with no signature check, no
// validation and no database. Nothing a hook does can be faster than this on this machine.

export {};

declare const Deno: {
  serve(options: { port: number }, handler: (req: Request) => Promise<Response>): unknown;
  env: { get(name: string): string | undefined };
};

Deno.serve({ port: Number(Deno.env.get('PORT') ?? 8000) }, async (req) => {
  if (req.method === 'GET') return Response.json({ status: 'ok' });
  const body = await req.text();
  if (new URL(req.url).pathname.endsWith('/custom-access-token')) {
    const { claims } = JSON.parse(body) as { claims: Record<string, unknown> };
    return Response.json({ claims: { ...claims, user_role: 'client' } });
  }
  return Response.json({});
});
