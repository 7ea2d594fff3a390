/**
 * `sumac clean <job.yaml>` against what a crashed workstation leaves: on a `linux-target` (with
 * nftables) an agent process still running, its run directory and its firewall rule; on an
 * `scm-peer` target a `sumac-*` service, an agent process, its run directory and its Windows
 * Firewall rule. Everything of sumac goes; the logs, the agent cache and what is not sumac's stay.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { main, type CliIo } from "../../cli/main.ts";
import { cleanJob } from "../../run/clean.ts";
import { loadJob } from "../../run/job/load.ts";
import { containerSkipReason } from "../support/engine.ts";
import { startLinuxTarget, type LinuxTarget } from "../support/linux-target.ts";
import { runScmClient, scmClientSkipReason, startScmPeer, type ScmPeer } from "../support/scm-peer.ts";

const skip = (await containerSkipReason()) ?? (await scmClientSkipReason());
const OLD = "20200101-000000-000-abcdef";

describe(
  "sumac clean - what crashed runs left on Linux and Windows targets",
  { skip, timeout: 600_000 },
  () => {
    let tmp: string;
    let linux: LinuxTarget | undefined;
    let peer: ScmPeer | undefined;

    before(async () => {
      tmp = await mkdtemp(join(tmpdir(), "sumac-clean-"));
      [linux, peer] = await Promise.all([
        startLinuxTarget({ withNode: true, capAdd: ["NET_ADMIN"] }),
        startScmPeer(),
      ]);
    });

    after(async () => {
      await Promise.allSettled([linux?.stop(), peer?.stop()]);
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    it("sumac clean - on Linux: the agent is stopped, its run directory and firewall rule removed; logs, cache and other rules kept", async () => {
      const t = linux!;
      const setup = await t.exec(
        [
          "set -e",
          `mkdir -p /var/tmp/sumac/${OLD}/staging /var/tmp/sumac/cache/keep /var/log/sumac/${OLD}`,
          `echo 'setInterval(() => {}, 1000)' > /var/tmp/sumac/${OLD}/agent.js`,
          `echo kept > /var/log/sumac/${OLD}/agent.log`,
          `setsid node /var/tmp/sumac/${OLD}/agent.js sumac-run=${OLD}:t1 > /dev/null 2>&1 < /dev/null &`,
          "nft add table inet sumac_agent",
          "nft add chain inet sumac_agent input '{ type filter hook input priority 0; policy accept; }'",
          `nft add rule inet sumac_agent input tcp dport 62286 accept comment '"sumac run=${OLD} target=t1 port=62286"'`,
          "nft add table inet other && nft add chain inet other input '{ type filter hook input priority 0; }'",
          "nft add rule inet other input tcp dport 22 accept comment '\"not sumac\"'",
          "sleep 0.5; pgrep -f '[s]umac-run=' >/dev/null && echo ready",
        ].join("\n"),
      );
      assert.equal(setup.stdout.trim(), "ready", setup.stderr);
      const file = join(tmp, "linux.yaml");
      const keyFile = join(tmp, "key");
      await writeFile(keyFile, t.users.root.privateKey, { mode: 0o600 });
      await writeFile(
        file,
        stringify({
          name: "clean",
          targets: [
            {
              name: "t1",
              host: t.address,
              user: "root",
              auth: { key: { file: keyFile } },
              hostKey: t.hostKeyFingerprint,
            },
          ],
          package: { name: "p", components: [{ id: "c", version: "1", detect: "true", install: "true" }] },
        }),
      );
      const out: string[] = [];
      const err: string[] = [];
      const io: CliIo = { out: (s) => void out.push(s), err: (s) => void err.push(s), env: process.env };
      const code = await main(["clean", file, "--state-dir", join(tmp, "state")], io, undefined, cleanJob);
      const said = out.join("");
      assert.equal(code, 0, said + err.join(""));
      assert.match(said, /t1: agent process \d+ (stopped on TERM|killed)/);
      assert.match(said, new RegExp(`t1: run directory ${OLD} removed`));
      assert.match(said, new RegExp(`t1: firewall rule "sumac run=${OLD} target=t1 port=62286" removed`));
      assert.match(said, /cleaned 1 of 1 target/);
      const after = await t.exec(
        "pgrep -af '[s]umac-run=' || true; ls -A /var/tmp/sumac; cat /var/log/sumac/*/agent.log; nft list ruleset",
      );
      assert.doesNotMatch(after.stdout, /sumac-run=/);
      assert.doesNotMatch(after.stdout, new RegExp(OLD.replace(/-/g, "\\-") + "\\n"));
      assert.match(after.stdout, /^cache$/m);
      assert.match(after.stdout, /^kept$/m);
      assert.doesNotMatch(after.stdout, /sumac_agent/);
      assert.match(after.stdout, /not sumac/);
      // A second clean finds nothing.
      out.length = 0;
      assert.equal(
        await main(["clean", file, "--state-dir", join(tmp, "state")], io, undefined, cleanJob),
        0,
      );
      assert.match(out.join(""), /t1: nothing left by earlier runs/);
      // --json: one object per target, as docs/cli.md says, and no summary line.
      out.length = 0;
      assert.equal(
        await main(["clean", file, "--json", "--state-dir", join(tmp, "state")], io, undefined, cleanJob),
        0,
      );
      const lines = out.join("").trim().split("\n");
      assert.equal(lines.length, 1, out.join(""));
      assert.deepEqual(JSON.parse(lines[0]!), { id: "t1", transport: "ssh", ok: true, done: [] });
    });

    it("sumac clean - on Windows: the service, the agent (ended by the kill service), its run directory and firewall rule go; logs kept", async () => {
      const p = peer!;
      const rule = `sumac run=${OLD} target=w1 port=62290`;
      const setup = await p.exec(
        [
          "set -e",
          `mkdir -p /windows/Temp/sumac/${OLD}/staging /windows/Temp/sumac/logs/${OLD}`,
          `echo kept > /windows/Temp/sumac/logs/${OLD}/agent.log`,
          // The agent as the test bed runs one: its Linux node, for Windows' node.exe.
          `setsid node -e 'setInterval(() => {}, 1000)' > /dev/null 2>&1 < /dev/null &`,
          "pid=$!",
          `printf '{"event":"publicKey","publicKeyPem":"x","pid":%s}\\n{"event":"listening","port":62290,"busy":[],"fingerprint256":"x"}\\n' $pid > /windows/Temp/sumac/${OLD}/agent-out.jsonl`,
          `/windows/System32/netsh.exe advfirewall firewall add rule "name=${rule}" dir=in action=allow protocol=TCP localport=62290 remoteip=10.0.0.1 >/dev/null`,
          "echo $pid",
        ].join("\n"),
      );
      const pid = Number(setup.stdout.trim().split("\n").pop());
      assert.ok(pid > 0, setup.stdout + setup.stderr);
      const created = await runScmClient(p, [
        { op: "open_scm", as: "scm" },
        {
          op: "create",
          scm: "scm",
          name: `sumac-${OLD}-0`,
          as: "s",
          binary_path: `%SystemRoot%\\System32\\cmd.exe /d /q /s /c "cd /d "%SystemRoot%\\Temp\\sumac\\${OLD}" && start "sumac-agent" /b node.exe agent.js sumac-run=${OLD}:w1 --dialogue=files"`,
        },
      ]);
      assert.equal(created.steps[1]?.error_code, 0, JSON.stringify(created));
      process.env.SUMAC_TEST_CLEAN_PASSWORD = p.password;
      const file = join(tmp, "windows.yaml");
      await writeFile(
        file,
        stringify({
          name: "clean",
          targets: [
            {
              name: "w1",
              host: p.address,
              os: "windows",
              user: p.user,
              domain: p.domain,
              auth: { password: { env: "SUMAC_TEST_CLEAN_PASSWORD" } },
            },
          ],
          package: { name: "p", components: [{ id: "c", version: "1", detect: "true", install: "true" }] },
        }),
      );
      const results = await cleanJob(await loadJob(file), { stateDir: join(tmp, "state") });
      assert.equal(results[0]?.ok, true, JSON.stringify(results));
      const done = results[0].done.join("\n");
      assert.match(done, new RegExp(`swept service sumac-${OLD}-0, left by run ${OLD}`));
      assert.match(done, new RegExp(`agent of run ${OLD} ended`));
      assert.match(done, new RegExp(`run directory ${OLD} removed`));
      const left = await p.exec(
        `kill -0 ${pid} 2>/dev/null && echo alive; ls -A /windows/Temp/sumac; cat /windows/Temp/sumac/logs/${OLD}/agent.log; cat /var/lib/scm-peer/firewall.json 2>/dev/null`,
      );
      assert.doesNotMatch(left.stdout, /alive/);
      assert.deepEqual(left.stdout.split("\n").slice(0, 2), ["logs", "kept"], left.stdout);
      assert.doesNotMatch(left.stdout, /sumac run=/);
      const probe = await runScmClient(p, [
        { op: "open_scm", as: "scm" },
        { op: "open", scm: "scm", name: `sumac-${OLD}-0`, as: "a" },
      ]);
      assert.equal(probe.steps[1]?.error_code, 1060, JSON.stringify(probe));
    });
  },
);
