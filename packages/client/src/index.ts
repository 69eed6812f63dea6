import http from 'node:http';
import { ShoalError, type ErrorCode } from '@shoal/api';

/**
 * Client for the daemon's local control socket: JSON RPC over HTTP on a unix socket
 * (`POST /shoal/v1/<method>` with a JSON body of params; 200 with `{result}` or an error status
 * with `{error:{code,message}}`). Kept to `node:http` so the CLI starts fast.
 */
export class ShoalClient {
  readonly socketPath: string;

  /** @param host `unix:///path/to.sock` or a bare path. */
  constructor(host: string) {
    this.socketPath = host.startsWith('unix://') ? host.slice('unix://'.length) : host;
  }

  /**
   * Calls `method` with `params`.
   * @throws ShoalError with the server's code and message; ShoalError('Unavailable') when the
   *   daemon is not reachable (message names the socket and how to start shoald).
   */
  call<T = unknown>(method: string, params: unknown = {}, timeoutMs = 60_000): Promise<T> {
    const body = JSON.stringify(params ?? {});
    return new Promise<T>((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath, method: 'POST', path: `/shoal/v1/${method}`,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let parsed: { result?: T; error?: { code: ErrorCode; message: string } };
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
            } catch {
              reject(new ShoalError('Internal', `bad response from shoald (HTTP ${res.statusCode})`));
              return;
            }
            if (parsed.error) reject(new ShoalError(parsed.error.code, parsed.error.message));
            else resolve(parsed.result as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new ShoalError('Unavailable', `shoald did not answer ${method} within ${timeoutMs} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof ShoalError) reject(e);
        else if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
          reject(new ShoalError('Unavailable', `cannot reach shoald at unix://${this.socketPath} (${e.code}); start it with \`shoald\` or set --host / SHOAL_HOST`));
        } else if (e.code === 'EACCES') {
          reject(new ShoalError('Unavailable', `permission denied on unix://${this.socketPath}; run as root`));
        } else reject(new ShoalError('Unavailable', `cannot reach shoald at unix://${this.socketPath}: ${e.message}`));
      });
      req.end(body);
    });
  }
}

export const DEFAULT_SOCKET = '/run/shoal/shoal.sock';

/** The daemon address from `--host`, then `$SHOAL_HOST`, then the default socket. */
export function resolveHost(flag?: string): string {
  return flag || process.env['SHOAL_HOST'] || `unix://${DEFAULT_SOCKET}`;
}
