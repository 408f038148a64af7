/**
 * VM control through the real @azure/arm-compute SDK against a fake ARM server speaking ARM's protocol
 * (auth, api-version, async operations).
 */
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { createVmControl, parseVmId, VmControl } from '../../shared/adapters/vm';
import { errorCode, isRetryable } from '../../shared/domain/errors';
import { FakeArm, startFakeArm } from '../support/fake-arm';

let arm: FakeArm;
let vm: VmControl;
const credential = (token: () => string): TokenCredential => ({
  getToken: async (): Promise<AccessToken> => ({ token: token(), expiresOnTimestamp: Date.now() + 3600_000 }),
});

beforeAll(async () => {
  arm = await startFakeArm();
  vm = createVmControl({
    endpoint: arm.endpoint,
    credential: credential(() => arm.token),
    pollIntervalMs: 20,
  });
});
afterAll(async () => {
  await arm?.stop();
});

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return errorCode(e);
  }
  return 'RESOLVED';
}

describe('VmControl (ARM)', () => {
  test('power state of running and deallocated VMs', async () => {
    const a = arm.addVm({ name: 'vm-uat', powerState: 'running' });
    const b = arm.addVm({ name: 'vm-uat-2', powerState: 'deallocated' });
    expect(await vm.powerState(a)).toBe('running');
    expect(await vm.powerState(b)).toBe('deallocated');
  });

  test('start a deallocated VM: 202, async operation polled until Succeeded, then running', async () => {
    const id = arm.addVm({ name: 'vm-sleepy', powerState: 'deallocated' });
    arm.requests.length = 0;
    await vm.start(id, { timeoutMs: 10000 });
    expect(await vm.powerState(id)).toBe('running');
    expect(arm.requests.filter((r) => r.startsWith('POST'))).toEqual([`POST ${id}/start`]);
    expect(arm.requests.filter((r) => r.includes('/operations/')).length).toBeGreaterThanOrEqual(3);
    // already running: no second start
    arm.requests.length = 0;
    await vm.start(id);
    expect(arm.requests.some((r) => r.startsWith('POST'))).toBe(false);
  });

  test('a failed start operation is ARM.START_FAILED; a start that never finishes is ARM.TIMEOUT', async () => {
    const id = arm.addVm({ name: 'vm-broken', powerState: 'deallocated' });
    arm.failNextStart = true;
    const err = await vm.start(id, { timeoutMs: 10000 }).catch((e) => e);
    expect(errorCode(err)).toBe('ARM.START_FAILED');
    expect(err.message).toContain('vm-broken');

    const slow = arm.addVm({ name: 'vm-slow', powerState: 'deallocated' });
    arm.pollsUntilDone = 1000;
    try {
      expect(await codeOf(vm.start(slow, { timeoutMs: 300 }))).toBe('ARM.TIMEOUT');
    } finally {
      arm.pollsUntilDone = 2;
    }
  });

  test('snapshots every data disk (incremental copy) and returns their ids', async () => {
    const id = arm.addVm({
      name: 'vm-prod',
      dataDisks: [
        { lun: 0, name: 'prod-data' },
        { lun: 1, name: 'prod-files' },
      ],
    });
    const ids = await vm.snapshotDataDisks(id, 'pre-deploy-2-0-0');
    expect(ids).toEqual([
      '/subscriptions/sub-1/resourceGroups/rg-odoo/providers/Microsoft.Compute/snapshots/pre-deploy-2-0-0-lun0',
      '/subscriptions/sub-1/resourceGroups/rg-odoo/providers/Microsoft.Compute/snapshots/pre-deploy-2-0-0-lun1',
    ]);
    const snap = arm.snapshots.get(ids[1].toLowerCase()) as {
      location: string;
      properties: Record<string, unknown>;
      tags: Record<string, string>;
    };
    expect(snap.location).toBe('westeurope');
    expect(snap.properties).toMatchObject({
      incremental: true,
      provisioningState: 'Succeeded',
      creationData: { createOption: 'Copy', sourceResourceId: expect.stringMatching(/\/disks\/prod-files$/) },
    });
    expect(snap.tags).toMatchObject({ vm: 'vm-prod', lun: '1' });
    expect(await vm.snapshotDataDisks(arm.addVm({ name: 'vm-nodisk', dataDisks: [] }), 'x')).toEqual([]);
  });

  test('errors: unknown VM, bad id, bad token, bad snapshot name, throttling retried by the SDK', async () => {
    expect(
      await codeOf(
        vm.powerState(
          '/subscriptions/sub-1/resourceGroups/rg-odoo/providers/Microsoft.Compute/virtualMachines/ghost',
        ),
      ),
    ).toBe('ARM.NOT_FOUND');
    expect(await codeOf(vm.powerState('/subscriptions/x/vm'))).toBe('ARM.INVALID');
    expect(() => parseVmId('nope')).toThrow(/ARM.INVALID/);
    const id = arm.addVm({ name: 'vm-auth' });
    const wrong = createVmControl({
      endpoint: arm.endpoint,
      credential: credential(() => 'wrong'),
      pollIntervalMs: 20,
    });
    expect(await codeOf(wrong.powerState(id))).toBe('ARM.AUTH_FAILED');
    expect(await codeOf(vm.snapshotDataDisks(id, 'bad name!'))).toBe('ARM.INVALID');
    arm.throttleNext = 1;
    expect(await vm.powerState(id)).toBe('running');
  });

  test('plain http is refused except on loopback; unreachable ARM is retryable', async () => {
    expect(() =>
      createVmControl({ endpoint: 'http://management.example.com', credential: credential(() => 't') }),
    ).toThrow(/ARM.INVALID/);
    expect(() => createVmControl({ endpoint: 'not a url', credential: credential(() => 't') })).toThrow(
      /ARM.INVALID/,
    );
    const down = createVmControl({
      endpoint: 'http://127.0.0.1:9',
      credential: credential(() => 't'),
      pollIntervalMs: 20,
      maxRetries: 0,
    });
    const err = await down
      .powerState('/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v')
      .catch((e) => e);
    expect(errorCode(err)).toBe('ARM.UNAVAILABLE');
    expect(isRetryable(err)).toBe(true);
  });
});
