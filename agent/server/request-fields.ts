/**
 * Reading an operation's arguments as `soap` parsed them. `soap` types values by the WSDL but
 * checks nothing (missing elements are absent, a repeated element may be one object or an array),
 * so every operation reads its fields through these, which throw INVALID_REQUEST naming the field.
 */
import { InvalidRequestError } from "../protocol/errors.ts";

type Fields = Readonly<Record<string, unknown>>;

/** The arguments object, or an empty one for an empty element. */
export function fieldsOf(args: unknown, where: string): Fields {
  if (args === undefined || args === null || args === "") return {};
  if (typeof args !== "object" || Array.isArray(args))
    throw new InvalidRequestError(`${where} must be an element`);
  return args as Fields;
}

/** A required string of 1 to `max` characters. */
export function stringField(fields: Fields, name: string, max: number): string {
  const value = fields[name];
  if (typeof value !== "string" || value.length === 0 || value.length > max)
    throw new InvalidRequestError(`${name} must be a string of 1 to ${max} characters`);
  return value;
}

/** An optional string; undefined when absent. */
export function optionalStringField(fields: Fields, name: string, max: number): string | undefined {
  return fields[name] === undefined ? undefined : stringField(fields, name, max);
}

/**
 * An optional xsd:boolean as `soap` leaves it: a boolean (it reads only `true` and `1` as true), or
 * the text when it did not type it; absent is false.
 */
export function booleanField(fields: Fields, name: string): boolean {
  const value = fields[name];
  if (value === undefined || value === false || value === "false" || value === "0") return false;
  if (value === true || value === "true" || value === "1") return true;
  throw new InvalidRequestError(`${name} must be true or false`);
}

/** An optional integer in [min, max], or `fallback` when absent. */
export function intField(
  fields: Fields,
  name: string,
  range: { min: number; max: number; fallback?: number },
): number {
  const raw = fields[name];
  if (raw === undefined && range.fallback !== undefined) return range.fallback;
  const value = typeof raw === "string" ? Number(raw) : raw;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < range.min || value > range.max)
    throw new InvalidRequestError(`${name} must be an integer from ${range.min} to ${range.max}`);
  return value;
}

/** A repeated element as an array of field objects, whatever `soap` made of it. */
export function listField(fields: Fields, name: string, maxItems: number): Fields[] {
  const raw = fields[name];
  const list = raw === undefined ? [] : Array.isArray(raw) ? (raw as unknown[]) : [raw];
  if (list.length > maxItems) throw new InvalidRequestError(`at most ${maxItems} ${name} elements`);
  return list.map((item, i) => fieldsOf(item, `${name}[${i}]`));
}
