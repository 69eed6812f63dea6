/**
 * The Prometheus endpoint (`shoald --metrics-addr`, Docker's `metrics-addr`): `GET /metrics` in the
 * text exposition format. Off unless the flag is given.
 */
import http from 'node:http';
import { SAFE_HEADERS, close, listen, refuseWrites, sendText, type ListenAddr } from './http.js';
import type { PromMetrics } from './prom.js';

export class MetricsServer {
  private server: http.Server | undefined;
  address: ListenAddr | undefined;

  constructor(private readonly o: { addr: ListenAddr; metrics: PromMetrics; log?: { warn(o: unknown, msg?: string): void } }) {}

  /** @throws Error when the address is taken. */
  async start(): Promise<ListenAddr> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.address = await listen(this.server, this.o.addr, '--metrics-addr');
    return this.address;
  }

  async stop(): Promise<void> {
    await close(this.server);
    this.server = undefined;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (refuseWrites(req, res)) return;
    const url = (req.url ?? '/').split('?')[0];
    if (url !== '/metrics') return sendText(res, 404, `no such page ${url}; metrics are at /metrics\n`);
    try {
      const text = await this.o.metrics.render();
      res.writeHead(200, { ...SAFE_HEADERS, 'content-type': this.o.metrics.contentType, 'content-length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
    } catch (e) {
      this.o.log?.warn({ err: String(e) }, 'metrics: scrape failed');
      sendText(res, 500, `metrics could not be collected: ${(e as Error).message}\n`);
    }
  }
}
