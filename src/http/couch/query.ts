import { badRequest } from '../../errors.js';

/** Query string values as Fastify hands them over. */
export type Query = Record<string, string | string[] | undefined>;

function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) return value[value.length - 1];
  return value;
}

export function boolParam(query: Query, name: string, fallback = false): boolean {
  const value = single(query, name);
  if (value === undefined) return fallback;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw badRequest(`Invalid boolean parameter: ${JSON.stringify(value)} for ${name}`, 'query_parse_error');
}

export function intParam(query: Query, name: string, fallback: number, min = 0): number {
  const value = single(query, name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw badRequest(
      `Invalid value for integer parameter ${name}: ${JSON.stringify(value)}`,
      'query_parse_error',
    );
  }
  return n;
}

export function stringParam(query: Query, name: string): string | undefined {
  return single(query, name);
}

/** A JSON-encoded parameter (`startkey="a"`, `open_revs=["1-x"]`). */
export function jsonParam(query: Query, name: string): unknown {
  const value = single(query, name);
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw badRequest(`Invalid JSON in parameter ${name}`, 'query_parse_error');
  }
}

export function stringListParam(query: Query, name: string): string[] | undefined {
  const value = jsonParam(query, name);
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw badRequest(`${name} must be a JSON array of strings`, 'query_parse_error');
  }
  return value;
}

/** `startkey`/`start_key` style aliases holding a JSON string. */
export function keyParam(query: Query, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = jsonParam(query, name);
    if (value === undefined) continue;
    if (typeof value !== 'string') throw badRequest(`${name} must be a JSON string`, 'query_parse_error');
    return value;
  }
  return undefined;
}
