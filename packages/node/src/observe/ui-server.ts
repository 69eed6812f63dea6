/**
 * The live web view (`shoald --ui-addr`): a read-only page of the swarm (nodes as columns, tasks as
 * cards, services with their replica counts), fed by server-sent events. Static files come from
 * `packages/node/ui/` (plain ES modules, no build step, nothing fetched from elsewhere).
 *
 * Routes (GET/HEAD only):
 * - `/` (index.html), `/app.js`, `/style.css`, `/favicon.svg` — the page;
 * - `/api/view` — the current {@link ClusterView} as JSON;
 * - `/events` — `text/event-stream`: a `view` event with the whole view on connect and whenever it
 *   changes (at most every `minIntervalMs`), a comment every 15 s to keep proxies from closing it.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SAFE_HEADERS, close, listen, refuseWrites, sendText, type ListenAddr } from './http.js';
import type { ClusterView } from './view.js';

/** Where the view comes from (the node: its manager's store, or why there is none). */
export interface ViewSource {
  /** The picture now. */
  read(): ClusterView;
  /**
   * Calls `fn` after changes that may alter the picture (store commits); returns a function that
   * unsubscribes. The server also re-reads every `pollMs`, for changes without a commit (a leader
   * change, this node's role change).
   */
  subscribe(fn: () => void): () => void;
}

export interface UiServerOptions {
  addr: ListenAddr;
  source: ViewSource;
  /** Shortest gap between two pushed views, ms (default 100): bursts of commits cost one push. */
  minIntervalMs?: number;
  /** Re-read period, ms (default 1000). */
  pollMs?: number;
  log?: { warn(o: unknown, msg?: string): void };
}

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

/** The page's files: `packages/node/ui/` (this module runs from `packages/node/dist/src/observe/`). */
export const UI_DIR = fileURLToPath(new URL('../../../ui/', import.meta.url));

export class UiServer {
  private server: http.Server | undefined;
  private readonly clients = new Set<http.ServerResponse>();
  private readonly files = new Map<string, Buffer>();
  private json = '';
  private unsubscribe: (() => void) | undefined;
  private poll: NodeJS.Timeout | undefined;
  private keepAlive: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private lastPush = 0;
  /** Where it listens, once started. */
  address: ListenAddr | undefined;

  constructor(private readonly o: UiServerOptions) {}

  /** Loads the page's files and listens. @throws Error when a file is missing or the address is taken. */
  async start(): Promise<ListenAddr> {
    for (const { file } of Object.values(STATIC)) {
      if (!this.files.has(file)) this.files.set(file, fs.readFileSync(path.join(UI_DIR, file)));
    }
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.address = await listen(this.server, this.o.addr, '--ui-addr');
    this.unsubscribe = this.o.source.subscribe(() => this.changed());
    this.poll = setInterval(() => this.changed(), this.o.pollMs ?? 1000);
    this.poll.unref();
    this.keepAlive = setInterval(() => {
      for (const c of this.clients) c.write(': keep-alive\n\n');
    }, 15_000);
    this.keepAlive.unref();
    return this.address;
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    clearInterval(this.poll);
    clearInterval(this.keepAlive);
    clearTimeout(this.pending);
    for (const c of this.clients) c.end();
    this.clients.clear();
    await close(this.server);
    this.server = undefined;
  }

  /** The view as JSON, read now. */
  private read(): string {
    try {
      return JSON.stringify(this.o.source.read());
    } catch (e) {
      this.o.log?.warn({ err: String(e) }, 'web view: could not read the cluster state');
      return JSON.stringify({ error: `cannot read the cluster state: ${(e as Error).message}`, leaderId: '', nodes: [], services: [], tasks: [] });
    }
  }

  /** Something may have changed: push the view to every client if it did (rate-limited). */
  private changed(): void {
    if (this.clients.size === 0 || this.pending) return;
    const wait = Math.max(0, this.lastPush + (this.o.minIntervalMs ?? 100) - Date.now());
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.lastPush = Date.now();
      const json = this.read();
      if (json === this.json) return;
      this.json = json;
      for (const c of this.clients) c.write(`event: view\ndata: ${json}\n\n`);
    }, wait);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (refuseWrites(req, res)) return;
    const url = (req.url ?? '/').split('?')[0]!;
    const st = Object.hasOwn(STATIC, url) ? STATIC[url] : undefined;
    if (st) {
      const body = this.files.get(st.file)!;
      res.writeHead(200, { ...SAFE_HEADERS, 'content-type': st.type, 'content-length': body.byteLength });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (url === '/api/view') {
      const json = this.read();
      res.writeHead(200, { ...SAFE_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
      res.end(req.method === 'HEAD' ? undefined : json);
      return;
    }
    if (url === '/events') {
      res.writeHead(200, { ...SAFE_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
      if (req.method === 'HEAD') return void res.end();
      const json = this.read();
      if (this.clients.size === 0) this.json = json;
      res.write(`retry: 1000\nevent: view\ndata: ${json}\n\n`);
      this.clients.add(res);
      req.on('close', () => this.clients.delete(res));
      this.changed(); // the others may hold an older picture than the one just sent

      return;
    }
    sendText(res, 404, `no such page ${url}; the web view is at /\n`);
  }
}
