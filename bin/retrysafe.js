#!/usr/bin/env node
// `node bin/retrysafe.js <command>` from the repository root: the CLI lives in apps/service.
import '../apps/service/bin/retrysafe.js';
