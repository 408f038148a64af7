import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Bench, machine } from './harness';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const names = args.filter((a) => !a.startsWith('--'));
  const dir = __dirname;
  const available = readdirSync(dir)
    .filter((f) => f.endsWith('.js') && !['run.js', 'harness.js'].includes(f))
    .map((f) => f.replace(/\.js$/, ''));
  const chosen = names.length ? names : available;
  const unknown = chosen.filter((n) => !available.includes(n));
  if (unknown.length) {
    console.error(
      `Unknown benchmark(s): ${unknown.join(', ')}. Available: ${available.join(', ') || '(none)'}`,
    );
    process.exit(2);
  }
  const outDir = path.resolve(dir, '..', '..', 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  let failed = 0;
  for (const name of chosen) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- benchmarks are loaded by name
    const mod = require(path.join(dir, `${name}.js`)) as { default: Bench };
    const bench = mod.default;
    console.log(`\n== ${bench.name}: ${bench.description}`);
    try {
      const result = await bench.run({ quick, log: (m) => console.log(`   ${m}`) });
      const record = { ...result, machine: machine(), date: new Date().toISOString() };
      const file = path.join(outDir, `${name}.json`);
      writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
      console.log(
        `   value ${result.value} ${result.unit}, baseline ${result.baseline} ${result.unit}, ratio ${result.ratio.toFixed(3)} -> ${path.relative(process.cwd(), file)}`,
      );
      for (const [k, t] of Object.entries(result.targets ?? {}))
        console.log(`   target ${k}: ${t.target}, actual ${t.actual} ${t.met ? 'MET' : 'NOT MET'}`);
    } catch (err) {
      failed++;
      console.error(`   FAILED: ${(err as Error).stack ?? err}`);
    }
  }
  process.exit(failed ? 1 : 0);
}

void main();
