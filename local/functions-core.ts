/**
 * Stand-in for the `@azure/functions-core` module that the real Functions worker injects.
 * `@azure/functions` calls `registerFunction(metadata, handler)` for every `app.http(...)`,
 * `app.serviceBusQueue(...)`, `df.app.orchestration(...)`, `df.app.activity(...)`; we record them so
 * the embedded host can serve exactly what the app registers (no hand-kept route table).
 * Under jest it is mapped by `moduleNameMapper`; in plain Node `local/registrations.ts` hooks
 * `Module._load`.
 */
export interface CoreBinding {
  type: string;
  direction: 'in' | 'out' | 'inout' | string;
  [key: string]: unknown;
}

export interface CoreFunctionMetadata {
  name: string;
  bindings: Record<string, CoreBinding>;
  retryOptions?: unknown;
}

export type CoreHandler = (...args: any[]) => unknown;

export interface RegisteredFunction {
  metadata: CoreFunctionMetadata;
  handler: CoreHandler;
}

interface CoreState {
  functions: Map<string, RegisteredFunction>;
  hooks: Map<string, Array<(ctx: unknown) => unknown>>;
  logSink?: (level: string, category: string, message: string) => void;
}

const KEY = Symbol.for('odoo-mta.functions-core');
function state(): CoreState {
  const g = globalThis as unknown as Record<symbol, CoreState | undefined>;
  let s = g[KEY];
  if (!s) {
    s = { functions: new Map(), hooks: new Map() };
    g[KEY] = s;
  }
  return s;
}

export function registerFunction(metadata: CoreFunctionMetadata, handler: CoreHandler): { dispose(): void } {
  const s = state();
  if (s.functions.has(metadata.name)) {
    throw new Error(`A function named "${metadata.name}" is already registered.`);
  }
  s.functions.set(metadata.name, { metadata, handler });
  return { dispose: () => void s.functions.delete(metadata.name) };
}

export function setProgrammingModel(_model: unknown): void {
  /* the embedded host speaks the Node v4 model only */
}

export function getProgrammingModel(): unknown {
  return { name: '@azure/functions', version: '4' };
}

export function registerHook(hookName: string, callback: (ctx: unknown) => unknown): { dispose(): void } {
  const s = state();
  const list = s.hooks.get(hookName) ?? [];
  list.push(callback);
  s.hooks.set(hookName, list);
  return {
    dispose: () =>
      s.hooks.set(
        hookName,
        (s.hooks.get(hookName) ?? []).filter((c) => c !== callback),
      ),
  };
}

export function log(level: string, category: string, message: string): void {
  const s = state();
  if (s.logSink) s.logSink(level, category, message);
}

/** Host-side access (not part of the real core API). */
export function registeredFunctions(): RegisteredFunction[] {
  return [...state().functions.values()];
}

export function setCoreLogSink(sink: CoreState['logSink']): void {
  state().logSink = sink;
}

export function clearRegistrations(): void {
  state().functions.clear();
  state().hooks.clear();
}
