/**
 * Small HTTP plumbing shared by the metrics endpoint and the web view: listen addresses and
 * read-only handlers.
 */
import http from 'node:http';

/** Where an observation server listens. */
export interface ListenAddr {
  host: string;
  port: number;
}

/**
 * Parses `--metrics-addr` / `--ui-addr`: `HOST:PORT`, `[IPv6]:PORT`, or a bare `PORT` (then
 * 127.0.0.1: these endpoints are for the operator's machine unless a host says otherwise). Port 0
 * picks a free port (tests).
 * @throws Error naming the flag, the value and the fix.
 */
export function parseListenAddr(flag: string, value: string): ListenAddr {
  const bad = () => new Error(`invalid ${flag} "${value}"; use HOST:PORT (e.g. 127.0.0.1:9323, 0.0.0.0:9323) or a port 0–65535 for 127.0.0.1`);
  const v = value.trim();
  let host = '127.0.0.1';
  let portText = v;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]/]+)):(\d+)$/.exec(v);
  if (m) {
    host = m[1] ?? m[2]!;
    portText = m[3]!;
  } else if (!/^\d+$/.test(v)) {
    throw bad();
  }
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw bad();
  return { host, port };
}

/** `http://host:port` for an address (IPv6 in brackets; an unspecified host shown as loopback). */
export function urlOf(a: ListenAddr): string {
  const host = a.host === '0.0.0.0' ? '127.0.0.1' : a.host === '::' ? '::1' : a.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${a.port}`;
}

/**
 * Starts `server` on `addr`; resolves with the address it is bound to (the real port for port 0).
 * @throws Error naming the flag and the address when it cannot listen (in use, no such address).
 */
export async function listen(server: http.Server, addr: ListenAddr, flag: string): Promise<ListenAddr> {
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(new Error(`${flag}: cannot listen on ${addr.host}:${addr.port} (${e.code ?? e.message}); pick another address or port`));
    };
    server.once('error', onError);
    server.listen(addr.port, addr.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const a = server.address();
  return typeof a === 'object' && a ? { host: addr.host, port: a.port } : addr;
}

/** Closes `server`, ending open keep-alive and streaming connections. */
export function close(server: http.Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Headers for every answer of these read-only servers: no sniffing, no framing, nothing from elsewhere. */
export const SAFE_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
};

/** Answers `status` with a one-line text body. */
export function sendText(res: http.ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SAFE_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

/** Refuses everything but GET and HEAD (these servers only show). @returns true when refused. */
export function refuseWrites(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return false;
  sendText(res, 405, `${req.method} is not allowed; this endpoint is read-only (GET)\n`, { allow: 'GET, HEAD' });
  return true;
}
