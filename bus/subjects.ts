/**
 * How sumac names subjects on the Bus and checks what travels on them (docs/bus.md is the
 * description for outside subscribers): every message is UTF-8 JSON, checked with zod when it is
 * encoded and when it is decoded. The lease service's subjects and schemas are here
 * (`schemas/lease.ts`); those of run and target events are the run engine's (run/events/).
 *
 * Versioning: the `v1` in every subject is the schema version. Within v1, fields may be added
 * (optional ones; decoders drop fields they do not know) but never removed, renamed or given a new
 * meaning. An incompatible change gets new `v2` subjects, published next to the v1 ones for a while.
 *
 * Run and target ids are encoded into one subject token each by {@link subjectToken}: ids made of
 * letters, digits and `-` stay as they are, every other character becomes `_` and two hex digits
 * (`web-01.example.com` becomes `web-01_2Eexample_2Ecom`). Payloads carry the ids as they are.
 */
import { errorClass } from "../base/errors.ts";
import type { z } from "zod";
import { decodeJson, encodeJson } from "./bus.ts";
import { GrantReply, LEASE_SUBJECTS, ReleaseReply, RenewReply, StatusReply } from "./schemas/lease.ts";

export * from "./schemas/lease.ts";

/** The schema version in every subject. */
export const SCHEMA_VERSION = "v1";

/** A message that does not match its schema (or is not JSON): the field is named. */
export class MessageSchemaError extends errorClass("BAD_MESSAGE") {
  /** Each problem: the path of the field (dot-separated, `(root)` for the whole) and what is wrong. */
  readonly issues: readonly { readonly path: string; readonly message: string }[];
  constructor(
    what: string,
    issues: readonly { readonly path: string; readonly message: string }[],
    options?: ErrorOptions,
  ) {
    super(`${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, options);
    this.issues = issues;
  }
}

const PLAIN = /^[A-Za-z0-9-]+$/;
const MAX_ID_LENGTH = 256;

/** The subject token of a run or target id; see the file comment. */
export function subjectToken(id: string): string {
  if (id.length === 0 || id.length > MAX_ID_LENGTH) {
    throw new MessageSchemaError("subject token", [
      { path: "(id)", message: `1 to ${MAX_ID_LENGTH} characters` },
    ]);
  }
  if (PLAIN.test(id)) return id;
  let out = "";
  for (const byte of new TextEncoder().encode(id)) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && /[A-Za-z0-9-]/.test(c) ? c : `_${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The id a subject token stands for (the inverse of {@link subjectToken}). */
export function fromSubjectToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === "_") {
      const hex = token.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) {
        throw new MessageSchemaError("subject token", [
          { path: "(token)", message: `bad escape _${hex} in ${token}` },
        ]);
      }
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** Schemas of the replies to the lease requests, by request subject. */
export const LEASE_REPLIES = {
  [LEASE_SUBJECTS.acquire]: GrantReply,
  [LEASE_SUBJECTS.renew]: RenewReply,
  [LEASE_SUBJECTS.conflict]: GrantReply,
  [LEASE_SUBJECTS.release]: ReleaseReply,
  [LEASE_SUBJECTS.status]: StatusReply,
} as const;

function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({
    path: i.path.length === 0 ? "(root)" : i.path.map(String).join("."),
    message: i.message,
  }));
}

/**
 * Checks `value` against `schema` and encodes it as UTF-8 JSON.
 *
 * @example
 * await bus.publish(subjects.targetState(run, target), encode(TargetStateChanged, change));
 */
export function encode<S extends z.ZodType>(schema: S, value: z.input<S>): Uint8Array {
  const result = schema.safeParse(value);
  if (!result.success) throw new MessageSchemaError("cannot encode message", issuesOf(result.error));
  return encodeJson(result.data);
}

/**
 * Decodes UTF-8 JSON and checks it against `schema`; `MessageSchemaError` (code `BAD_MESSAGE`)
 * names the field that is wrong. Fields the schema does not know are dropped.
 *
 * @example
 * const change = decode(TargetStateChanged, message.data);
 */
export function decode<S extends z.ZodType>(schema: S, data: Uint8Array): z.output<S> {
  let json: unknown;
  try {
    json = decodeJson(data);
  } catch (err) {
    throw new MessageSchemaError("bad message", [{ path: "(root)", message: "not UTF-8 JSON" }], {
      cause: err,
    });
  }
  const result = schema.safeParse(json);
  if (!result.success) throw new MessageSchemaError("bad message", issuesOf(result.error));
  return result.data;
}
