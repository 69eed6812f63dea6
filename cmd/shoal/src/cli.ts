import yargs, { type Argv } from 'yargs';
import { ExitError, UsageError } from './errors.js';
import { rewriteCreateHost, splitServiceCreate } from './parse/argv.js';
import type { Args } from './commands/common.js';

/** The CLI's version (`shoal --version`). */
export const VERSION = '0.1.0';

type Handler = (argv: Args) => Promise<void>;

/** Wraps a lazily loaded command module so only the command being run is evaluated. */
function lazy<M>(load: () => Promise<M>, pick: (m: M) => Handler): (argv: Args) => Promise<void> {
  return async (argv) => pick(await load())(argv);
}
const swarm = () => import('./commands/swarm.js');
const node = () => import('./commands/node.js');
const service = () => import('./commands/service.js');
const network = () => import('./commands/network.js');
const info = () => import('./commands/info.js');
const stack = () => import('./commands/stack.js');
const secretCmd = () => import('./commands/secret.js').then((m) => m.secretCommands);
const configCmd = () => import('./commands/secret.js').then((m) => m.configCommands);

const REPEAT = '(repeatable)';
const str = (describe: string) => ({ type: 'string' as const, describe, requiresArg: true });
const flag = (describe: string) => ({ type: 'boolean' as const, describe });

/** A string-valued flag: long name, short alias, help text. */
type StringOpt = readonly [name: string, alias: string | undefined, describe: string];

/** Flags only `service create` takes (update uses -add/-rm pairs instead of the list flags). */
const CREATE_ONLY: readonly StringOpt[] = [
  ['name', undefined, 'Service name'],
  ['mode', undefined, 'Service mode: replicated, global, replicated-job or global-job'],
  ['replicas', undefined, 'Number of tasks'],
  ['env', 'e', `Set environment variables KEY=VALUE ${REPEAT}`],
  ['label', 'l', `Service label KEY=VALUE ${REPEAT}`],
  ['container-label', undefined, `Container label KEY=VALUE ${REPEAT}`],
  ['constraint', undefined, `Placement constraint, e.g. node.labels.zone==a ${REPEAT}`],
  ['publish', 'p', `Publish a port: [PUBLISHED:]TARGET[/PROTO] or published=P,target=T,mode=ingress|host,protocol=tcp|udp ${REPEAT}`],
  ['network', undefined, `Network to attach ${REPEAT}`],
  ['secret', undefined, `Secret for the service: NAME or source=NAME,target=PATH,uid=0,gid=0,mode=0444 ${REPEAT}`],
  ['config', undefined, `Config for the service: NAME or source=NAME,target=PATH,uid=0,gid=0,mode=0444 ${REPEAT}`],
];

/** Flags `service create` and `service update` share (Docker's names). */
const SPEC_OPTS: readonly StringOpt[] = [
  ['replicas-max-per-node', undefined, 'Maximum number of tasks per node (0 = unlimited)'],
  ['restart-condition', undefined, 'Restart when: none, on-failure or any'],
  ['restart-delay', undefined, 'Delay between restart attempts (ns|us|ms|s|m|h), default 5s'],
  ['restart-max-attempts', undefined, 'Maximum number of restarts before giving up (0 = unlimited)'],
  ['restart-window', undefined, 'Window used to evaluate the restart policy (ns|us|ms|s|m|h)'],
  ['stop-grace-period', undefined, 'Time to wait before force killing a container (ns|us|ms|s|m|h)'],
  ['endpoint-mode', undefined, 'Endpoint mode: vip or dnsrr'],
  ['hostname', undefined, 'Container hostname'],
  ['health-cmd', undefined, 'Command to run to check health, run by the container\'s shell (empty: the image\'s own check)'],
  ['health-interval', undefined, 'Time between running the check (ms|s|m|h), default 30s'],
  ['health-timeout', undefined, 'Maximum time to allow one check to run (ms|s|m|h), default 30s'],
  ['health-start-period', undefined, 'Start period for the container to initialize before failed checks count (ms|s|m|h), default 0s'],
  ['health-retries', undefined, 'Consecutive failures needed to report unhealthy, default 3'],
  ['entrypoint', undefined, 'Overwrite the default ENTRYPOINT of the image'],
  ['reserve-cpu', undefined, 'Reserve CPUs, e.g. 0.5'],
  ['reserve-memory', undefined, 'Reserve memory, e.g. 512m'],
  ['update-parallelism', undefined, 'Maximum number of tasks updated simultaneously (0 to update all at once)'],
  ['update-delay', undefined, 'Delay between updates (ns|us|ms|s|m|h)'],
  ['update-order', undefined, 'Update order: start-first or stop-first'],
  ['update-failure-action', undefined, 'Action on update failure: pause, continue or rollback'],
  ['update-monitor', undefined, 'Duration after each task update to monitor for failure (ns|us|ms|s|m|h)'],
  ['update-max-failure-ratio', undefined, 'Failure rate to tolerate during an update (0-1)'],
  ['rollback-parallelism', undefined, 'Maximum number of tasks rolled back simultaneously'],
  ['rollback-delay', undefined, 'Delay between task rollbacks (ns|us|ms|s|m|h)'],
  ['rollback-order', undefined, 'Rollback order: start-first or stop-first'],
  ['rollback-failure-action', undefined, 'Action on rollback failure: pause or continue'],
  ['rollback-monitor', undefined, 'Duration after each task rollback to monitor for failure (ns|us|ms|s|m|h)'],
  ['rollback-max-failure-ratio', undefined, 'Failure rate to tolerate during a rollback (0-1)'],
];

/** Runtime options only `service create` takes (issue 9; update has `-add`/`-rm` pairs). */
const RUNTIME_CREATE_ONLY: readonly StringOpt[] = [
  ['mount', undefined, `Attach a filesystem mount: type=volume|bind|tmpfs,source=…,target=…[,readonly][,volume-*][,bind-*][,tmpfs-*] ${REPEAT}`],
  ['placement-pref', undefined, `Add a placement preference, e.g. spread=node.labels.zone ${REPEAT}`],
  ['group', undefined, `Add a supplementary user group for the container ${REPEAT}`],
  ['dns', undefined, `Set a custom DNS server (after the service resolver) ${REPEAT}`],
  ['dns-option', undefined, `Set a DNS option, e.g. ndots:2 ${REPEAT}`],
  ['dns-search', undefined, `Set a custom DNS search domain ${REPEAT}`],
  ['add-host', undefined, `Add a custom host-to-IP mapping HOST:IP; --host HOST:IP is the same (the daemon address is -H) ${REPEAT}`],
  ['sysctl', undefined, `Sysctl option KEY=VALUE (namespaced ones: net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm*) ${REPEAT}`],
  ['ulimit', undefined, `Ulimit option NAME=SOFT[:HARD], e.g. nofile=1024:2048 ${REPEAT}`],
  ['generic-resource', undefined, `Reserve a user-defined resource KIND=COUNT, e.g. gpu=1 ${REPEAT}`],
  ['env-file', undefined, `Read in a file of environment variables ${REPEAT}`],
];

/** Runtime options `service create` and `service update` share (Docker's names). */
const RUNTIME_OPTS: readonly StringOpt[] = [
  ['workdir', 'w', 'Working directory inside the container'],
  ['user', 'u', 'Username or UID (format: <name|uid>[:<group|gid>])'],
  ['limit-cpu', undefined, 'Limit CPUs, e.g. 0.5'],
  ['limit-memory', undefined, 'Limit memory, e.g. 512m (the task is OOM-killed above it)'],
  ['limit-pids', undefined, 'Limit maximum number of processes (0 = unlimited)'],
  ['max-concurrent', undefined, 'Number of job tasks to run concurrently (replicated-job; default: --replicas)'],
  ['stop-signal', undefined, 'Signal to stop the container, e.g. SIGINT'],
  ['log-driver', undefined, 'Logging driver for the service\'s containers'],
  ['log-opt', undefined, `Logging driver option KEY=VALUE ${REPEAT}`],
  ['cap-add', undefined, `Add a Linux capability ${REPEAT}`],
  ['cap-drop', undefined, `Drop a Linux capability ${REPEAT}`],
  ['isolation', undefined, 'Container isolation: only "default" on Linux'],
  ['credential-spec', undefined, 'Credential spec for a managed service account (Windows only: refused)'],
];

/** `-add`/`-rm` runtime options of `service update`. */
const RUNTIME_UPDATE_ONLY: readonly StringOpt[] = [
  ['mount-add', undefined, `Add or update a mount on a service ${REPEAT}`],
  ['mount-rm', undefined, `Remove a mount by its target path ${REPEAT}`],
  ['placement-pref-add', undefined, `Add a placement preference ${REPEAT}`],
  ['placement-pref-rm', undefined, `Remove a placement preference ${REPEAT}`],
  ['group-add', undefined, `Add a supplementary user group ${REPEAT}`],
  ['group-rm', undefined, `Remove a supplementary user group ${REPEAT}`],
  ['dns-add', undefined, `Add or update a custom DNS server ${REPEAT}`],
  ['dns-rm', undefined, `Remove a custom DNS server ${REPEAT}`],
  ['dns-option-add', undefined, `Add or update a DNS option ${REPEAT}`],
  ['dns-option-rm', undefined, `Remove a DNS option ${REPEAT}`],
  ['dns-search-add', undefined, `Add or update a custom DNS search domain ${REPEAT}`],
  ['dns-search-rm', undefined, `Remove a DNS search domain ${REPEAT}`],
  ['host-add', undefined, `Add a custom host-to-IP mapping HOST:IP ${REPEAT}`],
  ['host-rm', undefined, `Remove a custom host-to-IP mapping HOST[:IP] ${REPEAT}`],
  ['sysctl-add', undefined, `Add or update a sysctl option ${REPEAT}`],
  ['sysctl-rm', undefined, `Remove a sysctl option ${REPEAT}`],
  ['ulimit-add', undefined, `Add or update a ulimit option ${REPEAT}`],
  ['ulimit-rm', undefined, `Remove a ulimit option ${REPEAT}`],
  ['generic-resource-add', undefined, `Add a generic resource ${REPEAT}`],
  ['generic-resource-rm', undefined, `Remove a generic resource ${REPEAT}`],
];

const GLOBAL_VALUE_FLAGS = new Set(['-H', '--host']);

/** Flags of `service create` that take a value (for splitting IMAGE from its command). */
const CREATE_VALUE_FLAGS = new Set([
  ...GLOBAL_VALUE_FLAGS,
  ...[...CREATE_ONLY, ...SPEC_OPTS, ...RUNTIME_CREATE_ONLY, ...RUNTIME_OPTS].flatMap(([n, a]) => (a ? [`--${n}`, `-${a}`] : [`--${n}`])),
]);

function addStringOpts(y: Argv, opts: readonly StringOpt[]): Argv {
  for (const [name, alias, describe] of opts) y = y.option(name, alias ? { alias, ...str(describe) } : str(describe));
  return y;
}

/** Options of `service create` (forCreate) or `service update`. */
function serviceSpecOptions(y: Argv, forCreate: boolean): Argv {
  return addStringOpts(addStringOpts(forCreate ? addStringOpts(addStringOpts(y, CREATE_ONLY), RUNTIME_CREATE_ONLY) : addStringOpts(y, RUNTIME_UPDATE_ONLY), SPEC_OPTS), RUNTIME_OPTS)
    .option('init', flag('Use an init inside each service container to forward signals and reap processes'))
    .option('tty', { alias: 't', ...flag('Allocate a pseudo-TTY') })
    .option('read-only', flag('Mount the container\'s root filesystem as read only'))
    .option('no-healthcheck', flag('Disable any container-specified HEALTHCHECK'))
    .option('detach', { alias: 'd', ...flag('Exit immediately instead of waiting for the service to converge') })
    .option('quiet', { alias: 'q', ...flag('Suppress progress output') });
}

function swarmCommands(y: Argv): Argv {
  return y
    .command('init', 'Initialize a swarm', (c) => c
      .option('advertise-addr', str('Advertised address (format: <ip|interface>[:port])'))
      .option('listen-addr', str('Listen address (format: <ip|interface>[:port]), default 0.0.0.0:2377'))
      .option('force-new-cluster', flag('Force create a new cluster from current state'))
      .option('task-history-limit', str('Task history retention limit (default 5)'))
      .option('autolock', flag('Enable manager autolocking (requiring an unlock key to start a stopped manager)')),
    lazy(swarm, (m) => m.init))
    .command('join <host-port>', 'Join a swarm as a node and/or manager', (c) => c
      .positional('host-port', { type: 'string', describe: 'Address of a manager, HOST[:PORT] (default port 2377)' })
      .option('token', { ...str('Token for entry into the swarm'), demandOption: true })
      .option('advertise-addr', str('Advertised address (format: <ip|interface>[:port])'))
      .option('listen-addr', str('Listen address (format: <ip|interface>[:port])')),
    lazy(swarm, (m) => m.join))
    .command('join-token <role>', 'Manage join tokens', (c) => c
      .positional('role', { type: 'string', describe: 'worker or manager' })
      .option('quiet', { alias: 'q', ...flag('Only display token') })
      .option('rotate', flag('Rotate join token')),
    lazy(swarm, (m) => m.joinToken))
    .command('leave', 'Leave the swarm', (c) => c
      .option('force', { alias: 'f', ...flag('Force this node to leave the swarm, ignoring warnings') }),
    lazy(swarm, (m) => m.leave))
    .command('update', 'Update the swarm', (c) => c
      .option('task-history-limit', str('Task history retention limit'))
      .option('dispatcher-heartbeat', str('Dispatcher heartbeat period (ns|us|ms|s|m|h)'))
      .option('autolock', flag('Change manager autolocking setting (true|false)')),
    lazy(swarm, (m) => m.update))
    .command('unlock', 'Unlock swarm', (c) => c, lazy(swarm, (m) => m.unlock))
    .command('unlock-key', 'Manage the unlock key', (c) => c
      .option('quiet', { alias: 'q', ...flag('Only display token') })
      .option('rotate', flag('Rotate unlock key')),
    lazy(swarm, (m) => m.unlockKey))
    .demandCommand(1, 'missing subcommand; run \'shoal swarm --help\' for the list');
}

function nodeCommands(y: Argv): Argv {
  return y
    .command(['ls', 'list'], 'List nodes in the swarm', (c) => c
      .option('quiet', { alias: 'q', ...flag('Only display IDs') })
      .option('format', str('Format output with a template, e.g. "{{.Hostname}}" or "table {{.ID}}\\t{{.Hostname}}\\t{{.Status}}"; fields: ID, Hostname, Status, Availability, ManagerStatus, EngineVersion, Self')),
    lazy(node, (m) => m.ls))
    .command('inspect <nodes..>', 'Display detailed information on one or more nodes', (c) => c
      .positional('nodes', { type: 'string', describe: 'Node ID, name or "self"' })
      .option('format', { alias: 'f', ...str('Format the output with a template, e.g. {{.spec.name}} or {{json .spec}}') })
      .option('pretty', flag('Print the information in a human friendly format')),
    lazy(node, (m) => m.inspect))
    .command('update <node>', 'Update a node', (c) => c
      .positional('node', { type: 'string' })
      .option('availability', str('Availability of the node: active, pause or drain'))
      .option('label-add', str(`Add or update a node label KEY=VALUE ${REPEAT}`))
      .option('label-rm', str(`Remove a node label if exists ${REPEAT}`))
      .option('role', str('Role of the node: worker or manager')),
    lazy(node, (m) => m.update))
    .command('promote <nodes..>', 'Promote one or more nodes to manager in the swarm', (c) => c
      .positional('nodes', { type: 'string' }),
    lazy(node, (m) => m.promote))
    .command('demote <nodes..>', 'Demote one or more nodes from manager in the swarm', (c) => c
      .positional('nodes', { type: 'string' }),
    lazy(node, (m) => m.demote))
    .command(['rm <nodes..>', 'remove'], 'Remove one or more nodes from the swarm', (c) => c
      .positional('nodes', { type: 'string' })
      .option('force', { alias: 'f', ...flag('Force remove a node from the swarm') }),
    lazy(node, (m) => m.rm))
    .command('ps [nodes..]', 'List tasks running on one or more nodes, defaults to current node', (c) => c
      .positional('nodes', { type: 'string' })
      .option('filter', { alias: 'f', ...str(`Filter output: desired-state=STATE, name=NAME, id=ID ${REPEAT}`) })
      .option('no-trunc', flag('Do not truncate output'))
      .option('format', str('Format output with a template, e.g. "{{.Name}}" or "table {{.ID}}\\t{{.Name}}"'))
      .option('quiet', { alias: 'q', ...flag('Only display task IDs') }),
    lazy(node, (m) => m.ps))
    .demandCommand(1, 'missing subcommand; run \'shoal node --help\' for the list');
}

function serviceCommands(y: Argv, command: string[]): Argv {
  return y
    .command('create <image> [command..]', 'Create a new service', (c) => serviceSpecOptions(c
      .positional('image', { type: 'string', describe: 'Image, e.g. shoal/busybox:latest' })
      .positional('command', { type: 'string', describe: 'Command and arguments for the container (every word after IMAGE, flags included)' }), true),
    lazy(service, (m) => (a) => m.create(a, command)))
    .command(['ls', 'list'], 'List services', (c) => c
      .option('quiet', { alias: 'q', ...flag('Only display IDs') })
      .option('format', str('Format output with a template, e.g. "{{.Name}}" or "table {{.ID}}\\t{{.Name}}"')),
    lazy(service, (m) => m.ls))
    .command('ps <services..>', 'List the tasks of one or more services', (c) => c
      .positional('services', { type: 'string' })
      .option('filter', { alias: 'f', ...str(`Filter output: desired-state=STATE, node=NODE, name=NAME, id=ID ${REPEAT}`) })
      .option('no-trunc', flag('Do not truncate output'))
      .option('format', str('Format output with a template, e.g. "{{.Name}}" or "table {{.ID}}\\t{{.Name}}"'))
      .option('quiet', { alias: 'q', ...flag('Only display task IDs') }),
    lazy(service, (m) => m.ps))
    .command('inspect <services..>', 'Display detailed information on one or more services', (c) => c
      .positional('services', { type: 'string' })
      .option('format', { alias: 'f', ...str('Format the output with a template, e.g. {{.spec.name}} or {{json .spec}}') })
      .option('pretty', flag('Print the information in a human friendly format')),
    lazy(service, (m) => m.inspect))
    .command('scale <pairs..>', 'Scale one or multiple replicated services (SERVICE=REPLICAS...)', (c) => c
      .positional('pairs', { type: 'string', describe: 'SERVICE=REPLICAS' })
      .option('detach', { alias: 'd', ...flag('Exit immediately instead of waiting for the services to converge') }),
    lazy(service, (m) => m.scale))
    .command('update <service>', 'Update a service', (c) => serviceSpecOptions(c
      .positional('service', { type: 'string' })
      .option('image', str('Service image tag'))
      .option('replicas', str('Number of tasks'))
      .option('args', str('Service command args'))
      .option('env-add', str(`Add or update an environment variable ${REPEAT}`))
      .option('env-rm', str(`Remove an environment variable ${REPEAT}`))
      .option('label-add', str(`Add or update a service label ${REPEAT}`))
      .option('label-rm', str(`Remove a label by its key ${REPEAT}`))
      .option('container-label-add', str(`Add or update a container label ${REPEAT}`))
      .option('container-label-rm', str(`Remove a container label by its key ${REPEAT}`))
      .option('constraint-add', str(`Add or update a placement constraint ${REPEAT}`))
      .option('constraint-rm', str(`Remove a constraint ${REPEAT}`))
      .option('publish-add', str(`Add or update a published port ${REPEAT}`))
      .option('publish-rm', str(`Remove a published port by its target port ${REPEAT}`))
      .option('network-add', str(`Add a network ${REPEAT}`))
      .option('network-rm', str(`Remove a network ${REPEAT}`))
      .option('secret-add', str(`Add or update a secret on a service ${REPEAT}`))
      .option('secret-rm', str(`Remove a secret ${REPEAT}`))
      .option('config-add', str(`Add or update a config file on a service ${REPEAT}`))
      .option('config-rm', str(`Remove a configuration file ${REPEAT}`))
      .option('force', flag('Force update even if no changes require it'))
      .option('rollback', flag('Rollback to previous specification')), false),
    lazy(service, (m) => m.update))
    .command('rollback <service>', 'Revert changes to a service\'s configuration', (c) => c
      .positional('service', { type: 'string' })
      .option('detach', { alias: 'd', ...flag('Exit immediately instead of waiting for the service to converge') })
      .option('quiet', { alias: 'q', ...flag('Suppress progress output') }),
    lazy(service, (m) => m.rollback))
    .command(['rm <services..>', 'remove'], 'Remove one or more services', (c) => c
      .positional('services', { type: 'string' }),
    lazy(service, (m) => m.rm))
    .demandCommand(1, 'missing subcommand; run \'shoal service --help\' for the list');
}

function stackCommands(y: Argv): Argv {
  return y
    .command(['deploy <stack>', 'up'], 'Deploy a new stack or update an existing stack', (c) => c
      .positional('stack', { type: 'string', describe: 'Stack name' })
      .option('compose-file', { alias: 'c', ...str(`Path to a Compose file, or "-" to read from stdin ${REPEAT}`) })
      .option('env-file', str('Read variables from this file (default: .env beside the first compose file)'))
      .option('prune', flag('Prune services that are no longer referenced'))
      .option('detach', { alias: 'd', type: 'boolean', describe: 'Do not wait for depends_on conditions or convergence (--detach=false waits for every service)' })
      .option('quiet', { alias: 'q', ...flag('Suppress progress output') })
      .option('resolve-image', str('Query the registry to resolve image digest and supported platforms: always, changed or never'))
      .option('with-registry-auth', flag('Send registry authentication details to Swarm agents'))
      .example('$0 stack deploy -c docker-compose.yml app', 'deploy (or update) the stack "app"')
      .example('$0 stack deploy -c base.yml -c prod.yml --prune app', 'merge two files; remove services no longer in them'),
    lazy(stack, (m) => m.deploy))
    .command(['ls', 'list'], 'List stacks', (c) => c
      .option('format', str('Format output with a template, e.g. "{{.Name}}: {{.Services}}"')),
    lazy(stack, (m) => m.ls))
    .command('services <stack>', 'List the services in the stack', (c) => c
      .positional('stack', { type: 'string' })
      .option('quiet', { alias: 'q', ...flag('Only display IDs') })
      .option('format', str('Format output with a template, e.g. "{{.Name}}"')),
    lazy(stack, (m) => m.services))
    .command('ps <stack>', 'List the tasks in the stack', (c) => c
      .positional('stack', { type: 'string' })
      .option('filter', { alias: 'f', ...str(`Filter output: desired-state=STATE, name=NAME, id=ID, node=NODE ${REPEAT}`) })
      .option('no-trunc', flag('Do not truncate output'))
      .option('format', str('Format output with a template, e.g. "{{.Name}}"'))
      .option('quiet', { alias: 'q', ...flag('Only display task IDs') }),
    lazy(stack, (m) => m.ps))
    .command(['rm <stacks..>', 'remove', 'down'], 'Remove one or more stacks', (c) => c
      .positional('stacks', { type: 'string' }),
    lazy(stack, (m) => m.rm))
    .demandCommand(1, 'missing subcommand; run \'shoal stack --help\' for the list');
}

function networkCommands(y: Argv): Argv {
  return y
    .command('create <name>', 'Create a network', (c) => c
      .positional('name', { type: 'string' })
      .option('driver', { alias: 'd', ...str('Driver to manage the network (overlay)') })
      .option('subnet', str('Subnet in CIDR format, e.g. 10.0.9.0/24'))
      .option('attachable', flag('Enable manual container attachment')),
    lazy(network, (m) => m.create))
    .command(['ls', 'list'], 'List networks', (c) => c
      .option('quiet', { alias: 'q', ...flag('Only display network IDs') })
      .option('no-trunc', flag('Do not truncate the output'))
      .option('format', str('Format output with a template, e.g. "{{.Name}}" or "table {{.ID}}\\t{{.Name}}"')),
    lazy(network, (m) => m.ls))
    .command('inspect <networks..>', 'Display detailed information on one or more networks', (c) => c
      .positional('networks', { type: 'string' })
      .option('format', { alias: 'f', ...str('Format the output with a template, e.g. {{.spec.name}} or {{json .spec}}') }),
    lazy(network, (m) => m.inspect))
    .command(['rm <networks..>', 'remove'], 'Remove one or more networks', (c) => c
      .positional('networks', { type: 'string' }),
    lazy(network, (m) => m.rm))
    .demandCommand(1, 'missing subcommand; run \'shoal network --help\' for the list');
}

/** `secret` and `config` subcommands (Docker's). */
function secretLikeCommands(y: Argv, kind: 'secret' | 'config'): Argv {
  const load = kind === 'secret' ? secretCmd : configCmd;
  const what = kind === 'secret' ? 'secrets' : 'configs';
  return y
    .command(`create <name> <file>`, `Create a ${kind} from a file or STDIN as content`, (c) => c
      .positional('name', { type: 'string', describe: `${kind === 'secret' ? 'Secret' : 'Config'} name` })
      .positional('file', { type: 'string', describe: 'File to read the content from, or - for STDIN' })
      .option('label', { alias: 'l', ...str(`${kind === 'secret' ? 'Secret' : 'Config'} labels KEY=VALUE ${REPEAT}`) })
      .option('template-driver', str('Template driver (golang)')),
    lazy(load, (m) => m.create))
    .command(['ls', 'list'], `List ${what}`, (c) => c
      .option('quiet', { alias: 'q', ...flag('Only display IDs') })
      .option('filter', { alias: 'f', ...str(`Filter output: id=ID, name=NAME, label=KEY[=VALUE] ${REPEAT}`) })
      .option('format', str('Format output with a template, e.g. "{{.Name}}" or "table {{.ID}}\\t{{.Name}}"')),
    lazy(load, (m) => m.ls))
    .command(`inspect <${what}..>`, `Display detailed information on one or more ${what}`, (c) => c
      .positional(what, { type: 'string' })
      .option('format', { alias: 'f', ...str('Format the output with a template, e.g. {{.spec.name}} or {{json .spec}}') })
      .option('pretty', flag('Print the information in a human friendly format')),
    lazy(load, (m) => m.inspect))
    .command([`rm <${what}..>`, 'remove'], `Remove one or more ${what}`, (c) => c
      .positional(what, { type: 'string' }),
    lazy(load, (m) => m.rm))
    .demandCommand(1, `missing subcommand; run 'shoal ${kind} --help' for the list`);
}

/**
 * The commands the parser was given, by group: `''` → top-level commands, `service` → its
 * subcommands. Each entry is a command's names, the first one its own and the rest aliases.
 */
type CommandTable = ReadonlyMap<string, readonly (readonly string[])[]>;

/** Edit distance (insertions, deletions, substitutions) between two short words. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The commands closest to a mistyped `word` (as Docker's cobra suggests them): those within edit
 * distance 2 of a name or alias, or that start with `word`; only the closest ones, by name.
 */
export function suggestCommands(word: string, commands: readonly (readonly string[])[]): string[] {
  const w = word.toLowerCase();
  let best = Infinity;
  let hits: string[] = [];
  for (const names of commands) {
    const d = Math.min(...names.map((n) => (n.toLowerCase().startsWith(w) ? 0 : editDistance(w, n.toLowerCase()))));
    if (d > 2 || d > best) continue;
    if (d < best) hits = [];
    best = d;
    hits.push(names[0]!);
  }
  return hits;
}

/** `unknown command "lss" for "shoal service"; did you mean "ls"? …` (or the list of commands). */
function unknownCommand(word: string, path: string, commands: readonly (readonly string[])[]): string {
  const close = suggestCommands(word, commands);
  const head = `unknown command "${word}" for "${path}"`;
  if (close.length) return `${head}; did you mean ${close.map((c) => `"${c}"`).join(' or ')}? See '${path} --help'`;
  const all = commands.map((n) => n[0]!).sort();
  return `${head}; commands: ${all.join(', ')}; see '${path} --help'`;
}

/** Rewrites yargs' validation messages into Docker-like one-liners that say how to fix them. */
function usageMessage(msg: string, args: readonly string[], commands: CommandTable): string {
  const words = commandWords(args);
  const cmdPath = commandPath(words, commands);
  const path = ['shoal', ...cmdPath].join(' ');
  let m: RegExpExecArray | null;
  if ((m = /^Unknown arguments?: (.*)$/.exec(msg))) {
    const items = m[1]!.split(', ');
    // `-` alone is a value (stdin), not a flag.
    const flags = items.filter((s) => (s.startsWith('-') && s !== '-') || args.includes(`--${s}`) || args.includes(`-${s}`));
    const first = items[0]!;
    if (flags.length > 0 || first.length === 1) {
      const f = flags[0] ?? first;
      const shown = f.startsWith('-') ? f : (f.length === 1 ? `-${f}` : `--${f}`);
      return `unknown flag: ${shown}; see '${path} --help'`;
    }
    return `unknown argument "${first}" for "${path}"; see '${path} --help'`;
  }
  if ((m = /^Not enough non-option arguments: got (\d+), need at least (\d+)$/.exec(msg))) {
    return `"${path}" requires at least ${m[2]} argument${m[2] === '1' ? '' : 's'}; see '${path} --help'`;
  }
  if ((m = /^Too many non-option arguments: got (\d+), maximum of (\d+)$/.exec(msg))) {
    return `"${path}" accepts at most ${m[2]} argument${m[2] === '1' ? '' : 's'}; see '${path} --help'`;
  }
  if ((m = /^Missing required argument: (.*)$/.exec(msg))) {
    return `missing required flag --${m[1]}; see '${path} --help'`;
  }
  if ((m = /^Not enough arguments following: (.*)$/.exec(msg))) {
    const f = m[1]!;
    return `flag ${f.length === 1 ? '-' : '--'}${f} needs a value; see '${path} --help'`;
  }
  return msg.replace(/\n+/g, ' ');
}

/**
 * The unknown-command message when the word where a command belongs is none: the first word for
 * `shoal`, the second for a group (`service`, `node`, …). Checked before any flag, so `shoal stack
 * deploy -c F` names `stack` rather than `-c` (Docker: cobra finds the command before parsing flags).
 */
function unknownCommandIn(args: readonly string[], commands: CommandTable): string | undefined {
  const words = commandWords(args);
  const cmdPath = commandPath(words, commands);
  if (cmdPath.length >= 2) return undefined;
  const sub = commands.get(cmdPath.length === 0 ? '' : cmdPath[0]!);
  const word = words[cmdPath.length];
  if (!sub?.length || word === undefined) return undefined;
  return unknownCommand(word, ['shoal', ...cmdPath].join(' '), sub);
}

/** The first flag on the command line that `known` does not contain (ignoring `=value`). */
function unknownFlag(args: readonly string[], known: ReadonlySet<string>): string | undefined {
  if (known.size === 0) return undefined;
  for (const a of args) {
    if (a === '--') break;
    if (!a.startsWith('-') || a === '-' || /^-\d/.test(a)) continue;
    const name = a.split('=')[0]!;
    if (name.startsWith('--') ? !known.has(name) : [...name.slice(1)].some((c) => !known.has(`-${c}`))) return name;
  }
  return undefined;
}

/** The words of a command line that are not flags or global flag values (`service`, `ls`, `web`). */
function commandWords(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a.startsWith('-') && a !== '-') {
      if (!a.includes('=') && GLOBAL_VALUE_FLAGS.has(a)) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/** The known command words at the start of `words` (`service`, `ls`), for messages. */
function commandPath(words: readonly string[], commands: CommandTable): string[] {
  const out: string[] = [];
  const find = (group: string, w: string | undefined) => (w === undefined ? undefined : commands.get(group)?.find((n) => n.includes(w)));
  const top = find('', words[0]);
  if (!top) return out;
  out.push(words[0]!);
  if (find(top[0]!, words[1])) out.push(words[1]!);
  return out;
}

/**
 * Runs the CLI on `args` (without `node` and the script). Prints results on stdout and errors as
 * one line `Error: <message>` on stderr.
 * @returns the exit status: 0 on success, 1 on any error (bad input or a daemon error).
 */
export async function run(args: readonly string[]): Promise<number> {
  const { args: parseArgs, command } = splitServiceCreate(rewriteCreateHost(args, CREATE_VALUE_FLAGS, GLOBAL_VALUE_FLAGS), CREATE_VALUE_FLAGS, GLOBAL_VALUE_FLAGS);
  const base = yargs(parseArgs);
  // Record the flags the matched command declares: yargs runs only the builders on the command's
  // path, all on this one instance, so this is exactly the set the command line may use.
  const known = new Set(['--help', '-h', '--version']);
  const option = base.option.bind(base) as (name: string, spec?: { alias?: string | readonly string[] }) => Argv;
  (base as unknown as { option: typeof option }).option = (name, spec) => {
    for (const n of [name, ...[spec?.alias ?? []].flat()]) known.add(n.length === 1 ? `-${n}` : `--${n}`);
    return option(name, spec);
  };
  // Record the commands too, by group (the group's builder registers its subcommands), so a
  // mistyped command can be told from a stray argument and the closest command suggested.
  const commands = new Map<string, string[][]>([['', []]]);
  let group = '';
  type Builder = (y: Argv) => Argv;
  const addCommand = base.command.bind(base) as unknown as (cmd: string | string[], desc: string, builder?: Builder, ...rest: unknown[]) => Argv;
  (base as unknown as { command: typeof addCommand }).command = (cmd, desc, builder, ...rest) => {
    const names = [cmd].flat().map((c) => c.split(' ')[0]!);
    if (!commands.has(group)) commands.set(group, []);
    commands.get(group)!.push(names);
    const inGroup: Builder | undefined = typeof builder === 'function'
      ? (y) => {
        const outer = group;
        group = names[0]!;
        try {
          return builder(y);
        } finally {
          group = outer;
        }
      }
      : builder;
    return addCommand(cmd, desc, inGroup, ...rest);
  };
  const y = base
    .scriptName('shoal')
    .usage('Usage: $0 [OPTIONS] COMMAND\n\nA swarm-mode container orchestrator')
    .parserConfiguration({ 'boolean-negation': false, 'dot-notation': false })
    .locale('en')
    .option('host', { alias: 'H', type: 'string', requiresArg: true, global: true, describe: 'Daemon socket to connect to (default $SHOAL_HOST or unix:///run/shoal/shoal.sock)' })
    .command('swarm', 'Manage the swarm', swarmCommands)
    .command('node', 'Manage swarm nodes', nodeCommands)
    .command('service', 'Manage swarm services', (c) => serviceCommands(c, command))
    .command('network', 'Manage networks', networkCommands)
    .command('stack', 'Manage swarm stacks', stackCommands)
    .command('secret', 'Manage swarm secrets', (c) => secretLikeCommands(c, 'secret'))
    .command('config', 'Manage swarm configs', (c) => secretLikeCommands(c, 'config'))
    .command('info', 'Display the swarm state of this node', (c) => c
      .option('format', { alias: 'f', ...str('Format the output with a template, e.g. {{.Swarm.LocalNodeState}}') }),
    lazy(info, (m) => m.info))
    .demandCommand(1, 'missing command; run \'shoal --help\' for the list')
    .strict()
    .version('version', 'Show the version', `shoal version ${VERSION}`)
    .help('help', 'Show help')
    .alias('help', 'h')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      const badCommand = unknownCommandIn(parseArgs, commands);
      if (badCommand) throw new UsageError(badCommand);
      // yargs lets an unknown flag swallow the next word (an IMAGE, a SERVICE) and then complains
      // about the missing argument; name the unknown flag instead.
      const unknown = unknownFlag(parseArgs, known);
      if (unknown && /^Not enough non-option arguments/.test(msg ?? '')) {
        throw new UsageError(usageMessage(`Unknown argument: ${unknown}`, parseArgs, commands));
      }
      throw new UsageError(usageMessage(msg ?? 'invalid command line', parseArgs, commands));
    });
  try {
    await y.parseAsync();
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof ExitError) return e.code;
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`Error: ${msg.replace(/\s*\n\s*/g, ' ')}\n`);
    return 1;
  }
}
