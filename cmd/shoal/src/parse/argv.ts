/**
 * Splits `service create … IMAGE [COMMAND [ARG…]]` so that everything after IMAGE belongs to the
 * container's command, even words that look like flags (`httpd -f -p 80`), as Docker does
 * (cobra `SetInterspersed(false)`). Pure.
 *
 * The scan knows which flags take a value (`valueFlags`, e.g. `--name`, `-e`): those consume the next
 * word unless written `--flag=value`; any other flag (booleans, and unknown flags, which the option
 * parser then reports) stands alone. A `--` ends the flags: the word after it is IMAGE.
 * @returns `args` for the option parser (up to and including IMAGE) and `command` (the rest);
 *   `command` is empty when the words are not a `service create` command line.
 */
export function splitServiceCreate(argv: readonly string[], valueFlags: ReadonlySet<string>, globalValueFlags: ReadonlySet<string>): { args: string[]; command: string[] } {
  const words: string[] = [];
  let i = 0;
  // Find the leading words `service create`, skipping global flags and their values.
  for (; i < argv.length && words.length < 2; i++) {
    const a = argv[i]!;
    if (a === '--') return { args: [...argv], command: [] };
    if (a.startsWith('-') && a !== '-') {
      if (!a.includes('=') && globalValueFlags.has(a)) i++;
      continue;
    }
    words.push(a);
  }
  if (words[0] !== 'service' || words[1] !== 'create') return { args: [...argv], command: [] };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      const image = argv[i + 1];
      if (image === undefined) return { args: argv.slice(0, i), command: [] };
      return { args: [...argv.slice(0, i), image], command: argv.slice(i + 2) };
    }
    if (a.startsWith('-') && a !== '-') {
      if (a.includes('=')) continue;
      // A value flag, or clustered short flags ending with one (`-de A=1`).
      const clustered = /^-[a-zA-Z]{2,}$/.test(a) && valueFlags.has(`-${a.slice(-1)}`);
      if (valueFlags.has(a) || clustered) i++;
      continue;
    }
    return { args: argv.slice(0, i + 1), command: argv.slice(i + 1) };
  }
  return { args: [...argv], command: [] };
}

/**
 * In `service create`, `--host HOST:IP` is Docker's extra-host flag (an `/etc/hosts` entry), not
 * the daemon address: this rewrites it to `--add-host` (the option the parser knows it by) in the
 * flags between `create` and IMAGE. `-H` and a `--host` before the command keep meaning the daemon
 * address. Pure; other command lines are returned unchanged.
 */
export function rewriteCreateHost(argv: readonly string[], valueFlags: ReadonlySet<string>, globalValueFlags: ReadonlySet<string>): string[] {
  const out = [...argv];
  const words: string[] = [];
  let i = 0;
  for (; i < argv.length && words.length < 2; i++) {
    const a = argv[i]!;
    if (a === '--') return out;
    if (a.startsWith('-') && a !== '-') {
      if (!a.includes('=') && globalValueFlags.has(a)) i++;
      continue;
    }
    words.push(a);
  }
  if (words[0] !== 'service' || words[1] !== 'create') return out;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--' || !a.startsWith('-') || a === '-') break;
    if (a === '--host') {
      out[i] = '--add-host';
      i++;
    } else if (a.startsWith('--host=')) {
      out[i] = `--add-host=${a.slice('--host='.length)}`;
    } else if (!a.includes('=') && (valueFlags.has(a) || (/^-[a-zA-Z]{2,}$/.test(a) && valueFlags.has(`-${a.slice(-1)}`)))) {
      i++;
    }
  }
  return out;
}
