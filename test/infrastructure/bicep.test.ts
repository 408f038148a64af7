/**
 * The Bicep templates, checked with the real Bicep CLI (scripts/install-bicep.sh):
 *  - every .bicep and .bicepparam compiles and passes the strict linter with zero diagnostics;
 *  - drift: every setting shared/config.ts needs in Azure is set on the function app, secrets only as
 *    Key Vault references, nothing unknown or forbidden on Flex Consumption;
 *  - a role assignment for every resource the code talks to, nothing broader;
 *  - the VMs are closed to the internet;
 *  - the workbook queries only events and metrics that shared/telemetry.ts sends.
 * Without the CLI these tests fail (never skip) and say how to install it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SETTINGS, type SettingSpec } from '../../shared/config';
import { TELEMETRY_EVENTS, TELEMETRY_METRICS } from '../../shared/telemetry';
import {
  calls,
  evaluate,
  isExpression,
  modules,
  parameterSources,
  parseExpression,
  resolveObject,
  type Json,
  type Node,
  type Resource,
  type Scope,
  type Template,
} from './arm';
import { diagnostics, findBicep, INFRA, ROOT, runBicep, type RunResult } from './bicep-cli';

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** NAME='value' lines written by infrastructure/scripts/new-secrets.sh --env (values may span lines). */
function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of readFileSync(file, 'utf8').matchAll(/^([A-Z0-9_]+)='([^']*)'$/gm)) out[m[1]] = m[2];
  return out;
}

let bicepError: Error | undefined;
let lintBicep: RunResult;
let lintParams: RunResult;
let buildParams: RunResult;
let missingSecret: RunResult;
let top: Scope;
let topValues: Record<string, Json> = {};
let deployEnv: Record<string, string> = {};
let tmp = '';

beforeAll(async () => {
  let bicep: string;
  try {
    bicep = findBicep();
  } catch (err) {
    bicepError = err as Error;
    return;
  }
  tmp = mkdtempSync(path.join(os.tmpdir(), 'bicep-test-'));
  // The same script an operator runs before the first deployment makes the keys and secrets.
  execFileSync('bash', [path.join(INFRA, 'scripts', 'new-secrets.sh'), '--env', path.join(tmp, 'env')], {
    stdio: 'ignore',
  });
  deployEnv = readEnvFile(path.join(tmp, 'env'));
  deployEnv.VM_ADMIN_SSH_PUBLIC_KEY = deployEnv.PIPELINE_SSH_PUBLIC_KEY;
  deployEnv.AZURE_ENV_NAME = 'citest';
  deployEnv.AZURE_LOCATION = 'westeurope';

  [lintBicep, lintParams, buildParams, missingSecret] = await Promise.all([
    // main.bicep compiles and lints every module it references (diagnostics carry the module's path)
    runBicep(bicep, ['lint', 'infrastructure/main.bicep']),
    runBicep(bicep, ['lint', '--pattern', 'infrastructure/**/*.bicepparam'], deployEnv),
    runBicep(bicep, ['build-params', 'infrastructure/main.bicepparam', '--stdout'], deployEnv),
    // undefined removes the variable from the child's environment
    runBicep(bicep, ['build-params', 'infrastructure/main.bicepparam', '--stdout'], {
      ...deployEnv,
      WEBHOOK_SECRET: undefined,
    }),
  ]);
  if (buildParams.code === 0) {
    const out = JSON.parse(buildParams.stdout) as { templateJson: string };
    top = { template: JSON.parse(out.templateJson) as Template, name: 'main' };
    const params = JSON.parse((out as unknown as { parametersJson: string }).parametersJson) as {
      parameters: Record<string, { value: Json }>;
    };
    topValues = Object.fromEntries(Object.entries(params.parameters).map(([k, v]) => [k, v.value]));
  }
}, 600_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function requireCli(): void {
  if (bicepError) throw bicepError;
}

function module(name: string): Scope {
  const m = modules(top).get(name);
  if (!m) throw new Error(`module ${name} is not in main.bicep`);
  return m;
}

function resources(scope: Scope, type: string): Resource[] {
  return scope.template.resources.filter((r) => r.type.toLowerCase() === type.toLowerCase());
}

describe('Bicep CLI', () => {
  it('compiles and lints every .bicep file with zero diagnostics', () => {
    requireCli();
    const files = walk(INFRA).filter((f) => f.endsWith('.bicep'));
    expect(files.length).toBeGreaterThanOrEqual(10);
    // so linting main.bicep covers every file: each module is referenced from main.bicep
    const main = readFileSync(path.join(INFRA, 'main.bicep'), 'utf8');
    const referenced = new Set(
      [...main.matchAll(/^module \w+ '([^']+)'/gm)].map((m) => path.join(INFRA, m[1])),
    );
    expect(files.filter((f) => f !== path.join(INFRA, 'main.bicep') && !referenced.has(f))).toEqual([]);
    expect(diagnostics(lintBicep.stdout + lintBicep.stderr)).toEqual([]);
    expect(lintBicep.code).toBe(0);
  });

  it('compiles and lints every .bicepparam file with zero diagnostics', () => {
    requireCli();
    const files = walk(INFRA).filter((f) => f.endsWith('.bicepparam'));
    expect(files.map((f) => path.relative(INFRA, f)).sort()).toEqual([
      'environments/production.bicepparam',
      'environments/staging.bicepparam',
      'main.bicepparam',
    ]);
    expect(diagnostics(lintParams.stdout + lintParams.stderr)).toEqual([]);
    expect(lintParams.code).toBe(0);
    expect(buildParams.stderr.trim()).toBe('');
    expect(buildParams.code).toBe(0);
  });

  it('a parameters file without a required secret stops the build naming the variable', () => {
    requireCli();
    expect(missingSecret.code).not.toBe(0);
    expect(missingSecret.stderr).toMatch(/WEBHOOK_SECRET/);
    expect(missingSecret.stdout).not.toMatch(/BEGIN OPENSSH PRIVATE KEY/);
  });

  it('uses only local modules (the build works offline) and declares @description on every parameter and output', () => {
    for (const file of walk(INFRA).filter((f) => f.endsWith('.bicep'))) {
      const text = readFileSync(file, 'utf8');
      expect({ file, registry: /['"]br[:/]|['"]ts[:/]/.test(text) }).toEqual({ file, registry: false });
      const lines = text.split('\n');
      lines.forEach((line, i) => {
        if (/^(param|output) /.test(line)) {
          // decorators sit on the lines above; the closest @description may be a few lines up
          const above = lines.slice(Math.max(0, i - 4), i).join('\n');
          expect({ file, line, described: /@description\(/.test(above) }).toEqual({
            file,
            line,
            described: true,
          });
        }
      });
    }
  });
});

describe('function app settings (drift against shared/config.ts)', () => {
  const FLEX_FORBIDDEN = [
    'FUNCTIONS_WORKER_RUNTIME',
    'FUNCTIONS_EXTENSION_VERSION',
    'WEBSITE_RUN_FROM_PACKAGE',
    'WEBSITE_CONTENTSHARE',
    'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
    'SCM_DO_BUILD_DURING_DEPLOYMENT',
    'AzureWebJobsStorage',
  ];
  const PLATFORM = [
    'AzureWebJobsStorage__accountName',
    'AzureWebJobsStorage__credential',
    'AzureWebJobsStorage__clientId',
    'ServiceBusConnection__credential',
    'ServiceBusConnection__clientId',
    'AZURE_CLIENT_ID',
    'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
  ];

  function appSettings() {
    const fn = module('functionapp');
    const config = resources(fn, 'Microsoft.Web/sites/config').find((r) =>
      String(r.name).includes('appsettings'),
    );
    if (!config?.properties) throw new Error('no appsettings resource on the function app');
    return resolveObject(config.properties as unknown as Json, fn);
  }

  it('sets every setting marked requiredInAzure, unconditionally', () => {
    requireCli();
    const settings = appSettings();
    const required = (Object.entries(SETTINGS) as Array<[string, SettingSpec]>)
      .filter(([, s]) => s.requiredInAzure)
      .map(([k]) => k);
    expect(required.length).toBeGreaterThan(10);
    const missing = required.filter((k) => !settings.has(k) || settings.get(k)?.optional);
    expect(missing).toEqual([]);
  });

  it('sets the Azure runtime settings: PIPELINE_RUNTIME=azure, identity-based storage and Service Bus, task hub, queue, backup URL', () => {
    requireCli();
    const settings = appSettings();
    for (const k of [
      ...PLATFORM,
      'PIPELINE_RUNTIME',
      'TASK_HUB_NAME',
      'ServiceBusConnection__fullyQualifiedNamespace',
      'DEPLOY_QUEUE_NAME',
      'BACKUP_STORAGE_ACCOUNT_URL',
    ]) {
      expect({ k, set: settings.has(k) && !settings.get(k)?.optional }).toEqual({ k, set: true });
    }
    expect(settings.get('PIPELINE_RUNTIME')?.value).toBe('azure');
    expect(settings.get('AzureWebJobsStorage__credential')?.value).toBe('managedidentity');
    expect(settings.get('ServiceBusConnection__credential')?.value).toBe('managedidentity');
    // host.json reads %TASK_HUB_NAME%
    expect(readFileSync(path.join(ROOT, 'host.json'), 'utf8')).toContain('%TASK_HUB_NAME%');
  });

  it('sets only settings that shared/config.ts or the Functions platform knows, none that Flex Consumption forbids', () => {
    requireCli();
    const keys = [...appSettings().keys()];
    const unknown = keys.filter((k) => !(k in SETTINGS) && !PLATFORM.includes(k));
    expect(unknown).toEqual([]);
    expect(keys.filter((k) => FLEX_FORBIDDEN.includes(k))).toEqual([]);
  });

  it('sets every secret as a Key Vault reference, never as a plain value', () => {
    requireCli();
    const settings = appSettings();
    const secrets = (Object.entries(SETTINGS) as Array<[string, SettingSpec]>)
      .filter(([, s]) => s.secret)
      .map(([k]) => k);
    for (const [key, winner] of settings) {
      const isSecret = secrets.includes(key);
      // every value the key can get, also those a later union() argument replaces under a condition
      for (const setting of [winner, ...(winner.shadowed ?? [])]) {
        const node: Node | undefined =
          typeof setting.value === 'string'
            ? isExpression(setting.value)
              ? parseExpression(setting.value)
              : undefined
            : (setting.value as Node | undefined);
        const formats = node && typeof node === 'object' && 'kind' in node ? calls(node, 'format') : [];
        const kvRef = formats.some(
          (f) => f.args[0]?.kind === 'str' && f.args[0].value.startsWith('@Microsoft.KeyVault(SecretUri='),
        );
        if (isSecret) expect({ key, kvRef }).toEqual({ key, kvRef: true });
        // a plain value never reads a secure parameter
        const secure = parameterSources(setting.value, setting.scope).filter((p) => /^secure/i.test(p.type));
        if (!kvRef) expect({ key, secure: secure.map((p) => p.name) }).toEqual({ key, secure: [] });
      }
    }
    // the required secrets are there (as references), and each referenced secret is written to Key Vault
    for (const k of ['GITHUB_WEBHOOK_SECRET', 'APPROVAL_SIGNING_KEY', 'SSH_PRIVATE_KEY'])
      expect(settings.get(k)?.optional).toBe(false);
    const kv = modules(top).get('keyvault');
    const written = Object.keys((kv?.values?.secrets?.value ?? {}) as Record<string, Json>);
    for (const [, s] of settings) if (s.item?.secret) expect(written).toContain(String(s.item.secret));
  });

  it('runs on Flex Consumption with Node 22, a user-assigned identity, Key Vault references, VNet integration and an always-ready durable instance', () => {
    requireCli();
    const fn = module('functionapp');
    const plan = resources(fn, 'Microsoft.Web/serverfarms')[0];
    expect(plan.sku).toMatchObject({ name: 'FC1', tier: 'FlexConsumption' });
    const site = resources(fn, 'Microsoft.Web/sites')[0];
    expect(site.kind).toBe('functionapp,linux');
    expect((site.identity as { type: string }).type).toBe('UserAssigned');
    const props = site.properties as Record<string, Json>;
    expect(props.keyVaultReferenceIdentity).toBeTruthy();
    expect(props.virtualNetworkSubnetId).toBeTruthy();
    expect(props.httpsOnly).toBe(true);
    const cfg = props.functionAppConfig as {
      runtime: { name: string; version: string };
      scaleAndConcurrency: { alwaysReady: Json };
      deployment: { storage: { authentication: { type: string } } };
    };
    expect(cfg.runtime.name).toBe('node');
    expect(top.template.parameters?.nodeVersion?.defaultValue).toBe('22');
    expect(String(cfg.scaleAndConcurrency.alwaysReady)).toContain("'durable'");
    expect(cfg.deployment.storage.authentication.type).toBe('UserAssignedIdentity');
  });
});

describe('App Service Authentication: the only source of signed-in identities in Azure', () => {
  it("is Entra ID for this tenant, lets anonymous requests through to the routes' own checks, and is off without an app registration", () => {
    requireCli();
    const fn = module('functionapp');
    const auth = resources(fn, 'Microsoft.Web/sites/config').filter((r) =>
      String(r.name).includes('authsettingsV2'),
    );
    expect(auth).toHaveLength(1);
    // off (no resource at all) when no registration is given: then WEBSITE_AUTH_ENABLED is not set and
    // the app trusts no X-MS-CLIENT-PRINCIPAL header (shared/domain/identity.ts platformAuthEnabled)
    expect(String(auth[0].condition)).toBe("[not(empty(parameters('entraAuthClientId')))]");
    const p = auth[0].properties as {
      platform: { enabled: boolean };
      globalValidation: { requireAuthentication: boolean; unauthenticatedClientAction: string };
      httpSettings: { requireHttps: boolean };
      identityProviders: Record<string, { enabled: boolean; registration: Record<string, string> }>;
      login: { tokenStore: { enabled: boolean } };
    };
    expect(p.platform.enabled).toBe(true);
    // GitHub's webhook, Slack's interactions and key callers carry no Entra sign-in: refusing them here
    // would stop the product; each route checks its own proof (signature, key, signed-in approver)
    expect(p.globalValidation).toMatchObject({
      requireAuthentication: false,
      unauthenticatedClientAction: 'AllowAnonymous',
    });
    expect(p.httpSettings.requireHttps).toBe(true);
    expect(Object.keys(p.identityProviders)).toEqual(['azureActiveDirectory']);
    const aad = p.identityProviders.azureActiveDirectory;
    expect(aad.enabled).toBe(true);
    expect(aad.registration.clientId).toBe("[parameters('entraAuthClientId')]");
    // single tenant: the issuer names this tenant, not /common or /organizations
    expect(aad.registration.openIdIssuer).toContain('tenant().tenantId');
    expect(aad.registration.openIdIssuer).not.toMatch(/common|organizations/);
    expect(p.login.tokenStore.enabled).toBe(false);
    // the parameter reaches the module from main.bicep and from the parameters file
    expect(top.template.parameters?.entraAuthClientId?.defaultValue).toBe('');
    expect(readFileSync(path.join(INFRA, 'main.bicepparam'), 'utf8')).toMatch(
      /param entraAuthClientId = readEnvironmentVariable\('ENTRA_AUTH_CLIENT_ID'/,
    );
  });
});

describe('role assignments', () => {
  const ROLE = {
    storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
    storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
    storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
    storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
    serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0',
    serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39',
    keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
    monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
  };
  const BROAD = [
    '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
    'b24988ac-6180-42a0-ab88-20f7382dd24c',
    '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
    '9980e02c-c2be-4d73-94e8-173b1dc7cf3c',
  ];

  function assignments() {
    const roles = module('roles');
    const ids = (roles.template.variables?.roles ?? {}) as Record<string, string>;
    return resources(roles, 'Microsoft.Authorization/roleAssignments').map((r) => {
      const def = String((r.properties as Record<string, Json>).roleDefinitionId);
      const builtIn = Object.entries(ids).find(
        ([name]) => def.includes(`.${name})`) || def.includes(`'${name}'`),
      );
      const custom = /roleDefinitions'.*guid\(resourceGroup\(\)\.id, '([^']+)'\)/.exec(def)?.[1];
      return {
        scope: r.scope ?? 'resourceGroup',
        role: builtIn ? builtIn[1] : custom ? `custom:${custom}` : def,
        principal: String((r.properties as Record<string, Json>).principalId),
        condition: (r as { condition?: unknown }).condition,
      };
    });
  }

  it('gives the function identity a role on every resource the code talks to', () => {
    requireCli();
    const list = assignments().filter(
      (a) =>
        a.principal.includes('functionIdentity') ||
        a.principal.includes("'Microsoft.ManagedIdentity/userAssignedIdentities'"),
    );
    const has = (scopeParam: string, role: string) =>
      list.some((a) => a.scope.includes(`parameters('${scopeParam}')`) && a.role === role);
    expect(has('runtimeStorageName', ROLE.storageBlobDataOwner)).toBe(true);
    expect(has('runtimeStorageName', ROLE.storageQueueDataContributor)).toBe(true);
    expect(has('runtimeStorageName', ROLE.storageTableDataContributor)).toBe(true);
    expect(has('backupStorageName', ROLE.storageBlobDataContributor)).toBe(true);
    expect(has('queueName', ROLE.serviceBusDataSender)).toBe(true);
    expect(has('queueName', ROLE.serviceBusDataReceiver)).toBe(true);
    expect(has('keyVaultName', ROLE.keyVaultSecretsUser)).toBe(true);
    expect(has('applicationInsightsName', ROLE.monitoringMetricsPublisher)).toBe(true);
    expect(has('uatVmName', 'custom:odoo-mta-vm-operator')).toBe(true);
    expect(has('prodVmName', 'custom:odoo-mta-vm-operator')).toBe(true);
    expect(
      list.some((a) => a.scope === 'resourceGroup' && a.role === 'custom:odoo-mta-snapshot-writer'),
    ).toBe(true);
  });

  it('assigns the roles on the very resources main.bicep creates (same names)', () => {
    requireCli();
    const given = module('roles').values ?? {};
    const same = (rolesParam: string, mod: string, modParam: string) =>
      expect({ rolesParam, v: given[rolesParam]?.value }).toEqual({
        rolesParam,
        v: module(mod).values?.[modParam]?.value,
      });
    same('runtimeStorageName', 'runtime-storage', 'name');
    same('backupStorageName', 'backup-storage', 'name');
    same('serviceBusName', 'servicebus', 'name');
    same('queueName', 'servicebus', 'queueName');
    same('keyVaultName', 'keyvault', 'name');
    same('applicationInsightsName', 'monitoring', 'applicationInsightsName');
    same('uatVmName', 'vm-uat', 'name');
    same('prodVmName', 'vm-prod', 'name');
    same('functionIdentityName', 'identity', 'name');
  });

  it('grants no broad role (Owner, Contributor, User Access Administrator, VM Contributor) and custom roles only in the resource group', () => {
    requireCli();
    const text = JSON.stringify(module('roles').template);
    for (const id of BROAD) expect(text).not.toContain(id);
    const defs = resources(module('roles'), 'Microsoft.Authorization/roleDefinitions');
    expect(defs.length).toBe(2);
    for (const d of defs) {
      const props = d.properties as { assignableScopes: string[]; permissions: Array<{ actions: string[] }> };
      expect(props.assignableScopes).toEqual(['[resourceGroup().id]']);
      for (const a of props.permissions.flatMap((p) => p.actions))
        expect(a).not.toMatch(/\*|delete|deallocate|\/write$(?<!snapshots\/write)/);
    }
  });
});

describe('custom roles', () => {
  it('names are unique per subscription and resource group; long ARM operations can be polled', () => {
    requireCli();
    const defs = resources(module('roles'), 'Microsoft.Authorization/roleDefinitions');
    expect(defs.length).toBe(2);
    const roles = module('roles');
    const suffix = String(roles.template.variables?.roleNameSuffix);
    expect(suffix).toContain('guid(subscription().id, resourceGroup().name)');
    for (const d of defs) {
      const p = d.properties as { roleName: string; permissions: Array<{ actions: string[] }> };
      expect(p.roleName).toContain("variables('roleNameSuffix')");
      expect(p.permissions.flatMap((x) => x.actions)).toContain(
        'Microsoft.Compute/locations/operations/read',
      );
    }
  });
});

describe('network: the VMs are closed to the internet', () => {
  const INTERNET = ['*', 'internet', '0.0.0.0/0', 'any', '::/0'];

  it('no NSG rule allows inbound traffic from the internet; SSH only from the function subnet', () => {
    requireCli();
    const net = module('network');
    const nsgs = resources(net, 'Microsoft.Network/networkSecurityGroups');
    expect(nsgs.length).toBe(2);
    const rules = nsgs.flatMap(
      (n) =>
        (n.properties as { securityRules: Array<{ name: string; properties: Record<string, Json> }> })
          .securityRules,
    );
    for (const r of rules.filter(
      (x) => x.properties.direction === 'Inbound' && x.properties.access === 'Allow',
    )) {
      const sources = [
        r.properties.sourceAddressPrefix,
        ...((r.properties.sourceAddressPrefixes as string[] | undefined) ?? []),
      ]
        .filter((s) => s !== undefined)
        .map((s) => String(s).toLowerCase());
      expect({ rule: r.name, internet: sources.some((s) => INTERNET.includes(s)) }).toEqual({
        rule: r.name,
        internet: false,
      });
    }
    const ssh = rules.find((r) => r.name === 'allow-ssh-from-function-subnet');
    expect(ssh?.properties.sourceAddressPrefix).toBe("[parameters('functionSubnetPrefix')]");
    expect(
      rules.some(
        (r) =>
          r.properties.direction === 'Inbound' &&
          r.properties.access === 'Deny' &&
          String(r.properties.sourceAddressPrefix).toLowerCase() === 'internet',
      ),
    ).toBe(true);
  });

  it('the VMs have no public IP; the only public IP is the NAT gateway (outbound)', () => {
    requireCli();
    for (const vm of ['vm-uat', 'vm-prod']) {
      const m = module(vm);
      expect(resources(m, 'Microsoft.Network/publicIPAddresses')).toEqual([]);
      const nic = resources(m, 'Microsoft.Network/networkInterfaces')[0];
      expect(JSON.stringify(nic.properties)).not.toContain('publicIPAddress');
    }
    const net = module('network');
    const pips = resources(net, 'Microsoft.Network/publicIPAddresses');
    expect(pips.length).toBe(1);
    const nat = resources(net, 'Microsoft.Network/natGateways')[0];
    expect(JSON.stringify(nat.properties)).toContain('publicIPAddresses');
  });

  it('cloud-init installs Docker, mounts the data disk and hardens sshd', () => {
    const cloudInit = readFileSync(path.join(INFRA, 'cloud-init', 'odoo-vm.yaml'), 'utf8');
    for (const needle of ['docker.io', '/dev/disk/azure/scsi1/lun0', 'PasswordAuthentication no'])
      expect(cloudInit).toContain(needle);
  });
});

describe('VM custom data and the ops script, as ARM would render them', () => {
  // https://learn.microsoft.com/en-us/javascript/api/@azure/arm-compute/osprofileprovisioningdata :
  // customData decodes to at most 65,535 bytes (ARM refuses more than 87,380 base64 characters) and
  // must not carry secrets.
  const CUSTOM_DATA_MAX_BYTES = 65_535;
  const CUSTOM_DATA_MAX_CHARS = 87_380;

  function rendered(vmModule: string) {
    const m = module(vmModule);
    const vm = resources(m, 'Microsoft.Compute/virtualMachines')[0];
    const customData = evaluate(
      ((vm.properties as Record<string, Json>).osProfile as Record<string, Json>).customData,
      m,
      topValues,
    ) as string;
    const install = resources(m, 'Microsoft.Compute/virtualMachines/runCommands').find((r) =>
      String(r.name).includes('install-odoo-ops'),
    );
    return { m, vm, customData, install };
  }

  it.each(['vm-uat', 'vm-prod'])(
    "%s: custom data rendered with the real-sized inputs stays under Azure's limit",
    (vmModule) => {
      requireCli();
      const { customData } = rendered(vmModule);
      expect(customData.length).toBeLessThanOrEqual(CUSTOM_DATA_MAX_CHARS);
      const decoded = Buffer.from(customData, 'base64');
      expect(decoded.length).toBeLessThanOrEqual(CUSTOM_DATA_MAX_BYTES);
      expect(decoded.toString('utf8')).toMatch(/^#cloud-config\n/);
      // the inputs were real: the pipeline's key is in it, every placeholder was replaced
      expect(decoded.toString('utf8')).toContain(deployEnv.PIPELINE_SSH_PUBLIC_KEY.trim().split(' ')[1]);
      expect(decoded.toString('utf8')).not.toMatch(/\{\{[A-Z_0-9]+\}\}/);
    },
  );

  it.each([
    ['vm-uat', 'UAT'],
    ['vm-prod', 'PROD'],
  ])(
    '%s: the SSH host private key is not in custom data (nor in plain run command text)',
    (vmModule, env) => {
      requireCli();
      const { customData, install } = rendered(vmModule);
      const decoded = Buffer.from(customData, 'base64').toString('utf8');
      const privateKey = deployEnv[`${env}_SSH_HOST_PRIVATE_KEY`];
      expect(privateKey).toMatch(/BEGIN OPENSSH PRIVATE KEY/);
      const body = privateKey.split('\n').filter((l) => l && !l.startsWith('-----'));
      expect(decoded).not.toContain('PRIVATE KEY');
      for (const line of body) expect(decoded).not.toContain(line);
      // the key reaches the VM as a protected parameter of the run command (never returned by ARM)
      const props = install?.properties as {
        source: { script: Json };
        protectedParameters?: Json;
        parameters?: Json;
      };
      expect(JSON.stringify(props.parameters ?? [])).not.toContain('hostPrivateKey');
      expect(JSON.stringify(props.protectedParameters)).toContain("parameters('hostPrivateKey')");
      const script = evaluate(props.source.script, module(vmModule), topValues) as string;
      for (const line of body) expect(script).not.toContain(line);
    },
  );

  it.each(['vm-uat', 'vm-prod'])(
    '%s: odoo-ops reaches the VM through the install run command, byte for byte, on every deployment',
    (vmModule) => {
      requireCli();
      const { install, m } = rendered(vmModule);
      expect(install).toBeDefined();
      expect(install?.condition).toBeUndefined();
      const props = install?.properties as {
        source: { script: Json };
        treatFailureAsDeploymentFailure: boolean;
        timeoutInSeconds: number;
      };
      expect(props.treatFailureAsDeploymentFailure).toBe(true);
      const script = evaluate(props.source.script, m, topValues) as string;
      const opsScript = readFileSync(path.join(ROOT, 'docker', 'ops', 'odoo-ops'));
      const embedded = /^OPS_SCRIPT_B64='([A-Za-z0-9+/=]*)'$/m.exec(script)?.[1];
      expect(embedded).toBeTruthy();
      expect(Buffer.from(embedded ?? '', 'base64').equals(opsScript)).toBe(true);
    },
  );
});

describe('VM custom data: the fallback download path', () => {
  it('opsScriptUrl with a sha256 replaces the embedded script, and the install script checks the sha256', () => {
    requireCli();
    const m = module('vm-uat');
    const install = resources(m, 'Microsoft.Compute/virtualMachines/runCommands').find((r) =>
      String(r.name).includes('install-odoo-ops'),
    );
    const source = (install?.properties as { source: { script: Json } }).source.script;
    const url = 'https://example.invalid/odoo-ops';
    const sha = 'a'.repeat(64);
    const script = evaluate(source, m, { ...topValues, opsScriptUrl: url, opsScriptSha256: sha }) as string;
    expect(script).toContain(`URL='${url}'`);
    expect(script).toContain(`SHA256='${sha}'`);
    expect(script).toMatch(/^OPS_SCRIPT_B64=''$/m);
    expect(script).toContain('sha256sum -c');
  });
});

describe('storage, queue and Key Vault', () => {
  it('lifecycle rules per environment follow the retention parameters; soft delete and versioning are on', () => {
    requireCli();
    const st = module('backup-storage');
    const policy = resources(st, 'Microsoft.Storage/storageAccounts/managementPolicies')[0];
    const rules = (
      policy.properties as {
        policy: {
          rules: Array<{
            name: string;
            definition: { filters: { prefixMatch: string[] }; actions: Record<string, Json> };
          }>;
        };
      }
    ).policy.rules;
    const uat = rules.find((r) => r.name === 'uat-backups');
    const prod = rules.find((r) => r.name === 'prod-backups');
    expect(JSON.stringify(uat?.definition.actions)).toContain("parameters('uatRetentionDays')");
    expect(JSON.stringify(prod?.definition.actions)).toContain("parameters('prodRetentionDays')");
    expect(String(uat?.definition.filters.prefixMatch[0])).toContain('/uat/');
    expect(top.template.parameters?.backupRetentionDaysUat?.defaultValue).toBe(14);
    expect(top.template.parameters?.backupRetentionDaysProd?.defaultValue).toBe(90);
    const blob = resources(st, 'Microsoft.Storage/storageAccounts/blobServices')[0].properties as Record<
      string,
      { enabled?: boolean } | boolean
    >;
    expect(blob.isVersioningEnabled).toBe(true);
    expect((blob.deleteRetentionPolicy as { enabled: boolean }).enabled).toBe(true);
    const account = resources(st, 'Microsoft.Storage/storageAccounts')[0].properties as Record<string, Json>;
    expect(account.allowSharedKeyAccess).toBe(false);
    expect(account.allowBlobPublicAccess).toBe(false);
  });

  it('PROD backups are under a time-based immutability policy with the retention from the parameters', () => {
    requireCli();
    const st = module('backup-storage');
    const container = resources(st, 'Microsoft.Storage/storageAccounts/blobServices/containers').find((r) =>
      String(r.name).includes('backupContainerName'),
    );
    expect((container?.properties as Record<string, Json>).immutableStorageWithVersioning).toBe(
      "[if(parameters('enableImmutability'), createObject('enabled', true()), null())]",
    );
    const policy = resources(
      st,
      'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies',
    )[0];
    expect(policy).toBeDefined();
    expect(policy.condition).toBe("[parameters('enableImmutability')]");
    expect((policy.properties as Record<string, Json>).immutabilityPeriodSinceCreationInDays).toBe(
      "[parameters('immutabilityDays')]",
    );
    expect((policy.properties as Record<string, Json>).allowProtectedAppendWrites).toBe(false);
    // on by default, for as long as PROD backups are kept
    expect(top.template.parameters?.enableBackupImmutability?.defaultValue).toBe(true);
    expect(top.template.parameters?.backupImmutabilityDays?.defaultValue).toBe(
      "[parameters('backupRetentionDaysProd')]",
    );
    expect(st.values?.immutabilityDays?.value).toBe("[parameters('backupImmutabilityDays')]");
    expect(evaluate("[parameters('immutabilityDays')]", st, topValues)).toBe(90);
  });

  it('diagnostic settings send logs and metrics to Log Analytics for every resource that has them', () => {
    requireCli();
    // module → resources (symbolic targets) that must each have a diagnostic setting
    const expected: Record<string, string[]> = {
      keyvault: ['Microsoft.KeyVault/vaults'],
      servicebus: ['Microsoft.ServiceBus/namespaces'],
      'backup-storage': [
        'Microsoft.Storage/storageAccounts',
        'Microsoft.Storage/storageAccounts/blobServices',
      ],
      'runtime-storage': [
        'Microsoft.Storage/storageAccounts',
        'Microsoft.Storage/storageAccounts/blobServices',
        'Microsoft.Storage/storageAccounts/queueServices',
        'Microsoft.Storage/storageAccounts/tableServices',
      ],
      functionapp: ['Microsoft.Web/sites'],
      network: [
        'Microsoft.Network/networkSecurityGroups',
        'Microsoft.Network/networkSecurityGroups',
        'Microsoft.Network/publicIPAddresses',
        'Microsoft.Network/natGateways',
        'Microsoft.Network/virtualNetworks',
      ],
    };
    for (const [name, types] of Object.entries(expected)) {
      const m = module(name);
      const diags = resources(m, 'Microsoft.Insights/diagnosticSettings');
      expect({ name, settings: diags.length }).toEqual({ name, settings: types.length });
      const scopes = diags.map((d) => String(d.scope));
      for (const t of types) {
        const targets = resources(m, t).length;
        // every resource of that type in the module has its own setting (scope names the type)
        expect({ name, t, covered: scopes.filter((sc) => sc.includes(`'${t}'`)).length >= targets }).toEqual({
          name,
          t,
          covered: true,
        });
      }
      for (const d of diags) {
        const p = d.properties as {
          workspaceId: string;
          logs?: Array<{ categoryGroup?: string; enabled: boolean }>;
          metrics?: Array<{ enabled: boolean }>;
        };
        expect(p.workspaceId).toBe("[parameters('logAnalyticsWorkspaceId')]");
        expect([...(p.logs ?? []), ...(p.metrics ?? [])].length).toBeGreaterThan(0);
        for (const x of [...(p.logs ?? []), ...(p.metrics ?? [])]) expect(x.enabled).toBe(true);
      }
      // the workspace is the one main.bicep creates
      expect(String(m.values?.logAnalyticsWorkspaceId?.value)).toMatch(
        /'monitoring'\), '[0-9-]+'\)\.outputs\.logAnalyticsId\.value\]$/,
      );
    }
    // Key Vault's audit log (who read which secret) is in allLogs
    const kv = resources(module('keyvault'), 'Microsoft.Insights/diagnosticSettings')[0].properties as {
      logs: Array<{ categoryGroup: string }>;
    };
    expect(kv.logs.map((l) => l.categoryGroup)).toContain('allLogs');
  });

  it('basic publishing credentials (FTP and SCM) are off on the function app', () => {
    requireCli();
    const policies = resources(
      module('functionapp'),
      'Microsoft.Web/sites/basicPublishingCredentialsPolicies',
    );
    const byName = Object.fromEntries(
      policies.map((p) => [
        String(p.name).replace(/.*'(ftp|scm)'.*/, '$1'),
        (p.properties as { allow: boolean }).allow,
      ]),
    );
    expect(byName).toEqual({ ftp: false, scm: false });
    for (const p of policies) expect(p.condition).toBeUndefined();
  });

  it('the deploy queue has sessions, duplicate detection, dead-lettering and a max delivery count on a Standard or Premium namespace', () => {
    requireCli();
    const sb = module('servicebus');
    // sessions and duplicate detection need Standard or Premium (Basic has neither)
    expect(
      (top.template.parameters?.serviceBusSku as { allowedValues?: string[] } | undefined)?.allowedValues,
    ).toEqual(['Premium', 'Standard']);
    const q = resources(sb, 'Microsoft.ServiceBus/namespaces/queues')[0].properties as Record<string, Json>;
    expect(q).toMatchObject({
      requiresSession: true,
      requiresDuplicateDetection: true,
      deadLetteringOnMessageExpiration: true,
    });
    expect(q.maxDeliveryCount).toBe("[parameters('maxDeliveryCount')]");
    expect(module('servicebus').values?.queueName?.value).toBe("[variables('deployQueueName')]");
    expect(top.template.variables?.deployQueueName).toBe(SETTINGS.DEPLOY_QUEUE_NAME.default);
  });

  it('Key Vault is in RBAC mode and secrets are @secure() parameters, never outputs', () => {
    requireCli();
    const kv = resources(module('keyvault'), 'Microsoft.KeyVault/vaults')[0].properties as Record<
      string,
      Json
    >;
    expect(kv.enableRbacAuthorization).toBe(true);
    const params = top.template.parameters ?? {};
    for (const p of [
      'githubWebhookSecret',
      'approvalSigningKey',
      'sshPrivateKey',
      'registryPassword',
      'slackWebhookUrl',
      'slackBotToken',
      'githubToken',
      'uatSshHostPrivateKey',
      'prodSshHostPrivateKey',
    ]) {
      expect({ p, type: params[p]?.type }).toEqual({ p, type: 'securestring' });
    }
    for (const [name, out] of Object.entries(top.template.outputs ?? {})) {
      const secure = parameterSources(out.value, top).filter((s) => /^secure/i.test(s.type));
      expect({ name, secure }).toEqual({ name, secure: [] });
    }
  });
});

/**
 * One resource of a template as ARM would deploy it: a copy loop expanded (copyIndex() per element),
 * names and properties evaluated with the parameters of the compiled .bicepparam. Module outputs
 * evaluate to '<module>.outputs.<name>' markers (see evaluate in arm.ts).
 */
function deployed(r: Resource, scope: Scope, values: Record<string, Json> = topValues) {
  const copy = r.copy as { count: string } | undefined;
  const count = copy ? (evaluate(copy.count, scope, values) as number) : 1;
  return Array.from({ length: count }, (_, i) => {
    const locals: Record<string, Json> = copy ? { $copyIndex: i } : {};
    // each value on its own: one that needs a live deployment (subscription(), guid(), ...) stays
    // as its expression text, the rest is what ARM would send
    const ev = (v: Json): Json => {
      if (Array.isArray(v)) return v.map(ev);
      if (v !== null && typeof v === 'object')
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, ev(x)]));
      try {
        return evaluate(v, scope, values, locals);
      } catch {
        return v;
      }
    };
    return {
      name: String(ev(r.name)),
      properties: (r.properties ? ev(r.properties as Json) : {}) as Record<string, Json>,
    };
  });
}

function deployedOf(scope: Scope, type: string, values: Record<string, Json> = topValues) {
  return resources(scope, type).flatMap((r) => deployed(r, scope, values));
}

/** 'module.outputs.name' marker of the module output a parameter of `scope` receives. */
function given(scope: Scope, param: string, values: Record<string, Json> = topValues): Json {
  return evaluate(`[parameters('${param}')]`, scope, values);
}

describe('network: Key Vault, both storage accounts and Service Bus are closed to the internet', () => {
  // Private DNS zone of each private endpoint sub-resource (groupId), as Microsoft lists them:
  // https://learn.microsoft.com/azure/private-link/private-endpoint-dns (Azure public cloud).
  const ZONE: Record<string, string> = {
    blob: 'privatelink.blob.core.windows.net',
    queue: 'privatelink.queue.core.windows.net',
    table: 'privatelink.table.core.windows.net',
    file: 'privatelink.file.core.windows.net',
    vault: 'privatelink.vaultcore.azure.net',
    namespace: 'privatelink.servicebus.windows.net',
  };
  // What each resource serves the code: runtime storage holds AzureWebJobsStorage (blob leases, the
  // Flex deployment container) and Durable Functions' queues and tables; backups are blobs only.
  const EXPECTED: Array<{ module: string; output: string; groupIds: string[] }> = [
    { module: 'keyvault', output: 'id', groupIds: ['vault'] },
    { module: 'runtime-storage', output: 'id', groupIds: ['blob', 'queue', 'table'] },
    { module: 'backup-storage', output: 'id', groupIds: ['blob'] },
    { module: 'servicebus', output: 'namespaceId', groupIds: ['namespace'] },
  ];

  /** The private-endpoints module with the resource token (uniqueString: live only) standing as 'token'. */
  function privateEndpointsModule(): Scope {
    const pe = module('private-endpoints');
    return { ...pe, values: { ...pe.values, nameSuffix: { value: 'token' } } };
  }

  function endpoints(values: Record<string, Json> = topValues) {
    const pe = privateEndpointsModule();
    return deployedOf(pe, 'Microsoft.Network/privateEndpoints', values).map((e) => {
      const conns = e.properties.privateLinkServiceConnections as Array<{
        properties: { privateLinkServiceId: string; groupIds: string[] };
      }>;
      return {
        name: e.name,
        subnet: (e.properties.subnet as { id: string }).id,
        targets: conns.map((c) => c.properties.privateLinkServiceId),
        groupIds: conns.flatMap((c) => c.properties.groupIds),
      };
    });
  }

  it('Key Vault and both storage accounts have public network access disabled and deny by default', () => {
    requireCli();
    const closed = [
      ['keyvault', 'Microsoft.KeyVault/vaults'],
      ['runtime-storage', 'Microsoft.Storage/storageAccounts'],
      ['backup-storage', 'Microsoft.Storage/storageAccounts'],
    ];
    for (const [mod, type] of closed) {
      const [res] = deployedOf(module(mod), type);
      const acls = res.properties.networkAcls as {
        defaultAction: string;
        ipRules?: Json[];
        virtualNetworkRules?: Json[];
      };
      expect({ mod, public: res.properties.publicNetworkAccess, default: acls.defaultAction }).toEqual({
        mod,
        public: 'Disabled',
        default: 'Deny',
      });
      expect({ mod, ipRules: acls.ipRules ?? [], vnetRules: acls.virtualNetworkRules ?? [] }).toEqual({
        mod,
        ipRules: [],
        vnetRules: [],
      });
    }
  });

  it('Service Bus Premium (the default) has public network access disabled; Standard admits only the NAT gateway address', () => {
    requireCli();
    const sb = module('servicebus');
    expect(top.template.parameters?.serviceBusSku?.defaultValue).toBe('Premium');
    for (const sku of ['Premium', 'Standard']) {
      const values = { ...topValues, serviceBusSku: sku };
      const [ns] = resources(sb, 'Microsoft.ServiceBus/namespaces').map((r) => ({
        sku: evaluate(r.sku as Json, sb, values) as { name: string },
        ...deployed(r, sb, values)[0],
      }));
      const rules = deployedOf(sb, 'Microsoft.ServiceBus/namespaces/networkRuleSets', values);
      expect(rules.length).toBe(1);
      const rule = rules[0].properties;
      expect({
        sku,
        name: ns.sku.name,
        defaultAction: rule.defaultAction,
        trusted: rule.trustedServiceAccessEnabled,
      }).toEqual({
        sku,
        name: sku,
        defaultAction: 'Deny',
        trusted: false,
      });
      if (sku === 'Premium') {
        expect(ns.properties.publicNetworkAccess).toBe('Disabled');
        expect(rule.publicNetworkAccess).toBe('Disabled');
        expect(rule.ipRules).toEqual([]);
      } else {
        // Standard has no private endpoints: its public endpoint stays, for the VNet's NAT address only
        expect(rule.ipRules).toEqual([{ ipMask: 'network.outputs.outboundIp', action: 'Allow' }]);
      }
      expect(rule.virtualNetworkRules).toEqual([]);
    }
  });

  it('each one has a private endpoint per sub-resource the code uses, in the private endpoint subnet', () => {
    requireCli();
    const list = endpoints();
    for (const { module: mod, output, groupIds } of EXPECTED) {
      const target = `${mod}.outputs.${output}`;
      const got = list.filter((e) => e.targets.includes(target)).flatMap((e) => e.groupIds);
      expect({ target, groupIds: got.sort() }).toEqual({ target, groupIds: [...groupIds].sort() });
    }
    // each endpoint serves one resource and one sub-resource, and no other resource has one
    for (const e of list)
      expect({ e: e.name, n: e.targets.length, g: e.groupIds.length }).toEqual({ e: e.name, n: 1, g: 1 });
    expect(list.length).toBe(EXPECTED.flatMap((x) => x.groupIds).length);
    // the module outputs are the very resources (not some other id)
    const out = (mod: string, name: string) => String(module(mod).template.outputs?.[name]?.value);
    expect(out('keyvault', 'id')).toBe("[resourceId('Microsoft.KeyVault/vaults', parameters('name'))]");
    expect(out('runtime-storage', 'id')).toBe(
      "[resourceId('Microsoft.Storage/storageAccounts', parameters('name'))]",
    );
    expect(out('backup-storage', 'id')).toBe(
      "[resourceId('Microsoft.Storage/storageAccounts', parameters('name'))]",
    );
    expect(out('servicebus', 'namespaceId')).toBe(
      "[resourceId('Microsoft.ServiceBus/namespaces', parameters('name'))]",
    );
    // the subnet: its own, not delegated (the function subnet is delegated to Microsoft.App and cannot hold them)
    for (const e of list) expect(e.subnet).toBe('network.outputs.privateEndpointSubnetId');
    const net = module('network');
    const [vnet] = deployedOf(net, 'Microsoft.Network/virtualNetworks');
    const subnets = vnet.properties.subnets as Array<{ name: string; properties: Record<string, Json> }>;
    expect(String(net.template.outputs?.privateEndpointSubnetId?.value)).toMatch(/\.subnets\[2\]\.id\]$/);
    expect(subnets[2].name).toBe('snet-private-endpoints');
    expect(subnets[2].properties.delegations ?? []).toEqual([]);
    expect(subnets[2].properties.addressPrefix).toBe('10.40.3.0/24');
  });

  it('Service Bus Standard gets no private endpoint (the tier has none) and the queue trigger an always-ready instance', () => {
    requireCli();
    const values = { ...topValues, serviceBusSku: 'Standard' };
    const list = endpoints(values);
    expect(list.some((e) => e.targets.includes('servicebus.outputs.namespaceId'))).toBe(false);
    expect(list.length).toBe(5);
    expect(evaluate("[parameters('queueAlwaysReady')]", top, values)).toBe(1);
  });

  it("each privatelink zone exists, is linked to the VNet of the function app and the VMs, and holds its endpoints' records", () => {
    requireCli();
    const pe = privateEndpointsModule();
    const zones = deployedOf(pe, 'Microsoft.Network/privateDnsZones').map((z) => z.name);
    const links = deployedOf(pe, 'Microsoft.Network/privateDnsZones/virtualNetworkLinks');
    const list = endpoints();
    const needed = [...new Set(list.flatMap((e) => e.groupIds))];
    expect(zones.sort()).toEqual(needed.map((g) => ZONE[g]).sort());
    for (const g of needed) {
      const link = links.find((l) => l.name.startsWith(`${ZONE[g]}/`));
      expect({
        g,
        vnet: (link?.properties.virtualNetwork as { id: string } | undefined)?.id,
        auto: link?.properties.registrationEnabled,
      }).toEqual({
        g,
        vnet: 'network.outputs.vnetId',
        auto: false,
      });
    }
    // every endpoint registers its A record in the zone of its sub-resource
    const groups = deployedOf(pe, 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups');
    expect(groups.length).toBe(list.length);
    for (const e of list) {
      const group = groups.find((x) => x.name === `${e.name}/default`);
      const zoneIds = (
        group?.properties.privateDnsZoneConfigs as Array<{ properties: { privateDnsZoneId: string } }>
      ).map((c) => c.properties.privateDnsZoneId);
      expect({ e: e.name, zoneIds }).toEqual({
        e: e.name,
        zoneIds: [`Microsoft.Network/privateDnsZones/${ZONE[e.groupIds[0]]}`],
      });
    }
    // the linked VNet is the one holding the function subnet and the VM subnet
    expect(String(module('network').template.outputs?.vnetId?.value)).toBe(
      "[resourceId('Microsoft.Network/virtualNetworks', parameters('vnetName'))]",
    );
    expect(given(module('functionapp'), 'subnetId')).toBe('network.outputs.functionSubnetId');
    for (const vm of ['vm-uat', 'vm-prod'])
      expect(given(module(vm), 'subnetId')).toBe('network.outputs.vmSubnetId');
    // and nothing in the VM subnet's NSG stops the VMs reaching the endpoints (backups to Blob)
    const vmNsg = resources(module('network'), 'Microsoft.Network/networkSecurityGroups').find((n) =>
      String(n.name).includes('vmNsgName'),
    );
    const outboundDenies = (
      vmNsg?.properties as { securityRules: Array<{ properties: Record<string, Json> }> }
    ).securityRules.filter((r) => r.properties.direction === 'Outbound' && r.properties.access === 'Deny');
    expect(outboundDenies).toEqual([]);
  });

  it('the function app sends all outbound traffic through the VNet, and starts after the private endpoints', () => {
    requireCli();
    const fn = module('functionapp');
    const [site] = deployedOf(fn, 'Microsoft.Web/sites');
    expect(site.properties.outboundVnetRouting).toMatchObject({ allTraffic: true });
    expect((site.properties.siteConfig as Record<string, Json>).vnetRouteAllEnabled).toBe(true);
    const deployment = top.template.resources.find(
      (r) => r.type === 'Microsoft.Resources/deployments' && r.name === 'functionapp',
    );
    expect((deployment?.dependsOn as string[]).some((d) => d.includes("'private-endpoints')"))).toBe(true);
  });

  it('the deployment itself writes no data through a public endpoint (no deployment scripts; secrets through the Key Vault resource provider)', () => {
    requireCli();
    const types = new Set<string>();
    const walkTypes = (t: Template) =>
      t.resources.forEach((r) => {
        types.add(r.type);
        if (r.properties?.template) walkTypes(r.properties.template);
      });
    walkTypes(top.template);
    expect(
      [...types].filter(
        (t) => /deploymentScripts|runCommands$/i.test(t) && !/virtualMachines\/runCommands/i.test(t),
      ),
    ).toEqual([]);
    expect(types.has('Microsoft.Resources/deploymentScripts')).toBe(false);
    // the only data written are Key Vault secrets, as child resources (ARM, control plane)
    expect(types.has('Microsoft.KeyVault/vaults/secrets')).toBe(true);
  });
});

describe('settled Azure risks: scale from zero, regions, cold starts', () => {
  it('the queue trigger can wake the app: the function identity has Service Bus Data Owner on the deploy queue', () => {
    requireCli();
    const roles = module('roles');
    const owner = '090c5cfd-751d-490a-894a-3ce6f1109419';
    const a = resources(roles, 'Microsoft.Authorization/roleAssignments').filter((r) =>
      String((r.properties as Record<string, Json>).roleDefinitionId).includes('serviceBusDataOwner'),
    );
    expect(a.length).toBe(1);
    expect((roles.template.variables?.roles as Record<string, string>).serviceBusDataOwner).toBe(owner);
    expect(String(a[0].scope)).toContain("'Microsoft.ServiceBus/namespaces/queues'");
    expect(String(a[0].scope)).toContain("parameters('queueName')");
    expect(String((a[0].properties as Record<string, Json>).principalId)).toContain('userAssignedIdentities');
  });

  it('always-ready: the durable group, the http group (GitHub 10 s, Slack 3 s) and, on Service Bus Standard, the queue trigger', () => {
    requireCli();
    const fn = module('functionapp');
    const alwaysReady = (values: Record<string, Json>) =>
      (
        deployedOf(fn, 'Microsoft.Web/sites', values)[0].properties.functionAppConfig as {
          scaleAndConcurrency: { alwaysReady: Array<{ name: string; instanceCount: number }> };
        }
      ).scaleAndConcurrency.alwaysReady;
    expect(top.template.parameters?.httpAlwaysReady?.defaultValue).toBe(1);
    expect(alwaysReady(topValues)).toEqual([
      { name: 'durable', instanceCount: 1 },
      { name: 'http', instanceCount: 1 },
    ]);
    // the queue trigger's group is named after the function the code registers
    const source = readFileSync(path.join(ROOT, 'functions', 'deployQueueTrigger.ts'), 'utf8');
    const registered = /app\.serviceBusQueue\('([^']+)'/.exec(source)?.[1];
    expect(registered).toBeTruthy();
    expect(alwaysReady({ ...topValues, serviceBusSku: 'Standard', httpAlwaysReady: 0 })).toEqual([
      { name: 'durable', instanceCount: 1 },
      { name: `function:${registered}`, instanceCount: 1 },
    ]);
    // a count of 0 leaves the group out of the list
    expect(alwaysReady({ ...topValues, durableAlwaysReady: 0, httpAlwaysReady: 0 })).toEqual([]);
  });
});

describe('workbook and telemetry agree', () => {
  it('every query reads an event or metric shared/telemetry.ts sends, and each one is shown', () => {
    const wb = JSON.parse(readFileSync(path.join(INFRA, 'workbooks', 'pipeline.workbook.json'), 'utf8')) as {
      items: Array<{ content: { query?: string } }>;
    };
    const queries = wb.items.map((i) => i.content.query).filter((q): q is string => !!q);
    const used = new Set(queries.flatMap((q) => [...q.matchAll(/'(odoo_mta\.[a-z_.]+)'/g)].map((m) => m[1])));
    const known = new Set<string>([...Object.values(TELEMETRY_EVENTS), ...Object.values(TELEMETRY_METRICS)]);
    expect([...used].filter((u) => !known.has(u))).toEqual([]);
    expect([...known].filter((k) => !used.has(k))).toEqual([]);
    expect(queries.filter((q) => /customMetrics/.test(q)).length).toBeGreaterThan(0);
  });
});
