/**
 * What the embedded host offers its callers (tests, the demo, benches) to drive orchestrations on the
 * Durable Task extension (local/durable-webjobs.ts). Every method is async: each is an HTTP call to the
 * extension's management API.
 */
import type { ClientRequest, ClientResponse } from './durable-client-guard';

/** An orchestration instance as the management API reports it. */
export interface DurableStatus {
  name: string;
  instanceId: string;
  createdTime: string;
  lastUpdatedTime: string;
  input: unknown;
  output: unknown;
  runtimeStatus: string;
  customStatus: unknown;
  history?: unknown[];
}

export interface ListFilter {
  runtimeStatus?: string[];
  createdFrom?: Date;
  createdTo?: Date;
  top?: number;
  continuationToken?: string;
}

export interface HostDurable {
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
