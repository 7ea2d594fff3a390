/** The agent's crash sweep of gone runs' Windows Firewall rules (agent/server/firewall-sweep.ts). */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { CommandOutcome } from "../../base/command.ts";
import { NETSH_SHOW_ARGV, netshDeleteArgv, type NetshRunner } from "../../agent/server/firewall-netsh.ts";
import {
  runState,
  sweepCandidates,
  sweepDeadRunRules,
  type RunState,
} from "../../agent/server/firewall-sweep.ts";

const crlf = (lines: string[]): string => lines.map((l) => `${l}\r\n`).join("");
const DASHES = "-".repeat(70);
/** A listing of rules by name, as `show rule name=all dir=in` prints them. */
const listing = (...names: string[]): CommandOutcome => ({
  exitCode: 0,
  stdout: crlf([
    "",
    ...names.flatMap((n) => [`${"Rule Name:".padEnd(38)}${n}`, DASHES, "Enabled:   Yes", ""]),
    "Ok.",
  ]),
  stderr: "",
});
const DELETED: CommandOutcome = { exitCode: 0, stdout: crlf(["", "Deleted 1 rule(s).", "Ok."]), stderr: "" };

function scripted(...answers: CommandOutcome[]) {
  const calls: Array<readonly string[]> = [];
  const run: NetshRunner = (args) => {
    calls.push(args);
    const answer = answers.shift();
    if (answer === undefined) return Promise.reject(new Error(`unexpected netsh call ${args.join(" ")}`));
    return Promise.resolve(answer);
  };
  return { run, calls };
}

describe("agent firewall sweep", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "sumac-sweep-"));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it("agent firewall sweep - candidates are other runs' agent rules with a plain run name, once each", () => {
    const names = [
      "Remote Desktop - User Mode (TCP-In)",
      "sumac run=cur-run target=t2 port=62287",
      "sumac run=CUR-RUN target=t3 port=62288",
      "sumac run=old-1 target=t1 port=62286",
      "SUMAC RUN=old-1 TARGET=t1 PORT=62286",
      "sumac run=old-1 target=t1 port=62286",
      "sumac run=.. target=t port=1",
      "sumac run=a:b target=t port=1",
      "sumac run=_x target=t port=1",
      "sumac:own3r0wn3r0wn3:run-1:lease-1:61000",
      "sumac run=old-2 target=t1 port=62286 extra",
    ];
    assert.deepEqual(sweepCandidates(names, "cur-run"), [
      { name: "sumac run=old-1 target=t1 port=62286", runId: "old-1" },
      { name: "sumac run=old-2 target=t1 port=62286 extra", runId: "old-2" },
    ]);
  });

  it("agent firewall sweep - a run is gone without its directory, stopped once its out file says stopped or failed, else live", async () => {
    const dir = (name: string) => join(root, name);
    await mkdir(dir("stopped"));
    await writeFile(
      join(dir("stopped"), "agent-out.jsonl"),
      '{"event":"publicKey","publicKeyPem":"k","pid":1}\n{"event":"listening","port":1,"busy":[],"fingerprint256":"f"}\n{"event":"stopped","reason":"Shutdown","removed":true}\n',
    );
    await mkdir(dir("failed"));
    await writeFile(join(dir("failed"), "agent-out.jsonl"), '{"event":"failed","message":"no"}\n');
    await mkdir(dir("live"));
    await writeFile(
      join(dir("live"), "agent-out.jsonl"),
      '{"event":"publicKey","publicKeyPem":"k","pid":1}\n',
    );
    // A stopped line still being written is not read yet.
    await mkdir(dir("half"));
    await writeFile(join(dir("half"), "agent-out.jsonl"), '{"event":"stopped","reason":"x","rem');
    await mkdir(dir("starting"));
    // A link in place of the out file, or of the directory, is not followed: the rules stay.
    await mkdir(dir("linked"));
    await symlink(join(dir("stopped"), "agent-out.jsonl"), join(dir("linked"), "agent-out.jsonl"));
    await symlink(dir("stopped"), dir("dirlink"));
    const states: Record<string, RunState> = {};
    for (const name of ["gone", "stopped", "failed", "live", "half", "starting", "linked", "dirlink"])
      states[name] = await runState(dir(name));
    assert.deepEqual(states, {
      gone: "gone",
      stopped: "stopped",
      failed: "stopped",
      live: "live",
      half: "live",
      starting: "live",
      linked: "live",
      dirlink: "live",
    });
  });

  it("agent firewall sweep - deletes the rules of stopped runs, keeps live ones and those whose directory is not here (another run root's), never touches others", async () => {
    const names = [
      "Core Networking (TCP-In)",
      "sumac run=gone target=t1 port=62286",
      "sumac run=done target=t1 port=62287",
      "sumac run=live target=t1 port=62288",
      "sumac run=mine target=t9 port=62289",
    ];
    const { run, calls } = scripted(listing(...names), DELETED);
    const states: Record<string, RunState> = { gone: "gone", done: "stopped", live: "live" };
    const looked: string[] = [];
    const result = await sweepDeadRunRules({
      runRoot: "/runs",
      currentRunId: "mine",
      netsh: run,
      stateOf: (runDir) => {
        looked.push(runDir);
        return Promise.resolve(states[runDir.slice("/runs/".length)] ?? "live");
      },
    });
    assert.deepEqual(result, {
      removed: ["sumac run=done target=t1 port=62287"],
      kept: ["sumac run=gone target=t1 port=62286", "sumac run=live target=t1 port=62288"],
      failed: [],
    });
    assert.deepEqual(looked, ["/runs/gone", "/runs/done", "/runs/live"]);
    assert.deepEqual(calls, [NETSH_SHOW_ARGV, netshDeleteArgv("sumac run=done target=t1 port=62287")]);
  });

  it("agent firewall sweep - a listing or a deletion that fails is in the result, and the sweep never throws", async () => {
    const elevation: CommandOutcome = {
      exitCode: 1,
      stdout: "The requested operation requires elevation (Run as administrator).\r\n",
      stderr: "",
    };
    const denied = await sweepDeadRunRules({
      runRoot: "/runs",
      currentRunId: "mine",
      netsh: scripted(elevation).run,
    });
    assert.deepEqual(denied.removed, []);
    assert.equal(denied.failed[0]?.status, "unavailable");
    const gone = (): Promise<RunState> => Promise.resolve("stopped");
    const { run } = scripted(
      listing("sumac run=a target=t port=1", "sumac run=b target=t port=2"),
      elevation,
    );
    const partly = await sweepDeadRunRules({
      runRoot: "/runs",
      currentRunId: "mine",
      netsh: run,
      stateOf: gone,
    });
    assert.deepEqual(partly.removed, []);
    assert.equal(partly.failed.length, 2, "the deletion refused, then the runner's error on the next");
    assert.match(JSON.stringify(partly.failed[1]), /unexpected netsh call/);
  });
});
