import { testnet } from './testnet.js';

/** Replies per body (the answering replica's hostname); `''` counts failed requests. */
export type Tally = Record<string, number>;

export const failures = (t: Tally): number => t[''] ?? 0;
export const answered = (t: Tally): number => Object.entries(t).filter(([k]) => k).reduce((a, [, v]) => a + v, 0);
export const replicas = (t: Tally): string[] => Object.keys(t).filter(Boolean).sort();

function tally(out: string): Tally {
  const t: Tally = {};
  for (const line of out.split('\n')) {
    if (!line.startsWith('R:')) continue;
    const body = line.slice(2).trim();
    t[body] = (t[body] ?? 0) + 1;
  }
  return t;
}

/**
 * `n` HTTP/1.0 GETs of `/` to `target` port `port` from inside container `container` on host
 * `node` (busybox `nc`, one connection each; `target` may be a name the service DNS resolves).
 */
export async function requestsFromContainer(node: string, container: string, target: string, n: number, port = 80): Promise<Tally> {
  const script = `i=0; while [ $i -lt ${n} ]; do i=$((i+1)); r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${target} ${port} 2>/dev/null | tail -n 1); echo "R:$r"; done`;
  const r = await testnet.docker(node, 'exec', container, 'sh', '-c', script);
  if (r.code !== 0) throw new Error(`requests from ${container} on ${node} failed (${r.code}): ${r.stderr}`);
  return tally(r.stdout);
}

/** `n` HTTP GETs of `url` from host `node`'s own namespace (node's http client, no keep-alive). */
export async function requestsFromHost(node: string, url: string, n: number): Promise<Tally> {
  const js = `
const http = require('node:http');
const [url, n] = process.argv.slice(1);
(async () => {
  for (let i = 0; i < Number(n); i++) {
    const body = await new Promise((resolve) => {
      const req = http.get(url, { agent: false, timeout: 2000 }, (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => resolve(b.trim())); });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve(''));
    });
    console.log('R:' + body);
  }
})();`;
  const r = await testnet.exec(node, 'node', '-e', js, url, String(n));
  if (r.code !== 0) throw new Error(`requests from ${node} to ${url} failed (${r.code}): ${r.stderr}`);
  return tally(r.stdout);
}

/** A records of `name` as the service DNS answers them inside `container` (busybox nslookup). */
export async function lookup(node: string, container: string, name: string): Promise<string[]> {
  const r = await testnet.docker(node, 'exec', container, 'nslookup', '-type=a', name);
  const lines = r.stdout.split('\n');
  const i = lines.findIndex((l) => /^Name:/.test(l.trim()));
  if (i < 0) return [];
  return lines.slice(i).flatMap((l) => /^Address(?: \d+)?:\s*([\d.]+)/.exec(l.trim())?.[1] ?? []).sort();
}
