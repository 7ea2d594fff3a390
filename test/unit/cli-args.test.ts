import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { main } from "../../cli/main.ts";
import { parseRunArgs, UsageError } from "../../cli/args.ts";
import { newRunId, resolveStateDir, targetDirName } from "../../run/paths.ts";
import { fakeSteps, makeJob, ManualClock, tempDir } from "../support/run-fakes.ts";

async function capture(argv: string[], env: Record<string, string> = {}, withSteps = true) {
  let out = "";
  let err = "";
  const fake = fakeSteps({}, new ManualClock());
  const code = await main(
    argv,
    { out: (s) => (out += s), err: (s) => (err += s), env },
    withSteps ? fake.factory : undefined,
  );
  return { code, out, err, calls: fake.record.calls };
}

const EXIT_LINES = [
  /^ {2}0 {4}success/m,
  /^ {2}1 {4}success, and a reboot is needed/m,
  /^ {2}3 {4}nothing needed/m,
  /^ {2}253 {2}a component failed/m,
  /^ {2}254 {2}bad input/m,
  /^ {2}255 {2}other failures/m,
  /^ {2}130 {2}interrupted/m,
  /130 over 255 over 253 over 1 over 0 over 3/,
];

describe("cli args", () => {
  for (const command of ["deploy", "inventory"]) {
    it(`cli args - '${command} --help' gives the exit codes, where the report goes and the embedded default`, async () => {
      for (const argv of [
        [command, "--help"],
        [command, "-h"],
        ["help", command],
        [command, "job.yaml", "--help"],
      ]) {
        const r = await capture(argv);
        assert.equal(r.code, 0, argv.join(" "));
        assert.equal(r.err, "");
        assert.match(r.out, new RegExp(`^Usage: sumac ${command} <job.yaml> \\[options\\]`));
        for (const line of EXIT_LINES) assert.match(r.out, line);
        for (const word of [
          "--rewrite",
          "--downgrade",
          "--json",
          "--nats URL",
          "SUMAC_NATS_URL",
          "--state-dir DIR",
          "--retry RUN",
          "$XDG_STATE_HOME/sumac",
          "~/.local/state/sumac",
          "runs/<run-id>/",
          "report.json",
          "embedded",
        ])
          assert.ok(r.out.includes(word), `${argv.join(" ")}: ${word}`);
        assert.deepEqual(r.calls, [], "help runs nothing");
      }
    });
  }

  it("cli args - 'inventory --help' says it is a dry run that changes nothing", async () => {
    const r = await capture(["inventory", "--help"]);
    assert.match(
      r.out,
      /A dry run: connects to every target, takes inventory and reports what would be installed,\nchanging nothing/,
    );
    assert.match(r.out, /^ {2}0 {4}success: every target succeeded, something would be installed$/m);
  });

  it("cli args - top-level help names the commands, the options and the exit codes", async () => {
    const r = await capture(["--help"]);
    assert.equal(r.code, 0);
    for (const line of EXIT_LINES) assert.match(r.out, line);
    assert.match(r.out, /--rewrite, --downgrade, --json, --nats URL, --state-dir DIR, --retry RUN/);
  });

  const bad: [string, string[], string][] = [
    [
      "an unknown option",
      ["deploy", "job.yaml", "--bogus"],
      "sumac deploy: unknown option '--bogus'; see 'sumac deploy --help'\n",
    ],
    [
      "an unknown short option",
      ["inventory", "-x", "job.yaml"],
      "sumac inventory: unknown option '-x'; see 'sumac inventory --help'\n",
    ],
    [
      "a missing value",
      ["deploy", "job.yaml", "--nats"],
      "sumac deploy: option '--nats' needs a value: --nats URL; see 'sumac deploy --help'\n",
    ],
    [
      "credentials in --nats",
      ["deploy", "job.yaml", "--nats", "nats://me:s3cret@10.0.0.5:4222"],
      "sumac deploy: --nats must not carry a user or password (anyone on this machine can read a command line): put the URL in SUMAC_NATS_URL instead; see 'sumac deploy --help'\n",
    ],
    [
      "a token in --nats=",
      ["inventory", "--nats=tls://t0ken@nats.example:4222", "job.yaml"],
      "sumac inventory: --nats must not carry a user or password (anyone on this machine can read a command line): put the URL in SUMAC_NATS_URL instead; see 'sumac inventory --help'\n",
    ],
    [
      "an option as the value",
      ["deploy", "--state-dir", "--json", "job.yaml"],
      "sumac deploy: option '--state-dir' needs a value: --state-dir DIR; see 'sumac deploy --help'\n",
    ],
    [
      "--retry without a run",
      ["deploy", "job.yaml", "--retry"],
      "sumac deploy: option '--retry' needs a value: --retry RUN; see 'sumac deploy --help'\n",
    ],
    [
      "an empty value",
      ["deploy", "job.yaml", "--state-dir="],
      "sumac deploy: option '--state-dir' needs a value: --state-dir DIR; see 'sumac deploy --help'\n",
    ],
    [
      "a value for a switch",
      ["deploy", "job.yaml", "--json=yes"],
      "sumac deploy: option '--json' takes no value; see 'sumac deploy --help'\n",
    ],
    [
      "two job files",
      ["deploy", "a.yaml", "b.yaml"],
      "sumac deploy: one job file expected, got 2 (a.yaml b.yaml); see 'sumac deploy --help'\n",
    ],
    [
      "no job file",
      ["inventory", "--json"],
      "sumac: 'inventory' needs a job file: sumac inventory <job.yaml>; see 'sumac inventory --help'\n",
    ],
    ["an unknown top-level option", ["--bogus"], "sumac: unknown option '--bogus'; see 'sumac --help'\n"],
  ];
  for (const [what, argv, message] of bad) {
    it(`cli args - ${what} is bad input (254) with a clear message, before any file is read`, async () => {
      // The job files named do not exist: the options are checked first.
      const r = await capture(argv);
      assert.equal(r.code, 254);
      assert.equal(r.err, message);
      assert.equal(r.out, "");
    });
  }

  it("cli args - options take --name=value and --name value, and -- ends them", () => {
    assert.deepEqual(
      parseRunArgs("deploy", [
        "--nats=nats://h:4222",
        "j.yaml",
        "--state-dir",
        "/s",
        "--rewrite",
        "--downgrade",
        "--json",
      ]),
      {
        command: "deploy",
        jobFile: "j.yaml",
        rewrite: true,
        downgrade: true,
        json: true,
        natsUrl: "nats://h:4222",
        stateDir: "/s",
      },
    );
    assert.deepEqual(parseRunArgs("inventory", ["--", "-odd.yaml"]), {
      command: "inventory",
      jobFile: "-odd.yaml",
      rewrite: false,
      downgrade: false,
      json: false,
    });
    assert.throws(
      () => parseRunArgs("deploy", ["j.yaml", "--force"]),
      (e: unknown) => e instanceof UsageError && e.code === "BAD_USAGE",
    );
  });

  it("cli args - the state directory: the flag, else $XDG_STATE_HOME/sumac when absolute, else ~/.local/state/sumac", () => {
    assert.equal(resolveStateDir("/srv/s", { XDG_STATE_HOME: "/x" }, "/home/u"), "/srv/s");
    assert.equal(resolveStateDir(undefined, { XDG_STATE_HOME: "/x" }, "/home/u"), "/x/sumac");
    assert.equal(
      resolveStateDir(undefined, { XDG_STATE_HOME: "relative" }, "/home/u"),
      "/home/u/.local/state/sumac",
    );
    assert.equal(resolveStateDir(undefined, {}, "/home/u"), "/home/u/.local/state/sumac");
  });

  it("cli args - run ids sort by time and are plain subject tokens; target ids are safe directory names", () => {
    const a = newRunId(Date.UTC(2025, 5, 12, 15, 30, 12, 42));
    assert.match(a, /^20250612-153012-042-[0-9a-f]{6}$/);
    assert.ok(newRunId(Date.UTC(2025, 5, 12, 15, 30, 13)) > a);
    assert.equal(targetDirName("web-1.example.com"), "web-1.example.com");
    assert.equal(targetDirName("[::1]:2222"), "[::1]:2222");
    assert.equal(targetDirName("web_1"), "web_1");
    assert.equal(targetDirName("../etc"), "%2E.%2Fetc");
    assert.equal(targetDirName("a b/c%"), "a%20b%2Fc%25");
  });

  it("cli args - SUMAC_NATS_URL selects NATS; a server that cannot be reached is 255, its password not shown", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const { file } = await makeJob(dir, ["t1"]);
      // Port 1 on loopback refuses at once.
      const r = await capture(["deploy", file, "--state-dir", join(dir, "state")], {
        SUMAC_NATS_URL: "nats://me:s3cret@127.0.0.1:1",
      });
      assert.equal(r.code, 255);
      assert.match(r.err, /^sumac: cannot open the bus on the NATS server: /);
      assert.ok(!r.err.includes("s3cret"), r.err);
      assert.deepEqual(r.calls, []);
    } finally {
      await cleanup();
    }
  });
});
