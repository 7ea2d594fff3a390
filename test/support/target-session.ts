/**
 * A target's session record for unit tests of the steps: target `t1` at 10.0.0.5, reached from
 * 10.0.0.1, kept in a registry of its own. Pass what a test's steps use (files, transport, pushed,
 * ports...) in `over`; the rest is inert.
 */
import { SessionRegistry, type TargetSession } from "../../actors/target/session.ts";

export function testSession(over: Record<string, unknown> = {}): {
  session: TargetSession;
  sessions: SessionRegistry;
} {
  const session = {
    sessionId: "r1/t1/0",
    targetId: "t1",
    remoteAddress: "10.0.0.5",
    localAddress: "10.0.0.1",
    local: false,
    description: "",
    shell: {},
    files: {},
    transport: {},
    ports: {},
    ...over,
  } as unknown as TargetSession;
  const sessions = new SessionRegistry();
  sessions.add(session);
  return { session, sessions };
}
