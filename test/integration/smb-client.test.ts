/**
 * sumac's SMB client against Samba standing in for Windows (test/support/windows-standin.ts): one
 * container at today's strictest Windows (SMB 3.1.1 only, signing mandatory), one serving every
 * dialect from 2.0.2 to 3.1.1 and signing only when asked (where the client's own default to sign
 * shows), one requiring encryption. They start together and every case
 * shares them.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { Readable } from "node:stream";
import { SmbClient, type SmbConnectOptions } from "../../actors/smb/client/client.ts";
import { Deframer, encodeFrame } from "../../actors/smb/client/framing.ts";
import { Command } from "../../actors/smb/codec/header.ts";
import { containerSkipReason } from "../support/engine.ts";
import { startWindowsStandin, type WindowsStandin } from "../support/windows-standin.ts";

const skip = await containerSkipReason();
const call = { timeoutMs: 30_000 };
const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

function options(standin: WindowsStandin, extra: Partial<SmbConnectOptions> = {}): SmbConnectOptions {
  return {
    host: standin.host,
    port: standin.port,
    credentials: { user: standin.user, domain: standin.workgroup, password: standin.password },
    timeoutMs: 20_000,
    ...extra,
  };
}

/** A DCE/RPC bind (C706 12.6.4.3) to srvsvc 3.0 with NDR 2.0, assembled by hand. */
function srvsvcBind(): Buffer {
  const uuid = (text: string): Buffer => {
    const h = text.replace(/-/g, "");
    const b = Buffer.from(h, "hex");
    // The first three fields are little-endian on the wire (NDR, drep little-endian).
    return Buffer.concat([
      Buffer.from(b.subarray(0, 4)).reverse(),
      Buffer.from(b.subarray(4, 6)).reverse(),
      Buffer.from(b.subarray(6, 8)).reverse(),
      b.subarray(8),
    ]);
  };
  const body = Buffer.concat([
    Buffer.from([0xb8, 0x10, 0xb8, 0x10]), // max xmit / recv frag 4280
    Buffer.alloc(4), // assoc group
    Buffer.from([1, 0, 0, 0]), // one context, padding
    Buffer.from([0, 0, 1, 0]), // context id 0, one transfer syntax
    uuid("4b324fc8-1670-01d3-1278-5a47bf6ee188"),
    Buffer.from([3, 0, 0, 0]), // srvsvc v3.0
    uuid("8a885d04-1ceb-11c9-9fe8-08002b104860"),
    Buffer.from([2, 0, 0, 0]), // NDR v2
  ]);
  const header = Buffer.from([5, 0, 11, 3, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
  header.writeUInt16LE(header.length + body.length, 8);
  return Buffer.concat([header, body]);
}

/** A socket to the server whose outgoing SMB2 commands are counted. */
async function countingSocket(port: number): Promise<{ socket: net.Socket; sent: number[] }> {
  const socket = net.connect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const sent: number[] = [];
  const deframer = new Deframer(1 << 20);
  const write = socket.write.bind(socket);
  const counting = (chunk: Buffer): boolean => {
    for (const m of deframer.push(chunk)) sent.push(m.readUInt16LE(12));
    return write(chunk);
  };
  socket.write = counting;
  return { socket, sent };
}

/**
 * A TCP proxy to `port` that passes the client's bytes on and hands each of the server's messages
 * to `tamper` (which may change it in place) before passing it on.
 */
async function tamperingProxy(
  port: number,
  tamper: (message: Buffer) => void,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: "127.0.0.1", port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    const deframer = new Deframer(0xffffff);
    upstream.on("data", (chunk: Buffer) => {
      for (const m of deframer.push(chunk)) {
        tamper(m);
        client.write(encodeFrame(m));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("smb client - sumac's SMB 2/3 client against Samba", { skip }, () => {
  let strict: WindowsStandin;
  let range: WindowsStandin;
  let sealed: WindowsStandin;
  let client: SmbClient | undefined;
  const standins: WindowsStandin[] = [];

  after(async () => {
    await client?.close();
    await Promise.allSettled(standins.map((s) => s.stop()));
  });

  before(async () => {
    const started = await Promise.allSettled([
      startWindowsStandin({ netbiosName: "STRICT" }),
      startWindowsStandin({
        netbiosName: "RANGE",
        minProtocol: "SMB2_02",
        maxProtocol: "SMB3_11",
        signing: "auto",
      }),
      startWindowsStandin({ netbiosName: "SEALED", encrypt: "required" }),
    ]);
    for (const s of started) if (s.status === "fulfilled") standins.push(s.value);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    [strict, range, sealed] = started.map((s) => (s as PromiseFulfilledResult<WindowsStandin>).value) as [
      WindowsStandin,
      WindowsStandin,
      WindowsStandin,
    ];
    client = await SmbClient.connect(options(strict));
  });

  it("smb client - connects with SMB 3.1.1, signing with AES-GMAC or AES-CMAC", (t) => {
    assert.equal(client!.dialect, 0x0311);
    assert.equal(client!.signing, true);
    assert.ok([1, 2].includes(client!.signingAlgorithm), `algorithm ${client!.signingAlgorithm}`);
    assert.equal(client!.encrypting, false);
    t.diagnostic(
      `3.1.1 with Samba: signing algorithm ${client!.signingAlgorithm}, cipher ${String(client!.cipher)}`,
    );
  });

  it("smb client - connects over a socket given to it, here on port 139", async () => {
    const socket = net.connect({ host: "127.0.0.1", port: strict.port139 });
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const c = await SmbClient.connect(options(strict, { socket }));
    try {
      const ipc = await c.treeConnect("IPC$", call);
      assert.equal(ipc.share, "IPC$");
      await ipc.disconnect(call);
    } finally {
      await c.close();
    }
    assert.equal(socket.destroyed, true);
  });

  it("smb client - uploads 0 B, 1 B, 1 MiB and 10 MiB to ADMIN$ and reads them back", async (t) => {
    const admin = await client!.treeConnect("ADMIN$", call);
    await admin.mkdirp("sumac/up", call);
    for (const size of [0, 1, 1 << 20, 10 << 20]) {
      const data = randomBytes(size);
      let progress = 0;
      const t0 = performance.now();
      const source = size > 1 << 20 ? Readable.from([data.subarray(0, 12345), data.subarray(12345)]) : data;
      const sent = await admin.writeFile(`sumac/up/f${size}.bin`, source, {
        ...call,
        onProgress: (n) => (progress = n),
      });
      const ms = performance.now() - t0;
      assert.equal(sent.bytes, size);
      assert.equal(sent.sha256, sha256(data));
      assert.equal(progress, size);
      const back = await admin.readFile(`sumac/up/f${size}.bin`, { ...call, maxBytes: 16 << 20 });
      assert.equal(sha256(back), sha256(data), `read back ${size} bytes`);
      const streamed = createHash("sha256");
      let chunks = 0;
      for await (const chunk of admin.readFileStream(`sumac/up/f${size}.bin`, call)) {
        streamed.update(chunk);
        chunks++;
      }
      assert.equal(streamed.digest("hex"), sha256(data), `streamed ${size} bytes in ${chunks} chunks`);
      const onDisk = await strict.exec(`sha256sum /srv/windows/sumac/up/f${size}.bin`);
      assert.match(onDisk.stdout, new RegExp(`^${sha256(data)} `));
      if (size === 10 << 20) t.diagnostic(`10 MiB uploaded in ${ms.toFixed(0)} ms`);
    }
    await assert.rejects(admin.readFile("sumac/up/f1048576.bin", { ...call, maxBytes: 1000 }), {
      code: "OUTPUT_TOO_LARGE",
    });
    await admin.disconnect(call);
  });

  it("smb client - an upload given up half-way rejects with the abort's reason, and the session goes on", async () => {
    const admin = await client!.treeConnect("ADMIN$", call);
    const stop = new AbortController();
    const upload = admin.writeFile("sumac/aborted.bin", randomBytes(10 << 20), {
      ...call,
      signal: stop.signal,
      onProgress: () => stop.abort(new Error("given up")),
    });
    await assert.rejects(upload, /given up/);
    const data = randomBytes(3 << 20);
    await admin.writeFile("sumac/after.bin", data, call);
    assert.equal(
      sha256(await admin.readFile("sumac/after.bin", { ...call, maxBytes: 4 << 20 })),
      sha256(data),
    );
    await admin.remove("sumac/after.bin", call);
    await admin.remove("sumac/aborted.bin", call);
    await admin.disconnect(call);
  });

  it("smb client - lists, stats, renames, resizes and removes a tree on ADMIN$", async () => {
    const admin = await client!.treeConnect("ADMIN$", call);
    await admin.mkdirp("sumac\\ops/a/b", call);
    await admin.writeFile("sumac/ops/a/one.txt", Buffer.from("one"), call);
    await admin.writeFile("sumac/ops/a/b/two.txt", Buffer.from("two!"), call);
    const entries = await admin.list("sumac/ops/a", call);
    assert.deepEqual(entries.map((e) => [e.name, e.size, e.directory]).sort(), [
      ["b", 0n, true],
      ["one.txt", 3n, false],
    ]);
    assert.deepEqual(await admin.stat("sumac/ops/a/b/two.txt", call), { size: 4n, directory: false });
    assert.deepEqual(await admin.stat("sumac/ops/a/b", call), { size: 0n, directory: true });
    assert.equal(await admin.stat("sumac/ops/nothing", call), undefined);
    await admin.rename("sumac/ops/a/one.txt", "sumac/ops/a/b/uno.txt", call);
    await assert.rejects(admin.rename("sumac/ops/a/b/uno.txt", "sumac/ops/a/b/two.txt", call), {
      code: "SMB_STATUS",
    });
    await admin.rename("sumac/ops/a/b/uno.txt", "sumac/ops/a/b/two.txt", { ...call, replace: true });
    assert.equal(
      (await admin.readFile("sumac/ops/a/b/two.txt", { ...call, maxBytes: 10 })).toString(),
      "one",
    );
    await admin.setSize("sumac/ops/a/b/two.txt", 10n, call);
    assert.deepEqual(await admin.stat("sumac/ops/a/b/two.txt", call), { size: 10n, directory: false });
    await admin.remove("sumac/ops/a/b/two.txt", call);
    await admin.remove("sumac/ops/a/b/two.txt", call); // missing: no error
    await admin.writeFile("sumac/ops/a/b/three.txt", Buffer.from("3"), call);
    await admin.removeTree("sumac/ops", call);
    assert.equal(await admin.stat("sumac/ops", call), undefined);
    assert.equal((await strict.exec("test -e /srv/windows/sumac/ops; echo $?")).stdout.trim(), "1");
    await assert.rejects(admin.stat("sumac/../etc", call), { code: "CONFIG_INVALID" });
    await admin.disconnect(call);
  });

  it("smb client - C$ is a share like ADMIN$: a file written there is on the server's disk", async () => {
    const c = await client!.treeConnect("C$", call);
    await c.writeFile("sumac-c.txt", Buffer.from("on C$"), call);
    assert.equal((await strict.exec("cat /srv/c/sumac-c.txt")).stdout, "on C$");
    await c.remove("sumac-c.txt", call);
    await c.disconnect(call);
    await assert.rejects(client!.treeConnect("D$", call), {
      code: "SMB_STATUS",
      message: /BAD_NETWORK_NAME/,
    });
  });

  it("smb client - a DCE/RPC bind over the srvsvc pipe on IPC$ gets a bind_ack", async () => {
    const ipc = await client!.treeConnect("IPC$", call);
    const pipe = await ipc.openPipe("srvsvc", call);
    const answer = await pipe.transceive(srvsvcBind(), call);
    assert.equal(answer[0], 5, "rpc version 5");
    assert.equal(answer[2], 12, "ptype bind_ack");
    await pipe.close(call);
    await ipc.disconnect(call);
  });

  it("smb client - a wrong password is AUTH_FAILED after one exchange, naming the account, not the password", async () => {
    const { socket, sent } = await countingSocket(strict.port);
    const wrong = `wrong-${randomBytes(6).toString("hex")}`;
    const err = await SmbClient.connect({
      ...options(strict, { socket }),
      credentials: { user: strict.user, domain: strict.workgroup, password: wrong },
    }).then(
      () => assert.fail("connected with a wrong password"),
      (e: unknown) => e as Error & { code: string; retryable: boolean },
    );
    assert.equal(err.code, "AUTH_FAILED");
    assert.equal(err.retryable, false);
    assert.match(err.message, new RegExp(strict.user));
    assert.match(err.message, /STATUS_LOGON_FAILURE/);
    assert.ok(!err.message.includes(wrong));
    // NTLM is two SESSION_SETUP requests (NEGOTIATE_MESSAGE, AUTHENTICATE_MESSAGE): one attempt.
    assert.equal(sent.filter((c) => c === Command.SESSION_SETUP).length, 2);
  });

  it("smb client - a final SESSION_SETUP answer or a later answer with a changed signature is SMB_INTEGRITY_FAILED", async () => {
    const flipSignature = (message: Buffer): void => void (message[60] = message[60]! ^ 1);
    // The final SESSION_SETUP answer (status SUCCESS) signed by Samba with the session's new key.
    const onSetup = await tamperingProxy(strict.port, (m) => {
      if (m.readUInt16LE(12) === Command.SESSION_SETUP && m.readUInt32LE(8) === 0) flipSignature(m);
    });
    try {
      await assert.rejects(SmbClient.connect(options(strict, { port: onSetup.port })), {
        code: "SMB_INTEGRITY_FAILED",
      });
    } finally {
      await onSetup.close();
    }
    // A TREE_CONNECT answer on a signed session.
    const onTree = await tamperingProxy(strict.port, (m) => {
      if (m.readUInt16LE(12) === Command.TREE_CONNECT) flipSignature(m);
    });
    try {
      const c = await SmbClient.connect(options(strict, { port: onTree.port }));
      try {
        await assert.rejects(c.treeConnect("IPC$", call), { code: "SMB_INTEGRITY_FAILED" });
      } finally {
        await c.close();
      }
    } finally {
      await onTree.close();
    }
  });

  it("smb client - on 3.1.1 a NEGOTIATE answer changed on the way breaks the pre-authentication hash: SMB_INTEGRITY_FAILED", async () => {
    const proxy = await tamperingProxy(strict.port, (m) => {
      if (m.readUInt16LE(12) === Command.NEGOTIATE) m[64 + 8] = m[64 + 8]! ^ 1; // a bit of ServerGuid
    });
    try {
      await assert.rejects(SmbClient.connect(options(strict, { port: proxy.port })), {
        code: "SMB_INTEGRITY_FAILED",
        message: /final SESSION_SETUP answer is badly signed/,
      });
    } finally {
      await proxy.close();
    }
  });

  it("smb client - a NEGOTIATE answer downgraded on the way (3.0.2 to 3.0) is caught by VALIDATE_NEGOTIATE_INFO", async () => {
    const downgrade = await tamperingProxy(range.port, (m) => {
      // MS-SMB2 2.2.4: DialectRevision is the body's third field.
      if (m.readUInt16LE(12) === Command.NEGOTIATE && m.readUInt16LE(64 + 4) === 0x0302)
        m.writeUInt16LE(0x0300, 64 + 4);
    });
    try {
      const range30 = { dialects: { min: 0x0300, max: 0x0302 }, port: downgrade.port };
      await assert.rejects(SmbClient.connect(options(range, range30)), {
        code: "SMB_INTEGRITY_FAILED",
        message: /validation of the negotiation/,
      });
    } finally {
      await downgrade.close();
    }
  });

  for (const [name, dialect] of [
    ["2.0.2", 0x0202],
    ["2.1", 0x0210],
    ["3.0", 0x0300],
    ["3.0.2", 0x0302],
    ["3.1.1", 0x0311],
  ] as const) {
    it(`smb client - dialect ${name}: signed session, upload and read back`, async () => {
      const c = await SmbClient.connect(options(range, { dialects: { min: dialect, max: dialect } }));
      try {
        assert.equal(c.dialect, dialect);
        assert.equal(c.signing, true);
        const admin = await c.treeConnect("ADMIN$", call);
        const data = randomBytes(300_000);
        await admin.writeFile(`d${name}.bin`, data, call);
        assert.equal(
          sha256(await admin.readFile(`d${name}.bin`, { ...call, maxBytes: 1 << 20 })),
          sha256(data),
        );
        await admin.remove(`d${name}.bin`, call);
      } finally {
        await c.close();
      }
    });
  }

  it("smb client - signing off when neither the caller nor the server requires it", async () => {
    const c = await SmbClient.connect(options(range, { requireSigning: false }));
    try {
      assert.equal(c.signing, false);
      const admin = await c.treeConnect("ADMIN$", call);
      await admin.writeFile("unsigned.bin", Buffer.from("plain"), call);
      assert.equal((await admin.readFile("unsigned.bin", { ...call, maxBytes: 10 })).toString(), "plain");
      await admin.remove("unsigned.bin", call);
    } finally {
      await c.close();
    }
  });

  it("smb client - signing off on 3.0: VALIDATE_NEGOTIATE_INFO still goes signed, and Samba's signed answer passes", async () => {
    const c = await SmbClient.connect(options(range, { requireSigning: false, dialects: { max: 0x0300 } }));
    try {
      assert.equal(c.dialect, 0x0300);
      assert.equal(c.signing, false);
    } finally {
      await c.close();
    }
  });

  it("smb client - a server with no dialect in the caller's range is SMB_NEGOTIATION_FAILED", async () => {
    await assert.rejects(SmbClient.connect(options(strict, { dialects: { max: 0x0302 } })), {
      code: "SMB_NEGOTIATION_FAILED",
    });
  });

  it("smb client - encryption the caller asks for is refused below 3.0", async () => {
    await assert.rejects(SmbClient.connect(options(range, { dialects: { max: 0x0210 }, encrypt: true })), {
      code: "SMB_NEGOTIATION_FAILED",
    });
  });

  it("smb client - encryption asked for by the caller, and required by the server", async () => {
    for (const [standin, extra] of [
      [strict, { encrypt: true }],
      [sealed, {}],
    ] as const) {
      const c = await SmbClient.connect(options(standin, extra));
      try {
        assert.equal(c.encrypting, true);
        assert.ok(c.cipher !== undefined);
        const admin = await c.treeConnect("ADMIN$", call);
        assert.equal(admin.encrypted, true);
        const data = randomBytes(1 << 20);
        await admin.writeFile("sealed.bin", data, call);
        assert.equal(
          sha256(await admin.readFile("sealed.bin", { ...call, maxBytes: 2 << 20 })),
          sha256(data),
        );
        await admin.remove("sealed.bin", call);
      } finally {
        await c.close();
      }
    }
  });
});
