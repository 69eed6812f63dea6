/**
 * Rules for the runtime options of a service (mounts, limits, capabilities, ulimits, signals,
 * sysctls, DNS, extra hosts, jobs), shared by the CLI (which names the flag) and the control API
 * (which names the field), so both refuse the same values. Pure; no I/O.
 * Sources: docker/cli `opts/mount.go`, `opts/ulimit.go` (go-units), `opts/capabilities.go`;
 * moby `daemon/cluster/executor/container/validate.go`, `daemon/volume/mounts/linux_parser.go`;
 * SwarmKit `manager/controlapi/service.go`.
 */
import type { Mount, ServiceMode } from './objects.js';

/** `--mode` values, Docker's names. */
export const SERVICE_MODES = ['replicated', 'global', 'replicated-job', 'global-job'] as const;
export type ServiceModeName = (typeof SERVICE_MODES)[number];

/** The `--mode` name of a service mode. */
export function modeName(mode: ServiceMode): ServiceModeName {
  if ('replicated' in mode) return 'replicated';
  if ('global' in mode) return 'global';
  if ('replicatedJob' in mode) return 'replicated-job';
  return 'global-job';
}

/** True for `replicated-job` and `global-job` services (their tasks run to completion). */
export function isJobMode(mode: ServiceMode): boolean {
  return 'replicatedJob' in mode || 'globalJob' in mode;
}

/** True for `global` and `global-job` services (one task per eligible node). */
export function isGlobalMode(mode: ServiceMode): boolean {
  return 'global' in mode || 'globalJob' in mode;
}

export const MOUNT_TYPES = ['volume', 'bind', 'tmpfs'] as const;
export const BIND_PROPAGATIONS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'] as const;
export const MOUNT_CONSISTENCIES = ['default', 'consistent', 'cached', 'delegated'] as const;

/** A volume name the engine accepts (moby `volume/local`: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`). */
const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Templates (`{{.Task.Slot}}`) are expanded on the node; for the checks here each counts as a word. */
const withoutTemplates = (s: string) => s.replace(/\{\{[^}]*\}\}/g, 'x');

/**
 * Why `m` is not a mount Shoal can run, or undefined. Checks what the engine would refuse when the
 * task starts, so the user hears it at `service create`: the type (`volume`, `bind`, `tmpfs`;
 * `npipe` is Windows-only, `cluster` needs CSI), an absolute target, a bind source that is an
 * absolute path, a volume name the engine accepts, no source for tmpfs, options of one type only,
 * tmpfs size ≥ 0 and mode ≤ 0o7777, a known bind propagation and consistency.
 * The source of a bind mount must also exist on the node; only the node can tell (the task is then
 * rejected with the engine's `bind source path does not exist: …`).
 */
export function mountProblem(m: Omit<Partial<Mount>, 'type'> & { type?: string }): string | undefined {
  const type: string | undefined = m.type;
  if (type === 'npipe') return 'mount type "npipe" is Windows-only; use volume, bind or tmpfs';
  if (type === 'cluster') return 'mount type "cluster" (CSI volumes) is not supported; use volume, bind or tmpfs';
  if (!type || !(MOUNT_TYPES as readonly string[]).includes(type)) return `unknown mount type ${JSON.stringify(type ?? '')}; use volume, bind or tmpfs`;
  const target = m.target ?? '';
  if (target === '') return 'missing target: give the path in the container, e.g. target=/data';
  if (!withoutTemplates(target).startsWith('/')) return `invalid target ${JSON.stringify(target)}: must be an absolute path, e.g. /data`;
  const source = m.source ?? '';
  if (type === 'bind') {
    if (source === '') return 'a bind mount needs a source: the absolute path on the node, e.g. source=/srv/data';
    if (!withoutTemplates(source).startsWith('/')) return `invalid bind source ${JSON.stringify(source)}: must be an absolute path on the node`;
  } else if (type === 'volume') {
    if (source.startsWith('/')) return `invalid volume name ${JSON.stringify(source)}: a volume source is a name, not a path; for a path of the node use type=bind`;
    if (source !== '' && !VOLUME_NAME_RE.test(withoutTemplates(source))) {
      return `invalid volume name ${JSON.stringify(source)}: use letters, digits, '_', '.' and '-', starting with a letter or digit, at least 2 characters`;
    }
  } else if (source !== '') {
    return `a tmpfs mount takes no source (got ${JSON.stringify(source)}); drop source=`;
  }
  const mixed = ([['bind', m.bindOptions], ['volume', m.volumeOptions], ['tmpfs', m.tmpfsOptions]] as const)
    .find(([t, o]) => t !== type && o !== undefined);
  if (mixed) return `cannot mix '${mixed[0]}-*' options with mount type '${type}'`;
  const prop = m.bindOptions?.propagation;
  if (prop !== undefined && !(BIND_PROPAGATIONS as readonly string[]).includes(prop)) {
    return `invalid bind-propagation ${JSON.stringify(prop)}: use ${BIND_PROPAGATIONS.join(', ')}`;
  }
  if (m.consistency !== undefined && !(MOUNT_CONSISTENCIES as readonly string[]).includes(m.consistency)) {
    return `invalid consistency ${JSON.stringify(m.consistency)}: use ${MOUNT_CONSISTENCIES.join(', ')}`;
  }
  const t = m.tmpfsOptions;
  if (t?.sizeBytes !== undefined && (!Number.isSafeInteger(t.sizeBytes) || t.sizeBytes < 0)) {
    return `invalid tmpfs-size ${JSON.stringify(t.sizeBytes)}: must be a size in bytes >= 0 (0 = no limit)`;
  }
  if (t?.mode !== undefined && (!Number.isInteger(t.mode) || t.mode < 0 || t.mode > 0o7777)) {
    return `invalid tmpfs-mode ${JSON.stringify(t.mode)}: must be file mode bits from 0 to 0o7777 (e.g. 1777 in octal)`;
  }
  const d = m.volumeOptions?.driverConfig;
  if (d && !/^[a-zA-Z0-9][a-zA-Z0-9_.:/-]*$/.test(d.name ?? '')) return `invalid volume-driver ${JSON.stringify(d.name ?? '')}: give a driver name such as local`;
  return undefined;
}

/** Resource names `--ulimit` accepts (go-units `ulimitNameMapping`). */
export const ULIMIT_NAMES = [
  'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack',
] as const;

/** Why a ulimit is wrong, or undefined: a known name, whole-number limits, soft ≤ hard (hard -1 = unlimited). */
export function ulimitProblem(u: { name: string; soft: number; hard: number }): string | undefined {
  if (!(ULIMIT_NAMES as readonly string[]).includes(u.name)) return `unknown ulimit ${JSON.stringify(u.name)}; use one of ${ULIMIT_NAMES.join(', ')}`;
  if (!Number.isSafeInteger(u.soft) || !Number.isSafeInteger(u.hard)) return `ulimit ${u.name}: limits must be whole numbers`;
  if (u.hard !== -1 && u.soft > u.hard) return `ulimit ${u.name}: soft limit ${u.soft} is above the hard limit ${u.hard}`;
  return undefined;
}

/** The Linux capabilities the engine knows (moby `oci/caps`), without the `CAP_` prefix. */
const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT',
  'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE',
  'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ',
  'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
];

/** `net_admin` → `CAP_NET_ADMIN`; `ALL` and `RESET` stay as they are (docker/cli `NormalizeCapability`). */
export function normalizeCapability(c: string): string {
  const u = c.trim().toUpperCase();
  if (u === 'ALL' || u === 'RESET') return u;
  return u.startsWith('CAP_') ? u : `CAP_${u}`;
}

/** Why a (normalized) capability is unknown, or undefined. */
export function capabilityProblem(c: string): string | undefined {
  if (c === 'ALL') return undefined;
  if (CAPABILITIES.includes(c.replace(/^CAP_/, ''))) return undefined;
  return `unknown capability ${JSON.stringify(c)}; use a Linux capability such as CAP_NET_ADMIN (or NET_ADMIN), or ALL`;
}

/**
 * Docker's effective `--cap-add`/`--cap-drop` pair (docker/cli `EffectiveCapAddCapDrop`): names
 * normalized, `ALL` absorbs the rest of its list, a capability both added and dropped is added,
 * `RESET` is dropped; both sorted.
 */
export function effectiveCaps(add: readonly string[], drop: readonly string[]): { add: string[]; drop: string[] } {
  let a = new Set(add.map(normalizeCapability));
  let d = new Set(drop.map(normalizeCapability));
  if (a.has('ALL')) a = new Set(['ALL']);
  if (d.has('ALL')) d = new Set(['ALL']);
  const outDrop = [...d].filter((c) => !a.has(c) && c !== 'RESET').sort();
  const outAdd = [...a].filter((c) => c !== 'RESET').sort();
  return { add: outAdd, drop: outDrop };
}

const SIGNALS = [
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR',
  'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH',
  'XCPU', 'XFSZ',
];

/**
 * Why `s` is not a signal the engine accepts as a stop signal, or undefined: a name with or without
 * `SIG` (`SIGTERM`, `term`), `RTMIN+n`/`RTMAX-n`, or a number 1–64 (moby `signal.ParseSignal`).
 */
export function signalProblem(s: string): string | undefined {
  const n = s.trim();
  if (/^\d+$/.test(n)) return Number(n) >= 1 && Number(n) <= 64 ? undefined : `invalid signal ${JSON.stringify(s)}: signal numbers are 1 to 64`;
  const name = n.toUpperCase().replace(/^SIG/, '');
  if (SIGNALS.includes(name)) return undefined;
  const rt = /^RT(MIN|MAX)(?:([+-])(\d+))?$/.exec(name);
  if (rt && (!rt[3] || Number(rt[3]) <= 30)) return undefined;
  return `invalid signal ${JSON.stringify(s)}: use a signal name such as SIGTERM, SIGINT or SIGQUIT, or its number`;
}

/** Namespaced sysctls the engine allows in a container (moby `opts.ValidateSysctl`). */
const SYSCTL_NAMES = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];
const SYSCTL_PREFIXES = ['fs.mqueue.', 'net.'];

/** Why a sysctl key cannot be set in a container, or undefined. */
export function sysctlProblem(key: string): string | undefined {
  if (SYSCTL_NAMES.includes(key) || SYSCTL_PREFIXES.some((p) => key.startsWith(p) && key.length > p.length)) return undefined;
  return `sysctl ${JSON.stringify(key)} is not allowed in a container: only namespaced ones are (net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm*)`;
}

/** True for an IPv4 (`10.0.0.5`) or IPv6 (`fe80::1`, `::1`, `::ffff:10.0.0.1`) address. */
export function isIpAddress(s: string): boolean {
  const v4 = (x: string) => {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(x);
    return !!m && m.slice(1).every((o) => Number(o) <= 255 && (o === '0' || !o.startsWith('0')));
  };
  if (v4(s)) return true;
  if (!s.includes(':')) return false;
  let body = s;
  const tail = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (tail) {
    if (!v4(tail[2]!)) return false;
    body = `${tail[1]}0:0`; // the embedded IPv4 address stands for two groups
  }
  const halves = body.split('::');
  if (halves.length > 2) return false;
  const groups = halves.flatMap((h) => (h === '' ? [] : h.split(':')));
  if (groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  return halves.length === 2 ? groups.length <= 7 : groups.length === 8;
}

/** True for a host name (RFC 1123 labels, dots allowed). */
export function isHostname(s: string): boolean {
  return s.length <= 253 && /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$/.test(s);
}

/**
 * The smallest memory limit the engine accepts (moby `linuxMinMemory`, 6 MiB): a smaller
 * `--limit-memory` would be refused when each task starts, so it is refused at create instead.
 */
export const MIN_MEMORY_LIMIT_BYTES = 6 * 1024 * 1024;

/** The smallest CPU limit or reservation (SwarmKit: 0.001 CPUs). */
export const MIN_NANO_CPUS = 1_000_000;
