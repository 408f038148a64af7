/**
 * What the embedded host offers its callers (tests, the demo, benches) to drive orchestrations, whichever
 * engine runs them (`LOCAL_DURABLE_ENGINE`): `home` (local/durable, SQLite) or `webjobs` (the real Durable
 * Task extension, local/durable-webjobs.ts). Every method is async: on the real engine each is an HTTP
 * call to the extension's management API.
 */
import type { DurableEngine, DurableStatus } from './durable/engine';
import type { ClientRequest, ClientResponse } from './durable/client-api';

export type { DurableStatus };

export type DurableEngineKind = 'home' | 'webjobs';

export interface ListFilter {
  runtimeStatus?: string[];
  createdFrom?: Date;
  createdTo?: Date;
  top?: number;
  continuationToken?: string;
}

export interface HostDurable {
  readonly kind: DurableEngineKind;
  startNew(name: string, opts?: { instanceId?: string; input?: unknown }): Promise<string>;
  /** undefined: no such instance */
  getStatus(
    instanceId: string,
    opts?: { showHistory?: boolean; showInput?: boolean },
  ): Promise<DurableStatus | undefined>;
  listInstances(filter?: ListFilter): Promise<{ instances: DurableStatus[]; continuationToken?: string }>;
  raiseEvent(
    instanceId: string,
    eventName: string,
    data: unknown,
  ): Promise<'accepted' | 'not-found' | 'gone'>;
  terminate(instanceId: string, reason: string): Promise<'accepted' | 'not-found' | 'gone'>;
  /** deletes a finished instance; the number deleted (0 or 1) */
  purge(instanceId: string): Promise<number>;
  /** the final status (Completed, Failed, Terminated); rejects with DURABLE.WAIT_TIMEOUT after timeoutMs */
  waitForCompletion(instanceId: string, timeoutMs?: number): Promise<DurableStatus>;
  /** the binding data a `df.input.durableClient()` input receives, its rpcBaseUrl being `rpcBaseUrl` */
  clientData(rpcBaseUrl: string): Record<string, unknown>;
  /** serves one request of the durable client HTTP API (path relative to …/durabletask/) */
  handleClientRequest(req: ClientRequest): Promise<ClientResponse>;
}

/** The home-made engine behind the same async surface. */
export function homeDurable(engine: DurableEngine): HostDurable {
  return {
    kind: 'home',
    startNew: (name, opts) => engine.startNew(name, opts),
    getStatus: async (id, opts) => engine.getStatus(id, opts),
    listInstances: async (filter) => engine.listInstances(filter),
    raiseEvent: (id, name, data) => engine.raiseEvent(id, name, data),
    terminate: (id, reason) => engine.terminate(id, reason),
    purge: async (id) => engine.purge(id),
    waitForCompletion: (id, timeoutMs) => engine.waitForCompletion(id, timeoutMs),
    clientData: (rpc) => engine.clientData(rpc),
    handleClientRequest: (req) => engine.handleClientRequest(req),
  };
}
