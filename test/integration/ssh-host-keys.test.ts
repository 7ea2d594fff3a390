/**
 * Host key verification against a real sshd (a linux-target container): a wrong pinned key is
 * refused before authentication with nothing touched on the host, strict refuses unknown hosts,
 * known_hosts (hashed, `[host]:port`, `@revoked`) is honoured, and 50 concurrent accept-new logins
 * record each host name exactly once in an uncorrupted file.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ssh2 from "ssh2";
import { connectSsh, type SshConnectOptions } from "../../actors/ssh/connect.ts";
import { KnownHostsFile } from "../../actors/ssh/known-hosts-file.ts";
import {
  checkHostKey,
  fingerprint,
  hashHostName,
  knownHostsName,
  parseKnownHosts,
} from "../../actors/ssh/known-hosts.ts";
import type { HostKeyPolicy } from "../../actors/ssh/host-key.ts";
import { containerSkipReason } from "../support/engine.ts";
import { waitUntil } from "../support/container.ts";
import { startLinuxTarget, type LinuxTarget } from "../support/linux-target.ts";

const skip = await containerSkipReason();
const timeoutMs = 20_000;

/** A loopback port nothing listens on (bound, then closed). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** An ed25519 public key line that is not the target's. */
function otherKeyLine(): string {
  return ssh2.utils.generateKeyPairSync("ed25519").public.trim();
}

describe("ssh host keys - against a linux-target", { skip }, () => {
  let target: LinuxTarget;
  let tmp: string;
  let hostKeyLine: string;

  function options(hostKey: HostKeyPolicy, host = target.host): SshConnectOptions {
    return {
      host,
      port: target.port,
      username: "root",
      auth: { kind: "key", privateKey: target.users.root.privateKey },
      hostKey,
      timeoutMs,
    };
  }

  before(async () => {
    target = await startLinuxTarget();
    tmp = await mkdtemp(join(tmpdir(), "sumac-hostkeys-"));
    hostKeyLine = (await target.exec("cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub")).stdout.trim();
    // sshd drops unauthenticated connections beyond 10 at random (MaxStartups 10:30:100); a fleet
    // has one sshd per host, but this test sends 50 logins to one.
    await target.exec("echo 'MaxStartups 200:30:300' > /etc/ssh/sshd_config.d/00-test.conf && kill -HUP 1");
    await waitUntil(
      "sshd after reload",
      async () =>
        (await connectSsh(options({ kind: "pinned", fingerprints: [target.hostKeyFingerprint] }))).close(),
      20_000,
    );
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
    await target?.stop();
  });

  it("ssh host key - a wrong pinned key is refused before authentication, nothing touched; other targets unaffected", async () => {
    const wrong = ssh2.utils.generateKeyPairSync("ed25519").public;
    const wrongFingerprint = fingerprint(Buffer.from(wrong.split(" ")[1] ?? "", "base64"));
    const trace: string[] = [];
    const deployTo = async (o: SshConnectOptions): Promise<string> => {
      const s = await connectSsh(o);
      try {
        const dir = await s.createRunDir("wrong-key-run");
        await s.put(Buffer.from("agent"), `${dir}/agent.js`, { mode: 0o644 });
        return dir;
      } finally {
        await s.close();
      }
    };
    const [mismatch, good, unreachable] = await Promise.allSettled([
      deployTo({
        ...options({ kind: "pinned", fingerprints: [wrongFingerprint] }),
        debug: (l) => trace.push(l),
        runRoot: "/var/tmp/sumac-wrong",
      }),
      deployTo(options({ kind: "pinned", fingerprints: [target.hostKeyFingerprint] })),
      deployTo({
        ...options({ kind: "pinned", fingerprints: [target.hostKeyFingerprint] }),
        host: "127.0.0.1",
        port: await freePort(),
      }),
    ]);
    assert.equal(mismatch.status, "rejected");
    const error = mismatch.reason as Error & { code?: string; retryable?: boolean };
    assert.equal(error.code, "HOST_KEY_MISMATCH");
    assert.equal(error.retryable, false);
    assert.ok(error.message.includes(`presented ${target.hostKeyFingerprint} (ssh-ed25519)`), error.message);
    assert.ok(error.message.includes(`expected ${wrongFingerprint} (pinned in the job)`), error.message);
    assert.ok(
      trace.some((l) => /Host denied/.test(l)),
      "ssh2 saw the verification fail",
    );
    assert.ok(!trace.some((l) => /USERAUTH/.test(l)), "no user name or credential was sent");
    assert.equal((await target.exec("test -e /var/tmp/sumac-wrong; echo $?")).stdout, "1\n");
    assert.deepEqual(good, { status: "fulfilled", value: "/var/tmp/sumac/wrong-key-run" });
    assert.equal(unreachable.status, "rejected");
    assert.equal((unreachable.reason as { code?: string }).code, "UNREACHABLE");
  });

  it("ssh host key - strict refuses a host not in known_hosts and leaves the file alone", async () => {
    const path = join(tmp, "strict_known_hosts");
    await writeFile(path, `# nothing for this host\n${otherKeyLine().replace(/^/, "other.example ")}\n`);
    const before = await readFile(path, "utf8");
    await assert.rejects(
      connectSsh(options({ kind: "known-hosts", file: new KnownHostsFile({ path }), policy: "strict" })),
      (e: Error & { code?: string }) =>
        e.code === "HOST_KEY_UNKNOWN" &&
        e.message.includes(`presented ${target.hostKeyFingerprint}`) &&
        e.message.includes(path),
    );
    assert.equal(await readFile(path, "utf8"), before);
  });

  it("ssh host key - known_hosts: a hashed [host]:port entry logs in; another key or @revoked is refused, also under accept-new", async () => {
    const name = knownHostsName(target.host, target.port);
    const good = join(tmp, "good_known_hosts");
    await writeFile(good, `@cert-authority * ${otherKeyLine()}\n${hashHostName(name)} ${hostKeyLine}\n`);
    const s = await connectSsh(
      options({ kind: "known-hosts", file: new KnownHostsFile({ path: good }), policy: "strict" }),
    );
    assert.equal(s.hostKeyFingerprint, target.hostKeyFingerprint);
    await s.close();

    const changed = join(tmp, "changed_known_hosts");
    await writeFile(changed, `# comment\n${name} ${otherKeyLine()}\n`);
    await assert.rejects(
      connectSsh(
        options({ kind: "known-hosts", file: new KnownHostsFile({ path: changed }), policy: "accept-new" }),
      ),
      (e: Error & { code?: string }) =>
        e.code === "HOST_KEY_MISMATCH" && e.message.includes(`(known_hosts ${changed} line 2)`),
    );
    assert.equal((await readFile(changed, "utf8")).split("\n").length, 3, "nothing appended");

    const revoked = join(tmp, "revoked_known_hosts");
    await writeFile(revoked, `${name} ${hostKeyLine}\n@revoked * ${hostKeyLine}\n`);
    await assert.rejects(
      connectSsh(
        options({ kind: "known-hosts", file: new KnownHostsFile({ path: revoked }), policy: "strict" }),
      ),
      (e: Error & { code?: string }) =>
        e.code === "HOST_KEY_REVOKED" && e.message.includes(`${revoked} line 2`),
    );
  });

  it("ssh host key - 50 concurrent accept-new logins on 5 host names record each name exactly once", async () => {
    const path = join(tmp, "concurrent_known_hosts");
    const preamble = `# existing\nunrelated.example ${otherKeyLine()}`; // no final newline: the append must add one
    await writeFile(path, preamble);
    const aliases = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
    const file = new KnownHostsFile({ path });
    const sessions = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        connectSsh(options({ kind: "known-hosts", file, policy: "accept-new" }, aliases[i % aliases.length])),
      ),
    );
    await Promise.all(sessions.map((s) => s.close()));

    const text = await readFile(path, "utf8");
    assert.ok(text.startsWith(`${preamble}\n`), "the existing lines are intact");
    assert.ok(text.endsWith("\n"));
    const parsed = parseKnownHosts(text);
    assert.deepEqual(parsed.warnings, []);
    assert.equal(parsed.entries.length, 1 + aliases.length);
    const key = Buffer.from(hostKeyLine.split(" ")[1] ?? "", "base64");
    for (const alias of aliases) {
      const name = knownHostsName(alias, target.port);
      const lines = parsed.entries.filter((e) => checkHostKey([e], name, key).kind === "known");
      assert.equal(lines.length, 1, `exactly one line for ${name}`);
    }
    // A fresh reader (as another process would be) trusts them under strict.
    const strict = new KnownHostsFile({ path });
    const again = await Promise.all(
      aliases.map((a) => connectSsh(options({ kind: "known-hosts", file: strict, policy: "strict" }, a))),
    );
    await Promise.all(again.map((s) => s.close()));
  });
});
