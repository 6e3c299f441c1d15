// The shipped client must run in browsers: no `node:` imports, no bare package imports a browser
// cannot resolve, and no Node globals in dist/client/*.js. Needs `npm run build` (npm test runs it).
import { readdir, readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';

const distClient = new URL('../../dist/client/', import.meta.url);

it('imports nothing from node: and uses no Node globals in the built client', async () => {
  const files = (await readdir(distClient)).filter((name) => name.endsWith('.js'));
  expect(files).toContain('index.js');
  for (const name of files) {
    const source = await readFile(new URL(name, distClient), 'utf8');
    const specifiers = [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)].map(
      (m) => m[1],
    );
    for (const specifier of specifiers)
      expect(specifier, `${name} imports ${specifier}`).toMatch(/^\.\/[\w-]+\.js$/);
    expect(source, `${name} mentions node:`).not.toMatch(/['"]node:/);
    expect(source, `${name} uses require`).not.toMatch(/\brequire\s*\(/);
    expect(source, `${name} uses a Node global`).not.toMatch(
      /\b(Buffer|process|__dirname|__filename|setImmediate)\b/,
    );
  }
});
