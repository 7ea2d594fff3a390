/**
 * The host lock of the nftables backend (actors/firewall/host-lock.ts) with the real `flock`
 * program and real processes: a holder keeps others out until it releases or dies, a waiter gives
 * up at its deadline or on abort, and a backend that cannot get the lock runs no nft. Lock files
 * are the test's own. Needs Linux with `flock` (util-linux): elsewhere it skips, in CI it fails.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createFlockLock } from "../../actors/firewall/host-lock.ts";
import { createNftablesFirewall } from "../../actors/firewall/nftables.ts";
import { inCI } from "../support/engine.ts";

async function skipReason(): Promise<string | undefined> {
  let why: string | undefined;
  if (process.platform !== "linux") why = "the nftables lock is Linux only";
  else
    try {
      await promisify(execFile)("flock", ["--version"], { timeout: 5_000 });
    } catch {
      why = "no `flock` on PATH (Debian: apt-get install util-linux)";
    }
  if (why !== undefined && inCI()) throw new Error(`the firewall lock test cannot run in CI: ${why}`);
  return why;
}

const skip = await skipReason();
const LOCK_MODULE = fileURLToPath(new URL("../../actors/firewall/host-lock.ts", import.meta.url));

describe("firewall lock", { skip }, () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-fwl-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("firewall lock - a waiter gives up at its deadline or on abort, and gets the lock once it is released", async () => {
    const path = join(dir, "a", "nft.lock");
    const release = await createFlockLock({ path }).acquire();
    const waiter = createFlockLock({ path, waitMs: 300 });
    await assert.rejects(waiter.acquire(), {
      name: "FirewallError",
      code: "TIMEOUT",
      message: /nft\.lock was not free/,
    });
    const controller = new AbortController();
    const waiting = waiter.acquire(controller.signal);
    controller.abort(new Error("cancelled by the test"));
    await assert.rejects(waiting, /cancelled by the test/);
    await release();
    const again = await createFlockLock({ path, waitMs: 10_000 }).acquire();
    await again();
  });

  it("firewall lock - a process that dies holding the lock leaves it free", async () => {
    const path = join(dir, "b.lock");
    const script = `
      const { createFlockLock } = await import(process.argv[1]);
      await createFlockLock({ path: process.argv[2] }).acquire();
      console.log("held");
      setInterval(() => undefined, 60_000);`;
    const holder = spawn(process.execPath, ["--input-type=module", "-e", script, LOCK_MODULE, path], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = once(holder, "exit");
    const [line] = (await once(createInterface({ input: holder.stdout }), "line")) as [string];
    assert.equal(line, "held");
    await assert.rejects(createFlockLock({ path, waitMs: 300 }).acquire(), { code: "TIMEOUT" });
    holder.kill("SIGKILL");
    await exited;
    const release = await createFlockLock({ path, waitMs: 10_000 }).acquire();
    await release();
  });

  it("firewall lock - a lock file that cannot be made fails with its path, and a backend without the lock runs no nft", async () => {
    const notADir = join(dir, "file");
    await writeFile(notADir, "");
    await assert.rejects(createFlockLock({ path: join(notADir, "nft.lock") }).acquire(), {
      name: "FirewallError",
      code: "FIREWALL_TOOL_FAILED",
      message: /cannot open the firewall lock .*file\/nft\.lock/,
    });

    const path = join(dir, "c.lock");
    const release = await createFlockLock({ path }).acquire();
    const ran: string[] = [];
    const firewall = createNftablesFirewall({
      owner: "l0ckl0ckl0ckl0",
      lock: createFlockLock({ path, waitMs: 300 }),
      run: (argv) => {
        ran.push(argv.join(" "));
        return Promise.resolve({ exitCode: 0, stdout: "", stderr: "" });
      },
    });
    const rule = { runId: "run-1", leaseId: "lease-1", port: 61020, peer: "10.0.0.7" };
    await assert.rejects(firewall.open(rule), { code: "TIMEOUT" });
    await assert.rejects(
      firewall.sweep(() => true),
      { code: "TIMEOUT" },
    );
    assert.deepEqual(ran, [], "nothing listed or changed without the lock");
    await release();
  });
});
