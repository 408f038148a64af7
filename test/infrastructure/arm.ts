/**
 * Just enough of ARM template expressions to read a compiled Bicep template without deploying it:
 * a parser for `[func('a', b.c)[0]]` strings and a resolver that follows objects built with
 * union/createObject/if/toObject through variables and module (nested deployment) parameters.
 */

export type Node =
  | { kind: 'str'; value: string }
  | { kind: 'num'; value: number }
  | { kind: 'call'; name: string; args: Node[] }
  | { kind: 'prop'; target: Node; name: string }
  | { kind: 'index'; target: Node; index: Node };

export type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

export interface Template {
  parameters?: Record<string, { type: string; defaultValue?: Json }>;
  variables?: Record<string, Json>;
  resources: Resource[];
  outputs?: Record<string, { type: string; value: Json }>;
}

export interface Resource {
  type: string;
  name: string;
  apiVersion?: string;
  scope?: string;
  kind?: string;
  sku?: Record<string, Json>;
  properties?: Record<string, Json> & { template?: Template; parameters?: Record<string, { value: Json }> };
  [k: string]: unknown;
}

export function isExpression(v: unknown): v is string {
  return typeof v === 'string' && v.startsWith('[') && !v.startsWith('[[') && v.endsWith(']');
}

export function parseExpression(text: string): Node {
  const src = isExpression(text) ? text.slice(1, -1) : text;
  let i = 0;
  const ws = () => {
    while (i < src.length && /\s/.test(src[i])) i++;
  };
  const expect = (c: string) => {
    ws();
    if (src[i] !== c) throw new Error(`ARM expression: expected '${c}' at ${i} in ${src.slice(0, 200)}`);
    i++;
  };
  const ident = (): string => {
    ws();
    const m = /^[A-Za-z_$#][A-Za-z0-9_$#]*/.exec(src.slice(i));
    if (!m) throw new Error(`ARM expression: identifier expected at ${i} in ${src.slice(0, 200)}`);
    i += m[0].length;
    return m[0];
  };
  const primary = (): Node => {
    ws();
    const c = src[i];
    if (c === "'") {
      let out = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new Error('ARM expression: unterminated string');
        if (src[i] === "'") {
          if (src[i + 1] === "'") {
            out += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        out += src[i++];
      }
      return { kind: 'str', value: out };
    }
    if (/[-0-9]/.test(c)) {
      const m = /^-?[0-9]+(\.[0-9]+)?/.exec(src.slice(i));
      if (!m) throw new Error(`ARM expression: number expected at ${i}`);
      i += m[0].length;
      return { kind: 'num', value: Number(m[0]) };
    }
    const name = ident();
    expect('(');
    const args: Node[] = [];
    ws();
    if (src[i] === ')') i++;
    else {
      for (;;) {
        args.push(expr());
        ws();
        if (src[i] === ',') {
          i++;
          continue;
        }
        expect(')');
        break;
      }
    }
    return { kind: 'call', name, args };
  };
  const expr = (): Node => {
    let node = primary();
    for (;;) {
      ws();
      if (src[i] === '.') {
        i++;
        node = { kind: 'prop', target: node, name: ident() };
      } else if (src[i] === '[') {
        i++;
        const index = expr();
        expect(']');
        node = { kind: 'index', target: node, index };
      } else return node;
    }
  };
  const node = expr();
  ws();
  if (i !== src.length) throw new Error(`ARM expression: trailing text at ${i}: ${src.slice(i, i + 50)}`);
  return node;
}

/** Every call node in a tree (depth first). */
export function calls(node: Node, name?: string): Array<Extract<Node, { kind: 'call' }>> {
  const out: Array<Extract<Node, { kind: 'call' }>> = [];
  const walk = (n: Node) => {
    if (n.kind === 'call') {
      if (!name || n.name.toLowerCase() === name.toLowerCase()) out.push(n);
      n.args.forEach(walk);
    } else if (n.kind === 'prop') walk(n.target);
    else if (n.kind === 'index') {
      walk(n.target);
      walk(n.index);
    }
  };
  walk(node);
  return out;
}

/** A template as deployed: its parameters' values (expressions of the parent) and the parent. */
export interface Scope {
  template: Template;
  /** module parameters given by the parent deployment (undefined at the top) */
  values?: Record<string, { value: Json }>;
  parent?: Scope;
  name: string;
}

export interface Setting {
  /** the value: a literal, an expression string, or a lambda body with its item */
  value: Json | Node;
  scope: Scope;
  /** only set under a condition */
  optional: boolean;
  /** for toObject(...) entries: the array item the lambda ran on */
  item?: Record<string, Json>;
  /** earlier values of the same key that a later union() argument replaced (under some condition) */
  shadowed?: Setting[];
}

function str(node: Node, what: string): string {
  if (node.kind !== 'str') throw new Error(`ARM resolver: ${what} must be a literal string`);
  return node.value;
}

/** Nested deployments (modules) of a template, by deployment name. */
export function modules(scope: Scope): Map<string, Scope> {
  const out = new Map<string, Scope>();
  for (const r of scope.template.resources) {
    if (r.type === 'Microsoft.Resources/deployments' && r.properties?.template) {
      const name = isExpression(r.name) ? String(r.name) : r.name;
      out.set(name, {
        template: r.properties.template,
        values: r.properties.parameters,
        parent: scope,
        name,
      });
    }
  }
  return out;
}

/** Resolve an object-valued expression to its keys (the app settings of a site, for instance). */
export function resolveObject(value: Json | Node, scope: Scope, optional = false): Map<string, Setting> {
  const out = new Map<string, Setting>();
  const merge = (m: Map<string, Setting>) =>
    m.forEach((v, k) => {
      const prev = out.get(k);
      out.set(k, prev ? { ...v, shadowed: [prev, ...(prev.shadowed ?? []), ...(v.shadowed ?? [])] } : v);
    });
  if (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    !(
      'kind' in value &&
      typeof (value as { kind: unknown }).kind === 'string' &&
      ['str', 'num', 'call', 'prop', 'index'].includes((value as { kind: string }).kind)
    )
  ) {
    for (const [k, v] of Object.entries(value as Record<string, Json>))
      out.set(k, { value: v, scope, optional });
    return out;
  }
  const node: Node = typeof value === 'string' ? parseExpression(value) : (value as Node);
  if (node.kind !== 'call')
    throw new Error(`ARM resolver: cannot read an object from ${JSON.stringify(node).slice(0, 120)}`);
  const name = node.name.toLowerCase();
  if (name === 'union') {
    node.args.forEach((a) => merge(resolveObject(a, scope, optional)));
  } else if (name === 'createobject') {
    for (let i = 0; i < node.args.length; i += 2)
      out.set(str(node.args[i], 'createObject key'), { value: node.args[i + 1], scope, optional });
  } else if (name === 'if') {
    merge(resolveObject(node.args[1], scope, true));
    merge(resolveObject(node.args[2], scope, true));
  } else if (name === 'variables') {
    const v = scope.template.variables?.[str(node.args[0], 'variable name')];
    if (v === undefined)
      throw new Error(`ARM resolver: no variable ${JSON.stringify(node.args[0])} in ${scope.name}`);
    merge(resolveObject(v, scope, optional));
  } else if (name === 'parameters') {
    const p = str(node.args[0], 'parameter name');
    const given = scope.values?.[p];
    if (given && scope.parent) merge(resolveObject(given.value, scope.parent, optional));
    else {
      const def = scope.template.parameters?.[p]?.defaultValue;
      if (def === undefined) throw new Error(`ARM resolver: parameter ${p} of ${scope.name} has no value`);
      merge(resolveObject(def, scope, optional));
    }
  } else if (name === 'toobject') {
    // toObject(filter(<array>, lambda('s', cond)), lambda('s', key), lambda('s', value))
    const [source, keyLambda, valueLambda] = node.args;
    let items: Json;
    let condition: Node | undefined;
    if (source.kind === 'call' && source.name.toLowerCase() === 'filter') {
      items = resolveArray(source.args[0], scope);
      condition = (source.args[1] as Extract<Node, { kind: 'call' }>).args[1];
    } else items = resolveArray(source, scope);
    const keyBody = (keyLambda as Extract<Node, { kind: 'call' }>).args[1];
    const valueBody = (valueLambda as Extract<Node, { kind: 'call' }>).args[1];
    for (const raw of items as Array<Record<string, Json>>) {
      if (keyBody.kind !== 'prop')
        throw new Error('ARM resolver: toObject key must be a property of the item');
      const key = String(raw[keyBody.name]);
      let conditional = optional;
      if (condition) {
        if (condition.kind !== 'prop')
          throw new Error('ARM resolver: filter condition must be a property of the item');
        const flag = raw[condition.name];
        if (flag === false) continue;
        conditional = conditional || flag !== true;
      }
      out.set(key, { value: valueBody, scope, optional: conditional, item: raw });
    }
  } else {
    throw new Error(`ARM resolver: cannot read an object from ${node.name}(...)`);
  }
  return out;
}

function resolveArray(node: Node, scope: Scope): Json {
  if (node.kind === 'call' && node.name.toLowerCase() === 'variables') {
    const v = scope.template.variables?.[str(node.args[0], 'variable name')];
    if (Array.isArray(v)) return v;
  }
  throw new Error('ARM resolver: only variables holding literal arrays are supported');
}

/** Parameters (with the scope declaring them) that an expression reads, followed up through modules. */
export function parameterSources(
  value: Json | Node,
  scope: Scope,
): Array<{ name: string; type: string; scope: Scope }> {
  const out: Array<{ name: string; type: string; scope: Scope }> = [];
  const visit = (v: Json | Node, s: Scope) => {
    if (v === null || typeof v === 'number' || typeof v === 'boolean') return;
    if (typeof v === 'string') {
      if (isExpression(v)) visit(parseExpression(v), s);
      return;
    }
    if (Array.isArray(v)) return v.forEach((x) => visit(x, s));
    if (
      'kind' in v &&
      typeof v.kind === 'string' &&
      ['str', 'num', 'call', 'prop', 'index'].includes(v.kind)
    ) {
      const node = v as Node;
      for (const c of calls(node)) {
        const n = c.name.toLowerCase();
        if (n === 'parameters' && c.args[0]?.kind === 'str') {
          const name = c.args[0].value;
          const given = s.values?.[name];
          if (given && s.parent) visit(given.value, s.parent);
          else out.push({ name, type: s.template.parameters?.[name]?.type ?? 'unknown', scope: s });
        } else if (n === 'variables' && c.args[0]?.kind === 'str') {
          const vv = s.template.variables?.[c.args[0].value];
          if (vv !== undefined) visit(vv, s);
        }
      }
      return;
    }
    Object.values(v as Record<string, Json>).forEach((x) => visit(x, s));
  };
  visit(value, scope);
  return out;
}

type Value = Json | { lambda: string[]; body: Node };

/**
 * Evaluates an ARM expression (or a literal holding expressions) the way ARM would at deployment,
 * for the functions a template's string building uses. `topValues` are the values of the top
 * template's parameters (the compiled .bicepparam). Functions that need a live deployment
 * (reference, resourceId, subscription, ...) throw: only evaluate what does not depend on them.
 */
export function evaluate(
  value: Json | Node,
  scope: Scope,
  topValues: Record<string, Json> = {},
  locals: Record<string, Value> = {},
): Json {
  const ev = (v: Json | Node, s: Scope = scope, l: Record<string, Value> = locals): Json =>
    evaluate(v, s, topValues, l);
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    if (value.startsWith('[[')) return value.slice(1);
    return isExpression(value) ? ev(parseExpression(value)) : value;
  }
  if (Array.isArray(value)) return value.map((x) => ev(x));
  if (
    !(
      'kind' in value &&
      typeof value.kind === 'string' &&
      ['str', 'num', 'call', 'prop', 'index'].includes(value.kind)
    )
  ) {
    return Object.fromEntries(Object.entries(value as Record<string, Json>).map(([k, v]) => [k, ev(v)]));
  }
  const node = value as Node;
  if (node.kind === 'str' || node.kind === 'num') return node.value;
  if (node.kind === 'prop') {
    const target = ev(node.target) as Record<string, Json>;
    if (target === null || typeof target !== 'object' || !(node.name in target))
      throw new Error(`ARM evaluate: no property ${node.name}`);
    return target[node.name];
  }
  if (node.kind === 'index') {
    const target = ev(node.target) as Json[] | Record<string, Json>;
    const index = ev(node.index);
    return (target as Record<string, Json>)[String(index)];
  }
  const args = () => node.args.map((a) => ev(a));
  const s = (x: Json) => {
    if (typeof x !== 'string')
      throw new Error(`ARM evaluate: ${node.name} expects a string, got ${JSON.stringify(x)?.slice(0, 80)}`);
    return x;
  };
  switch (node.name.toLowerCase()) {
    case 'parameters': {
      const name = s(ev(node.args[0]));
      const given = scope.values?.[name];
      if (given && scope.parent) return evaluate(given.value, scope.parent, topValues);
      if (!scope.parent && name in topValues) return topValues[name];
      const def = scope.template.parameters?.[name]?.defaultValue;
      if (def === undefined) throw new Error(`ARM evaluate: parameter ${name} of ${scope.name} has no value`);
      return ev(def);
    }
    case 'variables': {
      const name = s(ev(node.args[0]));
      const v = scope.template.variables?.[name];
      if (v === undefined) throw new Error(`ARM evaluate: no variable ${name} in ${scope.name}`);
      return ev(v);
    }
    case 'lambdavariables': {
      const name = s(ev(node.args[0]));
      if (!(name in locals)) throw new Error(`ARM evaluate: no lambda variable ${name}`);
      return locals[name] as Json;
    }
    case 'replace': {
      const [a, b, c] = args();
      return s(a).split(s(b)).join(s(c));
    }
    case 'base64':
      return Buffer.from(s(args()[0]), 'utf8').toString('base64');
    case 'base64tostring':
      return Buffer.from(s(args()[0]), 'base64').toString('utf8');
    case 'trim':
      return s(args()[0]).trim();
    case 'tolower':
      return s(args()[0]).toLowerCase();
    case 'string': {
      const [a] = args();
      return typeof a === 'string' ? a : JSON.stringify(a);
    }
    case 'format': {
      const [f, ...rest] = args();
      return s(f).replace(/\{(\d+)\}/g, (_, i: string) => {
        const x = rest[Number(i)];
        return typeof x === 'string' ? x : JSON.stringify(x);
      });
    }
    case 'concat': {
      const a = args();
      return a.every(Array.isArray)
        ? (a as Json[][]).flat()
        : a.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join('');
    }
    case 'if':
      return ev(node.args[0]) ? ev(node.args[1]) : ev(node.args[2]);
    case 'empty': {
      const [a] = args();
      return (
        a === null ||
        a === '' ||
        (Array.isArray(a) ? a.length === 0 : typeof a === 'object' && Object.keys(a).length === 0)
      );
    }
    case 'equals': {
      const [a, b] = args();
      return JSON.stringify(a) === JSON.stringify(b);
    }
    case 'not':
      return !ev(node.args[0]);
    case 'and':
      return args().every(Boolean);
    case 'or':
      return args().some(Boolean);
    case 'length': {
      const [a] = args();
      return typeof a === 'string' || Array.isArray(a) ? a.length : Object.keys(a as object).length;
    }
    case 'take': {
      const [a, n] = args();
      return (a as string).slice(0, n as number);
    }
    case 'createobject': {
      const a = args();
      const out: Record<string, Json> = {};
      for (let i = 0; i < a.length; i += 2) out[s(a[i])] = a[i + 1];
      return out;
    }
    case 'union': {
      const a = args();
      return a.every(Array.isArray)
        ? [...new Set((a as Json[][]).flat())]
        : Object.assign({}, ...(a as object[]));
    }
    case 'items': {
      const o = args()[0] as Record<string, Json>;
      return Object.keys(o)
        .sort((x, y) => x.localeCompare(y))
        .map((k) => ({ key: k, value: o[k] }));
    }
    case 'reduce': {
      const items = ev(node.args[0]) as Json[];
      let acc = ev(node.args[1]);
      const lambda = node.args[2] as Extract<Node, { kind: 'call' }>;
      const [accName, itemName] = lambda.args.slice(0, -1).map((a) => s(ev(a)));
      const body = lambda.args[lambda.args.length - 1];
      for (const item of items) acc = ev(body, scope, { ...locals, [accName]: acc, [itemName]: item });
      return acc;
    }
    case 'createarray':
      return args();
    case 'greater': {
      const [a, b] = args();
      return (a as number) > (b as number);
    }
    case 'filter':
    case 'map': {
      const items = ev(node.args[0]) as Json[];
      const lambda = node.args[1] as Extract<Node, { kind: 'call' }>;
      const itemName = s(ev(lambda.args[0]));
      const body = lambda.args[lambda.args.length - 1];
      const each = (item: Json) => ev(body, scope, { ...locals, [itemName]: item });
      return node.name.toLowerCase() === 'map'
        ? items.map(each)
        : items.filter((item) => Boolean(each(item)));
    }
    case 'copyindex': {
      if (!('$copyIndex' in locals)) throw new Error('ARM evaluate: copyIndex() outside a copy loop');
      return locals.$copyIndex as Json;
    }
    case 'environment':
      // the Azure public cloud, as ARM's environment() answers there
      return {
        name: 'AzureCloud',
        resourceManager: 'https://management.azure.com/',
        suffixes: { storage: 'core.windows.net', keyvaultDns: '.vault.azure.net' },
      };
    case 'resourceid': {
      // the resource's type and name, enough to tell which resource an id points at
      const [type, ...names] = args().map((x) => s(x));
      return `${type}/${names.join('/')}`;
    }
    case 'reference': {
      // The outputs of a module (nested deployment) are only known once deployed: they evaluate to
      // markers '<module>.outputs.<name>' so that a test can say which module output a value is.
      const target = node.args[0];
      const ids = calls(target).filter((c) =>
        ['resourceid', 'extensionresourceid'].includes(c.name.toLowerCase()),
      );
      for (const c of ids) {
        const i = c.args.findIndex((a) => a.kind === 'str' && a.value === 'Microsoft.Resources/deployments');
        const name = c.args[i + 1];
        if (i >= 0 && name?.kind === 'str') {
          const outputs = new Proxy(
            {},
            { get: (_t, key) => ({ value: `${name.value}.outputs.${String(key)}` }), has: () => true },
          );
          return { outputs } as unknown as Json;
        }
      }
      throw new Error('ARM evaluate: reference() to something other than a module needs a live deployment');
    }
    default:
      throw new Error(`ARM evaluate: ${node.name}() needs a live deployment or is not supported`);
  }
}
