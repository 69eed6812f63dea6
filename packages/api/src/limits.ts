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
