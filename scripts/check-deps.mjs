#!/usr/bin/env node
// Boundary check (docs/ARCHITECTURE.md "Rules of the house"), on the TypeScript compiler API so that it sees
// what the compiler sees: which imports survive to runtime, and which calls really are the store's.
// Checks, for every workspace in scripts/deps.json (the one table; docs/ARCHITECTURE.md's is
// generated from it):
//   1. allowlists: Shoal workspaces it imports at runtime / for types only;
//   2. package.json drift: imported-but-undeclared and declared-but-unimported packages;
//   3. store writes (MemoryStore.update/commit, Tx.create/update/delete) outside the writers;
//   4. the pure Raft core: no built-in modules, timers, clocks, randomness, process or console;
//   5. the docs table matches the data file.
// Prints one line per violation (`path:line: what, and the fix`) and exits 1, else one summary line.
//
//   node scripts/check-deps.mjs [--root DIR] [--write-docs]
import fs from 'node:fs';
import path from 'node:path';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const DEPS_FILE = 'scripts/deps.json';
export const DOC_FILE = 'docs/ARCHITECTURE.md';
const DOC_BEGIN = '<!-- deps-table:begin -->';
const DOC_END = '<!-- deps-table:end -->';
const SCRIPT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CODE_EXT = /\.(?:ts|mts|cts|tsx|js|mjs|cjs|jsx)$/;
const BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith('_')));

/**
 * Globals a pure workspace's src/ may not reference, with the fix. Resolved with the checker, so a
 * local `random`, a parameter named `console` or a Config field `clock` are not hits.
 * queueMicrotask is allowed: it orders work, it does not read time.
 */
const IMPURE_GLOBALS = {
  setTimeout: 'a timer; the host drives time through tick()',
  setInterval: 'a timer; the host drives time through tick()',
  setImmediate: 'a timer; the host drives time through tick()',
  clearTimeout: 'a timer; the host drives time through tick()',
  clearInterval: 'a timer; the host drives time through tick()',
  clearImmediate: 'a timer; the host drives time through tick()',
  Date: 'the wall clock; count ticks, or take times in messages from the host',
  performance: 'a clock (performance.now); count ticks instead',
  process: 'process state and I/O; take settings through Config',
  console: 'output; log through the injected Config.logger',
  crypto: 'randomness; use the seeded Config.random',
  fetch: 'network I/O; the host does I/O and steps messages in',
};
/** Members of global objects (by the interface that declares them in a lib file) a pure workspace may not use. */
const IMPURE_MEMBERS = { 'Math.random': 'randomness; use the seeded Config.random' };
const IMPURE_MEMBER_NAMES = new Set(Object.keys(IMPURE_MEMBERS).map((k) => k.split('.')[1]));

const rel = (root, p) => path.relative(root, p).split(path.sep).join('/');
const lineAt = (text, index) => (index < 0 ? 1 : text.slice(0, index).split('\n').length);
/** Line of `"key"` in a JSON text, searched after `"section"` when given. */
function jsonLine(text, key, section) {
  const from = section ? Math.max(0, text.indexOf(JSON.stringify(section))) : 0;
  return lineAt(text, text.indexOf(JSON.stringify(key), from));
}
const list = (xs) => (xs.length ? xs.join(', ') : 'none');

/** npm package name of a bare specifier (`@scope/a/b` → `@scope/a`), or undefined for relative/absolute ones. */
function packageOf(spec) {
  if (spec.startsWith('.') || spec.startsWith('/') || /^[a-z]+:/.test(spec)) return undefined; // relative, absolute, file:/data:/node: URLs
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}
const isBuiltin = (spec) => spec.startsWith('node:') || BUILTINS.has(spec) || BUILTINS.has(spec.split('/')[0]);
/** `@types/x` → `x`, `@types/scope__x` → `@scope/x`. */
const typesBacks = (dep) => dep.slice('@types/'.length).replace(/^(.+)__(.+)$/, '@$1/$2');

const ENTRY_FIELDS = new Set(['path', 'kind', 'runtime', 'types', 'npm', 'ignoreUnused', 'note']);

/** Reads and validates scripts/deps.json; problems go to `problems` with their line in the file. */
function loadTable(root, problems) {
  const file = path.join(root, DEPS_FILE);
  if (!fs.existsSync(file) || !fs.existsSync(path.join(root, 'package.json'))) {
    throw new Error(`${root} has no package.json and ${DEPS_FILE}; pass the repository with --root`);
  }
  const text = fs.readFileSync(file, 'utf8');
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`${DEPS_FILE} is not valid JSON (${e.message}); fix it`);
  }
  const at = (key, section) => `${DEPS_FILE}:${jsonLine(text, key, section)}`;
  const entries = new Map();
  for (const [id, e] of Object.entries(data.workspaces ?? {})) {
    // A misspelt field would silently loosen or tighten the rules; name it instead.
    for (const k of Object.keys(e)) {
      if (!ENTRY_FIELDS.has(k)) problems.push(`${at(id, 'workspaces')}: ${id} has the unknown field "${k}"; use ${[...ENTRY_FIELDS].join(', ')}`);
    }
    if (e.kind && !['lib', 'cmd', 'test'].includes(e.kind)) problems.push(`${at(id, 'workspaces')}: ${id} has kind "${e.kind}"; use lib, cmd or test`);
    entries.set(id, {
      id,
      path: e.path ?? (id.includes('/') ? id : `packages/${id}`),
      kind: e.kind ?? 'lib',
      runtime: e.runtime ?? [],
      types: e.types ?? [],
      npm: e.npm,
      ignoreUnused: e.ignoreUnused ?? {},
      note: e.note,
    });
  }
  const libs = [...entries.values()].filter((e) => e.kind === 'lib').map((e) => e.id);
  const known = (id) => id === '*' || entries.has(id);
  for (const e of entries.values()) {
    for (const id of [...e.runtime, ...e.types]) {
      if (!known(id)) problems.push(`${at(e.id, 'workspaces')}: ${e.id} lists "${id}", which is no workspace in ${DEPS_FILE}; fix the name or add an entry for it`);
    }
    e.runtimeSet = new Set(e.runtime.flatMap((id) => (id === '*' ? libs : [id])).filter((id) => id !== e.id));
    e.typesSet = new Set([...e.runtimeSet, ...e.types.flatMap((id) => (id === '*' ? libs : [id]))].filter((id) => id !== e.id));
  }
  const testsMayImport = data.testsMayImport ?? [];
  const writes = data.storeWrites ?? { api: { workspace: 'store', members: {} }, allowed: [] };
  const pure = data.pure ?? [];
  for (const [section, ids] of [['testsMayImport', testsMayImport], ['storeWrites', [writes.api.workspace, ...writes.allowed]], ['pure', pure]]) {
    for (const id of ids) {
      if (!entries.has(id)) problems.push(`${at(id, section)}: ${section} lists "${id}", which is no workspace in ${DEPS_FILE}; fix the name or add an entry for it`);
    }
  }
  return { text, entries, libs, testsMayImport, writes, pure };
}

/** Files of one workspace: every code file under its folder, except dist/, node_modules/ and nested workspaces. */
function workspaceFiles(dir, skipDirs) {
  const out = [];
  const walk = (d) => {
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) {
        if (ent.name !== 'node_modules' && ent.name !== 'dist' && !ent.name.startsWith('.') && !skipDirs.has(p)) walk(p);
      } else if (CODE_EXT.test(ent.name)) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * Role of a file in its workspace: `test` (its test/ folder, or a test workspace: may import
 * testkit, write the store, use devDependencies), `src` (src/, bin/, lib/: ships), else `tool`
 * (build scripts, benches: allowlists apply; root devDependencies satisfy their imports).
 */
function roleOf(ws, file) {
  if (ws.kind === 'test') return 'test';
  const top = path.relative(ws.dir, file).split(path.sep)[0];
  if (top === 'test') return 'test';
  return ['src', 'bin', 'lib'].includes(top) ? 'src' : 'tool';
}

/**
 * `@shoal/x[/sub]` → the workspace's source file, through its package.json `exports` with the
 * tsconfig outDir mapped back to rootDir, so that one program sees each declaration once (and no
 * build is needed). Undefined when it cannot be found; the caller falls back to node resolution.
 */
function sourceFor(ws, sub) {
  const key = sub ? `./${sub}` : '.';
  const pick = (e) => (typeof e === 'string' ? e : e && typeof e === 'object' ? pick(e.types) ?? pick(e.import) ?? pick(e.default) ?? pick(e.node) : undefined);
  const exp = ws.pkg.exports;
  let target;
  if (typeof exp === 'string' || (exp && !Object.keys(exp).some((k) => k.startsWith('.')))) target = key === '.' ? pick(exp) : undefined;
  else if (exp) target = pick(exp[key]);
  else target = key === '.' ? ws.pkg.types ?? ws.pkg.main : undefined;
  const candidates = [];
  if (target) {
    let abs = path.resolve(ws.dir, target);
    if (abs.startsWith(ws.outDir + path.sep)) abs = path.join(ws.rootDir, path.relative(ws.outDir, abs));
    const stem = abs.replace(/(\.d)?\.[cm]?[jt]sx?$/, '');
    candidates.push(...['.ts', '.mts', '.tsx', '.js', '.mjs'].map((x) => stem + x));
  }
  candidates.push(path.join(ws.dir, 'src', sub || 'index') + '.ts', path.join(ws.dir, 'src', sub || '', 'index.ts'));
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) return undefined;
  const extension = found.endsWith('.mts') ? ts.Extension.Mts : found.endsWith('.tsx') ? ts.Extension.Tsx
    : found.endsWith('.ts') ? ts.Extension.Ts : found.endsWith('.mjs') ? ts.Extension.Mjs : ts.Extension.Js;
  return { resolvedFileName: found, extension, isExternalLibraryImport: false };
}

/**
 * The module references of a file: `{ spec, node, runtime, how }`. Runtime unless the compiler
 * erases it: `import type`, `export type … from`, `import('x').T` in types, and — only without
 * verbatimModuleSyntax — `import { type A }` / `export { type A } from`, whose specifiers are all
 * types. Under verbatimModuleSyntax (this repo) tsc and esbuild keep those as `import {} from 'x'`,
 * which loads the module. Dynamic import() and require() are runtime.
 */
function moduleRefs(node, vms, out) {
  const lit = (n) => (n && ts.isStringLiteralLike(n) ? n : undefined);
  if (ts.isImportDeclaration(node) && lit(node.moduleSpecifier)) {
    const c = node.importClause;
    const allTypeSpecifiers = !!c && !c.name && !!c.namedBindings && ts.isNamedImports(c.namedBindings)
      && c.namedBindings.elements.length > 0 && c.namedBindings.elements.every((e) => e.isTypeOnly);
    const runtime = !(c?.isTypeOnly || (allTypeSpecifiers && !vms));
    const how = allTypeSpecifiers && !c.isTypeOnly ? 'import { type … }, kept as import {} under verbatimModuleSyntax' : '';
    out.push({ spec: node.moduleSpecifier.text, node, runtime, how });
  } else if (ts.isExportDeclaration(node) && lit(node.moduleSpecifier)) {
    const c = node.exportClause;
    const allTypeSpecifiers = !!c && ts.isNamedExports(c) && c.elements.length > 0 && c.elements.every((e) => e.isTypeOnly);
    const runtime = !(node.isTypeOnly || (allTypeSpecifiers && !vms));
    const how = allTypeSpecifiers && !node.isTypeOnly ? 'export { type … } from, kept as export {} under verbatimModuleSyntax' : '';
    out.push({ spec: node.moduleSpecifier.text, node, runtime, how });
  } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && lit(node.moduleReference.expression)) {
    out.push({ spec: node.moduleReference.expression.text, node, runtime: !node.isTypeOnly, how: '' });
  } else if (ts.isCallExpression(node) && lit(node.arguments[0])) {
    if (node.expression.kind === ts.SyntaxKind.ImportKeyword) out.push({ spec: node.arguments[0].text, node, runtime: true, how: 'dynamic import()' });
    else if (ts.isIdentifier(node.expression) && node.expression.text === 'require') out.push({ spec: node.arguments[0].text, node, runtime: true, how: 'require()' });
    else if (ts.isCallExpression(node.expression) && ts.isIdentifier(node.expression.expression) && node.expression.expression.text === 'createRequire') {
      out.push({ spec: node.arguments[0].text, node, runtime: true, how: 'createRequire()()' });
    }
  } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && lit(node.argument.literal)) {
    out.push({ spec: node.argument.literal.text, node, runtime: false, how: '' });
  }
}

/**
 * Parsed lib and @types files, shared by the programs of one process (the unit test checks several
 * fixture trees; @types/node alone is half of a fixture's run), as the language service does.
 */
const libCache = new Map();

/** Runs every check on the tree at `root`; with `writeDocs`, first regenerates the docs table. */
export function checkDeps({ root = SCRIPT_ROOT, writeDocs = false } = {}) {
  const started = performance.now();
  root = path.resolve(root);
  const problems = [];
  const table = loadTable(root, problems);
  const rootPkgText = fs.readFileSync(path.join(root, 'package.json'), 'utf8');
  const rootPkg = JSON.parse(rootPkgText);
  const rootDeclared = new Set(Object.keys({ ...rootPkg.dependencies, ...rootPkg.devDependencies }));

  // Workspaces present on disk; a table entry without a folder is a planned one.
  const workspaces = [];
  const byPackage = new Map();
  const byId = new Map();
  for (const e of table.entries.values()) {
    const dir = path.join(root, e.path);
    const pkgFile = path.join(dir, 'package.json');
    if (!fs.existsSync(pkgFile)) continue;
    const pkgText = fs.readFileSync(pkgFile, 'utf8');
    const ws = { ...e, dir, pkgFile: rel(root, pkgFile), pkgText, pkg: JSON.parse(pkgText), vms: false, outDir: path.join(dir, 'dist'), rootDir: dir };
    const tsconfig = path.join(dir, 'tsconfig.json');
    if (fs.existsSync(tsconfig)) {
      const opts = ts.parseJsonConfigFileContent(ts.readConfigFile(tsconfig, ts.sys.readFile).config, ts.sys, dir).options;
      ws.vms = !!opts.verbatimModuleSyntax;
      if (opts.outDir) ws.outDir = path.resolve(opts.outDir);
      if (opts.rootDir) ws.rootDir = path.resolve(opts.rootDir);
    }
    workspaces.push(ws);
    byId.set(ws.id, ws);
    byPackage.set(ws.pkg.name, ws);
  }
  // Every npm workspace needs a table entry, or nothing would check it.
  const declaredWs = Array.isArray(rootPkg.workspaces) ? rootPkg.workspaces : rootPkg.workspaces?.packages ?? [];
  for (const w of declaredWs.flatMap((w) => (w.endsWith('/*') ? (fs.existsSync(path.join(root, w.slice(0, -2))) ? fs.readdirSync(path.join(root, w.slice(0, -2))) : []).map((d) => `${w.slice(0, -2)}/${d}`) : [w]))) {
    if (![...table.entries.values()].some((e) => path.normalize(e.path) === path.normalize(w))) {
      problems.push(`package.json:${jsonLine(rootPkgText, w, 'workspaces')}: workspace ${w} has no entry in ${DEPS_FILE}; add one ("<name>": { "path": "${w}", "runtime": [...] })`);
    }
  }
  const idOfPackage = (name) => byPackage.get(name)?.id ?? (name.startsWith('@shoal/') && table.entries.has(name.slice(7)) ? name.slice(7) : undefined);

  // One program over all workspaces (measured: ~2 s in all for ~35k lines, most of it parsing and
  // binding); the checker only types what the store-write and purity checks ask about.
  const files = [];
  const fileWs = new Map();
  const wsDirs = new Set(workspaces.map((w) => w.dir));
  for (const ws of workspaces) {
    for (const f of workspaceFiles(ws.dir, new Set([...wsDirs].filter((d) => d !== ws.dir)))) {
      files.push(f);
      fileWs.set(path.resolve(f), ws);
    }
  }
  const typeRoots = [...new Set([root, SCRIPT_ROOT].map((r) => path.join(r, 'node_modules', '@types')))].filter((d) => fs.existsSync(d));
  const options = {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2023.d.ts'], types: typeRoots.length ? ['node'] : [], typeRoots, allowJs: true, checkJs: false,
    noEmit: true, skipLibCheck: true, strict: true, esModuleInterop: true,
  };
  const host = ts.createCompilerHost(options, true);
  const readSource = host.getSourceFile;
  host.getSourceFile = (fileName, langOrOptions, ...rest) => {
    if (fileWs.has(path.resolve(fileName))) return readSource(fileName, langOrOptions, ...rest);
    const key = `${fileName}|${typeof langOrOptions === 'object' ? `${langOrOptions.languageVersion}|${langOrOptions.impliedNodeFormat}` : langOrOptions}`;
    if (!libCache.has(key)) libCache.set(key, readSource(fileName, langOrOptions, ...rest));
    return libCache.get(key);
  };
  const cache = ts.createModuleResolutionCache(root, (x) => x, options);
  host.resolveModuleNameLiterals = (literals, containingFile, redirected, opts, containingSourceFile) => literals.map((lit) => {
    const m = /^(@shoal\/[^/]+)(?:\/(.+))?$/.exec(lit.text);
    const ws = m && byPackage.get(m[1]);
    const resolved = ws && sourceFor(ws, m[2]);
    if (resolved) return { resolvedModule: resolved };
    // npm packages stay unresolved: no check needs their types, and loading them (grpc, dockerode,
    // pino, …) cost ~0.8 s of a ~2 s run. Globals still come from lib and @types/node.
    if (!lit.text.startsWith('.') && !lit.text.startsWith('/')) return { resolvedModule: undefined };
    return ts.resolveModuleName(lit.text, containingFile, opts, host, cache, redirected, ts.getModeForUsageLocation(containingSourceFile, lit, opts));
  });
  const program = ts.createProgram({ rootNames: files, options, host });
  const checker = program.getTypeChecker();
  const isProjectFile = (sf) => fileWs.has(path.resolve(sf.fileName));

  // The store's write API, recognised by its declaring class/interface inside the store workspace.
  const storeWs = byId.get(table.writes.api.workspace);
  const writeMembers = new Map(Object.entries(table.writes.api.members ?? {}).map(([k, v]) => [k, new Set(v)]));
  const writeNames = new Set([...writeMembers.values()].flatMap((s) => [...s]));
  /** `Owner.member` when `sym` is one of the store's write methods, else undefined. */
  function storeWrite(sym) {
    if (!storeWs || !sym) return undefined;
    if (sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
    for (const d of sym.declarations ?? []) {
      const owner = d.parent;
      if (!(ts.isClassDeclaration(owner) || ts.isInterfaceDeclaration(owner)) || !owner.name) continue;
      if (!writeMembers.get(owner.name.text)?.has(sym.name)) continue;
      const f = path.resolve(d.getSourceFile().fileName);
      if (f.startsWith(storeWs.dir + path.sep)) return `${owner.name.text}.${sym.name}`;
    }
    return undefined;
  }
  /** True when `sym` is undeclared, or declared only outside the project (lib files, @types). */
  const isGlobal = (sym) => !sym || (sym.declarations ?? []).every((d) => !isProjectFile(d.getSourceFile()));

  const uses = new Map(); // ws.id → Map(package → { src: loc?, srcTypes: loc?, test: loc?, tool: loc? })
  const builtinUsers = new Set(); // ws.id of workspaces importing a Node built-in (what @types/node backs)
  let fileCount = 0;
  for (const sf of program.getSourceFiles()) {
    const ws = fileWs.get(path.resolve(sf.fileName));
    if (!ws) continue;
    fileCount++;
    const file = rel(root, sf.fileName);
    const role = roleOf(ws, sf.fileName);
    const where = (node) => `${file}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}`;
    const refs = [];
    const checkWrites = role !== 'test' && !table.writes.allowed.includes(ws.id);
    const pure = role === 'src' && table.pure.includes(ws.id);
    const reportedCalls = []; // [pos, end] of store-write calls already reported: nested Tx calls are part of them
    const visit = (node) => {
      moduleRefs(node, ws.vms, refs);
      if (checkWrites && (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node))) {
        const nameNode = ts.isPropertyAccessExpression(node) ? node.name : node.argumentExpression;
        const name = ts.isPropertyAccessExpression(node) ? node.name.text : ts.isStringLiteralLike(nameNode) ? nameNode.text : undefined;
        const what = name && writeNames.has(name) ? storeWrite(checker.getSymbolAtLocation(nameNode)) : undefined;
        if (what && !reportedCalls.some(([a, b]) => node.pos >= a && node.end <= b)) {
          problems.push(`${where(node)}: ${ws.id} writes the store (${what}), which only ${list(table.writes.allowed)} and tests may; go through controlapi or a reconciler instead`);
          reportedCalls.push([node.parent.pos, node.parent.end]);
        }
      }
      if (pure) checkPurity(node);
      ts.forEachChild(node, visit);
    };
    const checkPurity = (node) => {
      if (ts.isIdentifier(node) && Object.hasOwn(IMPURE_GLOBALS, node.text)) {
        const p = node.parent;
        const memberName = (ts.isPropertyAccessExpression(p) && p.name === node) || ((ts.isPropertyAssignment(p) || ts.isMethodDeclaration(p)
          || ts.isPropertyDeclaration(p) || ts.isPropertySignature(p) || ts.isMethodSignature(p) || ts.isGetAccessor(p) || ts.isSetAccessor(p)) && p.name === node)
          || (ts.isBindingElement(p) && p.propertyName === node);
        const viaGlobalThis = ts.isPropertyAccessExpression(p) && p.name === node && ts.isIdentifier(p.expression) && p.expression.text === 'globalThis';
        if ((!memberName || viaGlobalThis) && !ts.isPartOfTypeNode(node) && !ts.isImportSpecifier(p) && !ts.isExportSpecifier(p)) {
          // `{ Date }` names the value Date; getSymbolAtLocation would answer with the property.
          const sym = ts.isShorthandPropertyAssignment(p) ? checker.getShorthandAssignmentValueSymbol(p) : checker.getSymbolAtLocation(node);
          if ((sym || !memberName) && isGlobal(sym)) {
            problems.push(`${where(node)}: the pure ${ws.id} core uses the global ${node.text}: ${IMPURE_GLOBALS[node.text]}`);
          }
        }
      }
      if (ts.isPropertyAccessExpression(node) && IMPURE_MEMBER_NAMES.has(node.name.text)) {
        const sym = checker.getSymbolAtLocation(node.name);
        for (const d of sym?.declarations ?? []) {
          const owner = d.parent;
          const key = ts.isInterfaceDeclaration(owner) ? `${owner.name.text}.${node.name.text}` : undefined;
          if (key && Object.hasOwn(IMPURE_MEMBERS, key) && !isProjectFile(d.getSourceFile())) {
            problems.push(`${where(node)}: the pure ${ws.id} core uses ${key}: ${IMPURE_MEMBERS[key]}`);
            break;
          }
        }
      }
    };
    visit(sf);

    for (const r of refs) {
      const spec = r.spec;
      if (isBuiltin(spec)) {
        builtinUsers.add(ws.id);
        if (pure && r.runtime) problems.push(`${where(r.node)}: the pure ${ws.id} core imports ${spec}; I/O belongs in its host (replication), which passes data in through step()/ready()`);
        continue;
      }
      if (spec.startsWith('.')) {
        // A relative path into another workspace would bypass every rule above and below.
        const abs = path.resolve(path.dirname(sf.fileName), spec);
        const owner = workspaces.filter((w) => abs.startsWith(w.dir + path.sep)).sort((a, b) => b.dir.length - a.dir.length)[0];
        if (owner && owner !== ws) problems.push(`${where(r.node)}: imports ${spec}, a file of ${owner.id}, by relative path; import ${owner.pkg.name} (if ${ws.id} may) instead`);
        continue;
      }
      const pkg = packageOf(spec);
      if (!pkg || pkg === ws.pkg.name) continue;
      const target = idOfPackage(pkg);
      if (pkg.startsWith('@shoal/') && !target) {
        problems.push(`${where(r.node)}: imports ${pkg}, which is no workspace in ${DEPS_FILE}; add an entry for it, or fix the name`);
        continue;
      }
      // An import that breaks the allowlist is reported once, here: its fix (drop it, or make it
      // type-only) also decides what package.json should say, so drift checks see it as fixed.
      let runtime = r.runtime;
      let disallowed = false;
      if (target && target !== ws.id) {
        const how = r.how ? ` (${r.how})` : '';
        const testExtra = role === 'test' && table.testsMayImport.includes(target);
        if (r.runtime && !ws.runtimeSet.has(target) && !testExtra) {
          if (ws.typesSet.has(target)) {
            problems.push(`${where(r.node)}: imports ${pkg} at runtime${how}, which ${ws.id} may use for types only; ${r.how.includes('{ type') ? 'make it `import type { … }` / `export type { … } from`' : 'load nothing: `import type { … }` instead'}`);
            runtime = false;
          } else {
            problems.push(`${where(r.node)}: imports ${pkg}${how}, which ${ws.id} may not (runtime: ${list([...ws.runtimeSet])}; types only: ${list(ws.types)}); depend on it through api or an allowed workspace, or change ${DEPS_FILE} if the architecture changed`);
            disallowed = true;
          }
        } else if (!r.runtime && !ws.typesSet.has(target) && !testExtra) {
          problems.push(`${where(r.node)}: imports types from ${pkg}, which ${ws.id} may not (runtime: ${list([...ws.runtimeSet])}; types only: ${list(ws.types)}); move the type to api, or change ${DEPS_FILE} if the architecture changed`);
          disallowed = true;
        }
      }
      if (!target && ws.npm && role === 'src' && r.runtime && !ws.npm.includes(pkg)) {
        problems.push(`${where(r.node)}: imports the npm package ${pkg} at runtime, which ${ws.id} may not (npm: ${list(ws.npm)}); move that code out of ${ws.id}, or add ${pkg} to its npm list in ${DEPS_FILE}`);
      }
      const u = uses.get(ws.id) ?? new Map();
      uses.set(ws.id, u);
      const rec = u.get(pkg) ?? {};
      u.set(pkg, rec);
      if (disallowed) continue; // a use (so not "unused"), but where to declare it is moot
      const slot = role === 'src' ? (runtime ? 'src' : 'srcTypes') : role;
      rec[slot] ??= where(r.node);
    }
  }

  // 2. package.json drift.
  for (const ws of workspaces) {
    const u = uses.get(ws.id) ?? new Map();
    const deps = new Set(Object.keys(ws.pkg.dependencies ?? {}));
    const peers = new Set(Object.keys(ws.pkg.peerDependencies ?? {}));
    const devs = new Set(Object.keys(ws.pkg.devDependencies ?? {}));
    const declared = (p) => deps.has(p) || peers.has(p) || devs.has(p);
    const isShoal = (p) => !!idOfPackage(p);
    const fromRoot = (p) => !isShoal(p) && rootDeclared.has(p);
    for (const [p, rec] of u) {
      if (rec.src) {
        if (!deps.has(p) && !peers.has(p)) {
          problems.push(devs.has(p)
            ? `${rec.src}: imports ${p} at runtime, but ${ws.pkgFile} declares it in devDependencies only; move it to dependencies`
            : `${rec.src}: imports ${p} at runtime, which ${ws.pkgFile} does not declare; add "${p}" to its dependencies`);
        }
      } else if (rec.srcTypes) {
        if (!declared(p) && !fromRoot(p)) problems.push(`${rec.srcTypes}: imports types from ${p}, which ${ws.pkgFile} does not declare; add "${p}" to its devDependencies`);
      } else {
        const loc = rec.test ?? rec.tool;
        if (!declared(p) && !fromRoot(p)) problems.push(`${loc}: imports ${p}, which ${ws.pkgFile} does not declare; add "${p}" to its devDependencies`);
        else if (rec.test && !rec.tool && ws.kind !== 'test' && deps.has(p)) {
          problems.push(`${ws.pkgFile}:${jsonLine(ws.pkgText, p, 'dependencies')}: ${p} is in dependencies but only tests import it (${rec.test}); move it to devDependencies`);
        }
      }
    }
    const builtinUsed = builtinUsers.has(ws.id);
    for (const [section, names] of [['dependencies', deps], ['devDependencies', devs], ['peerDependencies', peers]]) {
      for (const p of names) {
        if (u.has(p) || Object.hasOwn(ws.ignoreUnused, p)) continue;
        if (p.startsWith('@types/') && (u.has(typesBacks(p)) || (p === '@types/node' && builtinUsed))) continue;
        problems.push(`${ws.pkgFile}:${jsonLine(ws.pkgText, p, section)}: declares ${p} in ${section}, but no file of ${ws.id} imports it; remove it, or add it to ${ws.id}.ignoreUnused in ${DEPS_FILE} with the reason`);
      }
    }
    for (const p of Object.keys(ws.ignoreUnused)) {
      if (u.has(p) || !declared(p)) {
        problems.push(`${DEPS_FILE}:${jsonLine(table.text, p, ws.id)}: ${ws.id}.ignoreUnused lists ${p}, which ${u.has(p) ? 'is imported' : `${ws.pkgFile} does not declare`}; remove the entry`);
      }
    }
  }

  // 5. The docs table.
  const docPath = path.join(root, DOC_FILE);
  const docText = fs.existsSync(docPath) ? fs.readFileSync(docPath, 'utf8') : '';
  const b = docText.indexOf(DOC_BEGIN);
  const e = docText.indexOf(DOC_END);
  let wroteDocs = false;
  if (b < 0 || e < b) {
    problems.push(`${DOC_FILE}:1: has no ${DOC_BEGIN} … ${DOC_END} block for the "Who may import whom" table; add the two markers, then run node scripts/check-deps.mjs --write-docs`);
  } else {
    const want = `${DOC_BEGIN}\n${renderTable(table)}${DOC_END}`;
    if (docText.slice(b, e + DOC_END.length) !== want) {
      if (writeDocs) {
        fs.writeFileSync(docPath, docText.slice(0, b) + want + docText.slice(e + DOC_END.length));
        wroteDocs = true;
      } else {
        problems.push(`${DOC_FILE}:${lineAt(docText, b)}: the "Who may import whom" table differs from ${DEPS_FILE}; run node scripts/check-deps.mjs --write-docs`);
      }
    }
  }

  const ms = Math.round(performance.now() - started);
  const summary = `check-deps: ${workspaces.length} workspaces, ${fileCount} files: imports within their allowlists, package.json files in sync, `
    + `store written only by ${list(table.writes.allowed)} and tests, ${list(table.pure)} pure, docs table current (${ms} ms)`;
  return { problems: problems.sort(byLocation), summary, wroteDocs, ms };
}

/** The markdown between the doc markers; consecutive workspaces with the same rules share a row. */
export function renderTable(table) {
  const names = (xs) => xs.map((id) => (id === '*' ? 'every lib workspace' : id)).join(', ') || '—';
  const rows = [];
  for (const e of table.entries.values()) {
    const cells = [names(e.runtime), names(e.types), e.npm ? (e.npm.length ? `only ${e.npm.join(', ')}` : 'none') : 'any'];
    const label = e.note ? `${e.id} (${e.note})` : e.id;
    const last = rows.at(-1);
    if (last && !e.note && !last.noted && last.cells.join('|') === cells.join('|')) last.labels.push(label);
    else rows.push({ labels: [label], cells, noted: !!e.note });
  }
  const members = Object.entries(table.writes.api.members ?? {}).flatMap(([k, v]) => v.map((m) => `\`${k}.${m}\``));
  const usesStar = [...table.entries.values()].some((e) => [...e.runtime, ...e.types].includes('*'));
  const notes = [
    table.testsMayImport.length && `Every workspace's own \`test/\` may also import ${names(table.testsMayImport)}.`,
    members.length && `Only ${names(table.writes.allowed)} (and tests) write the store: ${members.join(', ')}.`,
    table.pure.length && `Pure, in \`src/\`: no built-in module, no global timer, clock or randomness, no \`process\` or \`console\`: ${names(table.pure)}.`,
    usesStar && '"Every lib workspace" leaves out the `cmd` and `test` kinds.',
    'A workspace without a folder yet is a planned one.',
    `Generated from \`${DEPS_FILE}\` by \`node scripts/check-deps.mjs --write-docs\`: edit that file, not this table.`,
  ].filter(Boolean);
  const lines = [
    '| workspace | may import at runtime | for types only | npm packages at runtime |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.labels.join(', ')} | ${r.cells.join(' | ')} |`),
    '',
    ...notes.map((n) => `- ${n}`),
    '',
  ];
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  let root = SCRIPT_ROOT;
  let writeDocs = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--write-docs') writeDocs = true;
    else if (args[i] === '--root' && args[i + 1]) root = args[++i];
    else {
      console.error(`check-deps: unknown argument ${args[i]}; usage: node scripts/check-deps.mjs [--root DIR] [--write-docs]`);
      process.exit(2);
    }
  }
  let result;
  try {
    result = checkDeps({ root, writeDocs });
  } catch (e) {
    // A tree the checker cannot read (no package.json, a broken data file): not a violation list.
    console.error(`check-deps: ${e.message}`);
    process.exit(2);
  }
  const { problems, summary, wroteDocs } = result;
  if (wroteDocs) console.log(`check-deps: rewrote the table in ${DOC_FILE}`);
  if (problems.length) {
    for (const p of problems) console.log(p);
    console.log(`check-deps: ${problems.length} violation${problems.length === 1 ? '' : 's'}`);
    process.exit(1);
  }
  console.log(summary);
}

/** Orders `path:line: …` lines by path, then line number. */
function byLocation(a, b) {
  const [, pa, la] = /^([^:]*):(\d+)/.exec(a) ?? [, a, 0];
  const [, pb, lb] = /^([^:]*):(\d+)/.exec(b) ?? [, b, 0];
  return pa < pb ? -1 : pa > pb ? 1 : Number(la) - Number(lb);
}
