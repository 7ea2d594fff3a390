/**
 * The acceptance matrix of sumac's Windows file channel (actors/smb/connect.ts's openSmbFiles)
 * against Samba standing in for Windows (test/support/windows-standin.ts): every dialect from
 * 2.0.2 to 3.1.1 with signing mandatory, encryption required by the server, a wrong password, a
 * server killed mid-upload, NetBIOS name resolution, and the session service on 139 with 445
 * closed. Uploads go through the channel; reading back and listing use sumac's client directly
 * (the channel has no read). All containers start together and each case has its own.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { finished, pipeline } from "node:stream/promises";
import { SmbClient } from "../../actors/smb/client/client.ts";
import { openSmbFiles, type OpenSmbFilesOptions, type SmbFiles } from "../../actors/smb/connect.ts";
import { resolveHost } from "../../actors/netbios/resolve.ts";
import { openNetbiosSession } from "../../actors/netbios/session-service.ts";
import { containerSkipReason } from "../support/engine.ts";
import {
  startWindowsStandin,
  type SmbDialect,
  type WindowsStandin,
  type WindowsStandinOptions,
} from "../support/windows-standin.ts";

const skip = await containerSkipReason();
const MiB = 1 << 20;
const BIG = 100 * MiB;
const call = { timeoutMs: 60_000 };
/** ADMIN$ of the stand-in, and where the channel's runs go in it (its run root /ADMIN$/Temp/sumac). */
const ADMIN = "/srv/windows";
const RUNS = `${ADMIN}/Temp/sumac`;
const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
/** NetBIOS names unique to this run: other tests' stand-ins share the bridge and its broadcasts. */
const tag = randomBytes(2).toString("hex").toUpperCase();

/** Writes `size` random bytes to `path` a MiB at a time; resolves with their SHA-256. */
async function randomFile(path: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  const out = createWriteStream(path);
  for (let done = 0; done < size; done += MiB) {
    const chunk = randomBytes(Math.min(MiB, size - done));
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, "drain");
  }
  out.end();
  await finished(out);
  return hash.digest("hex");
}

/**
 * Samba here keeps its own ACLs, so every run directory comes with the "kept another DACL" warning
 * (test/integration/smb-run-dir.test.ts is where that is tested): kept here, not printed.
 */
const dacl: string[] = [];
const onWarning = (line: string): void => void dacl.push(line);

function credentialsOf(s: WindowsStandin): OpenSmbFilesOptions["credentials"] {
  return { user: s.user, domain: s.workgroup, password: s.password };
}

/** The channel to a stand-in's published 445, NetBIOS left out. */
function openDirect(s: WindowsStandin, extra: Partial<OpenSmbFilesOptions> = {}): Promise<SmbFiles> {
  return openSmbFiles({
    host: s.host,
    port: s.port,
    credentials: credentialsOf(s),
    netbios: "never",
    timeoutMs: 30_000,
    onWarning,
    ...extra,
  });
}

/** A TCP relay to `port` on 127.0.0.1 that counts connections and SMB2 SESSION_SETUP requests. */
async function countingRelay(
  port: number,
): Promise<{ port: number; connections: number; sessionSetups: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    counts.connections++;
    const upstream = net.connect({ host: "127.0.0.1", port });
    sockets.add(client).add(upstream);
    let held = Buffer.alloc(0);
    client.on("data", (chunk: Buffer) => {
      held = Buffer.concat([held, chunk]);
      // MS-SMB2 2.1: a 4-byte length, then the message; Command is at offset 12 of its header.
      while (held.length >= 4 && held.length >= 4 + (held.readUInt32BE(0) & 0xffffff)) {
        const message = held.subarray(4, 4 + (held.readUInt32BE(0) & 0xffffff));
        if (
          message.length >= 14 &&
          message.readUInt32LE(0) === 0x424d53fe &&
          message.readUInt16LE(12) === 0x0001
        )
          counts.sessionSetups++;
        held = held.subarray(4 + message.length);
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => client.write(chunk));
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on("error", () => b.destroy());
      a.on("close", () => b.destroy());
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const counts = {
    port: (server.address() as net.AddressInfo).port,
    connections: 0,
    sessionSetups: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, "close");
    },
  };
  return counts;
}

/** A port on 127.0.0.1 that refuses connections (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}

describe("smb interop - the Windows file channel against Samba standing in for Windows", { skip }, () => {
  const dialects: [name: string, samba: SmbDialect, code: number][] = [
    ["2.0.2", "SMB2_02", 0x0202],
    ["2.1", "SMB2_10", 0x0210],
    ["3.0", "SMB3_00", 0x0300],
    ["3.0.2", "SMB3_02", 0x0302],
    ["3.1.1", "SMB3_11", 0x0311],
  ];
  const specs: Record<string, WindowsStandinOptions> = {
    sealed: { netbiosName: `I${tag}-SEAL`, encrypt: "required" },
    nb139: { netbiosName: `I${tag}-NB139`, ports: "139" },
    kill: { netbiosName: `I${tag}-KILL` },
  };
  for (const [name, samba, code] of dialects)
    specs[name] = {
      netbiosName: `I${tag}-D${code.toString(16)}`,
      minProtocol: "SMB2_02",
      maxProtocol: samba,
    };
  const standins = new Map<string, WindowsStandin>();
  const standin = (key: string): WindowsStandin => {
    const s = standins.get(key);
    assert.ok(s, `no stand-in ${key}`);
    return s;
  };
  let dir = "";
  let bigPath: string;
  let bigSha: string;
  const small = [0, 1, MiB].map((size) => {
    const data = randomBytes(size);
    return { name: `f${size}.bin`, size, data, sha: sha256(data) };
  });

  // Registered here, not in `before`: an `after` called inside a hook runs when that hook ends.
  after(async () => {
    await Promise.allSettled([...standins.values()].map((s) => s.stop()));
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-interop-"));
    bigPath = join(dir, "big.bin");
    const started = Promise.allSettled(
      Object.entries(specs).map(async ([key, spec]) => {
        const s = await startWindowsStandin({ readyTimeoutMs: 90_000, ...spec });
        standins.set(key, s);
      }),
    );
    bigSha = await randomFile(bigPath, BIG);
    const failed = (await started).find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
  });

  /** Uploads the four files through `files`, reads them back and lists them with `reader`, removes the run. */
  async function matrix(s: WindowsStandin, files: SmbFiles, reader: SmbClient, run: string): Promise<void> {
    const runDir = await files.createRunDir(run);
    assert.equal(runDir, `/ADMIN$/Temp/sumac/${run}`);
    const all = [...small, { name: "f100MiB.bin", size: BIG, data: undefined, sha: bigSha }];
    for (const f of all) {
      const sent = await files.put(f.data ?? bigPath, `${runDir}/${f.name}`, {
        mode: 0o644,
        sha256: f.sha,
        timeoutMs: 180_000,
      });
      assert.deepEqual(sent, { bytes: f.size, sha256: f.sha }, f.name);
    }
    const admin = await reader.treeConnect("ADMIN$", call);
    const inShare = `Temp/sumac/${run}`;
    for (const f of all) {
      const back = await admin.readFile(`${inShare}/${f.name}`, { ...call, maxBytes: BIG });
      assert.equal(back.length, f.size, `${f.name} read back`);
      assert.equal(sha256(back), f.sha, `${f.name} read back`);
    }
    const listed = await admin.list(inShare, call);
    assert.deepEqual(
      listed.map((e) => [e.name, e.size, e.directory]).sort(),
      all.map((f) => [f.name, BigInt(f.size), false]).sort(),
    );
    await files.remove(runDir);
    assert.equal(await admin.stat(inShare, call), undefined);
    assert.notEqual((await s.exec(`ls -A ${RUNS}/${run}`)).exitCode, 0, "the run's directory is gone");
    assert.ok(!(await s.exec(`ls -A ${RUNS}`)).stdout.split("\n").includes(run));
    await admin.disconnect(call);
  }

  for (const [name, , code] of dialects) {
    it(`smb interop - dialect ${name}, signing mandatory: 0 B, 1 B, 1 MiB and 100 MiB up, read back, listed, removed`, async () => {
      const s = standin(name);
      const files = await openDirect(s);
      const reader = await SmbClient.connect({
        host: s.host,
        port: s.port,
        credentials: credentialsOf(s),
        timeoutMs: 30_000,
      });
      try {
        assert.equal(files.connection.dialect, code);
        assert.equal(files.connection.transport, "direct");
        assert.equal(files.connection.signing, true);
        assert.equal(files.connection.encrypting, false);
        assert.equal(reader.dialect, code);
        await matrix(s, files, reader, `d${name}`);
      } finally {
        await files.close();
        await reader.close();
      }
    });
  }

  it("smb interop - encryption required by the server: the same files, every message sealed", async () => {
    const s = standin("sealed");
    const files = await openDirect(s);
    const reader = await SmbClient.connect({
      host: s.host,
      port: s.port,
      credentials: credentialsOf(s),
      timeoutMs: 30_000,
    });
    try {
      assert.equal(files.connection.dialect, 0x0311);
      assert.equal(files.connection.encrypting, true);
      assert.ok(files.connection.cipher !== undefined);
      await matrix(s, files, reader, "sealed");
      const seen = await s.exec("smbstatus -b");
      assert.match(seen.stdout, /AES-\d+-(GCM|CCM)/, `smbstatus: ${seen.stdout}`);
    } finally {
      await files.close();
      await reader.close();
    }
  });

  it("smb interop - a wrong password is AUTH_FAILED after one logon on one connection", async () => {
    const s = standin("3.1.1");
    const relay = await countingRelay(s.port);
    try {
      const wrong = `wrong-${randomBytes(6).toString("hex")}`;
      const err = await openSmbFiles({
        host: "127.0.0.1",
        port: relay.port,
        credentials: { ...credentialsOf(s), password: wrong },
        timeoutMs: 30_000,
      }).then(
        () => assert.fail("opened with a wrong password"),
        (e: unknown) => e as Error & { code: string; retryable: boolean },
      );
      assert.equal(err.code, "AUTH_FAILED", err.message);
      assert.equal(err.retryable, false);
      assert.ok(!err.message.includes(wrong));
      // NTLM is two SESSION_SETUP requests (NEGOTIATE, AUTHENTICATE); a retry would be two more, or a
      // second connection (a fall back to 139 would have been UNREACHABLE here: nothing listens there).
      assert.equal(relay.connections, 1);
      assert.equal(relay.sessionSetups, 2);
    } finally {
      await relay.close();
    }
  });

  it("smb interop - neither 445 nor 139 answering is UNREACHABLE, naming both", async () => {
    const [direct, session] = [await closedPort(), await closedPort()];
    const s = standin("3.1.1");
    const err = await openSmbFiles({
      host: "127.0.0.1",
      port: direct,
      sessionPort: session,
      credentials: credentialsOf(s),
      timeoutMs: 10_000,
    }).then(
      () => assert.fail("opened a channel to closed ports"),
      (e: unknown) => e as Error & { code: string; retryable: boolean },
    );
    assert.equal(err.code, "UNREACHABLE");
    assert.equal(err.retryable, true);
    assert.match(err.message, new RegExp(`port ${direct}: .*ECONNREFUSED.*port ${session}: `));
  });

  it("smb interop - a server killed mid-upload is a retryable error, and the retry leaves no .part", async (t) => {
    const s = standin("kill");
    const run = "killed";
    const remote = `/ADMIN$/Temp/sumac/${run}/big.bin`;
    const part = `${RUNS}/${run}/big.bin.part`;
    // The source is a FIFO fed by the test, so the server dies at a known point of the upload.
    const fifo = join(dir, "slow.fifo");
    execFileSync("mkfifo", [fifo]);
    const files = await openDirect(s);
    const runDir = await files.createRunDir(run);
    assert.equal(`${runDir}/big.bin`, remote);
    const timeoutMs = 60_000;
    const t0 = performance.now();
    const putting = files.put(fifo, remote, { mode: 0o644, timeoutMs }).then(
      () => assert.fail("the upload finished though its server was killed"),
      (e: unknown) => e as Error & { code: string; retryable: boolean },
    );
    const feeder = createWriteStream(fifo);
    feeder.on("error", () => {}); // EPIPE once the upload gives up reading
    await pipeline(createReadStream(bigPath, { end: 40 * MiB - 1 }), feeder, { end: false });
    const size = async (): Promise<number> =>
      Number((await s.exec(`stat -c %s ${part} 2>/dev/null || echo 0`)).stdout.trim());
    while ((await size()) < 32 * MiB) {
      assert.ok(performance.now() - t0 < 30_000, "the first 32 MiB did not arrive");
      await new Promise((r) => setTimeout(r, 100));
    }
    // The smbd serving this connection, not the parent: the container lives on.
    const killed = await s.exec("pkill -KILL -P $(pgrep -o -x smbd) -x smbd");
    assert.equal(killed.exitCode, 0, killed.stderr);
    const feeding = pipeline(createReadStream(bigPath, { start: 40 * MiB }), feeder).catch(() => {});
    const err = await putting;
    const elapsed = performance.now() - t0;
    feeder.destroy();
    await feeding;
    await files.close();
    assert.equal(err.retryable, true, `${err.code}: ${err.message}`);
    assert.ok(["CONNECTION_LOST", "TIMEOUT", "UNREACHABLE"].includes(err.code), err.code);
    assert.ok(elapsed < timeoutMs, `failed after ${elapsed} ms`);
    t.diagnostic(`${err.code} after ${Math.round(elapsed)} ms: ${err.message}`);
    assert.equal((await s.exec(`test -e ${part}`)).exitCode, 0, "the failed attempt left its .part");

    const again = await openDirect(s);
    try {
      const sent = await again.put(bigPath, remote, { mode: 0o644, sha256: bigSha, timeoutMs: 180_000 });
      assert.equal(sent.sha256, bigSha);
      assert.equal((await s.exec(`ls -A ${RUNS}/${run}`)).stdout.trim(), "big.bin");
      assert.match((await s.exec(`sha256sum ${RUNS}/${run}/big.bin`)).stdout, new RegExp(`^${bigSha} `));
      await again.remove(runDir);
    } finally {
      await again.close();
    }
  });

  it("smb interop - a NetBIOS name resolved by the server's nmbd, then SMB on that address", async () => {
    const s = standin("3.0");
    const found = await resolveHost(s.netbiosName, {
      mode: "always",
      nameServer: s.address,
      timeoutMs: 5_000,
    });
    assert.deepEqual(found, { address: s.address, via: "netbios" });
    const files = await openSmbFiles({
      host: s.netbiosName.toLowerCase(),
      netbios: "always",
      nameServer: s.address,
      onWarning,
      credentials: credentialsOf(s),
      timeoutMs: 30_000,
    });
    try {
      assert.deepEqual(
        [files.connection.address, files.connection.via, files.connection.port, files.connection.dialect],
        [s.address, "netbios", 445, 0x0300],
      );
      const runDir = await files.createRunDir("by-name");
      const [f] = small.slice(-1);
      assert.ok(f);
      await files.put(f.data, `${runDir}/${f.name}`, { mode: 0o644, sha256: f.sha });
      assert.match((await s.exec(`sha256sum ${RUNS}/by-name/${f.name}`)).stdout, new RegExp(`^${f.sha} `));
      await files.remove(runDir);
    } finally {
      await files.close();
    }
  });

  it("smb interop - 445 closed: the same files through the NetBIOS session service on 139", async () => {
    const s = standin("nb139");
    const files = await openSmbFiles({
      host: s.address,
      credentials: credentialsOf(s),
      timeoutMs: 30_000,
      onWarning,
    });
    const socket = await openNetbiosSession({
      host: s.address,
      calledName: s.netbiosName,
      timeoutMs: 10_000,
    });
    const reader = await SmbClient.connect({
      host: s.address,
      socket,
      credentials: credentialsOf(s),
      timeoutMs: 30_000,
    });
    try {
      assert.deepEqual(
        [files.connection.via, files.connection.port, files.connection.transport, files.connection.dialect],
        ["literal", 139, "netbios-session", 0x0311],
      );
      await matrix(s, files, reader, "nb139");
    } finally {
      await files.close();
      await reader.close();
    }
    // By name: resolved by nmbd, then called by that name rather than *SMBSERVER.
    const byName = await openSmbFiles({
      host: s.netbiosName,
      netbios: "always",
      nameServer: s.address,
      onWarning,
      credentials: credentialsOf(s),
      timeoutMs: 30_000,
    });
    try {
      assert.deepEqual([byName.connection.via, byName.connection.port], ["netbios", 139]);
      await byName.createRunDir("nb139-by-name");
      await byName.remove("/ADMIN$/Temp/sumac/nb139-by-name");
    } finally {
      await byName.close();
    }
  });
});
