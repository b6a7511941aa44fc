/**
 * A point stored in a bucket is a document (DESIGN.md "Database"):
 *
 * - id: the series key with its tags sorted and escaped as in line protocol, a space, and
 *   the timestamp in ns — `cpu,cpu=cpu0,host=a 1700000000000000000`. Writing the same
 *   point again addresses the same document. An id may not start with `_` in a database,
 *   so a measurement beginning with `_` gets a `\` in front.
 * - body: `{"measurement","tags","fields","time"}`, `time` in ns as decimal text. Integer
 *   and unsigned fields are JSON numbers when a double holds them exactly, text
 *   otherwise, and are named in `"types"` (floats, strings and booleans need no entry).
 *
 * A rewrite merges fields as InfluxDB does (the newer value of a field wins, other fields
 * stay); when that changes nothing the store writes no new revision.
 */
import { seriesKey, type Field, type FieldType, type ParsedPoint } from './line-protocol.js';

export interface PointBody {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, number | string | boolean>;
  types?: Record<string, 'integer' | 'unsigned'>;
  time: string;
}

export function pointDocId(point: Pick<ParsedPoint, 'measurement' | 'tags' | 'timestampNs'>): string {
  const id = `${seriesKey(point.measurement, point.tags)} ${point.timestampNs}`;
  return id.startsWith('_') ? `\\${id}` : id;
}

function jsonFieldValue(field: Field): number | string | boolean {
  if (field.type !== 'integer' && field.type !== 'unsigned') return field.value;
  const asNumber = Number(field.value);
  return Number.isSafeInteger(asNumber) ? asNumber : String(field.value);
}

export function pointBodyObject(point: ParsedPoint): PointBody {
  const tags: Record<string, string> = {};
  for (const [k, v] of point.tags) tags[k] = v;
  const fields: Record<string, number | string | boolean> = {};
  let types: Record<string, 'integer' | 'unsigned'> | undefined;
  for (const field of point.fields) {
    fields[field.key] = jsonFieldValue(field);
    if (field.type === 'integer' || field.type === 'unsigned') (types ??= {})[field.key] = field.type;
    else if (types !== undefined) delete types[field.key];
  }
  const body: PointBody = { measurement: point.measurement, tags, fields, time: point.timestampNs };
  if (types !== undefined && Object.keys(types).length > 0) body.types = types;
  return body;
}

function hasDuplicateKeys(fields: readonly Field[]): boolean {
  for (let i = 1; i < fields.length; i++)
    for (let j = 0; j < i; j++) if (fields[i].key === fields[j].key) return true;
  return false;
}

/**
 * The document body (JSON text) of a point. Written directly (the hot path of every
 * write): the JSON of `pointBodyObject(point)`, with fields in the line's order.
 */
export function pointBody(point: ParsedPoint): string {
  if (hasDuplicateKeys(point.fields)) return JSON.stringify(pointBodyObject(point));
  let json = `{"measurement":${JSON.stringify(point.measurement)},"tags":{`;
  for (let i = 0; i < point.tags.length; i++) {
    const [k, v] = point.tags[i];
    json += `${i === 0 ? '' : ','}${JSON.stringify(k)}:${JSON.stringify(v)}`;
  }
  json += '},"fields":{';
  let types = '';
  for (let i = 0; i < point.fields.length; i++) {
    const field = point.fields[i];
    json += `${i === 0 ? '' : ','}${JSON.stringify(field.key)}:${JSON.stringify(jsonFieldValue(field))}`;
    if (field.type === 'integer' || field.type === 'unsigned')
      types += `${types === '' ? '' : ','}${JSON.stringify(field.key)}:"${field.type}"`;
  }
  json += `},"time":"${point.timestampNs}"`;
  return types === '' ? `${json}}` : `${json},"types":{${types}}}`;
}

/**
 * The body after writing `incoming` over the stored point `stored` (both JSON text):
 * incoming fields replace stored ones of the same key. Null when the result is the
 * stored body (the write changes nothing) or the stored body is not a point.
 */
export function mergePointBodies(stored: string, incoming: string): string | null {
  if (stored === incoming) return null;
  let old: PointBody;
  let next: PointBody;
  try {
    old = JSON.parse(stored) as PointBody;
    next = JSON.parse(incoming) as PointBody;
  } catch {
    return incoming;
  }
  if (typeof old !== 'object' || old === null || typeof old.fields !== 'object') return incoming;
  const fields = { ...old.fields, ...next.fields };
  const types: Record<string, 'integer' | 'unsigned'> = { ...(old.types ?? {}) };
  for (const key of Object.keys(next.fields)) {
    const type = next.types?.[key];
    if (type === undefined) delete types[key];
    else types[key] = type;
  }
  const merged: PointBody = { measurement: next.measurement, tags: next.tags, fields, time: next.time };
  if (Object.keys(types).length > 0) merged.types = types;
  const text = JSON.stringify(merged);
  return text === stored ? null : text;
}

/** The type of a field of a stored point body. */
export function fieldTypeOf(body: PointBody, key: string): FieldType {
  const declared = body.types?.[key];
  if (declared !== undefined) return declared;
  const value = body.fields[key];
  return typeof value === 'number' ? 'float' : typeof value === 'boolean' ? 'boolean' : 'string';
}
