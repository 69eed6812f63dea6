import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The bundled `shoal` executable against a FakeDaemon (a stand-in for shoald's control socket that
 * answers the contract from canned data), for tests of the CLI as users run it: real processes,
 * real exit codes. (The same harness as cli.test.ts, shared by the newer CLI test files.)
 */

const BIN = join(dirname(fileURLToPath(import.meta.url)), '../../bin/shoal.js');
const BUNDLE = join(dirname(BIN), '../dist/shoal.mjs');

export type Handler = (params: Record<string, unknown>) => unknown;

/** Error a FakeDaemon handler throws to answer with `{error:{code,message}}`. */
export class RpcFailure extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** A stand-in for shoald's control socket: `POST /shoal/v1/<method>` answered by `handlers`. */
export class FakeDaemon {
  readonly calls: { method: string; params: Record<string, unknown> }[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'shoal-cli-'));
  readonly socketPath = join(this.dir, 'shoal.sock');
  private readonly server: http.Server;

  constructor(readonly handlers: Record<string, Handler> = {}) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const method = (req.url ?? '').replace('/shoal/v1/', '');
        const params = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
        this.calls.push({ method, params });
        const h = this.handlers[method];
        let status = 200;
        let body: unknown;
        try {
          if (!h) throw new RpcFailure('Unimplemented', `method ${method} is not implemented`);
          body = { result: h(params) };
        } catch (e) {
          status = e instanceof RpcFailure && e.code === 'NotFound' ? 404 : 400;
          body = { error: { code: e instanceof RpcFailure ? e.code : 'Internal', message: (e as Error).message } };
        }
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      });
    });
  }

  get host(): string {
    return `unix://${this.socketPath}`;
  }

  start(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.socketPath, resolve));
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server.close(resolve));
    rmSync(this.dir, { recursive: true, force: true });
  }

  methods(): string[] {
    return this.calls.map((c) => c.method);
  }
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function shoal(args: string[], host = 'unix:///nonexistent/shoal.sock'): Promise<Result> {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing; build it with \`npx tsc -b cmd/shoal && node cmd/shoal/build.mjs\``);
  return new Promise((resolve) => {
    execFile(process.execPath, ['--', BIN, ...args], { env: { ...process.env, SHOAL_HOST: host }, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function withDaemon(handlers: Record<string, Handler>, fn: (d: FakeDaemon) => Promise<void>): Promise<void> {
  const d = new FakeDaemon(handlers);
  await d.start();
  try {
    await fn(d);
  } finally {
    await d.stop();
  }
}

export const oneLineError = (t: import('ava').ExecutionContext, r: Result, expected: string | RegExp) => {
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.is(r.stderr.split('\n').length, 2, `expected one line, got: ${r.stderr}`);
  if (typeof expected === 'string') t.is(r.stderr, `Error: ${expected}\n`);
  else t.regex(r.stderr, expected);
};

