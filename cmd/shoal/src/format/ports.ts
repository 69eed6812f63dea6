import type { PortConfig } from '@shoal/api';

/**
 * The PORTS column of `service ls` (docker/cli `service/formatter.go` behaviour): ingress-mode
 * ports only, sorted by protocol then published port, with runs where both the published and the
 * target port go up by one folded into ranges: `*:8080-8081->80-81/tcp`. Joined with `, `.
 */
export function servicePorts(ports: readonly PortConfig[] | undefined): string {
  if (!ports || ports.length === 0) return '';
  const sorted = ports
    .filter((p) => p.publishMode === 'ingress')
    .sort((a, b) => (a.protocol === b.protocol ? a.publishedPort - b.publishedPort : a.protocol < b.protocol ? -1 : 1));
  const out: string[] = [];
  let run: { p0: number; p1: number; t0: number; t1: number; proto: string } | undefined;
  const flush = () => {
    if (run && run.p0 > 0) out.push(`*:${span(run.p0, run.p1)}->${span(run.t0, run.t1)}/${run.proto}`);
  };
  for (const p of sorted) {
    const extends_ = run !== undefined && p.protocol === run.proto
      && p.publishedPort === run.p1 + 1 && p.targetPort === run.t1 + 1;
    if (run && extends_) {
      run.p1 = p.publishedPort;
      run.t1 = p.targetPort;
    } else {
      flush();
      run = { p0: p.publishedPort, p1: p.publishedPort, t0: p.targetPort, t1: p.targetPort, proto: p.protocol };
    }
  }
  flush();
  return out.join(', ');
}

function span(a: number, b: number): string {
  return b > a ? `${a}-${b}` : `${a}`;
}

/** The PORTS column of `service ps`: host-mode ports bound by the task, `*:P->T/proto`, joined with `,`. */
export function taskPorts(ports: readonly PortConfig[] | undefined): string {
  if (!ports || ports.length === 0) return '';
  return ports.map((p) => `*:${p.publishedPort}->${p.targetPort}/${p.protocol}`).join(',');
}
