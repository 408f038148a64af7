/**
 * Wires the real intake (functions/activities/intake.ts) to real local services: Azurite for the
 * deliveries store and ledger, a fake GitHub server behind the real Octokit adapter, and the real
 * local queue (LocalQueue#handleRestSend) behind the real Service Bus REST sender.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite, AzuriteHandle } from '../../local/azurite';
import { LocalQueue } from '../../local/queue';
import { createGitHub } from '../../shared/adapters/github';
import { createLedger } from '../../shared/adapters/ledger';
import { createDeliveriesStore } from '../../shared/adapters/deliveries';
import { LocalDeployQueueSender } from '../../shared/adapters/deploy-queue';
import { createIntake, type Intake, type IntakePorts } from '../../functions/activities/intake';
import { createLogger } from '../../shared/log';
import { EXAMPLE_REPO, webhookHeaders } from './github-events';
import { CI_APP, CI_CREATOR, startFakeGitHub, FakeGitHub } from './fake-github';
import type { IntakeSettings } from '../../shared/domain/webhook';

export const QUEUE = 'deploy-requests';

export interface Services {
  tmp: string;
  azurite: AzuriteHandle;
  github: FakeGitHub;
  queue: LocalQueue;
  queueUrl: string;
  /** REST sends received (before duplicate detection) */
  sends: Array<{ messageId?: string; sessionId?: string }>;
  /** make the queue endpoint answer this status */
  queueFailWith?: number;
  token: string;
  stop(): Promise<void>;
}

/**
 * The intake's services for the tests of one file: started before them (into the object returned now,
 * so the file can hold it in a const), stopped after them.
 */
export function intakeServicesForFile(): Services {
  const svc = {} as Services;
  beforeAll(async () => {
    await startServices(svc);
  }, 90000);
  afterAll(async () => {
    await svc.stop?.();
  });
  return svc;
}

/** `into`: an object to fill (see intakeServicesForFile); by default a new one. */
export async function startServices(into: Partial<Services> = {}): Promise<Services> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'intake-'));
  let azurite: AzuriteHandle;
  try {
    azurite = await startAzurite({ dir: path.join(tmp, 'azurite'), timeoutMs: 60000 });
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  const github = await startFakeGitHub(EXAMPLE_REPO);
  const queue = new LocalQueue({ dbPath: path.join(tmp, 'queue.db'), pollIntervalMs: 50 });
  const svc = Object.assign(into, {
    tmp,
    azurite,
    github,
    queue,
    sends: [] as Services['sends'],
    token: 'ghs_test' + Math.random().toString(36).slice(2),
  }) as Services;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (svc.queueFailWith) {
        res.writeHead(svc.queueFailWith);
        return res.end('<Error><Code>503</Code><Detail>simulated outage</Detail></Error>');
      }
      const m = /^\/([^/]+)\/messages$/.exec(req.url ?? '');
      try {
        const props = JSON.parse(String(req.headers.brokerproperties ?? '{}'));
        svc.sends.push({ messageId: props.MessageId, sessionId: props.SessionId });
      } catch {
        /* the queue answers the bad header itself */
      }
      const out = queue.handleRestSend(decodeURIComponent(m?.[1] ?? ''), {
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      res.writeHead(out.status, { 'content-type': 'application/xml' });
      res.end(out.body ?? '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  svc.queueUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  svc.stop = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    queue.close();
    await github.stop();
    await azurite.stop();
    rmSync(tmp, { recursive: true, force: true });
  };
  return svc;
}

export interface Rig {
  intake: Intake;
  ports: IntakePorts;
  scheduled: Array<{ sha: string; deadline: string }>;
  clock: { t: number };
  container: string;
  logs: string[];
}

/** The settings of the rig: GitHub's example repository, its CI (GitHub Actions) as the coverage source. */
export const RIG_SETTINGS: IntakeSettings = {
  repository: EXAMPLE_REPO,
  defaultBranch: 'master',
  triggerEvent: 'push',
  imageWorkflow: 'test',
  imageWorkflowPath: '.github/workflows/test.yml',
  coverageContext: 'coverage',
  coverageLogin: CI_CREATOR.login,
  coverageAppId: CI_APP.id,
};

/** Put `sha` on the fake GitHub's default branch (`master`), as a merge does. */
export function mergeOnDefaultBranch(github: FakeGitHub, sha: string, branch = 'master'): void {
  const head = github.refs.get(branch);
  if (!github.commits.has(sha)) github.addCommit(sha, head);
  github.refs.set(branch, sha);
}

let n = 0;
export const SECRET = 'webhook-secret-for-tests-0001';
export const PREVIOUS_SECRET = 'webhook-secret-previous-0002';

export function makeRig(svc: Services, over: Partial<IntakePorts> = {}): Rig {
  const container = `intake${process.pid}x${n++}`;
  const cc = BlobServiceClient.fromConnectionString(svc.azurite.connectionString).getContainerClient(
    container,
  );
  const scheduled: Rig['scheduled'] = [];
  const clock = { t: Date.parse('2026-11-27T12:00:00Z') };
  const logs: string[] = [];
  const ports: IntakePorts = {
    secrets: [SECRET, PREVIOUS_SECRET],
    settings: RIG_SETTINGS,
    policy: { min: 80, tolerance: 0, waitMinutes: 30 },
    gateContext: 'deploy/uat',
    imageRepository: 'odoo-mta',
    registryHost: '127.0.0.1:5000',
    github: createGitHub({ repository: EXAMPLE_REPO, baseUrl: svc.github.url, token: svc.token }),
    ledger: createLedger(cc),
    store: createDeliveriesStore(cc),
    queue: new LocalDeployQueueSender({ baseUrl: svc.queueUrl, queueName: QUEUE }),
    scheduleTimeout: async (input) => void scheduled.push(input),
    log: createLogger({ level: 'debug', sink: (line) => logs.push(line) }),
    now: () => clock.t,
    // generous: on a loaded CI machine the first copy may take seconds (production uses 8 s, under GitHub's 10 s)
    duplicateWaitMs: 60000,
    ...over,
  };
  return { intake: createIntake(ports), ports, scheduled, clock, container, logs };
}

let seq = 0;
export function deliveryId(): string {
  return `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`;
}

export function signedRequest(
  event: string,
  payload: unknown,
  opts: { id?: string; secret?: string; headers?: Record<string, string | undefined> } = {},
): HttpRequest {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const h: Record<string, string> = {
    ...webhookHeaders(event, opts.id ?? deliveryId(), body, opts.secret ?? SECRET),
  };
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    if (v === undefined) delete h[k];
    else h[k] = v;
  }
  return new HttpRequest({
    method: 'POST',
    url: 'http://127.0.0.1/api/github/webhook',
    headers: h,
    body: { string: body },
  });
}

export function ctx(): InvocationContext {
  return new InvocationContext({ functionName: 'githubWebhook', logHandler: () => undefined });
}
