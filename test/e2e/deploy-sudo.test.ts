/**
 * `sumac deploy` end to end through a login that becomes root with a sudo password, on an account
 * an attacker has prepared: a `sudo` of its own first on the login's PATH (set in ~/.bashrc, which
 * the login shell reads for every command). The run must succeed as root, the password must never
 * reach that `sudo`, and nothing but the logs may stay.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { containerSkipReason } from "../support/engine.ts";
import { startLinuxTarget, type LinuxTarget } from "../support/linux-target.ts";
import { versionFileComponent, writeFleetJob } from "../support/fleet-job.ts";

const CLI = fileURLToPath(new URL("../../cli/sumac.ts", import.meta.url));
const RUN_MS = 180_000;
const skip = await containerSkipReason();

function sumac(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sumac did not exit within ${RUN_MS} ms`));
    }, RUN_MS);
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe(
  "deploy end to end - a login with a sudo password and a sudo shim on its PATH",
  { skip, timeout: 600_000 },
  () => {
    let target: LinuxTarget;
    let work: string;
    const got = "/tmp/sumac-shim-got";

    before(async () => {
      work = await mkdtemp(join(tmpdir(), "sumac-e2e-sudo-"));
      target = await startLinuxTarget({ withNode: true, capAdd: ["NET_ADMIN"] });
      const shim = Buffer.from(
        `#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -p ] && printf '%s' "$2" >&2; shift; done\nhead -n 1 >> ${got}\nexit 1\n`,
      ).toString("base64");
      const prepared = await target.exec(
        [
          "install -d -o operator -g operator /home/operator/bin",
          `echo ${shim} | base64 -d > /home/operator/bin/sudo`,
          "chown operator:operator /home/operator/bin/sudo && chmod 755 /home/operator/bin/sudo",
          "cp /home/operator/.bashrc /tmp/bashrc.orig",
          "{ echo 'export PATH=/home/operator/bin:$PATH'; cat /tmp/bashrc.orig; } > /home/operator/.bashrc",
        ].join(" && "),
      );
      assert.equal(prepared.exitCode, 0, prepared.stderr);
    });
    after(async () => {
      await target?.stop();
      await rm(work, { recursive: true, force: true });
    });

    it("deploy end to end - the run succeeds as root, the shim never runs, only logs stay", async () => {
      const dir = join(work, "run");
      const keyFile = join(work, "operator.key");
      await writeFile(keyFile, target.users.operator.privateKey, { mode: 0o600 });
      const job = await writeFleetJob(dir, [target], [versionFileComponent("tool", "2.0.0")], {
        overrides: {
          0: {
            user: "operator",
            auth: { key: { file: keyFile } },
            become: { password: { env: "SUMAC_TEST_SUDO" } },
          },
        },
      });
      const stateDir = join(dir, "state");
      const run = await sumac(["deploy", job, "--state-dir", stateDir, "--json"], {
        ...process.env,
        SUMAC_TEST_SUDO: target.users.operator.password,
      });
      assert.equal(run.code, 0, run.out);
      assert.equal((await target.exec("cat /var/lib/sumac-test/tool")).stdout.trim(), "2.0.0");
      assert.equal((await target.exec("stat -c %U /var/lib/sumac-test/tool")).stdout.trim(), "root");
      assert.equal((await target.exec(`test -e ${got}; echo $?`)).stdout, "1\n", "the shim never ran");
      const [runId] = await readdir(join(stateDir, "runs"));
      assert.ok(runId);
      const report = JSON.parse(await readFile(join(stateDir, "runs", runId, "report.json"), "utf8")) as {
        exitCode: number;
      };
      assert.equal(report.exitCode, 0);
      const left = await target.exec(
        `find /var/tmp/sumac -mindepth 1; pgrep -af '[s]umac-agent-' || true; ls /var/log/sumac/${runId} >/dev/null || echo "log missing"`,
      );
      assert.equal(left.stdout.trim(), "", left.stdout);
    });
  },
);
