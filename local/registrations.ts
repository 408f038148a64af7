/**
 * Loads the app's function modules and returns what they registered — the same list the Functions
 * host would get from the worker. In plain Node, `@azure/functions-core` (normally injected by the
 * worker) is supplied through a `Module._load` hook; under jest, `moduleNameMapper` does the same.
 */
import { readdirSync, statSync } from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import * as core from './functions-core';

let hooked = false;

export function installFunctionsCoreHook(): void {
  if (hooked) return;
  hooked = true;
  const mod = Module as unknown as { _load: (request: string, parent: unknown, isMain: boolean) => unknown };
  const original = mod._load;
  mod._load = function (request: string, parent: unknown, isMain: boolean) {
    if (request === '@azure/functions-core') return core;
    return original.call(this, request, parent, isMain);
  };
}

/** Every function module under `dir` (recursively): *.js, or *.ts when running from sources (jest). */
export function listFunctionModules(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const full = path.join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (/\.(js|ts)$/.test(name) && !/\.(d|test|spec)\.ts$/.test(name) && !/\.test\.js$/.test(name))
        out.push(full);
    }
  };
  walk(dir);
  return out;
}

export interface BindingInfo {
  name: string;
  type: string;
  direction: string;
  [key: string]: unknown;
}

export interface FunctionInfo {
  name: string;
  trigger: BindingInfo;
  extraInputs: BindingInfo[];
  extraOutputs: BindingInfo[];
  handler: core.CoreHandler;
}

export function describe(fn: core.RegisteredFunction): FunctionInfo {
  const bindings = Object.entries(fn.metadata.bindings).map(([name, b]) => ({ ...b, name }) as BindingInfo);
  const trigger = bindings.find((b) => /Trigger$/i.test(b.type));
  if (!trigger)
    throw new Error(`[HOST.BAD_REGISTRATION] function ${fn.metadata.name} has no trigger binding`);
  return {
    name: fn.metadata.name,
    trigger,
    extraInputs: bindings.filter((b) => b !== trigger && b.direction === 'in'),
    extraOutputs: bindings.filter((b) => b !== trigger && b.direction === 'out' && b.name !== '$return'),
    handler: fn.handler,
  };
}

/** Load (require) the modules under `dir` and return all registered functions. */
export function loadFunctions(dir: string): FunctionInfo[] {
  installFunctionsCoreHook();
  for (const file of listFunctionModules(dir)) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loading function modules by path is the point
    require(file);
  }
  return core.registeredFunctions().map(describe);
}
