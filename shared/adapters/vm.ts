/**
 * VM control through Azure Resource Manager (`@azure/arm-compute`): power state, start a deallocated
 * VM and wait (ARM long-running operation), incremental snapshots of the data disks.
 *
 * Behind the `VmControl` interface; tests run it against test/support/fake-arm.ts, a node:http server
 * answering like ARM. `endpoint` is ARM_ENDPOINT (https://management.azure.com in Azure). An http://
 * endpoint is accepted only on loopback (the local fake): the Azure SDK refuses to send a bearer token
 * over plain HTTP, so for loopback the token is attached by a small policy instead.
 */
import type { TokenCredential } from '@azure/core-auth';
import { ComputeManagementClient } from '@azure/arm-compute';
import { PipelineError } from '../domain/errors';
import { Logger } from '../log';

export type PowerState =
  | 'running'
  | 'deallocated'
  | 'stopped'
  | 'starting'
  | 'stopping'
  | 'deallocating'
  | 'unknown';

export interface VmControl {
  powerState(resourceId: string): Promise<PowerState>;
  /** start the VM (no-op when running) and wait until it runs */
  start(resourceId: string, o?: { timeoutMs?: number }): Promise<void>;
  /** incremental snapshots of every data disk, named `<name>-lun<N>`; returns their resource ids */
  snapshotDataDisks(resourceId: string, name: string): Promise<string[]>;
}

export interface VmControlOptions {
  endpoint?: string;
  credential?: TokenCredential;
  /** LRO polling interval (default 5 s; ARM's Retry-After wins when larger) */
  pollIntervalMs?: number;
  /** SDK retries of throttled/failed requests (default the SDK's: 3) */
  maxRetries?: number;
  log?: Logger;
}

const VM_ID =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/virtualMachines\/([^/]+)$/i;
const SNAP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,70}$/;

export function parseVmId(resourceId: string): {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
} {
  const m = VM_ID.exec(resourceId ?? '');
  if (!m)
    throw new PipelineError(
      'ARM.INVALID',
      `"${resourceId}" is not a VM resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<name>)`,
    );
  return { subscriptionId: m[1], resourceGroup: m[2], name: m[3] };
}

function armError(err: unknown, what: string): PipelineError {
  if (err instanceof PipelineError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string; name?: string };
  const status = e?.statusCode;
  const detail = `${e?.code ? e.code + ': ' : ''}${e?.message ?? String(err)}`.slice(0, 300);
  if (e?.name === 'AbortError') return new PipelineError('ARM.TIMEOUT', `${what}: timed out`, false);
  if (status === 404) return new PipelineError('ARM.NOT_FOUND', `${what}: not found (${detail})`);
  if (status === 401) return new PipelineError('ARM.AUTH_FAILED', `${what}: unauthorized (${detail})`);
  if (status === 403)
    return new PipelineError('ARM.FORBIDDEN', `${what}: the identity lacks permission (${detail})`);
  if (status === 409) return new PipelineError('ARM.CONFLICT', `${what}: conflict (${detail})`, true);
  if (status === 429 || (status && status >= 500) || !status)
    return new PipelineError('ARM.UNAVAILABLE', `${what}: ${detail}`, true);
  return new PipelineError('ARM.FAILED', `${what}: ${detail}`);
}

function isLoopbackHttp(endpoint: string): boolean {
  const u = new URL(endpoint);
  return (
    u.protocol === 'http:' &&
    (/^127\.\d+\.\d+\.\d+$/.test(u.hostname) || u.hostname === 'localhost' || u.hostname === '[::1]')
  );
}

class ArmVmControl implements VmControl {
  private readonly clients = new Map<string, ComputeManagementClient>();
  private readonly endpoint: string;
  private readonly credential: TokenCredential;

  constructor(private readonly o: VmControlOptions) {
    this.endpoint = (o.endpoint || 'https://management.azure.com').replace(/\/$/, '');
    let u: URL;
    try {
      u = new URL(this.endpoint);
    } catch {
      throw new PipelineError('ARM.INVALID', `ARM endpoint "${o.endpoint}" is not a URL`);
    }
    if (u.protocol !== 'https:' && !isLoopbackHttp(this.endpoint))
      throw new PipelineError(
        'ARM.INVALID',
        `ARM endpoint must be https (plain http only on loopback): ${this.endpoint}`,
      );
    if (o.credential) this.credential = o.credential;
    else {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
      this.credential = new DefaultAzureCredential();
    }
  }

  private client(subscriptionId: string): ComputeManagementClient {
    let c = this.clients.get(subscriptionId);
    if (c) return c;
    const loopback = isLoopbackHttp(this.endpoint);
    c = new ComputeManagementClient(this.credential, subscriptionId, {
      endpoint: this.endpoint,
      $host: this.endpoint,
      ...(loopback ? { allowInsecureConnection: true } : {}),
      ...(this.o.maxRetries !== undefined ? { retryOptions: { maxRetries: this.o.maxRetries } } : {}),
    });
    if (loopback) {
      const credential = this.credential;
      const scope = `${this.endpoint}/.default`;
      c.pipeline.removePolicy({ name: 'bearerTokenAuthenticationPolicy' });
      c.pipeline.addPolicy(
        {
          name: 'loopbackBearer',
          async sendRequest(request, next) {
            const token = await credential.getToken(scope);
            if (token) request.headers.set('authorization', `Bearer ${token.token}`);
            request.allowInsecureConnection = true;
            return next(request);
          },
        },
        { phase: 'Sign' },
      );
    }
    this.clients.set(subscriptionId, c);
    return c;
  }

  async powerState(resourceId: string): Promise<PowerState> {
    const { subscriptionId, resourceGroup, name } = parseVmId(resourceId);
    let view;
    try {
      view = await this.client(subscriptionId).virtualMachines.instanceView(resourceGroup, name);
    } catch (err) {
      throw armError(err, `power state of ${name}`);
    }
    const code = view.statuses?.map((s) => s.code ?? '').find((c) => c.startsWith('PowerState/'));
    const state = code?.slice('PowerState/'.length);
    const known: PowerState[] = ['running', 'deallocated', 'stopped', 'starting', 'stopping', 'deallocating'];
    return known.includes(state as PowerState) ? (state as PowerState) : 'unknown';
  }

  async start(resourceId: string, o: { timeoutMs?: number } = {}): Promise<void> {
    const { subscriptionId, resourceGroup, name } = parseVmId(resourceId);
    const before = await this.powerState(resourceId);
    if (before === 'running') return;
    const timeoutMs = o.timeoutMs ?? 10 * 60_000;
    const started = Date.now();
    this.o.log?.info('starting VM', { vm: name, from: before });
    try {
      await this.client(subscriptionId).virtualMachines.beginStartAndWait(resourceGroup, name, {
        updateIntervalInMs: this.o.pollIntervalMs ?? 5000,
        abortSignal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const e = err as { name?: string; message?: string };
      if (e?.name === 'AbortError' || /aborted/i.test(e?.message ?? ''))
        throw new PipelineError('ARM.TIMEOUT', `VM ${name} did not start within ${timeoutMs} ms`, true);
      if (
        /long running operation failed|failed|canceled/i.test(e?.message ?? '') &&
        !(err as { statusCode?: number }).statusCode
      )
        throw new PipelineError('ARM.START_FAILED', `starting VM ${name} failed: ${e?.message}`);
      throw armError(err, `start ${name}`);
    }
    const after = await this.powerState(resourceId);
    if (after !== 'running')
      throw new PipelineError(
        'ARM.START_FAILED',
        `VM ${name} reported ${after} after its start operation completed`,
      );
    this.o.log?.info('VM running', { vm: name, ms: Date.now() - started });
  }

  async snapshotDataDisks(resourceId: string, snapshotName: string): Promise<string[]> {
    const { subscriptionId, resourceGroup, name } = parseVmId(resourceId);
    if (!SNAP_NAME.test(snapshotName ?? ''))
      throw new PipelineError('ARM.INVALID', `invalid snapshot name "${snapshotName}"`);
    const client = this.client(subscriptionId);
    let vm;
    try {
      vm = await client.virtualMachines.get(resourceGroup, name);
    } catch (err) {
      throw armError(err, `read VM ${name}`);
    }
    const disks = vm.storageProfile?.dataDisks ?? [];
    const ids: string[] = [];
    for (const d of disks) {
      const diskId = d.managedDisk?.id;
      if (!diskId)
        throw new PipelineError('ARM.FAILED', `data disk lun ${d.lun} of ${name} is not a managed disk`);
      const snapName = `${snapshotName}-lun${d.lun}`;
      try {
        const snap = await client.snapshots.beginCreateOrUpdateAndWait(
          resourceGroup,
          snapName,
          {
            location: vm.location,
            incremental: true,
            creationData: { createOption: 'Copy', sourceResourceId: diskId },
            tags: { vm: name, lun: String(d.lun), createdBy: 'odoo-mta-pipeline' },
          },
          { updateIntervalInMs: this.o.pollIntervalMs ?? 5000 },
        );
        if (snap.provisioningState && snap.provisioningState !== 'Succeeded')
          throw new PipelineError('ARM.FAILED', `snapshot ${snapName} ended ${snap.provisioningState}`);
        ids.push(
          snap.id ??
            `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Compute/snapshots/${snapName}`,
        );
      } catch (err) {
        throw armError(err, `snapshot ${snapName} of ${name}`);
      }
    }
    this.o.log?.info('data disks snapshotted', { vm: name, snapshots: ids.length });
    return ids;
  }
}

export function createVmControl(o: VmControlOptions = {}): VmControl {
  return new ArmVmControl(o);
}
