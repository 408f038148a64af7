#!/usr/bin/env node
/* Coverage gate: lines and statements >= 80 % globally (jest's coverageThreshold enforces that too)
 * and never below the recorded baseline (coverage-baseline.json). A run that raises coverage outside CI
 * raises the baseline file (commit it); a run that lowers it fails and says by how much. */
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const summaryFile = path.join(root, 'coverage', 'coverage-summary.json');
const baselineFile = path.join(root, 'coverage-baseline.json');
const MIN = 80;
const KEYS = ['lines', 'statements'];

if (!fs.existsSync(summaryFile)) {
  console.error(
    `coverage gate: ${path.relative(root, summaryFile)} is missing — run jest with --coverage first`,
  );
  process.exit(1);
}
const total = JSON.parse(fs.readFileSync(summaryFile, 'utf8')).total;
const baseline = fs.existsSync(baselineFile) ? JSON.parse(fs.readFileSync(baselineFile, 'utf8')) : {};
const problems = [];
const raised = {};
for (const k of KEYS) {
  const pct = Math.floor(total[k].pct * 100) / 100;
  const base = Number(baseline[k] ?? 0);
  if (pct < MIN) problems.push(`${k} coverage ${pct.toFixed(2)} % is below the minimum ${MIN} %`);
  if (pct + 1e-9 < base)
    problems.push(
      `${k} coverage ${pct.toFixed(2)} % is ${(base - pct).toFixed(2)} points below the baseline ${base.toFixed(2)} %`,
    );
  raised[k] = Math.max(pct, base);
  console.log(`coverage gate: ${k} ${pct.toFixed(2)} % (baseline ${base.toFixed(2)} %, minimum ${MIN} %)`);
}
if (problems.length) {
  for (const p of problems) console.error(`coverage gate FAILED: ${p}`);
  process.exit(1);
}
const changed = KEYS.some((k) => raised[k] > Number(baseline[k] ?? 0) + 1e-9);
if (changed && !process.env.CI) {
  fs.writeFileSync(baselineFile, JSON.stringify(raised, null, 2) + '\n');
  console.log(
    `coverage gate: baseline raised to ${KEYS.map((k) => `${k} ${raised[k]} %`).join(', ')} — commit coverage-baseline.json`,
  );
}
console.log('coverage gate: passed');
