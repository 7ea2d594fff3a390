/**
 * The rules both Bus adapters apply to names, subjects and keys (NATS' own, so a subject that works
 * embedded works on NATS), subject matching, and the payload limit. No NATS import here: the
 * embedded default loads this without the NATS client.
 */
import { BusError } from "./bus.ts";

/** A NATS inbox prefix: one to eight subject tokens, no wildcards, at most 128 characters. */
export const INBOX_PREFIX = /^(?=.{1,128}$)[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){0,7}$/;

/** The payload limit of both adapters (NATS' default `max_payload`). */
export const MAX_PAYLOAD = 1024 * 1024;

const NAME = /^[A-Za-z0-9_-]+$/;
const TOKEN = /^[A-Za-z0-9_-]+$/;
const KEY_TOKEN = /^[A-Za-z0-9_=-]+$/;
/**
 * Whole subjects and keys in one match: what the per-token checks accept, without splitting. These
 * run on every message and KV write, so only a value that fails is split to name its bad token.
 */
const SUBJECT = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
const KEY = /^[A-Za-z0-9_=-]+(?:\.[A-Za-z0-9_=-]+)*$/;

/** Stream, bucket and queue names: `[A-Za-z0-9_-]+` (also safe as file names). */
export function checkName(kind: string, name: string): void {
  if (!NAME.test(name))
    throw new BusError("BAD_SUBJECT", `${kind} name ${JSON.stringify(name)} is not [A-Za-z0-9_-]+`);
}

function checkTokens(what: string, value: string, token: RegExp, wildcards: boolean): void {
  const parts = value.split(".");
  for (let i = 0; i < parts.length; i++) {
    const t = parts[i] ?? "";
    if (token.test(t)) continue;
    if (wildcards && (t === "*" || (t === ">" && i === parts.length - 1))) continue;
    throw new BusError(
      "BAD_SUBJECT",
      `${what} ${JSON.stringify(value)} has an invalid token ${JSON.stringify(t)}`,
    );
  }
}

/** A concrete subject: tokens of `[A-Za-z0-9_-]` separated by dots. */
export function checkSubject(subject: string): void {
  if (!SUBJECT.test(subject)) checkTokens("subject", subject, TOKEN, false);
}

/** A subject pattern: like a subject, and `*` tokens or a last `>` token. */
export function checkPattern(pattern: string): void {
  checkTokens("subject pattern", pattern, TOKEN, true);
}

/** A KV key (`wildcards` for a key filter): tokens of `[A-Za-z0-9_=-]`. */
export function checkKey(key: string, wildcards = false): void {
  if (wildcards) return checkTokens("key filter", key, KEY_TOKEN, true);
  if (!KEY.test(key)) checkTokens("key", key, KEY_TOKEN, false);
}

/** Whether `subject` matches the NATS pattern `pattern`, both split into tokens. */
export function tokensMatch(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === ">") return subject.length > i;
    if (i >= subject.length || (p !== "*" && p !== subject[i])) return false;
  }
  return pattern.length === subject.length;
}

/** Whether `subject` matches the NATS pattern `pattern`. */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  return tokensMatch(pattern.split("."), subject.split("."));
}

/** Runs `fn` now and turns what it returns or throws into a promise. */
export function settle<T>(fn: () => T | Promise<T>): Promise<T> {
  return new Promise((resolve) => resolve(fn()));
}
