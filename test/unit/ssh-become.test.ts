import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  MAX_HANDSHAKE_BYTES,
  SudoHandshake,
  isSudoPath,
  shellQuote,
  wrapCommand,
} from "../../actors/ssh/become.ts";

const run = promisify(execFile);
const sudo = { prompt: "[P]", marker: "[OK]", sendsPassword: true };

/** Feeds `text` one byte at a time and returns the steps that were not "wait". */
function feedBytes(hs: SudoHandshake, text: string): string[] {
  const steps: string[] = [];
  for (const byte of Buffer.from(text)) {
    const step = hs.feed(Buffer.from([byte]));
    if (step.kind === "ready") steps.push(`ready:${step.rest.toString()}`);
    else if (step.kind !== "wait") steps.push(step.kind);
  }
  return steps;
}

describe("sudo and command lines", () => {
  it("become - shell quoting survives a real sh for awkward strings", async () => {
    const samples = ["plain", "with space", "it's", `"$HOME" \`id\` $(id) ;&|<>*?`, "new\nline", "-n", ""];
    for (const s of samples) {
      const { stdout } = await run("sh", ["-c", `printf %s ${shellQuote(s)}`]);
      assert.equal(stdout, s);
    }
    assert.throws(() => shellQuote("a\0b"), TypeError);
  });

  it("become - without become, the command runs under timeout; with it, sudo -n or sudo -S with a prompt", () => {
    assert.equal(
      wrapCommand("echo hi", { become: false, remoteTimeoutMs: 3000 }).line,
      "exec timeout -k 5.000s 3.000s sh -c 'echo hi'",
    );
    const n = wrapCommand("id", { become: {} });
    assert.match(
      n.line,
      /^exec \/usr\/bin\/env -i \/bin\/sh -c 'for s in \/usr\/bin\/sudo \/bin\/sudo .*' sumac-sudo -n -- \/bin\/sh -c 'PATH=\/usr\/local\/sbin:[^']*; export PATH; .*' '\[sumac-sudo-ok-[0-9a-f]{18}\]' sh -c id$/,
    );
    assert.equal(n.sudo?.sendsPassword, false);
    const s = wrapCommand("id", { become: { password: "secret" } });
    assert.match(s.line, / sumac-sudo -S -p '\[sumac-sudo-prompt-[0-9a-f]{18}\]' -- /);
    const p = wrapCommand("id", { become: { password: "secret", sudoPath: "/opt/sudo/bin/sudo" } });
    assert.match(p.line, /^exec \/usr\/bin\/env -i \/opt\/sudo\/bin\/sudo -S -p /);
    assert.ok(!s.line.includes("secret"), "the password is never on the command line");
    assert.notEqual(
      s.sudo?.marker,
      wrapCommand("id", { become: {} }).sudo?.marker,
      "a fresh marker per call",
    );
  });

  it("become - a sudo path is absolute and plain; the line refuses any other", () => {
    for (const good of ["/usr/bin/sudo", "/opt/sudo-1.9/bin/sudo"]) assert.ok(isSudoPath(good), good);
    for (const bad of [
      "sudo",
      "bin/sudo",
      "/usr/bin/",
      "/usr/../bin/sudo",
      "/a b/sudo",
      "/x/sudo;id",
      "/./sudo",
    ])
      assert.ok(!isSudoPath(bad), bad);
    assert.throws(() => wrapCommand("id", { become: { sudoPath: "sudo" } }), TypeError);
  });

  it("become - the sudo found is run from its own directory, not the caller's PATH, which root never sees", async () => {
    // /bin/sh and /usr/bin/env as on every Linux; sudo itself as a stand-in named by sudoPath that
    // runs what follows `--`. A `sudo` first on PATH must not run, and root's PATH is ROOT_PATH.
    const dir = await mkdtemp(join(tmpdir(), "sumac-become-"));
    try {
      await writeFile(join(dir, "sudo"), `#!/bin/sh\ncat > ${dir}/shim-got-stdin\n`, { mode: 0o755 });
      await writeFile(
        join(dir, "stand-in"),
        `#!/bin/sh\nwhile [ "$1" != -- ]; do shift; done; shift; exec "$@"\n`,
        { mode: 0o755 },
      );
      const w = wrapCommand('printf "%s" "$PATH"', { become: { sudoPath: join(dir, "stand-in") } });
      const { stdout, stderr } = await run("sh", ["-c", w.line], {
        env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ""}` },
      });
      assert.equal(stdout, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
      assert.match(stderr, /\[sumac-sudo-ok-/);
      await assert.rejects(stat(join(dir, "shim-got-stdin")), { code: "ENOENT" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("become - the wrapped line runs the command with its stdin under a real sh", async () => {
    const w = wrapCommand(`printf '%s' "$0-x"; cat`, { become: false, remoteTimeoutMs: 10_000 });
    const child = run("sh", ["-c", w.line]);
    child.child.stdin?.end("in");
    assert.equal((await child).stdout, "sh-xin");
  });

  it("become - password asked once: send it; the marker then starts the command, keeping its stderr", () => {
    const hs = new SudoHandshake(sudo);
    assert.deepEqual(feedBytes(hs, "We trust you have received the usual lecture\n[P]"), ["send-password"]);
    const step = hs.feed(Buffer.from("[OK]\ncommand's own stderr"));
    assert.deepEqual(step.kind === "ready" ? step.rest.toString() : step.kind, "command's own stderr");
    assert.deepEqual(hs.feed(Buffer.from("more")).kind, "ready");
  });

  it("become - NOPASSWD: the marker comes without a prompt and no password is sent", () => {
    assert.deepEqual(feedBytes(new SudoHandshake(sudo), "[OK]\n"), ["ready:"]);
  });

  it("become - a second prompt means a wrong password: refused with sudo's words, without the prompts", () => {
    const hs = new SudoHandshake(sudo);
    assert.deepEqual(feedBytes(hs, "[P]Sorry, try again.\n[P]"), ["send-password", "refused"]);
    assert.equal(hs.said(), "Sorry, try again.");
    const step = new SudoHandshake(sudo);
    step.feed(Buffer.from("[P]"));
    const refused = step.feed(Buffer.from("Sorry, try again.\n[P]"));
    assert.deepEqual(refused, {
      kind: "refused",
      reason: "sudo did not accept the sudo password (Sorry, try again.)",
    });
  });

  it("become - a prompt without a configured password is refused; endless chatter is refused", () => {
    const hs = new SudoHandshake({ ...sudo, sendsPassword: false });
    assert.deepEqual(hs.feed(Buffer.from("[P]")), {
      kind: "refused",
      reason: "sudo asked for a password and none is configured",
    });
    const chatty = new SudoHandshake(sudo);
    assert.equal(chatty.feed(Buffer.alloc(MAX_HANDSHAKE_BYTES + 1, 0x41)).kind, "refused");
  });
});
