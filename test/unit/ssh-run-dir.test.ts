/**
 * ssh/files.ts `createRunDir` against a recording FilesHost: the run directory script runs as one
 * command, and the login's uid comes from it (no `id -u` of its own) unless root must make it.
 * The script itself runs against real containers in test/integration/ssh-session.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ExecOptions, ExecResult } from "../../actors/remote.ts";
import { createRunDir, type FilesHost } from "../../actors/ssh/files.ts";

function host(become: boolean, stdout: string) {
  const calls = { exec: [] as { command: string; become: boolean }[], uid: 0, learnt: [] as number[] };
  const h: FilesHost = {
    label: "t1",
    runRoot: "/var/tmp/sumac",
    useBecomeForRunDir: () => Promise.resolve(become),
    uid: () => {
      calls.uid++;
      return Promise.resolve(1000);
    },
    learnUid: (uid) => void calls.learnt.push(uid),
    exec: (command: string, options: ExecOptions): Promise<ExecResult> => {
      calls.exec.push({ command, become: options.become === true });
      return Promise.resolve({ exitCode: 0, stdout, stderr: "" } as ExecResult);
    },
    sftp: () => Promise.reject(new Error("no sftp here")),
    dropSftp: () => undefined,
  };
  return { h, calls };
}

describe("ssh run dir", () => {
  it("ssh run dir - without become one command makes the directories and tells the uid", async () => {
    const { h, calls } = host(false, "uid 1001\n");
    assert.equal(await createRunDir(h, "run-1", { subdirs: ["staging"] }), "/var/tmp/sumac/run-1");
    assert.equal(calls.exec.length, 1);
    assert.equal(calls.exec[0]?.become, false);
    assert.match(
      calls.exec[0]?.command ?? "",
      / sumac-run-dir \/var\/tmp\/sumac \/var\/tmp\/sumac\/run-1 '' staging$/,
    );
    assert.equal(calls.uid, 0, "no `id -u` command of its own");
    assert.deepEqual(calls.learnt, [1001]);
  });

  it("ssh run dir - with become root makes them its own, and the login's upload spool beside them, its uid asked first", async () => {
    const { h, calls } = host(true, "uid 1000\n");
    await createRunDir(h, "run-2", { subdirs: ["staging"] });
    assert.equal(calls.exec.length, 1);
    assert.equal(calls.exec[0]?.become, true);
    assert.match(
      calls.exec[0]?.command ?? "",
      / sumac-run-dir \/var\/tmp\/sumac \/var\/tmp\/sumac\/run-2 1000 \/var\/tmp\/sumac\/\.upload-run-2 staging$/,
    );
    assert.equal(calls.uid, 1);
    assert.deepEqual(calls.learnt, [], "root's script output is not the login's uid");
    assert.equal(h.uploadDir, "/var/tmp/sumac/.upload-run-2");
  });

  it("ssh run dir - a subdirectory name that is not a plain name is refused before any command", async () => {
    const { h, calls } = host(false, "");
    await assert.rejects(createRunDir(h, "run-3", { subdirs: ["a/b"] }), /not a safe directory name/);
    assert.equal(calls.exec.length, 0);
  });
});
