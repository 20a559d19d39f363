// The cold-start baseline: the smallest Hono app that answers the custom-access-token route after
// a `select 1` through the function's driver (`postgres`, its pool settings), booted the way the
// upload is: the same import map and Deno, its own empty folder, the same warm DENO_DIR.
import { Hono } from 'hono';
import postgres from 'postgres';

declare const Deno: {
  serve(
    options: { port: number },
    handler: (req: Request) => Response | Promise<Response>,
  ): unknown;
  env: { get(name: string): string | undefined };
};

const sql = postgres(Deno.env.get('SUPABASE_DB_URL') ?? '', { max: 3, prepare: false });

const app = new Hono().basePath('/user-sync');
app.post('/hooks/custom-access-token', async (c) => {
  const { claims } = await c.req.json();
  await sql`select 1`;
  return c.json({ claims });
});

Deno.serve({ port: Number(Deno.env.get('PORT') ?? 8000) }, app.fetch);
