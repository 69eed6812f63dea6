import fs from 'node:fs';
import path from 'node:path';
import type { TlsMaterial } from '@shoal/ca';

/** This node's TLS material under `<dataDir>/certs` (root CA, node certificate, node key; mode 0600). */
export function certPaths(dataDir: string) {
  const dir = path.join(dataDir, 'certs');
  return { dir, root: path.join(dir, 'swarm-root-ca.pem'), cert: path.join(dir, 'swarm-node.crt'), key: path.join(dir, 'swarm-node.key') };
}

export function saveMaterial(dataDir: string, m: TlsMaterial): void {
  const p = certPaths(dataDir);
  fs.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  for (const [file, text] of [[p.root, m.rootPem], [p.cert, m.certPem], [p.key, m.keyPem]] as const) {
    fs.writeFileSync(file + '.tmp', text, { mode: 0o600 });
    fs.renameSync(file + '.tmp', file);
  }
}

export function loadMaterial(dataDir: string): TlsMaterial {
  const p = certPaths(dataDir);
  return { rootPem: fs.readFileSync(p.root, 'utf8'), certPem: fs.readFileSync(p.cert, 'utf8'), keyPem: fs.readFileSync(p.key, 'utf8') };
}
