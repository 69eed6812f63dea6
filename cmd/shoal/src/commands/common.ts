import type { Call } from '@shoal/api';
import { ShoalClient, resolveHost } from '@shoal/client';
import { ExitError, UsageError } from '../errors.js';

/** Parsed command line as yargs hands it to a command (flags by their long names). */
export type Args = Record<string, unknown> & { _: (string | number)[] };

/** A typed call to the daemon (the control contract, `@shoal/api` contract.ts). @throws ShoalError from the daemon. */
export type { Call };

/**
 * Checks a daemon address (`--host`, `$SHOAL_HOST`): `unix:///path/to.sock`, or a bare socket path
 * (`/run/shoal/shoal.sock`). The CLI talks only to the local shoald over its unix socket, so any
 * other scheme (`tcp://`, `ssh://`, …) or a `HOST:PORT` is refused rather than misread as a path.
 * @returns `host` unchanged. @throws UsageError naming the value.
 */
export function checkHost(host: string): string {
  const unix = /^unix:\/\/(.+)$/.exec(host);
  const otherScheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(host);
  if (unix ? unix[1]!.trim() !== '' : !otherScheme && host.includes('/')) return host;
  throw new UsageError(`unsupported host ${host}: shoal talks to the local shoald over unix:///path only`);
}

/** The daemon client for `--host` / `$SHOAL_HOST` / the default socket. @throws UsageError for an unsupported address. */
export function connect(a: Args): Call {
  const client = new ShoalClient(checkHost(resolveHost(typeof a['host'] === 'string' ? a['host'] : undefined)));
  return ((method: string, params: unknown) => client.call(method, params)) as Call;
}

/** A string flag, or undefined when not given (the last value wins when repeated). */
export function str(a: Args, key: string): string | undefined {
  const v = a[key];
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v.length ? String(v[v.length - 1]) : undefined;
  return String(v);
}

/** A repeatable flag or variadic positional as a list of strings (empty when absent). */
export function list(a: Args, key: string): string[] {
  const v = a[key];
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

/** A boolean flag. */
export function bool(a: Args, key: string): boolean {
  const v = a[key];
  if (Array.isArray(v)) return Boolean(v[v.length - 1]);
  return v === true;
}

export function out(text: string): void {
  process.stdout.write(text);
}

export function err(text: string): void {
  process.stderr.write(text);
}

/**
 * Runs `fn` for each item, printing `Error: <message>` for each failure and going on with the
 * rest, as Docker does for `rm`, `inspect`, `scale`. @throws ExitError(1) at the end if any failed.
 */
export async function forEach<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let failed = false;
  for (const item of items) {
    try {
      await fn(item);
    } catch (e) {
      failed = true;
      err(`Error: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }
  if (failed) throw new ExitError(1);
}
