import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import ssh2 from "ssh2";
import { containerSkipReason } from "../support/engine.ts";
import { startLinuxTarget, type LinuxTarget } from "../support/linux-target.ts";

/** Every SSH step here has a deadline: the handshake and login, then each command. */
const loginTimeoutMs = 10_000;
const commandTimeoutMs = 15_000;

interface Login {
  username: string;
  privateKey?: string;
  password?: string;
  /** SHA-256 of the host key to accept; any other key ends the handshake. */
  pin: Buffer;
  /** Called with every host key the server presents. */
  onHostKey?: (key: Buffer) => void;
}

/** Connects and logs in with a pinned host key; resolves once authenticated. */
function login(target: LinuxTarget, how: Login): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client
      .once("ready", () => resolve(client))
      // `on`, not `once`: a dropped connection can emit a second error after the first.
      .on("error", (err) => {
        client.destroy();
        reject(err);
      })
      .connect({
        host: target.host,
        port: target.port,
        username: how.username,
        privateKey: how.privateKey,
        password: how.password,
        tryKeyboard: false,
        readyTimeout: loginTimeoutMs,
        hostVerifier: (key: Buffer) => {
          how.onHostKey?.(key);
          return createHash("sha256").update(key).digest().equals(how.pin);
        },
      });
  });
}

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command over an open session, optionally writing `stdin` and closing it. */
function run(client: ssh2.Client, command: string, stdin?: string): Promise<Outcome> {
  const timeout = new Error(`'${command}' did not finish within ${commandTimeoutMs} ms`);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.destroy();
      reject(timeout);
    }, commandTimeoutMs);
    client.exec(command, (err, stream) => {
      if (err) {
        clearTimeout(timer);
        reject(err);
        return;
      }
      let stdout = "";
      let stderr = "";
      stream.on("data", (d: Buffer) => (stdout += d.toString()));
      stream.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      stream.on("close", (code: number | null) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      if (stdin !== undefined) stream.end(stdin);
    });
  });
}

/** Logs in, runs `fn`, and always closes the connection. */
async function session<T>(target: LinuxTarget, how: Omit<Login, "pin">, fn: (c: ssh2.Client) => Promise<T>) {
  const client = await login(target, { ...how, pin: target.hostKeySha256 });
  try {
    return await fn(client);
  } finally {
    client.end();
  }
}

const skip = await containerSkipReason();
describe("linux-target - fixture", { skip }, () => {
  let plain: LinuxTarget;
  let withNode: LinuxTarget;

  before(async () => {
    const started = await Promise.allSettled([startLinuxTarget(), startLinuxTarget({ withNode: true })]);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) {
      for (const s of started) if (s.status === "fulfilled") await s.value.stop();
      throw failed.reason;
    }
    [plain, withNode] = started.map((s) => (s as PromiseFulfilledResult<LinuxTarget>).value) as [
      LinuxTarget,
      LinuxTarget,
    ];
  });
  after(async () => {
    await Promise.all([plain?.stop(), withNode?.stop()]);
  });

  it("linux-target - root logs in with its key and is uid 0", async () => {
    const { root } = plain.users;
    const out = await session(plain, { username: "root", privateKey: root.privateKey }, (c) =>
      run(c, "id -u"),
    );
    assert.deepEqual(out, { code: 0, stdout: "0\n", stderr: "" });
  });

  it("linux-target - root logs in with its password", async () => {
    const { root } = plain.users;
    const out = await session(plain, { username: "root", password: root.password }, (c) => run(c, "id -un"));
    assert.equal(out.stdout, "root\n");
  });

  it("linux-target - a wrong host key pin is refused before any command runs", async () => {
    const marker = `/tmp/pin-${randomBytes(6).toString("hex")}`;
    const seen: Buffer[] = [];
    // The other container's key: a real host key, just not this host's.
    const connecting = login(plain, {
      username: "root",
      privateKey: plain.users.root.privateKey,
      pin: withNode.hostKeySha256,
      onHostKey: (key) => seen.push(key),
    }).then(async (client) => {
      try {
        await run(client, `touch ${marker}`);
      } finally {
        client.end();
      }
    });
    await assert.rejects(connecting, (err: Error & { level?: string }) => {
      assert.equal(err.level, "handshake", `expected a handshake failure, got ${err.stack}`);
      return true;
    });
    assert.equal(seen.length, 1, "the verifier saw the host key once");
    assert.ok(createHash("sha256").update(seen[0]!).digest().equals(plain.hostKeySha256));
    const check = await plain.exec(`test -e ${marker}`);
    assert.notEqual(check.exitCode, 0, `${marker} exists: a command ran`);
  });

  it("linux-target - deploy runs sudo without a password", async () => {
    const { deploy } = plain.users;
    const out = await session(plain, { username: "deploy", privateKey: deploy.privateKey }, (c) =>
      run(c, "id -u; sudo -n id -u"),
    );
    assert.equal(out.code, 0, out.stderr);
    const [self, elevated] = out.stdout.trim().split("\n");
    assert.notEqual(self, "0");
    assert.equal(elevated, "0");
  });

  it("linux-target - operator's sudo needs its password, given on stdin", async () => {
    const { operator } = plain.users;
    await session(plain, { username: "operator", privateKey: operator.privateKey }, async (c) => {
      const refused = await run(c, "sudo -n true");
      assert.notEqual(refused.code, 0, "sudo -n succeeded without a password");
      // The password goes on stdin, never into the command line.
      const granted = await run(c, "sudo -S -p '' id -u", `${operator.password}\n`);
      assert.deepEqual({ code: granted.code, stdout: granted.stdout }, { code: 0, stdout: "0\n" });
    });
  });

  it("linux-target - the plain variant has no node", async () => {
    const { deploy } = plain.users;
    const out = await session(plain, { username: "deploy", privateKey: deploy.privateKey }, (c) =>
      run(c, "command -v node nodejs"),
    );
    assert.notEqual(out.code, 0, `found: ${out.stdout}`);
  });

  it("linux-target - the node variant has node 18 or later", async () => {
    const { deploy } = withNode.users;
    const out = await session(withNode, { username: "deploy", privateKey: deploy.privateKey }, (c) =>
      run(c, "node -p process.versions.node"),
    );
    assert.equal(out.code, 0, out.stderr);
    const major = Number(out.stdout.split(".")[0]);
    assert.ok(major >= 18, `node ${out.stdout.trim()}`);
  });

  it("linux-target - each container has its own host key, the one ssh-keygen reports", async () => {
    assert.notEqual(plain.hostKeyFingerprint, withNode.hostKeyFingerprint);
    for (const t of [plain, withNode]) {
      assert.match(t.hostKeyFingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
      const out = await t.exec("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub");
      assert.equal(out.stdout.split(" ")[1], t.hostKeyFingerprint);
    }
  });
});
