// `node --import ./test/helpers/register-ts.mjs`: lets a child process of a test run the
// TypeScript sources directly (transpiled by the typescript package, no type check).
import { register } from 'node:module';

register('./ts-loader.mjs', import.meta.url);
