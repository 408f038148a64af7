/**
 * What the deployUat end-to-end tests share: the sandbox UAT VM (real sshd, dockerd, registry,
 * PostgreSQL and the real odoo-ops; only Odoo is a stand-in), Azurite (backups + ledger + logs), and the
 * outside services the pipeline talks to, as local HTTP servers speaking their real protocols:
 *  - "GitHub": ONE base URL (GITHUB_API_URL) in front of the two fakes the pipeline's adapters need —
 *    statuses/check-runs/contents for the coverage gate (fake-github) and Deployments + compare for the
 *    deploy notifier (fake-github-deployments);
 *  - Slack: an incoming webhook (fake-slack);
 *  - Blob: a pass-through HTTP front to the real Azurite, which can make the backups container read-only
 *    for the pipeline (writes answered 403 AuthorizationPermissionMismatch, as Azure answers an identity
 *    that only has a reader role) — the "backup upload fails" case, with everything else still real.
 * Merges are real GitHub push payloads (@octokit/webhooks-examples), signed like GitHub signs them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startAzurite, type AzuriteHandle } from '../../local/azurite';
import { deployInstanceId } from '../../shared/domain/coverage-gate';
import { BackupStore } from '../../shared/adapters/backup-store';
import { createLedger } from '../../shared/adapters/ledger';
import { BlobServiceClient } from '@azure/storage-blob';
import {
  startSandbox,
  sandboxSettings,
  type ReleaseName,
  type Sandbox,
  type SandboxVm,
  SANDBOX_RELEASES,
} from '../support/sandbox';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github';
import { startFakeGitHubDeployments, type FakeGitHubDeployments } from '../support/fake-github-deployments';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack';
import { EXAMPLE_REPO, pushTo, webhookHeaders } from '../support/github-events';

export const WEBHOOK_SECRET = `e2e-webhook-secret-${Math.random().toString(36).slice(2)}`;

export interface Front {
  url: string;
  stop(): Promise<void>;
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
function closer(server: http.Server): () => Promise<void> {
  return () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
}

/** Forward a request unchanged (method, path, headers, streamed body) to `target`. */
function forward(req: http.IncomingMessage, res: http.ServerResponse, target: string): void {
  const t = new URL(target);
  const out = http.request(
    {
      host: t.hostname,
      port: t.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: t.host },
    },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  out.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`front: ${e.message}`);
  });
  req.pipe(out);
}

/** One GitHub API base URL in front of the gate's fake GitHub and the Deployments fake. */
export async function startGitHubFront(gate: FakeGitHub, deployments: FakeGitHubDeployments): Promise<Front> {
  const server = http.createServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    forward(
      req,
      res,
      /^\/repos\/[^/]+\/[^/]+\/(deployments|compare)(\/|$)/.test(p) ? deployments.url : gate.url,
    );
  });
  return { url: await listen(server), stop: closer(server) };
}

export interface BlobFront extends Front {
  connectionString: string;
  /** containers whose blob writes are refused (403) */
  readOnly: Set<string>;
  refused: number;
}

/** A pass-through front to Azurite; containers in `readOnly` refuse writes like Azure refuses a reader. */
export async function startBlobFront(azurite: AzuriteHandle): Promise<BlobFront> {
  const target = new URL(azurite.blobEndpoint);
  const front = { readOnly: new Set<string>(), refused: 0 } as BlobFront;
  const server = http.createServer((req, res) => {
    const parts = new URL(req.url ?? '/', 'http://x').pathname.split('/').filter(Boolean); // account/container/blob…
    if (req.method !== 'GET' && req.method !== 'HEAD' && parts.length >= 3 && front.readOnly.has(parts[1])) {
      front.refused++;
      req.resume();
      const body =
        '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This request is not authorized to perform this operation using this permission.</Message></Error>';
      res.writeHead(403, {
        'content-type': 'application/xml',
        'x-ms-error-code': 'AuthorizationPermissionMismatch',
      });
      return void res.end(body);
    }
    forward(req, res, target.origin);
  });
  front.url = await listen(server);
  front.stop = closer(server);
  front.connectionString = azurite.connectionString.replace(
    /BlobEndpoint=[^;]+/,
    `BlobEndpoint=${front.url}${target.pathname.replace(/\/$/, '')}`,
  );
  return front;
}

export interface DeployRig {
  sb: Sandbox;
  uat: SandboxVm;
  dir: string;
  azurite: AzuriteHandle;
  blob: BlobFront;
  gate: FakeGitHub;
  ghd: FakeGitHubDeployments;
  github: Front;
  slack: FakeSlack;
  backups: BackupStore;
  ledger: ReturnType<typeof createLedger>;
  /** the pipeline settings of the host (sandbox + fakes) */
  env(): Record<string, string>;
  /** make a merge of `release` (a new commit) visible to "GitHub" and return its sha and deploy id */
  commit(
    release: ReleaseName,
    coverage?: string,
  ): { sha: string; version: string; id: string; image: string };
  stop(): Promise<void>;
}

let shaSeq = 0;
/** a fresh 40-hex commit id, different on every call and every run (random first: short shas differ too) */
export function newSha(): string {
  return (randomBytes(8).toString('hex') + (++shaSeq).toString(16).padStart(4, '0') + Date.now().toString(16))
    .padEnd(40, '0')
    .slice(0, 40);
}

export async function startDeployRig(): Promise<DeployRig> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'deploy-e2e-'));
  const stops: Array<() => Promise<unknown>> = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  };
  try {
    const sb = await startSandbox({ vms: ['uat'] });
    stops.push(() => sb.stop());
    const azurite = await startAzurite({ dir: path.join(dir, 'azurite'), timeoutMs: 60000 });
    stops.push(() => azurite.stop());
    const blob = await startBlobFront(azurite);
    stops.push(() => blob.stop());
    const gate = await startFakeGitHub(EXAMPLE_REPO);
    stops.push(() => gate.stop());
    const ghd = await startFakeGitHubDeployments(EXAMPLE_REPO);
    stops.push(() => ghd.stop());
    const github = await startGitHubFront(gate, ghd);
    stops.push(() => github.stop());
    const slack = await startFakeSlack();
    stops.push(() => slack.stop());
    const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const uat = sb.vm('uat');
    const rig: DeployRig = {
      sb,
      uat,
      dir,
      azurite,
      blob,
      gate,
      ghd,
      github,
      slack,
      backups: new BackupStore({ connectionString: azurite.connectionString, container: 'backups' }),
      ledger: createLedger(service.getContainerClient('ledger')),
      env: () => ({
        ...sandboxSettings(sb),
        BACKUP_STORAGE_CONNECTION: blob.connectionString,
        GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
        GITHUB_REPOSITORY: EXAMPLE_REPO,
        GITHUB_API_URL: github.url,
        GITHUB_TOKEN: ghd.token,
        GITHUB_DEFAULT_BRANCH: 'master',
        GITHUB_TRIGGER_EVENT: 'push',
        WEBHOOK_DUPLICATE_WAIT_SECONDS: '60',
        SLACK_WEBHOOK_URL: slack.webhookUrl,
        LOG_LEVEL: 'warn',
        HEALTH_TIMEOUT_SECONDS: '30',
        HEALTH_KEY_URLS: '/web/health',
        IMAGE_WAIT_MINUTES: '0',
        MIN_FREE_DISK_GB: '0.1',
        DEPLOY_RETRY_FIRST_SECONDS: '0.5',
        DEPLOY_RETRY_ATTEMPTS: '3',
        VM_JOB_POLL_SECONDS: '1',
      }),
      commit(release, coverage = '88.0%') {
        const sha = newSha();
        const { version } = SANDBOX_RELEASES[release];
        gate.setVersion(sha, version);
        gate.setCoverage(sha, coverage);
        return { sha, version, id: deployInstanceId('uat', version, sha), image: sb.image(release, 'uat') };
      },
      stop: stopAll,
    };
    return rig;
  } catch (e) {
    await stopAll();
    throw e;
  }
}

let delivery = 0;
/** POST a signed push of `sha` to master to the host's webhook, as GitHub delivers it. */
export async function pushWebhook(
  baseUrl: string,
  sha: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = JSON.stringify(pushTo(sha, 'master'));
  const id = `e2e-${process.pid}-${++delivery}-${sha.slice(0, 8)}`;
  const res = await fetch(`${baseUrl}/api/github/webhook`, {
    method: 'POST',
    headers: webhookHeaders('push', id, body, WEBHOOK_SECRET),
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export { sleep, until } from '../support/until';

/** Rows of the stand-in's update log (one per module updated) for an app version. */
export async function updatesOf(vm: SandboxVm, version: string): Promise<number> {
  const r = await vm.ops(
    `psql -X -At -c "SELECT count(*) FROM standin_update_log WHERE app_version = '${version}'"`,
  );
  if (r.code !== 0) throw new Error(`reading standin_update_log failed: ${r.stderr}`);
  return Number(r.stdout.toString().trim());
}

/** odoo-ops history lines of the VM (what it did, in order). */
export async function opsHistory(
  vm: SandboxVm,
): Promise<Array<{ verb: string; image?: string; ok?: boolean }>> {
  const r = await vm.ssh('cat "$ODOO_OPS_DIR/state/history.jsonl" 2>/dev/null || true');
  return r.stdout
    .toString()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { verb: string; image?: string; ok?: boolean });
}
