/**
 * infrastructure/scripts/preflight.sh, run before the first deployment (azd preprovision hook and the
 * deploy workflow): refuses a deployment without GitHub credentials, and registers the resource
 * providers a fresh subscription lacks (Microsoft.App for Flex Consumption's VNet integration), and
 * refuses a region without Flex Consumption.
 * ARM is SaaS: `az` is a stand-in on PATH that answers `az provider show/register` and
 * `az functionapp list-flexconsumption-locations` like the real CLI (tsv output) and records every call.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SCRIPT = path.resolve(__dirname, '..', '..', 'infrastructure', 'scripts', 'preflight.sh');
let dir = '';

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'preflight-'));
  // registration state per namespace lives in files: register flips it, as ARM does
  writeFileSync(
    path.join(dir, 'az'),
    `#!/bin/sh
echo "$*" >> "${dir}/calls"
case "$1 $2" in
  "account show") [ -f "${dir}/logged-out" ] && exit 1; exit 0 ;;
  "provider show") ns="$4"; if [ -f "${dir}/registered-$ns" ]; then echo Registered; else echo NotRegistered; fi ;;
  "provider register") ns="$4"; touch "${dir}/registered-$ns" ;;
  "functionapp list-flexconsumption-locations") cat "${dir}/flex-regions" ;;
  *) echo "unexpected az $*" >&2; exit 2 ;;
esac
`,
  );
  chmodSync(path.join(dir, 'az'), 0o755);
  // the CLI's answer (`--query '[].name' --output tsv`): one region name a line
  writeFileSync(path.join(dir, 'flex-regions'), 'eastus\nnortheurope\nwesteurope\nswedencentral\n');
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function run(env: Record<string, string>) {
  const r = spawnSync('bash', [SCRIPT], {
    env: { PATH: `${dir}:${process.env.PATH}`, AZURE_LOCATION: 'westeurope', ...env },
    encoding: 'utf8',
  });
  let calls: string[] = [];
  try {
    calls = readFileSync(path.join(dir, 'calls'), 'utf8').trim().split('\n');
  } catch {
    /* no call */
  }
  return { code: r.status, out: r.stdout, err: r.stderr, calls };
}

const ALL = [
  'Microsoft.App',
  'Microsoft.Web',
  'Microsoft.Storage',
  'Microsoft.ServiceBus',
  'Microsoft.KeyVault',
  'Microsoft.Compute',
  'Microsoft.Network',
  'Microsoft.ManagedIdentity',
  'Microsoft.OperationalInsights',
  'Microsoft.Insights',
];

describe('preflight before the first deployment', () => {
  it('refuses a deployment without GitHub credentials, before touching Azure', () => {
    const r = run({});
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/no GitHub credentials: set ODOO_GITHUB_TOKEN, or ODOO_GITHUB_APP_ID/);
    expect(r.calls).toEqual([]);
  });

  it('refuses an incomplete GitHub App', () => {
    const r = run({ ODOO_GITHUB_APP_ID: '12', ODOO_GITHUB_APP_INSTALLATION_ID: '34' });
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/incomplete GitHub App/);
  });

  it('on a fresh subscription registers Microsoft.App and every other provider the template uses', () => {
    for (const ns of ALL.filter((n) => n !== 'Microsoft.App'))
      writeFileSync(path.join(dir, `registered-${ns}`), '');
    const r = run({ ODOO_GITHUB_TOKEN: 'ghs_example' });
    expect(r.code).toBe(0);
    expect(r.calls.filter((c) => c.startsWith('provider register'))).toEqual([
      'provider register --namespace Microsoft.App --wait --output none',
    ]);
    for (const ns of ALL)
      expect(r.calls).toContain(`provider show --namespace ${ns} --query registrationState --output tsv`);
    // a second run has nothing to do
    const again = run({
      ODOO_GITHUB_APP_ID: '12',
      ODOO_GITHUB_APP_INSTALLATION_ID: '34',
      ODOO_GITHUB_APP_PRIVATE_KEY: 'pem',
    });
    expect(again.code).toBe(0);
    expect(again.calls.filter((c) => c.startsWith('provider register'))).toHaveLength(1);
  });

  it('without a logged-in az it fails and names what to do', () => {
    writeFileSync(path.join(dir, 'logged-out'), '');
    const r = run({ ODOO_GITHUB_TOKEN: 'ghs_example' });
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/az is not logged in .*Microsoft\.App/);
  });

  it('refuses a region without Flex Consumption, naming the regions that have it, after asking Azure', () => {
    for (const ns of ALL) writeFileSync(path.join(dir, `registered-${ns}`), '');
    // a region the CLI does not list
    const r = run({ ODOO_GITHUB_TOKEN: 'ghs_example', AZURE_LOCATION: 'ukwest' });
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(
      /Flex Consumption is not offered in ukwest; choose one of: eastus northeurope westeurope swedencentral/,
    );
    expect(r.calls).toContain('functionapp list-flexconsumption-locations --query [].name --output tsv');
    // the display form of a region counts as the same region
    const ok = run({ ODOO_GITHUB_TOKEN: 'ghs_example', AZURE_LOCATION: 'West Europe' });
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/Flex Consumption is offered in West Europe/);
  });

  it('refuses to go on without a region', () => {
    for (const ns of ALL) writeFileSync(path.join(dir, `registered-${ns}`), '');
    const r = run({ ODOO_GITHUB_TOKEN: 'ghs_example', AZURE_LOCATION: '' });
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/AZURE_LOCATION is not set/);
  });
});
