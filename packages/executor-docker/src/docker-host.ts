import type Dockerode from 'dockerode';

/** The engine address used when none is given: `$DOCKER_HOST`, else the default socket. */
export function defaultDockerHost(): string {
  return process.env['DOCKER_HOST'] || 'unix:///var/run/docker.sock';
}

/**
 * Dockerode connection options for a Docker host address, as the `docker` CLI's `DOCKER_HOST`:
 * `unix:///path/to/docker.sock` or `tcp://host:port` (port default 2375, plain HTTP; also `http://`).
 * Throws a one-line error naming the bad value for anything else.
 */
export function dockerOptions(dockerHost: string): Dockerode.DockerOptions {
  if (dockerHost.startsWith('unix://')) {
    const socketPath = dockerHost.slice('unix://'.length);
    if (!socketPath.startsWith('/')) {
      throw new Error(`docker host "${dockerHost}": unix socket path must be absolute, e.g. unix:///var/run/docker.sock`);
    }
    return { socketPath };
  }
  const m = /^(tcp|http):\/\/(\[[0-9a-fA-F:.]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(dockerHost);
  if (m) {
    const host = m[2]!.replace(/^\[|\]$/g, '');
    return { host, port: Number(m[3] ?? 2375), protocol: 'http' };
  }
  throw new Error(`docker host "${dockerHost}" is not understood; use unix:///path/to/docker.sock or tcp://host:port`);
}

/** HTTP status of a dockerode error (404 no such container/image, 304 not modified, 409 conflict), if any. */
export function statusCodeOf(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** The engine's own message of a dockerode error (`{"message": …}`), else the error text. */
export function engineMessage(err: unknown): string {
  const json = (err as { json?: unknown } | null)?.json;
  if (json && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string') {
    return (json as { message: string }).message.trim();
  }
  if (err instanceof Error) {
    const m = /\(HTTP code \d+\) [^-]+- (.*)$/s.exec(err.message);
    return (m ? m[1]! : err.message).trim();
  }
  return String(err);
}
