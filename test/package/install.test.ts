// The library as a user gets it: `npm pack` once, then the tarball is installed into fresh temporary
// projects (ESM, CommonJS, client-only) and every subpath of the packed `exports` map is loaded
// there with plain Node, outside this repo and without the `retrysafe-source` condition.
import { type ExecFileException, execFile } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const tsc = join(repoRoot, 'node_modules', '.bin', 'tsc');
const npmInstall = ['install', '--prefer-offline', '--no-audit', '--no-fund'];

/** Frameworks, drivers and their heavy helpers: none may reach a client-only install. */
const serverOnly = [
  'fastify',
  'express',
  'hono',
  'pg',
  'ioredis',
  'redis',
  'better-sqlite3',
  'prom-client',
  'ajv',
];
const serverOnlyScopes = ['@fastify/', '@hono/', '@redis/'];

interface PackedFile {
  path: string;
}
interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: PackedFile[];
}
type ExportTarget = string | Record<string, string>;
interface Manifest {
  name: string;
  main?: string;
  types?: string;
  exports: Record<string, ExportTarget>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}
interface Loaded {
  ok: boolean;
  resolved?: string;
  exports?: string[];
  error?: string;
}

let work: string;
let packed: PackResult;
let manifest: Manifest;
let esmProject: string;
let cjsProject: string;
let clientProject: string;

/** Runs a command with npm's own script variables removed, so `npm test` does not leak into it. */
function run(command: string, args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (/^npm_/i.test(name)) delete env[name];
  delete env.NODE_OPTIONS;
  delete env.INIT_CWD;
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) resolve({ stdout, stderr });
      else {
        const code = (error as ExecFileException).code;
        reject(new Error(`${command} ${args.join(' ')} (in ${cwd}) exited ${code}:\n${stdout}\n${stderr}`));
      }
    });
  });
}

/** `retrysafe` + `./stores/sqlite` → `retrysafe/stores/sqlite`. */
function specifierOf(subpath: string): string {
  return subpath === '.' ? manifest.name : `${manifest.name}${subpath.slice(1)}`;
}

async function newProject(name: string, type: 'module' | undefined): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir);
  const pkg = { name, version: '1.0.0', private: true, ...(type === undefined ? {} : { type }) };
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  await writeFile(join(dir, 'load.mjs'), loadEsm);
  await writeFile(join(dir, 'load.cjs'), loadCjs);
  await run('npm', [...npmInstall, join(work, packed.filename)], dir);
  return dir;
}

// Server projects: the optional peers (fastify, better-sqlite3, pg, …) are not downloaded or
// compiled again (better-sqlite3 alone compiles for about 80 s). After the tarball is installed,
// each peer the packed package.json declares is symlinked from this repo's node_modules into
// the project's node_modules, where Node resolves it like an installed copy.
async function linkPeers(project: string): Promise<void> {
  for (const name of Object.keys(manifest.peerDependencies ?? {})) {
    const installed = join(repoRoot, 'node_modules', name);
    if (!existsSync(join(installed, 'package.json')))
      throw new Error(`peer ${name} is not installed in ${repoRoot}node_modules; run npm install there`);
    const link = join(project, 'node_modules', name);
    await mkdir(dirname(link), { recursive: true });
    await symlink(installed, link, 'dir');
  }
}

// Each loader imports (or requires) every specifier given and prints, per specifier, where it
// resolved and the names it exports, or the error; one failing subpath does not hide the others.
const loadEsm = `const out = {};
for (const spec of JSON.parse(process.argv[2])) {
  try {
    const json = spec.endsWith('.json');
    const ns = json ? await import(spec, { with: { type: 'json' } }) : await import(spec);
    out[spec] = { ok: true, resolved: import.meta.resolve(spec), exports: Object.keys(json ? ns.default : ns) };
  } catch (error) {
    out[spec] = { ok: false, error: String(error?.code ?? '') + ' ' + String(error?.message ?? error) };
  }
}
console.log(JSON.stringify(out));
`;
const loadCjs = `const { pathToFileURL } = require('node:url');
const out = {};
for (const spec of JSON.parse(process.argv[2])) {
  try {
    const mod = require(spec);
    out[spec] = { ok: true, resolved: pathToFileURL(require.resolve(spec)).href, exports: Object.keys(mod) };
  } catch (error) {
    out[spec] = { ok: false, error: String(error?.code ?? '') + ' ' + String(error?.message ?? error) };
  }
}
console.log(JSON.stringify(out));
`;

async function load(project: string, loader: 'load.mjs' | 'load.cjs'): Promise<Record<string, Loaded>> {
  const specs = Object.keys(manifest.exports).map(specifierOf);
  const { stdout } = await run(process.execPath, [loader, JSON.stringify(specs)], project);
  return JSON.parse(stdout) as Record<string, Loaded>;
}

function expectEverySubpathLoads(project: string, loaded: Record<string, Loaded>): void {
  const installedAt = new URL(`file://${join(project, 'node_modules', manifest.name)}/`).href;
  // The packed copy in this project, not the repo's sources through some parent node_modules.
  const fromPackedCopy = new RegExp(`^${escapeRegExp(installedAt)}(dist/|package\\.json$)`);
  const failures: string[] = [];
  for (const subpath of Object.keys(manifest.exports)) {
    const spec = specifierOf(subpath);
    const result = loaded[spec];
    if (result?.ok !== true) failures.push(`${spec}: ${result?.error ?? 'not loaded'}`);
    else if (!fromPackedCopy.test(result.resolved ?? ''))
      failures.push(`${spec}: resolved to ${result.resolved}`);
    else if ((result.exports ?? []).length === 0) failures.push(`${spec}: exports nothing`);
  }
  // All at once, so one broken subpath does not hide the next.
  expect(failures).toEqual([]);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

interface Tree {
  names: string[];
  bytes: number;
  native: string[];
}

/** Every package physically installed under `dir/node_modules`, nested ones too, with their bytes. */
function walkInstalled(dir: string): Tree {
  const tree: Tree = { names: [], bytes: 0, native: [] };
  const visitFiles = (path: string): void => {
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) return;
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path)) if (entry !== 'node_modules') visitFiles(join(path, entry));
      return;
    }
    tree.bytes += stat.size;
    if (path.endsWith('.node') || path.endsWith(`${sep}binding.gyp`)) tree.native.push(path);
  };
  const visitNodeModules = (nodeModules: string): void => {
    if (!existsSync(nodeModules)) return;
    for (const entry of readdirSync(nodeModules)) {
      if (entry.startsWith('.')) {
        visitFiles(join(nodeModules, entry)); // .bin, .package-lock.json
        continue;
      }
      const names = entry.startsWith('@')
        ? readdirSync(join(nodeModules, entry)).map((scoped) => `${entry}/${scoped}`)
        : [entry];
      for (const name of names) {
        tree.names.push(name);
        visitFiles(join(nodeModules, name));
        visitNodeModules(join(nodeModules, name, 'node_modules'));
      }
    }
  };
  visitNodeModules(join(dir, 'node_modules'));
  return tree;
}

/** Where Node would find `name` from `fromDir`: the nearest node_modules on the way up. */
function resolvePackageDir(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dirname(dir) === dir) return undefined;
  }
}

/** Bytes of a package's own files (its nested node_modules are packages of their own). */
function packageBytes(dir: string): number {
  let bytes = 0;
  const visit = (path: string): void => {
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) return;
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path)) if (entry !== 'node_modules') visit(join(path, entry));
    } else bytes += stat.size;
  };
  visit(dir);
  return bytes;
}

/**
 * The packages a server install would hold: the closure of the given roots over their
 * dependencies, optional dependencies and required peers, resolved the way Node resolves them
 * (the symlinked peers lead into the repo's node_modules).
 */
function dependencyClosure(project: string, roots: string[]): { packages: number; bytes: number } {
  const seen = new Set<string>();
  const queue = roots.map((name) => resolvePackageDir(name, project)).filter((d) => d !== undefined);
  while (queue.length > 0) {
    const dir = queue.pop()!;
    if (seen.has(dir)) continue;
    seen.add(dir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
    const optionalPeers = pkg.peerDependenciesMeta ?? {};
    const names = [
      ...Object.keys(pkg.dependencies ?? {}),
      ...Object.keys(pkg.optionalDependencies ?? {}),
      ...Object.keys(pkg.peerDependencies ?? {}).filter((name) => optionalPeers[name]?.optional !== true),
    ];
    for (const name of names) {
      const found = resolvePackageDir(name, dir);
      if (found !== undefined) queue.push(found);
    }
  }
  let bytes = 0;
  for (const dir of seen) bytes += packageBytes(dir);
  return { packages: seen.size, bytes };
}

const megabytes = (bytes: number): string => (bytes / 1_000_000).toFixed(1);

beforeAll(async () => {
  work = await realpath(await mkdtemp(join(tmpdir(), 'retrysafe-install-')));
  // Packs the dist/ that `npm test` built just before (pretest). `--ignore-scripts`: `prepare`
  // would delete and rebuild dist/ while other test files' service processes load it; a
  // publish or a git install runs it (a clean build), which this run's pretest build matches.
  const { stdout } = await run(
    'npm',
    ['pack', '--json', '--ignore-scripts', '--pack-destination', work],
    repoRoot,
  );
  const results = JSON.parse(stdout.slice(stdout.indexOf('['))) as PackResult[];
  expect(results).toHaveLength(1);
  packed = results[0]!;
  const tarball = join(work, packed.filename);
  manifest = JSON.parse(
    (await run('tar', ['-xzOf', tarball, 'package/package.json'], work)).stdout,
  ) as Manifest;
  [esmProject, cjsProject, clientProject] = await Promise.all([
    newProject('esm-server', 'module'),
    newProject('cjs-server', undefined),
    newProject('client-only', undefined),
  ]);
  await linkPeers(esmProject);
  await linkPeers(cjsProject);
}, 300_000);

afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds only the built library: dist/, package.json, README and LICENSE', () => {
    const paths = packed.files.map((file) => file.path);
    expect(paths).toContain('package.json');
    expect(paths.filter((path) => path.startsWith('dist/')).length).toBeGreaterThan(0);
    for (const path of paths) {
      expect(path).not.toMatch(/test|spec|chaos|spawn|test-hooks|apps\//i);
      expect(path).toMatch(/^(dist\/.+|package\.json|README(\.md)?|LICENSE(\.md|\.txt)?)$/i);
    }
    console.log(
      `tarball ${packed.filename}: ${paths.length} files, ${megabytes(packed.size)} MB packed, ` +
        `${megabytes(packed.unpackedSize)} MB unpacked`,
    );
  });

  it('ships the types and the code of every subpath in its exports map', () => {
    const paths = new Set(packed.files.map((file) => file.path));
    const shipped = (target: string) => paths.has(target.replace(/^\.\//, ''));
    const subpaths = Object.keys(manifest.exports);
    expect(subpaths).toContain('.');
    expect(subpaths).toContain('./client');
    for (const [subpath, target] of Object.entries(manifest.exports)) {
      // A pattern (`./stores/*`) would need expanding before this test could load it.
      expect(subpath, 'exports patterns are not covered by this test').not.toContain('*');
      if (typeof target === 'string') {
        expect(shipped(target), `${subpath} → ${target}`).toBe(true);
        continue;
      }
      const conditions = Object.keys(target);
      expect(conditions, subpath).toContain('types');
      expect(conditions, subpath).toContain('default');
      // Conditions match in order: `types` after `default` would never be seen by TypeScript.
      expect(conditions.indexOf('types'), subpath).toBeLessThan(conditions.indexOf('default'));
      expect(target.types, subpath).toMatch(/\.d\.ts$/);
      expect(shipped(target.types!), `${subpath} types ${target.types}`).toBe(true);
      expect(shipped(target.default!), `${subpath} default ${target.default}`).toBe(true);
    }
    for (const field of [manifest.main, manifest.types])
      if (field !== undefined) expect(shipped(field), field).toBe(true);
  });
});

describe('a fresh ESM project (type: module) with the peers', () => {
  it('imports every subpath in the exports map', async () => {
    expectEverySubpathLoads(esmProject, await load(esmProject, 'load.mjs'));
  });

  it('typechecks a TypeScript consumer of retrysafe/client and retrysafe (moduleResolution nodenext)', async () => {
    const tsconfig = {
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        lib: ['es2023', 'dom'],
        types: [],
        strict: true,
        exactOptionalPropertyTypes: true,
        skipLibCheck: false,
        noEmit: true,
      },
      files: ['consumer.ts'],
    };
    const consumer = `import type { ProblemError } from '${manifest.name}';
import { createClient, type Result } from '${manifest.name}/client';

const client = createClient({ baseUrl: 'http://127.0.0.1:1' });
export const created: Promise<Result<{ id: string }>> = client.post<{ id: string }>('/orders', { cents: 1 });
export const statusOf = (error: ProblemError): number => error.status;
// The declarations are really read: a client without its baseUrl must not typecheck.
// @ts-expect-error baseUrl is required
createClient({});
`;
    await writeFile(join(esmProject, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    await writeFile(join(esmProject, 'consumer.ts'), consumer);
    await expect(run(tsc, ['-p', 'tsconfig.json'], esmProject)).resolves.toBeDefined();
  });
});

describe('a fresh CommonJS project (package.json without type) with the peers', () => {
  it('requires every subpath in the exports map', async () => {
    const required = await load(cjsProject, 'load.cjs');
    expectEverySubpathLoads(cjsProject, required);
    // require(esm) hands over the same module namespace that import() does.
    const imported = await load(cjsProject, 'load.mjs');
    for (const subpath of Object.keys(manifest.exports)) {
      const spec = specifierOf(subpath);
      if (spec.endsWith('.json')) continue;
      const names = (loaded: Loaded | undefined) => (loaded?.exports ?? []).filter((n) => n !== '__esModule');
      expect(names(required[spec]).sort(), spec).toEqual(names(imported[spec]).sort());
    }
  });

  it('reports the size of a server install (the library and all its peers)', () => {
    const server = dependencyClosure(cjsProject, [
      manifest.name,
      ...Object.keys(manifest.peerDependencies ?? {}),
    ]);
    expect(server.packages).toBeGreaterThan(Object.keys(manifest.peerDependencies ?? {}).length);
    console.log(`server install: ${server.packages} packages, ${megabytes(server.bytes)} MB`);
  });
});

describe('a client-only install (the tarball alone, no peers)', () => {
  it('pulls in no framework, no driver and nothing native', () => {
    const tree = walkInstalled(clientProject);
    expect(tree.names).toContain(manifest.name);
    const forbidden = new Set([...serverOnly, ...Object.keys(manifest.peerDependencies ?? {})]);
    const heavy = tree.names.filter(
      (name) => forbidden.has(name) || serverOnlyScopes.some((scope) => name.startsWith(scope)),
    );
    expect(heavy).toEqual([]);
    expect(tree.native).toEqual([]);
    console.log(
      `client-only install: ${tree.names.length} packages (${[...tree.names].sort().join(', ')}), ` +
        `${megabytes(tree.bytes)} MB`,
    );
  });

  it('loads retrysafe/client with import() and require(), and a POST goes out with an Idempotency-Key', async () => {
    const script = (load: string) => `${load}
const seen = [];
const client = createClient({
  baseUrl: 'http://api.test',
  fetch: async (input, init) => {
    seen.push(new Request(input, init).headers.get('idempotency-key'));
    return new Response(JSON.stringify({ id: 'o1' }), { status: 201, headers: { 'content-type': 'application/json' } });
  },
});
const result = await client.post('/orders', { cents: 1 });
console.log(JSON.stringify({ post: typeof client.post, ok: result.ok, status: result.status, data: result.data, seen }));
`;
    await writeFile(
      join(clientProject, 'client.mjs'),
      script(`import { createClient } from '${manifest.name}/client';`),
    );
    // A .js file in a project without "type" is CommonJS: wrap the awaits in an async function.
    const cjs = script(`const { createClient } = require('${manifest.name}/client');\n(async () => {`);
    await writeFile(
      join(clientProject, 'client.js'),
      `${cjs}})().catch((e) => { console.error(e); process.exit(1); });\n`,
    );
    for (const file of ['client.mjs', 'client.js']) {
      const { stdout } = await run(process.execPath, [file], clientProject);
      const outcome = JSON.parse(stdout) as {
        post: string;
        ok: boolean;
        status: number;
        data: unknown;
        seen: string[];
      };
      expect(outcome, file).toMatchObject({ post: 'function', ok: true, status: 201, data: { id: 'o1' } });
      expect(outcome.seen, file).toHaveLength(1);
      expect(outcome.seen[0], file).toMatch(/\S{16,}/);
    }
  });
});
