// Docs that run: every README code block marked with an example file must equal that file,
// and each example is executed here, so the README cannot drift from the code.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('shows each marked example exactly as the file that the tests run', () => {
    const marked = [...readme.matchAll(/<!-- example: (\S+) -->\s*```ts\n([\s\S]*?)```/g)];
    expect(marked.length).toBeGreaterThan(0);
    for (const [, path, code] of marked) {
      expect(code, path).toBe(readFileSync(new URL(`../${path}`, import.meta.url), 'utf8'));
    }
  });

  it('keeps both quick-start commands', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
  });
});
