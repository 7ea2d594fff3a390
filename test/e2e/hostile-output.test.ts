/**
 * A hostile target's output on a real terminal: `sumac deploy` runs in a tmux pane (a real pty, so
 * the live view is what runs) against a local target whose install prints an OSC 52 clipboard
 * write, an OSC 0 title, cursor moves, a C1 CSI and a bidi override. tmux's pipe-pane records every
 * byte sumac writes to the terminal; capture-pane gives what the terminal shows. Whatever the
 * target printed must be shown escaped, and the only control sequences in the bytes are the live
 * view's own.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { access, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { inCI } from "../support/engine.ts";

const run = promisify(execFile);
const CLI = fileURLToPath(new URL("../../cli/sumac.ts", import.meta.url));
const RUN_MS = 120_000;

/** The install: a hostile line (the live view shows the latest), then it waits (up to a minute) for the test to let it finish. */
const HOSTILE_SH = String.raw`case "$1" in
  version) exit 1 ;;
  install)
    printf 'first line\n'
    printf '\033]52;c;cm0gLXJmIC8=\007\033]0;pwned-title\007\033[1A\033[2Kinstall SUCCEEDED (fake) \302\2332J C1 CSI \342\200\256 bidi\n'
    i=0
    while [ ! -e "$RELEASE" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
    printf 'last line\n'
    exit 0 ;;
esac
`;

/** sumac's own live-view sequences: up n lines (ESC [ n F) or to the line's start, then clear down. */
const OWN = /(?:\x1b\[\d+F|\r)\x1b\[J/g;
/** Any C0 control but the newline (the pty writes \r\n for it), DEL, C1 or bidi control. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("hostile output on a terminal", () => {
  let dir: string;
  let skip: string | undefined;
  const socket = () => join(dir, "tmux.sock");
  const tmux = async (...args: string[]) =>
    (await run("tmux", ["-S", socket(), ...args], { timeout: 10_000 })).stdout;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-tmux-"));
    try {
      await run("tmux", ["-V"], { timeout: 10_000 });
    } catch {
      skip = "tmux is not installed";
      if (inCI()) throw new Error(skip);
    }
  });
  after(async () => {
    await run("tmux", ["-S", socket(), "kill-server"]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it("hostile output - no control of the target's reaches the terminal; it is shown escaped", async (t) => {
    if (skip !== undefined) return t.skip(skip);
    const release = join(dir, "release");
    await writeFile(join(dir, "hostile.sh"), HOSTILE_SH.replace("$RELEASE", release));
    await writeFile(
      join(dir, "job.yaml"),
      [
        "name: hostile",
        "targets:",
        "  - host: local",
        "package:",
        "  components:",
        "    - id: evil",
        '      version: "1.0.0"',
        "      files: [hostile.sh]",
        "      detect: sh hostile.sh version",
        "      install: sh hostile.sh install",
        // A local target needs no rule; `none` also keeps the start-up sweep off the host's table.
        "options:",
        "  firewall: none",
        "",
      ].join("\n"),
    );
    const raw = join(dir, "raw.bin");
    const exitFile = join(dir, "exit");
    const go = join(dir, "go");
    // The pane's command waits for `go`, so that pipe-pane records from sumac's first byte.
    const command =
      `while [ ! -e '${go}' ]; do sleep 0.05; done; ` +
      `'${process.execPath}' '${CLI}' deploy '${join(dir, "job.yaml")}' --state-dir '${join(dir, "state")}'; ` +
      `echo $? > '${exitFile}'; sleep 600`;
    await tmux(
      "-f",
      "/dev/null",
      "new-session",
      "-d",
      "-s",
      "s",
      "-x",
      "220",
      "-y",
      "40",
      "sh",
      "-c",
      command,
    );
    await tmux("set-option", "-g", "set-clipboard", "on");
    await tmux("set-option", "-g", "allow-rename", "on");
    await tmux("pipe-pane", "-t", "s", "-o", `cat >> '${raw}'`);
    await writeFile(go, "");

    // While the install waits, the live view's row shows its latest output line: escaped.
    const exists = (path: string) =>
      access(path).then(
        () => true,
        () => false,
      );
    const shown = await waitFor("the escaped line on screen", RUN_MS, async () => {
      const screen = await tmux("capture-pane", "-p", "-t", "s");
      if (screen.includes("\\u009b2J C1 CSI \\u202e bidi")) return screen;
      if (await exists(exitFile)) assert.fail(`sumac exited; the escaped line was never shown:\n${screen}`);
      return undefined;
    });
    assert.doesNotMatch(shown, /^install SUCCEEDED/m, "no forged line of its own");
    await writeFile(release, "");
    const code = await waitFor("sumac's exit", RUN_MS, async () =>
      (await exists(exitFile)) ? (await readFile(exitFile, "utf8")).trim() : undefined,
    );
    assert.equal(code, "0");
    const screen = await tmux("capture-pane", "-p", "-t", "s", "-S", "-");
    assert.match(screen, /^local\s+succeeded\s+0\s+1 installed/m);

    // The bytes sumac wrote to the terminal: only its own sequences, the target's escaped.
    const bytes = await readFile(raw);
    const text = bytes.toString("utf8");
    assert.ok(text.includes("sumac: run "), "pipe-pane recorded sumac's output");
    const others = text.replace(OWN, "").replaceAll("\r\n", "\n");
    const found = CONTROL.exec(others);
    assert.equal(
      found,
      null,
      `a control reached the terminal: ${JSON.stringify(others.slice(Math.max(0, (found?.index ?? 0) - 40), (found?.index ?? 0) + 40))}`,
    );
    assert.ok(!bytes.includes(0x07), "no BEL");
    // Valid UTF-8 throughout: no byte from 0x80 to 0x9f stands alone, where a terminal might take it as C1.
    assert.ok(Buffer.from(text, "utf8").equals(bytes), "the bytes are valid UTF-8");
    assert.ok(
      text.includes(
        "\\x1b]52;c;cm0gLXJmIC8=\\x07\\x1b]0;pwned-title\\x07\\x1b[1A\\x1b[2Kinstall SUCCEEDED (fake)",
      ),
    );
    // And the terminal did nothing it was told by the target: no title, no clipboard buffer.
    assert.notEqual((await tmux("display-message", "-p", "-t", "s", "#{pane_title}")).trim(), "pwned-title");
    assert.equal((await tmux("list-buffers")).trim(), "");
  });
});
