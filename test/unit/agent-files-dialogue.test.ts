/**
 * The start-up dialogue over files (agent/protocol/files-dialogue.ts, agent/server/dialogue-files.ts):
 * its lines, how the agent reads and deletes the workstation's files without following links, and
 * the stop file.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { access, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import {
  completeEvents,
  DIALOGUE_FILES,
  eventLine,
  MAX_CONFIG_FILE_BYTES,
  MAX_OUT_LINE_BYTES,
} from "../../agent/protocol/files-dialogue.ts";
import { dialogueModeOf } from "../../agent/server/dialogue.ts";
import { createFilesDialogue, watchStopFile } from "../../agent/server/dialogue-files.ts";
import { readSmallFile } from "../../agent/server/small-file.ts";

const run = promisify(execFile);
const gone = (path: string) => assert.rejects(access(path), { code: "ENOENT" });

describe("agent files dialogue", () => {
  let root: string;
  let n = 0;
  /** A fresh directory per test: the bundle's. */
  const fresh = async (): Promise<string> => {
    const dir = join(root, `d${n++}`);
    await mkdir(dir);
    return dir;
  };
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "sumac-files-dialogue-"));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it("agent files dialogue - the mode is files only with --dialogue=files; another value is refused", () => {
    assert.equal(dialogueModeOf([]), "stdio");
    assert.equal(dialogueModeOf(["sumac-run=r1:t1"]), "stdio");
    assert.equal(dialogueModeOf(["sumac-run=r1:t1", "--dialogue=files"]), "files");
    assert.equal(dialogueModeOf(["--dialogue=stdio"]), "stdio");
    assert.throws(() => dialogueModeOf(["--dialogue=pipe"]), /--dialogue must be stdio or files, not "pipe"/);
  });

  it("agent files dialogue - each event is one JSON line; a long failure message is cut to stay under 64 KiB", () => {
    assert.equal(
      eventLine({ event: "publicKey", publicKeyPem: "PEM\n", pid: 42 }),
      '{"event":"publicKey","publicKeyPem":"PEM\\n","pid":42}\n',
    );
    assert.equal(
      eventLine({ event: "stopped", reason: "Shutdown", removed: false }),
      '{"event":"stopped","reason":"Shutdown","removed":false}\n',
    );
    // Control characters take six bytes each in JSON: the worst case still fits.
    const line = eventLine({ event: "failed", message: "\u0001".repeat(100_000) });
    assert.ok(Buffer.byteLength(line) < MAX_OUT_LINE_BYTES);
    assert.match(line, /…\[91808 more\]"\}\n$/);
    assert.throws(
      () =>
        eventLine({
          event: "listening",
          port: 1,
          busy: new Array<number>(20_000).fill(65535),
          fingerprint256: "",
        }),
      RangeError,
    );
  });

  it("agent files dialogue - a reader takes complete lines only, and skips what is not an event", () => {
    const text = [
      '{"event":"publicKey","publicKeyPem":"k","pid":7}',
      "not json",
      "[1]",
      '{"no":"event"}',
      '{"event":"listening","port":1,"busy":[],"fingerprint256":"f"}',
      '{"event":"stopped","reason":"x"',
    ].join("\n");
    assert.deepEqual(
      completeEvents(text).map((e) => e.event),
      ["publicKey", "listening"],
    );
    assert.deepEqual(
      completeEvents(`${text},"removed":true}\n`).map((e) => e.event),
      ["publicKey", "listening", "stopped"],
    );
    assert.deepEqual(completeEvents(""), []);
  });

  it("agent files dialogue - a small file is read only as a regular file at its name, within its cap", async () => {
    const dir = await fresh();
    await writeFile(join(dir, "a"), "hello");
    assert.equal((await readSmallFile(join(dir, "a"), 5)).toString(), "hello");
    await assert.rejects(readSmallFile(join(dir, "a"), 4), /is over 4 bytes/);
    await symlink(join(dir, "a"), join(dir, "link"));
    await assert.rejects(readSmallFile(join(dir, "link"), 100), /is not a regular file/);
    await assert.rejects(readSmallFile(dir, 100), /is not a regular file/);
    await assert.rejects(readSmallFile(join(dir, "none"), 100), { code: "ENOENT" });
  });

  it("agent files dialogue - the config is read, then deleted at once; events are appended to the out file", async () => {
    const dir = await fresh();
    await writeFile(join(dir, DIALOGUE_FILES.config), `\uFEFF${JSON.stringify({ runId: "r1" })}`);
    const channel = createFilesDialogue({ dir });
    assert.deepEqual(await channel.readConfig(), { runId: "r1" });
    await gone(join(dir, DIALOGUE_FILES.config));
    channel.send({ event: "publicKey", publicKeyPem: "k", pid: 1 });
    channel.send({ event: "failed", message: "m" });
    assert.equal(
      await readFile(join(dir, DIALOGUE_FILES.out), "utf8"),
      '{"event":"publicKey","publicKeyPem":"k","pid":1}\n{"event":"failed","message":"m"}\n',
    );
  });

  it("agent files dialogue - a config that is missing, too large, a link or not JSON fails, and is deleted all the same", async () => {
    const missing = createFilesDialogue({ dir: await fresh() });
    await assert.rejects(missing.readConfig(), /cannot read agent-config\.json: .*ENOENT/);

    const large = await fresh();
    await writeFile(join(large, DIALOGUE_FILES.config), " ".repeat(MAX_CONFIG_FILE_BYTES + 1));
    await assert.rejects(createFilesDialogue({ dir: large }).readConfig(), /is over 262144 bytes/);
    await gone(join(large, DIALOGUE_FILES.config));

    const linked = await fresh();
    await writeFile(join(linked, "elsewhere.json"), "{}");
    await symlink(join(linked, "elsewhere.json"), join(linked, DIALOGUE_FILES.config));
    await assert.rejects(createFilesDialogue({ dir: linked }).readConfig(), /is not a regular file/);
    // The link went; what it pointed to stays.
    await gone(join(linked, DIALOGUE_FILES.config));
    assert.equal(await readFile(join(linked, "elsewhere.json"), "utf8"), "{}");

    const bad = await fresh();
    await writeFile(join(bad, DIALOGUE_FILES.config), "{");
    await assert.rejects(
      createFilesDialogue({ dir: bad }).readConfig(),
      /agent-config\.json is not one JSON document/,
    );
    await gone(join(bad, DIALOGUE_FILES.config));
  });

  it("agent files dialogue - the out file is created exclusively: one already there, or a link, fails the start", async () => {
    const there = await fresh();
    await writeFile(join(there, DIALOGUE_FILES.out), "old\n");
    assert.throws(() => createFilesDialogue({ dir: there }), { code: "EEXIST" });
    assert.equal(await readFile(join(there, DIALOGUE_FILES.out), "utf8"), "old\n");

    const linked = await fresh();
    await symlink(join(linked, "target"), join(linked, DIALOGUE_FILES.out));
    assert.throws(() => createFilesDialogue({ dir: linked }), { code: "EEXIST" });
    await gone(join(linked, "target"));
  });

  it("agent files dialogue - the certificate is waited for, read when it appears, and deleted", async () => {
    const dir = await fresh();
    const channel = createFilesDialogue({ dir, certPollMs: 20 });
    const read = channel.readCertificate();
    await new Promise((resolve) => setTimeout(resolve, 150));
    // As the workstation writes it: the whole file under another name, then renamed into place.
    await writeFile(join(dir, DIALOGUE_FILES.certPart), JSON.stringify({ certPem: "C" }));
    await run("mv", [join(dir, DIALOGUE_FILES.certPart), join(dir, DIALOGUE_FILES.cert)]);
    assert.deepEqual(await read, { certPem: "C" });
    await gone(join(dir, DIALOGUE_FILES.cert));
  });

  it("agent files dialogue - no certificate within the deadline fails with DEADLINE_EXCEEDED", async () => {
    const channel = createFilesDialogue({ dir: await fresh(), certDeadlineMs: 200, certPollMs: 20 });
    await assert.rejects(channel.readCertificate(), {
      code: "DEADLINE_EXCEEDED",
      message: "agent-cert.json did not appear within 200 ms",
    });
  });

  it("agent files dialogue - the stop file is seen, deleted, and said once", async () => {
    const dir = await fresh();
    let stops = 0;
    const cancel = watchStopFile(dir, () => stops++, 30);
    try {
      await writeFile(join(dir, DIALOGUE_FILES.stop), "");
      const until = Date.now() + 2000;
      while (stops === 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(stops, 1);
      await gone(join(dir, DIALOGUE_FILES.stop));
      await writeFile(join(dir, DIALOGUE_FILES.stop), "");
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal(stops, 1, "looking ends with the first stop");
    } finally {
      cancel();
    }
  });

  it("agent files dialogue - watching for the stop file never keeps the process alive", async () => {
    const dir = await fresh();
    const module = new URL("../../agent/server/dialogue-files.ts", import.meta.url).href;
    const script = `import { watchStopFile } from ${JSON.stringify(module)}; watchStopFile(${JSON.stringify(dir)}, () => {});`;
    const started = Date.now();
    await run(process.execPath, ["--input-type=module", "-e", script], { timeout: 10_000 });
    assert.ok(Date.now() - started < 5_000, "the process ended by itself");
  });
});
