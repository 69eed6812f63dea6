/**
 * Rules the CLI checks before sending a request and the control API checks again on receipt, kept
 * in one place so both give the same answer and the same one-line message.
 */

/** Longest service name: one DNS label. */
export const MAX_SERVICE_NAME_LENGTH = 63;

const SERVICE_NAME_RE = /^[a-zA-Z0-9](?:[a-zA-Z0-9_-]*[a-zA-Z0-9])?$/;

/** The service-name rule in words, for error messages. */
export const SERVICE_NAME_RULE =
  `letters, digits, '-' and '_', starting and ending with a letter or digit, at most ${MAX_SERVICE_NAME_LENGTH} characters (no dots)`;

/**
 * Why `name` is not a valid service name, or undefined when it is. A service name is used as a DNS
 * label (service discovery) and as the first part of container names `<service>.<slot>.<task>`, so
 * it follows SwarmKit's rule: letters, digits, `-` and `_`, starting and ending with a letter or
 * digit, at most 63 characters; no dots.
 * @returns a one-line message naming the value, e.g. `invalid service name "x.y": use letters, …`.
 */
export function serviceNameProblem(name: unknown): string | undefined {
  if (typeof name === 'string' && name.length <= MAX_SERVICE_NAME_LENGTH && SERVICE_NAME_RE.test(name)) return undefined;
  const shown = JSON.stringify(name ?? '');
  if (typeof name === 'string' && name.length > MAX_SERVICE_NAME_LENGTH && SERVICE_NAME_RE.test(name)) {
    return `invalid service name ${shown}: it has ${name.length} characters; at most ${MAX_SERVICE_NAME_LENGTH}`;
  }
  return `invalid service name ${shown}: use ${SERVICE_NAME_RULE}`;
}

/**
 * The key names are unique under: services, networks and secrets are looked up and compared
 * case-insensitively (SwarmKit's name index lowercases), so `api` and `API` are the same name.
 */
export function nameKey(name: string): string {
  return name.toLowerCase();
}

/**
 * Longest duration, in whole ms: Go's `time.Duration` (int64 nanoseconds, 9223372036854775807 ns)
 * truncated to ms. Docker refuses any longer duration; so do the CLI and the control API.
 */
export const MAX_DURATION_MS = 9_223_372_036_854;

/** {@link MAX_DURATION_MS} as Go writes the exact maximum, for error messages. */
export const MAX_DURATION_TEXT = '2562047h47m16.854775807s';

/** Largest secret: Docker's `MaxSecretSize` (data must be shorter than 500 KiB, swarmkit api/validation). */
export const MAX_SECRET_BYTES = 500 * 1024;
/** Largest config: Docker's `MaxConfigSize` (data must be shorter than 1000 KiB, swarmkit controlapi/config.go). */
export const MAX_CONFIG_BYTES = 1000 * 1024;

const SECRET_NAME_RE = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;

/**
 * Why `name` is not a valid secret or config name, or undefined when it is (SwarmKit's rule: at
 * most 64 characters of `[a-zA-Z0-9-_.]`, starting and ending with a letter or digit).
 * @param what `secret` or `config`, for the message.
 */
export function secretNameProblem(name: unknown, what: 'secret' | 'config' = 'secret'): string | undefined {
  if (typeof name === 'string' && name.length <= 64 && SECRET_NAME_RE.test(name)) return undefined;
  if (name === undefined || name === '') return `missing ${what} name: give one of at most 64 characters [a-zA-Z0-9-_.]`;
  return `invalid ${what} name ${JSON.stringify(name)}: only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]`;
}

/** The mode of a secret or config file when none is given (Docker: 0444). */
export const DEFAULT_FILE_MODE = 0o444;
/** Where relative secret targets live in the container (Docker's `/run/secrets`). */
export const SECRETS_DIR = '/run/secrets';
