import { connect } from 'node:net';
import Dockerode from 'dockerode';
import { dockerOptions, defaultDockerHost } from '../src/docker-host.js';

/** The test image built by scripts/build-image.sh. */
export const IMAGE = 'shoal/busybox:latest';
/** Label on every container these tests create, so `cleanup()` finds them all. */
export const RUN_LABEL = 'shoal.test.run';

/** A shell that exits at once on SIGTERM (busybox `sleep` as PID 1 would ignore it until SIGKILL). */
export const SLEEP_TERMABLE = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];
/** The HTTP test server, stoppable by SIGTERM. */
export const HTTPD = ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html; trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'];

/** A dockerode client of its own, to check what the executor did independently of it. */
export function dockerClient(): Dockerode {
  return new Dockerode(dockerOptions(defaultDockerHost()));
}

/** Unique per test file run: `shoaltest<random>`. */
export function runId(): string {
  return `shoaltest${Math.random().toString(36).slice(2, 10)}`;
}

/** Fails loudly (never skips) when dockerd or the test image is missing. */
export async function requireDocker(docker: Dockerode): Promise<void> {
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(`no Docker engine answers at ${defaultDockerHost()} (${String(err)}); run scripts/dockerd.sh start (or scripts/setup.sh)`);
  }
  try {
    await docker.getImage(IMAGE).inspect();
  } catch {
    throw new Error(`test image ${IMAGE} is missing; run scripts/build-image.sh`);
  }
}

/** Containers of this run (by the run label), as the engine lists them. */
export async function runContainers(docker: Dockerode, run: string, extra: string[] = []): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${run}`, ...extra] } });
}

/** Removes every container of this run. */
export async function cleanup(docker: Dockerode, run: string): Promise<void> {
  for (const c of await runContainers(docker, run)) {
    await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
  }
}

/** One HTTP/1.0 GET over a raw socket (what `nc` does in the shell checks). */
export function httpGet(host: string, port = 80): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    let data = '';
    s.setTimeout(2000, () => s.destroy(new Error(`GET http://${host}:${port}/ timed out`)));
    s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.on('data', (d) => (data += d.toString()));
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

