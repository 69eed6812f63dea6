import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { ShoalError, httpStatusOf, type Handlers } from '@shoal/api';
import { checkParams } from '@shoal/api/check';

/**
 * The node's local control socket: `POST /shoal/v1/<method>` with JSON params → `{result}` or
 * `{error:{code,message}}` with the matching HTTP status. Every method of the control contract is
 * served (`handlers` is checked complete by the compiler), and every payload is checked against
 * the method's schema before it runs: a malformed one gets one line naming the field. The socket
 * file is created with mode 0600 (root only), like Docker's.
 *
 * `observe`, if given, gets every call's method (`unknown` for a method not in the contract),
 * duration in seconds and result code (`OK` or the error code), for the RPC latency metrics.
 */
export async function serveRpc(
  socketPath: string, handlers: Handlers, log: { warn(o: unknown, m?: string): void },
  observe?: (method: string, seconds: number, code: string) => void,
): Promise<http.Server> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true });
  await assertSocketFree(socketPath);
  try {
    fs.unlinkSync(socketPath); // stale socket of a previous run
  } catch {
    /* absent */
  }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    const t0 = performance.now();
    req.on('end', async () => {
      let method = 'unknown';
      let code = 'OK';
      const send = (status: number, body: unknown) => {
        observe?.(method, (performance.now() - t0) / 1000, code);
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      const m = /^\/shoal\/v1\/([a-zA-Z.]+)$/.exec(req.url ?? '');
      const name = m?.[1];
      if (!name || !Object.prototype.hasOwnProperty.call(handlers, name)) {
        code = 'Unimplemented';
        return send(404, { error: { code: 'Unimplemented', message: `unknown method ${req.url}; this shoald may be older than the client` } });
      }
      method = name;
      try {
        let body: unknown;
        try {
          body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
        } catch (e) {
          throw new ShoalError('InvalidArgument', `${name}: the request body is not JSON (${(e as Error).message})`);
        }
        const params = checkParams(name, body ?? {});
        const handler = handlers[name as keyof Handlers] as (p: unknown) => unknown;
        const result = await handler(params);
        send(200, { result: result ?? {} });
      } catch (e) {
        const err = e instanceof ShoalError ? e : new ShoalError('Internal', (e as Error)?.message ?? String(e));
        code = err.code;
        if (!(e instanceof ShoalError)) log.warn({ err: String((e as Error)?.stack ?? e), method: m![1] }, 'rpc failed');
        send(httpStatusOf(err.code), { error: { code: err.code, message: err.message } });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);
  return server;
}

/**
 * Refuses to take over a socket another daemon still serves (a stale file is fine).
 * @throws Error naming the socket and the fix.
 */
export async function assertSocketFree(socketPath: string): Promise<void> {
  if (await answers(socketPath)) {
    throw new Error(`another shoald is serving ${socketPath}; stop it first, or give this one its own --socket`);
  }
}

/** True when a process accepts connections on the unix socket `p` (a live daemon, not a stale file). */
function answers(p: string): Promise<boolean> {
  if (!fs.existsSync(p)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const c = net.connect(p);
    const done = (v: boolean) => {
      c.destroy();
      resolve(v);
    };
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
    c.setTimeout(1000, () => done(true)); // connected but silent still means someone is there
  });
}
