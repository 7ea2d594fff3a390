/**
 * What the hostile-server tests share: a server per test stopped after the file, a client that
 * connects to it, and the check that a call rejects with a code within its deadline.
 */
import assert from "node:assert/strict";
import { after } from "node:test";
import { SmbClient } from "../../../actors/smb/client/client.ts";
import { Command } from "../../../actors/smb/codec/header.ts";
import {
  startHostileServer,
  type HostileOptions,
  type HostileRequest,
  type HostileServer,
  type Misbehave,
} from "../../support/smb-hostile-server.ts";

export const PASSWORD = "Hostile-Pa55";
export const credentials = { user: "tester", domain: "HOSTILE", password: PASSWORD };

/** The deadline of the calls under test: short, so that a hang shows as a failure quickly. */
export const DEADLINE_MS = 2_000;
/**
 * What a rejection may take past its deadline: timers, the event loop and a loaded CI machine.
 * Nothing tighter is asserted (the deadline is the promise, not the speed).
 */
export const MARGIN_MS = 1_000;

const servers: HostileServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

/** A server (stopped after the test file) with the test's password. */
export async function serve(options: Partial<HostileOptions> = {}): Promise<HostileServer> {
  const server = await startHostileServer({ password: PASSWORD, ...options });
  servers.push(server);
  return server;
}

/** Connects a client to `server`. */
export function connect(server: HostileServer, timeoutMs = DEADLINE_MS): Promise<SmbClient> {
  return SmbClient.connect({ host: "127.0.0.1", port: server.port, credentials, timeoutMs });
}

/** A hook that misbehaves at `command` only (the first time, or every time with `always`). */
export function at(command: number, reply: Misbehave, always = false): Misbehave {
  let done = false;
  return (turn) => {
    if (turn.request.header.command !== command || (done && !always)) return undefined;
    done = true;
    return reply(turn);
  };
}

/**
 * Runs `call` and checks that it rejects with `code` within `deadlineMs` plus the margin; returns
 * the error and the time it took.
 */
export async function rejectsWithin(
  call: () => Promise<unknown>,
  code: string,
  deadlineMs = DEADLINE_MS,
): Promise<{ error: Error; elapsedMs: number }> {
  const start = performance.now();
  const outcome = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  const elapsedMs = performance.now() - start;
  assert.ok(outcome instanceof Error, `resolved (or threw a non-Error) instead of rejecting with ${code}`);
  assert.equal((outcome as Error & { code?: string }).code, code, `${outcome.name}: ${outcome.message}`);
  assert.ok(elapsedMs < deadlineMs + MARGIN_MS, `rejected after ${Math.round(elapsedMs)} ms`);
  return { error: outcome, elapsedMs };
}

/** Waits (bounded) until the server has received a request that `match` accepts. */
export async function seen(
  server: HostileServer,
  match: (r: HostileRequest) => boolean,
  withinMs = 1_000,
): Promise<HostileRequest | undefined> {
  const until = performance.now() + withinMs;
  for (;;) {
    const found = server.requests.find(match);
    if (found !== undefined || performance.now() > until) return found;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** True once every connection to `server` has closed, within `withinMs`. */
export async function closedWithin(server: HostileServer, withinMs = 1_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), withinMs)));
  const result = await Promise.race([server.allClosed().then(() => true), timeout]);
  clearTimeout(timer);
  return result;
}

export const isCancel = (r: HostileRequest): boolean => r.header.command === Command.CANCEL;
