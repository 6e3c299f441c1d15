#!/usr/bin/env node
// Entry point of the `retrysafe` command; the code lives in dist/cli (run `npm run build` first).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`retrysafe: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
