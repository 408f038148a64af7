/**
 * A fake Azure Resource Manager (node:http) answering the calls the VM adapter makes, with ARM's
 * protocol: bearer auth, `api-version`, ARM error bodies, long-running operations (202/201 +
 * Azure-AsyncOperation + Location, polled until Succeeded/Failed):
 *   GET  .../virtualMachines/{vm}                 VM model (location, data disks)
 *   GET  .../virtualMachines/{vm}/instanceView    statuses incl. PowerState/...
 *   POST .../virtualMachines/{vm}/start           202 + async operation (VM: starting → running)
 *   PUT  .../snapshots/{name}                     201 + async operation (Creating → Succeeded)
 *   GET  .../snapshots/{name}                     the snapshot
 *   GET  /subscriptions/{s}/providers/Microsoft.Compute/locations/{l}/operations/{id}
 * There is no local ARM; this fake exists because Azure cannot be reached from tests.
 */
import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';

export interface FakeVm {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  powerState: 'running' | 'deallocated' | 'stopped' | 'starting';
  dataDisks: { lun: number; name: string }[];
}

export interface FakeArm {
  endpoint: string;
  token: string;
  vms: Map<string, FakeVm>;
  snapshots: Map<string, Record<string, unknown>>;
  requests: string[];
  addVm(vm: Partial<FakeVm> & { name: string }): string;
  /** how many polls an operation stays InProgress (default 2) */
  pollsUntilDone: number;
  /** make the next start operation end Failed */
  failNextStart: boolean;
  /** answer the next N requests with 429 (Retry-After: 0) */
  throttleNext: number;
  stop(): Promise<void>;
}

interface Operation {
  polls: number;
  fail: boolean;
  onDone: () => void;
}

export async function startFakeArm(o: { token?: string } = {}): Promise<FakeArm> {
  const token = o.token ?? 'fake-arm-token-' + randomUUID();
  const ops = new Map<string, Operation>();
  const state: FakeArm = {
    endpoint: '',
    token,
    vms: new Map(),
    snapshots: new Map(),
    requests: [],
    pollsUntilDone: 2,
    failNextStart: false,
    throttleNext: 0,
    addVm(vm) {
      const full: FakeVm = {
        subscriptionId: 'sub-1',
        resourceGroup: 'rg-odoo',
        location: 'westeurope',
        powerState: 'running',
        dataDisks: [{ lun: 0, name: `${vm.name}-data` }],
        ...vm,
      };
      const id = `/subscriptions/${full.subscriptionId}/resourceGroups/${full.resourceGroup}/providers/Microsoft.Compute/virtualMachines/${full.name}`;
      state.vms.set(id.toLowerCase(), full);
      return id;
    },
    stop: async () => undefined,
  };

  const send = (
    res: ServerResponse,
    status: number,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, {
      'content-type': 'application/json',
      'x-ms-request-id': randomUUID(),
      ...headers,
    });
    res.end(body === undefined ? '' : JSON.stringify(body));
  };
  const armError = (res: ServerResponse, status: number, code: string, message: string) =>
    send(res, status, { error: { code, message } });

  const newOp = (sub: string, location: string, op: Operation) => {
    const id = randomUUID();
    ops.set(id, op);
    const url = `${state.endpoint}/subscriptions/${sub}/providers/Microsoft.Compute/locations/${location}/operations/${id}?api-version=2024-07-01`;
    return { 'azure-asyncoperation': url, location: url, 'retry-after': '0' };
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      state.requests.push(`${req.method} ${u.pathname}`);
      if (req.headers.authorization !== `Bearer ${token}`)
        return armError(res, 401, 'AuthenticationFailed', 'missing or invalid bearer token');
      if (!u.searchParams.get('api-version'))
        return armError(res, 400, 'MissingApiVersionParameter', 'api-version is required');
      if (state.throttleNext > 0) {
        state.throttleNext--;
        return send(
          res,
          429,
          { error: { code: 'TooManyRequests', message: 'throttled' } },
          { 'retry-after': '0' },
        );
      }
      const p = u.pathname;
      let m =
        /^\/subscriptions\/([^/]+)\/providers\/Microsoft\.Compute\/locations\/([^/]+)\/operations\/([^/]+)$/i.exec(
          p,
        );
      if (m && req.method === 'GET') {
        const op = ops.get(m[3]);
        if (!op) return armError(res, 404, 'NotFound', 'operation not found');
        if (op.polls-- > 0)
          return send(res, 200, { name: m[3], status: 'InProgress' }, { 'retry-after': '0' });
        if (op.fail)
          return send(res, 200, {
            name: m[3],
            status: 'Failed',
            error: { code: 'OSProvisioningTimedOut', message: 'the VM did not start' },
          });
        op.onDone();
        return send(res, 200, { name: m[3], status: 'Succeeded' });
      }
      m =
        /^(\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/virtualMachines\/([^/]+))(\/instanceView|\/start)?$/i.exec(
          p,
        );
      if (m) {
        const vm = state.vms.get(m[1].toLowerCase());
        if (!vm)
          return armError(
            res,
            404,
            'ResourceNotFound',
            `The Resource 'Microsoft.Compute/virtualMachines/${m[4]}' under resource group '${m[3]}' was not found.`,
          );
        const sub = m[2];
        const diskId = (d: { name: string }) =>
          `/subscriptions/${sub}/resourceGroups/${vm.resourceGroup}/providers/Microsoft.Compute/disks/${d.name}`;
        if (!m[5] && req.method === 'GET') {
          return send(res, 200, {
            id: m[1],
            name: vm.name,
            type: 'Microsoft.Compute/virtualMachines',
            location: vm.location,
            properties: {
              provisioningState: 'Succeeded',
              storageProfile: {
                dataDisks: vm.dataDisks.map((d) => ({
                  lun: d.lun,
                  name: d.name,
                  createOption: 'Attach',
                  managedDisk: { id: diskId(d) },
                })),
              },
            },
          });
        }
        if (m[5] === '/instanceView' && req.method === 'GET') {
          return send(res, 200, {
            statuses: [
              { code: 'ProvisioningState/succeeded', level: 'Info' },
              { code: `PowerState/${vm.powerState}`, level: 'Info' },
            ],
          });
        }
        if (m[5] === '/start' && req.method === 'POST') {
          const fail = state.failNextStart;
          state.failNextStart = false;
          vm.powerState = 'starting';
          const headers = newOp(sub, vm.location, {
            polls: state.pollsUntilDone,
            fail,
            onDone: () => {
              vm.powerState = 'running';
            },
          });
          return send(res, 202, undefined, headers);
        }
        return armError(res, 405, 'MethodNotAllowed', `${req.method} not supported here`);
      }
      m =
        /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/snapshots\/([^/]+)$/i.exec(
          p,
        );
      if (m) {
        const key = p.toLowerCase();
        if (req.method === 'PUT') {
          const input = JSON.parse(body || '{}') as {
            location?: string;
            properties?: {
              creationData?: { createOption?: string; sourceResourceId?: string };
              incremental?: boolean;
            };
            tags?: Record<string, string>;
          };
          const src = input.properties?.creationData?.sourceResourceId ?? '';
          if (input.properties?.creationData?.createOption !== 'Copy' || !/\/disks\//.test(src))
            return armError(res, 400, 'InvalidParameter', 'creationData must copy a managed disk');
          const snap = {
            id: p,
            name: m[3],
            location: input.location,
            tags: input.tags,
            properties: { ...input.properties, provisioningState: 'Creating' },
          };
          state.snapshots.set(key, snap);
          const headers = newOp(m[1], input.location ?? 'westeurope', {
            polls: state.pollsUntilDone,
            fail: false,
            onDone: () => {
              (snap.properties as { provisioningState: string }).provisioningState = 'Succeeded';
            },
          });
          return send(res, 201, snap, headers);
        }
        if (req.method === 'GET') {
          const snap = state.snapshots.get(key);
          return snap ? send(res, 200, snap) : armError(res, 404, 'ResourceNotFound', 'snapshot not found');
        }
      }
      return armError(res, 404, 'InvalidResourceType', `no fake for ${req.method} ${p}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  state.stop = () => new Promise<void>((r) => server.close(() => r()));
  return state;
}
