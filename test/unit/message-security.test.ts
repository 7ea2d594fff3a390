import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import type { AddressInfo, Socket } from "node:net";
import tls from "node:tls";
import { createRunCa, issueLeaf } from "../../agent/client/credentials.ts";
import {
  canonicalBytes,
  computeMac,
  DEFAULT_MAX_NONCES,
  DEFAULT_MAX_OFFSET_MS,
  DEFAULT_MAX_SKEW_MS,
  exportMacKey,
  type MacInput,
  type SecurityHeader,
  Signer,
  Verifier,
} from "../../agent/protocol/message-security.ts";
import { isMessageSecurityError } from "../../agent/protocol/errors.ts";

// The known-answer vector, computed independently (Python hmac over the documented layout).
const KAT_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const KAT_INPUT: MacInput = {
  direction: "workstation-to-agent",
  operation: "Install",
  sessionId: "run1-web01",
  sequence: 7,
  nonce: "oKGio6SlpqeoqaqrrK2urw==", // bytes a0 a1 ... af
  timestamp: 1_700_000_000_000,
  body: Buffer.from('<Install xmlns="urn:sumac:agent:1"><component>bios</component></Install>'),
};
const KAT_CANONICAL =
  "0000001473756d61632d6d6573736167652d6d61632d763100000014776f726b73746174696f6e2d746f2d6167656e74" +
  "00000007496e7374616c6c0000000a72756e312d776562303100000008000000000000000700000010a0a1a2a3a4a5a6a7" +
  "a8a9aaabacadaeaf000000080000018bcfe5680000000048" +
  Buffer.from(KAT_INPUT.body).toString("hex");
const KAT_MAC = "0c0513bd9679d7a1e67592a19dc8842568c4b3810eafcf632c3f3909e964c9b0";

const T0 = 1_700_000_000_000;
const KEY = Buffer.alloc(32, 7);
const BODY = Buffer.from("<Inventory/>");

/**
 * A session in one direction on a simulated clock; the sender's runs `senderAhead` ms ahead of the
 * receiver's (change `clock.senderAhead` to move it alone).
 */
function session(options: { senderAhead?: number } = {}) {
  const clock = { now: T0, senderAhead: options.senderAhead ?? 0 };
  const base = { sessionId: "s1", key: KEY, direction: "workstation-to-agent" as const };
  const signer = new Signer({ ...base, now: () => clock.now + clock.senderAhead });
  const verifier = new Verifier({ ...base, now: () => clock.now });
  return { clock, signer, verifier };
}

/** A header that a holder of `key` made by hand, e.g. to repeat a sequence number with a new nonce. */
function forge(fields: Omit<SecurityHeader, "mac">, key: Uint8Array = KEY): SecurityHeader {
  const input = { ...fields, direction: "workstation-to-agent" as const, operation: "Inventory", body: BODY };
  return { ...fields, mac: computeMac(key, input).toString("base64") };
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** The same 16 bytes spelt differently: the last character before "==" carries 4 spare bits. */
function respell(nonce: string): string {
  const last = BASE64[BASE64.indexOf(nonce.charAt(21)) ^ 1] ?? "";
  const respelt = nonce.slice(0, 21) + last + "==";
  assert.deepEqual(Buffer.from(respelt, "base64"), Buffer.from(nonce, "base64"));
  assert.notEqual(respelt, nonce);
  return respelt;
}

function rejects(code: string, fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isMessageSecurityError(err), `expected a MessageSecurityError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.retryable, false);
    return true;
  });
}

describe("message security", () => {
  it("message security - canonical bytes and MAC match the known-answer vector", () => {
    assert.equal(canonicalBytes(KAT_INPUT).toString("hex"), KAT_CANONICAL);
    assert.equal(computeMac(KAT_KEY, KAT_INPUT).toString("hex"), KAT_MAC);
  });

  it("message security - a good message verifies, and so do the next ones in order", () => {
    const { signer, verifier } = session();
    for (let i = 1; i <= 3; i++) {
      const header = signer.sign("Inventory", BODY);
      assert.equal(header.sequence, i);
      assert.deepEqual(verifier.verify(header, "Inventory", BODY), header);
    }
  });

  it("message security - a replayed message (same nonce) is REPLAYED, also after the sequence moved on", () => {
    const { signer, verifier } = session();
    const first = signer.sign("Inventory", BODY);
    verifier.verify(first, "Inventory", BODY);
    rejects("REPLAYED", () => verifier.verify(first, "Inventory", BODY));
    verifier.verify(signer.sign("Inventory", BODY), "Inventory", BODY);
    rejects("REPLAYED", () => verifier.verify(first, "Inventory", BODY));
  });

  it("message security - an altered body or header field is BAD_MAC", () => {
    const { signer, verifier } = session();
    const header = signer.sign("Inventory", BODY);
    rejects("BAD_MAC", () => verifier.verify(header, "Inventory", Buffer.from("<Inventory/ >")));
    rejects("BAD_MAC", () =>
      verifier.verify({ ...header, timestamp: header.timestamp + 1 }, "Inventory", BODY),
    );
    // A rejected message changes no state: the genuine one still passes.
    verifier.verify(header, "Inventory", BODY);
  });

  it("message security - a MAC forged with another key is BAD_MAC", () => {
    const { verifier } = session();
    const forged = forge(
      { sessionId: "s1", sequence: 1, nonce: "AAAAAAAAAAAAAAAAAAAAAA==", timestamp: T0 },
      Buffer.alloc(32, 8),
    );
    rejects("BAD_MAC", () => verifier.verify(forged, "Inventory", BODY));
  });

  it("message security - a message reflected to its sender or moved to another operation is BAD_MAC", () => {
    const { clock, signer } = session();
    const header = signer.sign("Inventory", BODY);
    // The workstation's verifier of the agent's replies shares the connection's key.
    const back = new Verifier({
      sessionId: "s1",
      key: KEY,
      direction: "agent-to-workstation",
      now: () => clock.now,
    });
    rejects("BAD_MAC", () => back.verify(header, "Inventory", BODY));
    rejects("BAD_MAC", () => session().verifier.verify(header, "Shutdown", BODY));
  });

  it("message security - a sequence gap or a repeated sequence is OUT_OF_ORDER", () => {
    const { signer, verifier } = session();
    const one = signer.sign("Inventory", BODY);
    const two = signer.sign("Inventory", BODY);
    rejects("OUT_OF_ORDER", () => verifier.verify(two, "Inventory", BODY));
    verifier.verify(one, "Inventory", BODY);
    const repeat = forge({ sessionId: "s1", sequence: 1, nonce: "AAAAAAAAAAAAAAAAAAAAAA==", timestamp: T0 });
    rejects("OUT_OF_ORDER", () => verifier.verify(repeat, "Inventory", BODY));
    verifier.verify(two, "Inventory", BODY);
  });

  it("message security - the clocks may differ: the first message measures the offset, and a sender minutes off is accepted", () => {
    for (const ahead of [
      2 * 60_000,
      -2 * 60_000,
      5 * 3_600_000,
      -DEFAULT_MAX_OFFSET_MS,
      DEFAULT_MAX_OFFSET_MS,
    ]) {
      const { clock, signer, verifier } = session({ senderAhead: ahead });
      assert.equal(verifier.offsetMs, undefined);
      verifier.verify(signer.sign("Inventory", BODY), "Inventory", BODY);
      assert.equal(verifier.offsetMs, ahead);
      // Later messages are judged against that offset, as both clocks move on together.
      for (let i = 0; i < 3; i++) {
        clock.now += 60_000;
        verifier.verify(signer.sign("Inventory", BODY), "Inventory", BODY);
      }
    }
  });

  it("message security - a later timestamp beyond the skew from the measured offset is STALE_TIMESTAMP or FUTURE_TIMESTAMP", () => {
    const stale = session({ senderAhead: 120_000 });
    stale.verifier.verify(stale.signer.sign("Inventory", BODY), "Inventory", BODY);
    const old = stale.signer.sign("Inventory", BODY);
    stale.clock.now += DEFAULT_MAX_SKEW_MS + 1;
    rejects("STALE_TIMESTAMP", () => stale.verifier.verify(old, "Inventory", BODY));

    const ahead = session({ senderAhead: 120_000 });
    ahead.verifier.verify(ahead.signer.sign("Inventory", BODY), "Inventory", BODY);
    ahead.clock.senderAhead += DEFAULT_MAX_SKEW_MS + 1;
    rejects("FUTURE_TIMESTAMP", () =>
      ahead.verifier.verify(ahead.signer.sign("Inventory", BODY), "Inventory", BODY),
    );

    for (const drift of [-DEFAULT_MAX_SKEW_MS, DEFAULT_MAX_SKEW_MS]) {
      const edge = session({ senderAhead: -120_000 });
      edge.verifier.verify(edge.signer.sign("Inventory", BODY), "Inventory", BODY);
      edge.clock.senderAhead += drift;
      edge.verifier.verify(edge.signer.sign("Inventory", BODY), "Inventory", BODY);
      assert.equal(edge.verifier.offsetMs, -120_000, "the offset stays the one measured first");
    }
  });

  it("message security - a first message absurdly far off is refused, and a rejected first message measures nothing", () => {
    const future = session({ senderAhead: DEFAULT_MAX_OFFSET_MS + 1 });
    rejects("FUTURE_TIMESTAMP", () =>
      future.verifier.verify(future.signer.sign("Inventory", BODY), "Inventory", BODY),
    );
    const past = session({ senderAhead: -DEFAULT_MAX_OFFSET_MS - 1 });
    rejects("STALE_TIMESTAMP", () =>
      past.verifier.verify(past.signer.sign("Inventory", BODY), "Inventory", BODY),
    );
    assert.equal(past.verifier.offsetMs, undefined);

    // A forged first message (BAD_MAC) sets no offset either: the genuine one measures it.
    const { signer, verifier } = session({ senderAhead: 90_000 });
    const header = signer.sign("Inventory", BODY);
    rejects("BAD_MAC", () =>
      verifier.verify({ ...header, timestamp: header.timestamp - 90_000 }, "Inventory", BODY),
    );
    assert.equal(verifier.offsetMs, undefined);
    verifier.verify(header, "Inventory", BODY);
    assert.equal(verifier.offsetMs, 90_000);
  });

  it("message security - another session's id, or any message after close, is UNKNOWN_SESSION", () => {
    const { verifier, signer } = session();
    const other = forge({ sessionId: "s2", sequence: 1, nonce: "AAAAAAAAAAAAAAAAAAAAAA==", timestamp: T0 });
    rejects("UNKNOWN_SESSION", () => verifier.verify(other, "Inventory", BODY));
    verifier.close();
    rejects("UNKNOWN_SESSION", () => verifier.verify(signer.sign("Inventory", BODY), "Inventory", BODY));
  });

  it("message security - a header of the wrong shape or size is MALFORMED_HEADER", () => {
    const { signer, verifier } = session();
    const good = signer.sign("Inventory", BODY);
    const bad: unknown[] = [
      null,
      "header",
      { ...good, extra: 1 },
      { ...good, mac: undefined },
      { ...good, sequence: 0 },
      { ...good, sequence: "1" },
      { ...good, timestamp: 1.5 },
      { ...good, sessionId: "x".repeat(65) },
      { ...good, sessionId: "s 1" },
      { ...good, nonce: respell(good.nonce) },
      { ...good, nonce: Buffer.alloc(17).toString("base64") },
      { ...good, mac: Buffer.alloc(31).toString("base64") },
    ];
    for (const header of bad) rejects("MALFORMED_HEADER", () => verifier.verify(header, "Inventory", BODY));
    rejects("MALFORMED_HEADER", () => verifier.verify(good, "In ventory", BODY));
    verifier.verify(good, "Inventory", BODY);
  });

  it("message security - errors are one class per kind, with name, code and retryable", () => {
    const { signer, verifier } = session();
    const header = signer.sign("Inventory", BODY);
    try {
      verifier.verify(header, "Inventory", Buffer.from("x"));
      assert.fail("expected BAD_MAC");
    } catch (err) {
      assert.ok(isMessageSecurityError(err) && err instanceof Error);
      assert.deepEqual([err.name, err.code, err.retryable], ["BadMacError", "BAD_MAC", false]);
    }
  });

  it("message security - nonce memory is bounded by count, and a replay of a forgotten nonce still fails on its sequence", () => {
    const { signer, verifier } = session();
    const first = signer.sign("Inventory", BODY);
    verifier.verify(first, "Inventory", BODY);
    // No clock moves here: what bounds the memory is the count, not time.
    let recent = first;
    for (let i = 0; i < 5_000; i++) {
      recent = signer.sign("Inventory", BODY);
      verifier.verify(recent, "Inventory", BODY);
    }
    assert.equal(verifier.nonceCount, DEFAULT_MAX_NONCES);
    rejects("REPLAYED", () => verifier.verify(recent, "Inventory", BODY));
    rejects("OUT_OF_ORDER", () => verifier.verify(first, "Inventory", BODY));

    const small = new Verifier({
      sessionId: "s1",
      key: KEY,
      direction: "workstation-to-agent",
      maxNonces: 2,
      now: () => T0,
    });
    const smallSigner = new Signer({
      sessionId: "s1",
      key: KEY,
      direction: "workstation-to-agent",
      now: () => T0,
    });
    for (let i = 0; i < 10; i++) small.verify(smallSigner.sign("Inventory", BODY), "Inventory", BODY);
    assert.equal(small.nonceCount, 2);
  });

  it("message security - an hour-long session keeps working with no clock in the replay checks", () => {
    const { clock, signer, verifier } = session({ senderAhead: 45_000 });
    const captured: SecurityHeader[] = [];
    for (let minute = 0; minute < 60; minute++) {
      const header = signer.sign("Inventory", BODY);
      verifier.verify(header, "Inventory", BODY);
      captured.push(header);
      clock.now += 60_000;
    }
    // A replay is refused whenever it comes: its timestamp is stale by now, and its nonce known.
    for (const header of captured.slice(-3)) assert.throws(() => verifier.verify(header, "Inventory", BODY));
  });

  it("message security - both ends of one TLS 1.3 connection export the same MAC key, another connection not", async () => {
    const ca = createRunCa({ runId: "mac-key", validForMs: 600_000 });
    const server = issueLeaf(ca, { commonName: "agent", subjectAltNames: ["127.0.0.1"], usage: "server" });
    const client = issueLeaf(ca, { commonName: "workstation", subjectAltNames: [], usage: "client" });
    const serverKeys: Buffer[] = [];
    const listener = tls.createServer(
      {
        cert: server.certPem,
        key: server.keyPem,
        ca: ca.certPem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => {
        socket.setTimeout(5_000, () => socket.destroy());
        serverKeys.push(exportMacKey(socket, "run1/web01"));
        socket.end();
      },
    );
    listener.on("connection", (raw: Socket) => raw.setTimeout(5_000, () => raw.destroy()));
    listener.listen(0, "127.0.0.1");
    await once(listener, "listening");
    try {
      const clientKeys: Buffer[] = [];
      for (let i = 0; i < 2; i++) {
        const socket = tls.connect({
          host: "127.0.0.1",
          port: (listener.address() as AddressInfo).port,
          ca: ca.certPem,
          cert: client.certPem,
          key: client.keyPem,
          minVersion: "TLSv1.3",
        });
        socket.setTimeout(5_000, () => socket.destroy(new Error("client socket timed out")));
        await once(socket, "secureConnect");
        clientKeys.push(exportMacKey(socket, "run1/web01"));
        assert.notDeepEqual(exportMacKey(socket, "run1/web02"), clientKeys[i]);
        socket.resume();
        await once(socket, "close");
      }
      assert.equal(serverKeys.length, 2);
      assert.deepEqual(serverKeys, clientKeys);
      assert.equal(clientKeys[0]?.byteLength, 32);
      assert.notDeepEqual(clientKeys[0], clientKeys[1]);
    } finally {
      listener.close();
    }
  });

  it("message security - exportMacKey refuses anything but TLS 1.3", () => {
    const tls12 = { getProtocol: () => "TLSv1.2", exportKeyingMaterial: () => Buffer.alloc(32) };
    assert.throws(() => exportMacKey(tls12, "run1/web01"), /TLS 1\.3/);
  });
});
