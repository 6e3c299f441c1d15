// The long fuzz run (`npm run fuzz`, apps/service/test/fuzz/run.ts) at a tiny size: it starts
// its own service, sends at least the inputs asked for across every category, prints its seed
// and a summary, and exits 0 (pass), 1 (a check failed) or 2 (bad options).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fuzzCategories } from './fuzz/inputs.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const script = 'apps/service/test/fuzz/run.ts';

function fuzz(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=retrysafe-source', '--import', './test/helpers/register-ts.mjs', script, ...args],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run fuzz (the long hostile-input run)', () => {
  it('sends at least --inputs generated inputs across every category, prints its seed and a summary', async () => {
    const run = await fuzz(['--inputs', '300', '--seed', '7', '--max-seconds', '120']);
    expect(run.stdout).toMatch(/^fuzz: seed 7 /);
    const inputs = Number(/ (\d+) inputs \(requested 300\)/.exec(run.stdout)?.[1]);
    expect(inputs).toBeGreaterThanOrEqual(300);
    for (const category of fuzzCategories) expect(run.stdout).toContain(`    ${category.name}: `);
    expect(run.stdout).toMatch(/answers by status \(0: closed without an answer\): .*200: \d+/);
    expect(run.stdout).toMatch(/ledger: \d+ users and \d+ orders created by 2xx answers/);
    expect(run.stderr).toMatch(/fuzz: 100% — \d+\/300 inputs/);
    // A clean service passes: exit 0 and no failing input (the status-line bug it once found
    // is fixed; see src/adapters/fastify-refusal.test.ts).
    expect(run.stdout).toContain('fuzz summary: PASS');
    expect(run.stdout).toContain('failures: 0 failing input(s)');
    expect(run.code).toBe(0);
  });

  it.each([
    [[]],
    [['--inputs', '1e3']],
    [['--inputs', '10', '--store', 'mysql', '--max-seconds', '-1']],
    [['--inputs', '10', '--verbose']],
  ])('exits 2 with the usage for bad options: %j', async (args) => {
    const run = await fuzz(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('usage: npm run fuzz -- --inputs N');
    expect(run.stdout).toBe('');
  });
});
