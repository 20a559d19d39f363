// The cold-start baseline: the smallest Hono app under Deno, with the same import map (the
// function's deno.json) and the same runtime, answering one route.
import { Hono } from 'hono';

declare const Deno: {
  serve(
    options: { port: number },
    handler: (req: Request) => Response | Promise<Response>,
  ): unknown;
  env: { get(name: string): string | undefined };
};

const app = new Hono().basePath('/user-sync');
app.get('/health', (c) => c.json({ status: 'ok' }));

Deno.serve({ port: Number(Deno.env.get('PORT') ?? 8000) }, app.fetch);
