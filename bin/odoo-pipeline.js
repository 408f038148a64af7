#!/usr/bin/env node
// The operator CLI (sources in bin-src/, compiled by `npm run build` to dist/bin-src/). See docs/CLI.md.
'use strict';
const path = require('node:path');
let main;
try {
  main = require(path.join(__dirname, '..', 'dist', 'bin-src', 'odoo-pipeline.js'));
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND') {
    process.stderr.write(
      'odoo-pipeline: not built yet — run `npm run build` in ' + path.join(__dirname, '..') + '\n',
    );
    process.exit(2);
  }
  throw err;
}
main.cli();
