import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { pino } from 'pino';
import { routeGrpcLogs } from '@shoal/rpc';
import { SwarmNode, parseListenAddr } from '@shoal/node';
import { dockerPlatform } from './platform.js';

/** `shoald`: the Shoal daemon. Flags and defaults are part of the contract scripts rely on (README). */
export async function main(argv = process.argv): Promise<void> {
  const args = await yargs(hideBin(argv))
    .scriptName('shoald')
    .usage('$0 [options]\n\nRuns the Shoal daemon: local control socket, agent, and (on managers) Raft and the manager components.')
    .option('data-dir', { type: 'string', default: '/var/lib/shoal', describe: 'state directory (node identity, Raft log in LevelDB)' })
    .option('socket', { type: 'string', default: '/run/shoal/shoal.sock', describe: 'local control socket (mode 0600)' })
    .option('exec-root', { type: 'string', describe: 'runtime state: task secrets and configs on per-task tmpfs mounts under <exec-root>/tasks (default: the directory of --socket)' })
    .option('docker-host', { type: 'string', default: process.env['DOCKER_HOST'] || 'unix:///var/run/docker.sock', describe: 'Docker engine to run tasks on' })
    .option('hostname', { type: 'string', default: os.hostname(), describe: 'node name shown in `node ls`' })
    .option('listen-addr', { type: 'string', default: '0.0.0.0:2377', describe: 'cluster (gRPC) listen address' })
    .option('advertise-addr', { type: 'string', describe: 'address other nodes use to reach this node' })
    .option('lb-dataplane', { type: 'string', default: 'auto', choices: ['auto', 'nftables', 'ipvs', 'userspace'], describe: 'load-balancer dataplane (auto: nftables, else IPVS, else userspace); shown in `node inspect`' })
    .option('data-path-port', { type: 'string', default: '4789', describe: 'VXLAN UDP port of the overlay (the same on every node)' })
    .option('metrics-addr', { type: 'string', describe: 'serve Prometheus metrics at http://ADDR/metrics (HOST:PORT, or PORT for 127.0.0.1); off by default' })
    .option('ui-addr', { type: 'string', describe: 'serve the read-only live web view at http://ADDR/ (HOST:PORT, or PORT for 127.0.0.1; managers show the swarm); off by default' })
    .option('log-level', { type: 'string', default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] })
    .strict()
    .check((a) => {
      const listen = String(a['listen-addr']);
      if (!/^[^\s:]*:\d+$/.test(listen) || Number(listen.slice(listen.lastIndexOf(':') + 1)) > 65535) {
        throw new Error(`invalid --listen-addr "${listen}"; use HOST:PORT with a port 0–65535, e.g. 0.0.0.0:2377`);
      }
      const adv = a['advertise-addr'];
      if (adv !== undefined && !/^[^\s:/]+(:\d{1,5})?$/.test(String(adv))) {
        throw new Error(`invalid --advertise-addr "${String(adv)}"; use an address or HOST:PORT, e.g. 10.0.0.5 or 10.0.0.5:2377`);
      }
      const port = String(a['data-path-port']);
      if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
        throw new Error(`invalid --data-path-port "${port}"; use an integer 1–65535 (default 4789)`);
      }
      for (const flag of ['metrics-addr', 'ui-addr'] as const) {
        if (a[flag] !== undefined) parseListenAddr(`--${flag}`, String(a[flag]));
      }
      return true;
    })
    .fail((msg, err) => {
      process.stderr.write(`shoald: ${err?.message ?? msg}\n`);
      process.exit(2);
    })
    .version(false)
    .help()
    .parse();
  const logger = pino({ level: args['log-level'], base: { pid: process.pid } });
  routeGrpcLogs(logger);
  const daemon = new SwarmNode({
    dataDir: args['data-dir'],
    socket: args.socket,
    hostname: args.hostname,
    listenAddr: args['listen-addr'],
    ...(args['advertise-addr'] ? { advertiseAddr: args['advertise-addr'] } : {}),
    ...(args['metrics-addr'] !== undefined ? { metricsAddr: String(args['metrics-addr']) } : {}),
    ...(args['ui-addr'] !== undefined ? { uiAddr: String(args['ui-addr']) } : {}),
    logger,
    platform: dockerPlatform({
      dockerHost: args['docker-host'],
      execRoot: args['exec-root'] ?? path.dirname(args.socket),
      network: { prefer: args['lb-dataplane'] as 'auto' | 'nftables' | 'ipvs' | 'userspace', dataPathPort: Number(args['data-path-port']) },
    }),
  });
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ sig }, 'shutting down (containers keep running)');
    const t = setTimeout(() => process.exit(1), 10_000);
    t.unref();
    await daemon.stop().catch((e) => logger.error({ err: String(e) }, 'stop failed'));
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  try {
    await daemon.start();
  } catch (e) {
    process.stderr.write(`shoald: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
