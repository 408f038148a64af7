/**
 * Keeps local.settings.example.json and README's configuration table in step with shared/config.ts.
 * `node dist/local/settings-doc.js --write` rewrites both; a test fails when either drifts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SETTINGS, SettingSpec } from '../shared/config';

export const README_BEGIN =
  '<!-- settings:begin (generated from shared/config.ts by `node dist/local/settings-doc.js --write`) -->';
export const README_END = '<!-- settings:end -->';

const entries = () => Object.entries(SETTINGS) as Array<[string, SettingSpec]>;

export function exampleSettings(): Record<string, unknown> {
  const values: Record<string, string> = {
    FUNCTIONS_WORKER_RUNTIME: 'node',
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  };
  for (const [key, spec] of entries()) {
    if (key === 'PIPELINE_RUNTIME') values[key] = 'local';
    else values[key] = spec.secret ? '' : (spec.default ?? '');
  }
  return { IsEncrypted: false, Values: values };
}

export function settingsTable(): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const rows = entries().map(([key, spec]) => {
    const def =
      spec.default !== undefined
        ? `\`${esc(spec.default)}\``
        : spec.requiredInAzure
          ? 'required in Azure'
          : '—';
    const flags = [
      spec.secret ? 'secret (Key Vault)' : '',
      spec.disables ? `unset: disables ${esc(spec.disables)}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    return `| \`${key}\` | ${spec.area} | ${esc(spec.description)} | ${esc(spec.form)} | ${def} | ${flags} |`;
  });
  return ['| setting | area | meaning | form | default | notes |', '|---|---|---|---|---|---|', ...rows].join(
    '\n',
  );
}

export function renderReadme(readme: string): string {
  const start = readme.indexOf(README_BEGIN);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) throw new Error('README.md has no settings markers');
  return readme.slice(0, start + README_BEGIN.length) + '\n' + settingsTable() + '\n' + readme.slice(end);
}

if (require.main === module) {
  const root = path.resolve(__dirname, '..', '..');
  if (process.argv.includes('--write')) {
    writeFileSync(
      path.join(root, 'local.settings.example.json'),
      JSON.stringify(exampleSettings(), null, 2) + '\n',
    );
    const readmeFile = path.join(root, 'README.md');
    writeFileSync(readmeFile, renderReadme(readFileSync(readmeFile, 'utf8')));
    console.log('wrote local.settings.example.json and README.md settings table');
  } else {
    console.log(settingsTable());
  }
}
