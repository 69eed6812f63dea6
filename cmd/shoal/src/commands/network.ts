import type { Network } from '@shoal/api';
import { UsageError } from '../errors.js';
import { networkIds, networkTable } from '../format/tables.js';
import { inspectJson } from '../format/text.js';
import { renderTemplate } from '../format/template.js';
import { type Args, bool, connect, forEach, list, out, str } from './common.js';

const CIDR_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/** Checks an IPv4 CIDR (`10.0.9.0/24`). @throws UsageError naming the value. */
export function checkSubnet(s: string): string {
  const m = CIDR_RE.exec(s);
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32) {
    throw new UsageError(`invalid --subnet value ${JSON.stringify(s)}: expected an IPv4 CIDR such as 10.0.9.0/24`);
  }
  return s;
}

/** `network create [-d overlay] [--subnet CIDR] [--attachable] NAME`: prints the network ID. */
export async function create(a: Args): Promise<void> {
  const name = str(a, 'name') ?? '';
  const driver = str(a, 'driver') ?? 'overlay';
  if (driver !== 'overlay') throw new UsageError(`invalid --driver value ${JSON.stringify(driver)}: swarm networks use the overlay driver`);
  const params: { name: string; driver?: string; subnet?: string; attachable?: boolean } = { name, driver };
  const subnet = str(a, 'subnet');
  if (subnet !== undefined) params.subnet = checkSubnet(subnet);
  if (bool(a, 'attachable')) params.attachable = true;
  const { id } = await connect(a)('network.create', params);
  out(`${id}\n`);
}

/** `network ls [-q] [--no-trunc]`. */
export async function ls(a: Args): Promise<void> {
  const nets = await connect(a)('network.ls', {});
  const trunc = !bool(a, 'no-trunc');
  out(bool(a, 'quiet') ? networkIds(nets, trunc) : networkTable(nets, trunc, str(a, 'format')));
}

/** `network inspect NETWORK…`: a JSON array. */
export async function inspect(a: Args): Promise<void> {
  const call = connect(a);
  const found: Network[] = [];
  try {
    await forEach(list(a, 'networks'), async (ref) => {
      found.push(await call('network.inspect', { ref }));
    });
  } finally {
    const format = str(a, 'format');
    if (format !== undefined) out(found.map((n) => `${renderTemplate(format, n)}\n`).join(''));
    else out(inspectJson(found));
  }
}

/** `network rm NETWORK…`: prints each removed network as given. */
export async function rm(a: Args): Promise<void> {
  const call = connect(a);
  await forEach(list(a, 'networks'), async (ref) => {
    await call('network.rm', { ref });
    out(`${ref}\n`);
  });
}
