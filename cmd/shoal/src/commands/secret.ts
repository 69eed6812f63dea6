import fs from 'node:fs';
import type { Config, SecretInfo } from '@shoal/api';
import { UsageError } from '../errors.js';
import { humanDuration } from '../format/duration.js';
import { formatRows } from '../format/tables.js';
import { formatTable } from '../format/table.js';
import { inspectJson, naturalCompare } from '../format/text.js';
import { renderTemplate } from '../format/template.js';
import { parseLabels } from '../parse/values.js';
import { type Args, bool, connect, forEach, list, out, str } from './common.js';

/**
 * `shoal secret …` and `shoal config …` (docker/cli `cli/command/secret`, `cli/command/config`):
 * create from a file or STDIN, ls (ID, NAME, [DRIVER,] CREATED, UPDATED), inspect (JSON, or
 * `--pretty` — a config's shows its data, a secret's never does), rm.
 */

type Kind = 'secret' | 'config';

/** Largest input read from a file or STDIN (the daemon refuses anything at or over its limit). */
const READ_LIMIT = 2 * 1024 * 1024;

/** The content of FILE, or of STDIN for `-`. @throws UsageError naming the file. */
export function readContent(file: string): Buffer {
  try {
    const data = fs.readFileSync(file === '-' ? 0 : file);
    if (data.length > READ_LIMIT) throw new UsageError(`${file === '-' ? 'STDIN' : file} is ${data.length} bytes; secrets must be less than 500 KiB and configs less than 1000 KiB`);
    return data;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`error reading content from ${file === '-' ? 'STDIN' : JSON.stringify(file)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Go's `time.Time` text as Docker's pretty output shows it: `2024-01-02 03:04:05.123 +0000 UTC`. */
export function goTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().replace('T', ' ').replace('Z', '')} +0000 UTC`;
}

/** One `secret ls` / `config ls` row (docker/cli formatter fields). */
export interface SecretRow {
  ID: string;
  Name: string;
  Driver: string;
  CreatedAt: string;
  UpdatedAt: string;
  Labels: string;
}

export function secretRows(items: readonly SecretInfo[], now: number): SecretRow[] {
  return [...items].sort((a, b) => naturalCompare(a.spec.name, b.spec.name)).map((s) => ({
    ID: s.id,
    Name: s.spec.name,
    Driver: '',
    CreatedAt: `${humanDuration(now - Date.parse(s.meta.createdAt))} ago`,
    UpdatedAt: `${humanDuration(now - Date.parse(s.meta.updatedAt))} ago`,
    Labels: Object.entries(s.spec.labels).map(([k, v]) => `${k}=${v}`).join(','),
  }));
}

/** `secret ls` (ID, NAME, DRIVER, CREATED, UPDATED) or `config ls` (no DRIVER), natural order by name. */
export function secretTable(kind: Kind, items: readonly SecretInfo[], now: number, format?: string): string {
  const rows = secretRows(items, now);
  const headers: Record<string, string> = kind === 'secret'
    ? { ID: 'ID', Name: 'NAME', Driver: 'DRIVER', CreatedAt: 'CREATED', UpdatedAt: 'UPDATED' }
    : { ID: 'ID', Name: 'NAME', CreatedAt: 'CREATED', UpdatedAt: 'UPDATED' };
  if (format) return formatRows(rows, format, { ...headers, Labels: 'LABELS' });
  const cols = Object.keys(headers) as (keyof SecretRow)[];
  return formatTable([cols.map((c) => headers[c]!), ...rows.map((r) => cols.map((c) => r[c]))]);
}

function labelLines(labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  if (!keys.length) return '';
  return `\nLabels:${keys.map((k) => `\n - ${k}${labels[k] ? `=${labels[k]}` : ''}`).join('')}`;
}

/** `secret inspect --pretty` (Docker's template; never the data). */
export function prettySecret(s: SecretInfo): string {
  return `ID:              ${s.id}\nName:              ${s.spec.name}${labelLines(s.spec.labels)}\nDriver:            \n`
    + `Created at:        ${goTime(s.meta.createdAt)}\nUpdated at:        ${goTime(s.meta.updatedAt)}\n`;
}

/** `config inspect --pretty` (Docker's template, with the data). */
export function prettyConfig(c: Config): string {
  return `ID:\t\t\t${c.id}\nName:\t\t\t${c.spec.name}${labelLines(c.spec.labels)}\n`
    + `Created at:            \t${goTime(c.meta.createdAt)}\nUpdated at:            \t${goTime(c.meta.updatedAt)}\n`
    + `Data:\n${Buffer.from(c.spec.data, 'base64').toString('utf8')}\n`;
}

/** `--filter KEY=VALUE` flags of `ls` (id, name, label). @throws UsageError for another key. */
export function parseSecretFilters(values: readonly string[]): { id?: string[]; name?: string[]; label?: string[] } {
  const f: { id?: string[]; name?: string[]; label?: string[] } = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const key = eq < 0 ? v : v.slice(0, eq);
    if (key !== 'id' && key !== 'name' && key !== 'label') throw new UsageError(`invalid filter ${JSON.stringify(v)}: use id=ID, name=NAME or label=KEY[=VALUE]`);
    (f[key] ??= []).push(eq < 0 ? '' : v.slice(eq + 1));
  }
  return f;
}

function commandsFor(kind: Kind) {
  const plural = kind === 'secret' ? 'secrets' : 'configs';
  return {
    /** `create [--label K=V] [--template-driver golang] NAME FILE|-`: prints the ID. */
    async create(a: Args): Promise<void> {
      const name = str(a, 'name') ?? '';
      // yargs reads a lone `-` (STDIN) as a bare flag: the positional then holds true or ''.
      const rawFile = a['file'];
      const file = rawFile === true || rawFile === '' ? '-' : String(rawFile ?? '');
      const labels = parseLabels(list(a, 'label'), '--label');
      const driver = str(a, 'template-driver');
      if (driver !== undefined && driver !== 'golang') throw new UsageError(`invalid --template-driver value ${JSON.stringify(driver)}: only golang is supported`);
      const data = readContent(file).toString('base64');
      const params = { name, data, ...(Object.keys(labels).length ? { labels } : {}), ...(driver ? { templateDriver: driver } : {}) };
      const { id } = kind === 'secret' ? await connect(a)('secret.create', params) : await connect(a)('config.create', params);
      out(`${id}\n`);
    },
    /** `ls [-q] [--filter …] [--format …]`. */
    async ls(a: Args): Promise<void> {
      const filters = parseSecretFilters(list(a, 'filter'));
      const p = Object.keys(filters).length ? { filters } : {};
      const items = kind === 'secret' ? await connect(a)('secret.ls', p) : await connect(a)('config.ls', p);
      if (bool(a, 'quiet')) out(secretRows(items, Date.now()).map((r) => `${r.ID}\n`).join(''));
      else out(secretTable(kind, items, Date.now(), str(a, 'format')));
    },
    /** `inspect [--pretty] [--format …] NAME…`: a JSON array, like `docker secret inspect`. */
    async inspect(a: Args): Promise<void> {
      const call = connect(a);
      const found: (SecretInfo | Config)[] = [];
      try {
        await forEach(list(a, plural), async (ref) => {
          found.push(kind === 'secret' ? await call('secret.inspect', { ref }) : await call('config.inspect', { ref }));
        });
      } finally {
        const format = str(a, 'format');
        if (format !== undefined) out(found.map((x) => `${renderTemplate(format, x)}\n`).join(''));
        else if (bool(a, 'pretty')) out(found.map((x) => (kind === 'secret' ? prettySecret(x) : prettyConfig(x as Config))).join('\n'));
        else out(inspectJson(found));
      }
    },
    /** `rm NAME…`: prints each removed one as given. */
    async rm(a: Args): Promise<void> {
      const call = connect(a);
      await forEach(list(a, plural), async (ref) => {
        if (kind === 'secret') await call('secret.rm', { ref });
        else await call('config.rm', { ref });
        out(`${ref}\n`);
      });
    },
  };
}

export const secretCommands = commandsFor('secret');
export const configCommands = commandsFor('config');
