/**
 * Route templates as the Functions host understands them: `deployments/{id?}`, `approvals/{token}`,
 * `files/{*path}`, with optional `:constraint` suffixes (`{id:int}`, `{id:alpha}`, `{id:guid}`).
 */
export interface CompiledRoute {
  template: string;
  match(path: string): Record<string, string> | undefined;
}

const CONSTRAINTS: Record<string, RegExp> = {
  int: /^-?\d+$/,
  long: /^-?\d+$/,
  alpha: /^[A-Za-z]+$/,
  guid: /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/,
  bool: /^(true|false)$/i,
};

interface Segment {
  literal?: string;
  param?: string;
  optional?: boolean;
  catchAll?: boolean;
  constraint?: RegExp;
}

export function compileRoute(template: string): CompiledRoute {
  const clean = template.replace(/^\/+|\/+$/g, '');
  const segments: Segment[] = clean
    ? clean.split('/').map((seg) => {
        const m = /^\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+)(?:\([^)]*\))?)?(\?)?\}$/.exec(seg);
        if (!m) return { literal: seg.toLowerCase() };
        return {
          param: m[2],
          catchAll: !!m[1],
          optional: !!m[4] || !!m[1],
          constraint: m[3] ? CONSTRAINTS[m[3].toLowerCase()] : undefined,
        };
      })
    : [];
  return {
    template: clean,
    match(path: string) {
      const parts = path
        .replace(/^\/+|\/+$/g, '')
        .split('/')
        .filter((p) => p !== '');
      const params: Record<string, string> = {};
      for (let i = 0; i < segments.length; i++) {
        const seg = segments[i];
        const part = parts[i];
        if (seg.catchAll) {
          params[seg.param as string] = parts.slice(i).map(decodeURIComponent).join('/');
          return params;
        }
        if (part === undefined) {
          if (seg.optional) continue;
          return undefined;
        }
        if (seg.literal !== undefined) {
          if (part.toLowerCase() !== seg.literal) return undefined;
          continue;
        }
        let value: string;
        try {
          value = decodeURIComponent(part);
        } catch {
          return undefined;
        }
        if (seg.constraint && !seg.constraint.test(value)) return undefined;
        params[seg.param as string] = value;
      }
      return parts.length > segments.length ? undefined : params;
    },
  };
}
