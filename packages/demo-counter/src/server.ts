/**
 * The demo app: an HTTP service that counts its requests in Redis. Each replica answers with the
 * count, its task slot and its hostname, so a browser hitting any node of the swarm sees the
 * routing mesh spread requests over replicas while the count keeps rising in one place.
 *
 * - `GET /` — `count=N slot=S host=H` as text, or a small HTML page when the client accepts HTML;
 * - `GET /healthz` — 200 once Redis answers, 503 otherwise (the service's health check);
 * - Redis is found by its service name (`REDIS_HOST`, default `redis`) through Shoal's DNS and VIP,
 *   with the password from a secret file (`REDIS_PASSWORD_FILE`, default
 *   `/run/secrets/redis_password`; or `REDIS_PASSWORD`); when Redis moves (its task replaced on
 *   another node), ioredis reconnects and the counter goes on.
 *
 * Environment: PORT (default 8080), REDIS_HOST, REDIS_PORT (6379), REDIS_PASSWORD(_FILE), TASK_SLOT
 * (set it to `{{.Task.Slot}}` in the service: Docker's template), COUNTER_KEY (default `hits`).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { Redis } from 'ioredis';

export interface CounterOptions {
  port: number;
  redisHost: string;
  redisPort: number;
  password?: string;
  slot: string;
  key: string;
  /** Hostname shown in answers (default the container's). */
  hostname?: string;
}

/** Options from the environment (see the file header). */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): CounterOptions {
  let password = env['REDIS_PASSWORD'];
  const file = env['REDIS_PASSWORD_FILE'] ?? '/run/secrets/redis_password';
  if (password === undefined && fs.existsSync(file)) password = fs.readFileSync(file, 'utf8').trim();
  return {
    port: Number(env['PORT'] ?? 8080),
    redisHost: env['REDIS_HOST'] ?? 'redis',
    redisPort: Number(env['REDIS_PORT'] ?? 6379),
    ...(password ? { password } : {}),
    slot: env['TASK_SLOT'] ?? '?',
    key: env['COUNTER_KEY'] ?? 'hits',
  };
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function page(count: number, slot: string, host: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Shoal counter</title>
<style>body{font-family:system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;margin:0;background:#0b2239;color:#e8f1f8}
main{text-align:center}h1{font-size:5rem;margin:.2em 0}p{font-size:1.2rem;opacity:.85}code{background:#163a5c;padding:.15em .4em;border-radius:4px}</style></head>
<body><main><p>this page was served</p><h1>${count}</h1><p>times, by replica <code>${escape(slot)}</code> on <code>${escape(host)}</code></p>
<p>reload: the routing mesh picks a replica; the count lives in Redis</p></main></body></html>\n`;
}

/**
 * Starts the counter. @returns the server and its Redis client (close both to stop).
 */
export async function startCounter(o: CounterOptions): Promise<{ server: http.Server; redis: Redis; port: number }> {
  const host = o.hostname ?? os.hostname();
  const redis = new Redis({
    host: o.redisHost,
    port: o.redisPort,
    ...(o.password ? { password: o.password } : {}),
    // Keep trying while Redis moves: 100 ms, growing to 2 s between attempts, forever.
    retryStrategy: (times) => Math.min(100 * times, 2000),
    maxRetriesPerRequest: 2,
    enableOfflineQueue: false,
    lazyConnect: false,
  });
  redis.on('error', () => {
    /* reconnects by itself; /healthz reports the state */
  });
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/healthz') {
      const ok = redis.status === 'ready';
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok\n' : `redis ${redis.status}\n`);
      return;
    }
    if (url !== '/' && !url.startsWith('/?')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    redis.incr(o.key).then(
      (count) => {
        if ((req.headers.accept ?? '').includes('text/html')) {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end(page(count, o.slot, host));
        } else {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`count=${count} slot=${o.slot} host=${host}\n`);
        }
      },
      (err: Error) => {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end(`redis unavailable: ${err.message}\n`);
      },
    );
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, () => resolve((server.address() as { port: number }).port));
  });
  return { server, redis, port };
}

/** Entry point of the image (`node counter.mjs`): starts, and stops cleanly on SIGTERM. */
export async function main(): Promise<void> {
  const o = optionsFromEnv();
  const { server, redis } = await startCounter(o);
  process.stdout.write(`counter listening on :${o.port}, redis ${o.redisHost}:${o.redisPort}, slot ${o.slot}\n`);
  const stop = () => {
    server.close();
    redis.disconnect();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
