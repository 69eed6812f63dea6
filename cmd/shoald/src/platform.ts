/**
 * The machine `shoald` runs on, for `@shoal/node`: the Docker engine (`--docker-host`) as the
 * agent's executor, and the network plane from `@shoal/netdp` (overlay, load balancer, DNS).
 */
import { DockerExecutor } from '@shoal/executor-docker';
import { NodeNetwork, type NodeNetworkOptions } from '@shoal/netdp';
import type { PlatformFactory } from '@shoal/node';

export function dockerPlatform(o: { dockerHost: string; network: NodeNetworkOptions; execRoot?: string }): PlatformFactory {
  const execRoot = o.execRoot ? { execRoot: o.execRoot } : {};
  return async (nodeId, log, ctx) => {
    const network = await NodeNetwork.create(nodeId, { ...o.network, ...(ctx ? { metrics: ctx.metrics } : {}) }, log);
    const executor = new DockerExecutor({ dockerHost: o.dockerHost, nodeId, network: network.taskNetwork, ...execRoot });
    network.attach(executor.docker);
    return {
      executor,
      network,
      describe: () => executor.describe(),
      leave: async () => {
        const ex = new DockerExecutor({ dockerHost: o.dockerHost, nodeId, ...execRoot });
        for (const c of await ex.list().catch(() => [])) await ex.removeOrphan(c.containerId).catch(() => undefined);
        await ex.pruneTaskFiles(() => false).catch(() => undefined);
        await network.removeHostPlumbing();
      },
    };
  };
}
