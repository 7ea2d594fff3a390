/**
 * The in-process Bus: the contract suite without a state directory and with one (restart = close
 * and reopen on the same directory), and what is particular to its files: torn last lines after a
 * crash, damage before the end, file modes, the lock of a state directory, compaction.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import type { Bus } from "../../bus/bus.ts";
import { openMemoryBus } from "../../bus/memory.ts";
import { defineBusContract } from "../support/bus-contract.ts";
import { deadline } from "../support/container.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string => new TextDecoder().decode(b ?? new Uint8Array());

const root = mkdtempSync(join(tmpdir(), "sumac-bus-memory-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
/** A fresh state directory under the test's temporary root. */
function stateDir(): string {
  return join(root, `state-${++dirs}`);
}

defineBusContract("memory", () => openMemoryBus());

const contractDir = stateDir();
defineBusContract("memory with a state directory", () => openMemoryBus({ stateDir: contractDir }), {
  restart: async (bus: Bus) => {
    await bus.close();
    return openMemoryBus({ stateDir: contractDir });
  },
});

/** The lines of a state file. */
function lines(path: string): string[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l !== "");
}

describe("bus memory - state directory", () => {
  it("bus memory - a torn last line is ignored and cut off, and later writes load", async () => {
    const dir = stateDir();
    let bus = await openMemoryBus({ stateDir: dir });
    const kv = await bus.kv("torn");
    await kv.put("a", enc("1"));
    const r2 = await kv.put("b", enc("2"));
    const stream = await bus.stream("torn", { subjects: ["torn.>"] });
    await stream.append("torn.x", enc("e1"));
    await bus.close();
    // A crash in the middle of a write: half a record, no newline.
    appendFileSync(join(dir, "kv", "torn.log"), '["P",3,"c","MQ');
    appendFileSync(join(dir, "stream", "torn.log"), '["E",2,17');

    bus = await openMemoryBus({ stateDir: dir });
    const kv2 = await bus.kv("torn");
    assert.deepEqual(await kv2.keys(), ["a", "b"]);
    assert.equal(await kv2.get("c"), undefined);
    assert.equal(await kv2.put("c", enc("3")), r2 + 1, "the torn write never happened");
    const stream2 = await bus.stream("torn", { subjects: ["torn.>"] });
    assert.equal(await stream2.append("torn.x", enc("e2")), 2);
    await bus.close();

    bus = await openMemoryBus({ stateDir: dir });
    try {
      const kv3 = await bus.kv("torn");
      assert.equal(dec((await kv3.get("c"))?.value), "3", "the write after the torn line loads");
      const events: string[] = [];
      for await (const e of (await bus.stream("torn", { subjects: ["torn.>"] })).read())
        events.push(dec(e.data));
      assert.deepEqual(events, ["e1", "e2"]);
    } finally {
      await bus.close();
    }
  });

  it("bus memory - an unreadable whole last line is treated as torn too", async () => {
    const dir = stateDir();
    let bus = await openMemoryBus({ stateDir: dir });
    await (await bus.kv("tail")).put("a", enc("1"));
    await bus.close();
    appendFileSync(join(dir, "kv", "tail.log"), "\u0000\u0000\u0000\n");
    bus = await openMemoryBus({ stateDir: dir });
    try {
      const kv = await bus.kv("tail");
      assert.deepEqual(await kv.keys(), ["a"]);
      assert.equal(await kv.put("b", enc("2")), 2);
    } finally {
      await bus.close();
    }
    assert.equal(lines(join(dir, "kv", "tail.log")).length, 2, "the bad tail was cut off");
  });

  it("bus memory - damage before the last line fails the load, naming file and line", async () => {
    const dir = stateDir();
    let bus = await openMemoryBus({ stateDir: dir });
    const kv = await bus.kv("damaged");
    for (const k of ["a", "b", "c"]) await kv.put(k, enc(k));
    await bus.close();
    const file = join(dir, "kv", "damaged.log");
    const content = lines(file);
    content[1] = '["P",2,"b",';
    writeFileSync(file, `${content.join("\n")}\n`);
    bus = await openMemoryBus({ stateDir: dir });
    try {
      await assert.rejects(bus.kv("damaged"), (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.equal(err.name, "StateFileError");
        assert.equal((err as Error & { code: string }).code, "BAD_STATE_FILE");
        assert.match(err.message, /damaged\.log:2:/);
        return true;
      });
      const wrong = join(dir, "kv", "wrong.log");
      writeFileSync(wrong, '["P",1,"a","YQ=="]\n["X",2,"b"]\n["P",3,"c","Yw=="]\n');
      await assert.rejects(
        bus.kv("wrong"),
        { name: "StateFileError", code: "BAD_STATE_FILE" },
        "an unknown record",
      );
    } finally {
      await bus.close();
    }
    assert.equal(lines(file).length, 3, "a file that failed to load is left as it was");
  });

  it("bus memory - a line over the size limit fails the load", async () => {
    const dir = stateDir();
    const bus = await openMemoryBus({ stateDir: dir });
    try {
      const file = join(dir, "kv", "huge.log");
      const { mkdirSync } = await import("node:fs");
      mkdirSync(join(dir, "kv"), { recursive: true, mode: 0o700 });
      writeFileSync(file, `["P",1,"a","${"A".repeat(3 * 1024 * 1024)}"]\n`, { mode: 0o600 });
      await assert.rejects(bus.kv("huge"), { name: "StateFileError", code: "BAD_STATE_FILE" });
    } finally {
      await bus.close();
    }
  });

  it("bus memory - state files are 0600 and their directories 0700", async () => {
    const dir = stateDir();
    const old = process.umask(0);
    let bus: Bus;
    try {
      bus = await openMemoryBus({ stateDir: dir });
      await (await bus.kv("modes")).put("a", enc("1"));
      await (await bus.stream("modes", { subjects: ["modes.>"] })).append("modes.x", enc("e"));
      await (await bus.workQueue("modes", { ackWaitMs: 1_000, maxDeliver: 1 })).push(enc("j"));
    } finally {
      process.umask(old);
    }
    try {
      const mode = (p: string): number => statSync(p).mode & 0o777;
      assert.equal(mode(dir), 0o700);
      for (const kind of ["kv", "stream", "queue"]) {
        assert.equal(mode(join(dir, kind)), 0o700, `${kind}/`);
        assert.deepEqual(readdirSync(join(dir, kind)), ["modes.log"]);
        assert.equal(mode(join(dir, kind, "modes.log")), 0o600, `${kind}/modes.log`);
      }
      assert.equal(mode(join(dir, "LOCK")), 0o600);
    } finally {
      await bus.close();
    }
  });

  it("bus memory - a state directory serves one bus at a time; a dead owner's lock is taken over", async () => {
    const dir = stateDir();
    const bus = await openMemoryBus({ stateDir: dir });
    await assert.rejects(openMemoryBus({ stateDir: dir }), {
      name: "StateDirLockedError",
      code: "STATE_DIR_LOCKED",
    });
    await bus.close();
    const again = await openMemoryBus({ stateDir: dir });
    await again.close();
    // A lock left by a crash: a pid that does not run (above the kernel's pid_max).
    writeFileSync(join(dir, "LOCK"), "99999999\n", { mode: 0o600 });
    const taken = await openMemoryBus({ stateDir: dir });
    await taken.close();
  });

  it("bus memory - logs are compacted as they grow and still load", async () => {
    const dir = stateDir();
    let bus = await openMemoryBus({ stateDir: dir });
    const kv = await bus.kv("compact");
    let rev = await kv.put("k", enc("0"));
    await kv.put("other", enc("x"));
    // Concurrent writes share their syncs, which keeps this test quick.
    for (let round = 0; round < 100; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => kv.put(`burst.${i}`, enc(String(round)))));
    }
    for (let i = 1; i <= 10; i++) rev = await kv.update("k", enc(String(i)), rev);
    const stream = await bus.stream("compact", { subjects: ["compact.>"], maxEvents: 10 });
    await Promise.all(
      Array.from({ length: 3_000 }, (_, i) => stream.append("compact.e", enc(String(i + 1)))),
    );
    const queue = await bus.workQueue("compact", { ackWaitMs: 60_000, maxDeliver: 1 });
    await Promise.all(Array.from({ length: 3_000 }, (_, i) => queue.push(enc(String(i + 1)))));
    const acks: Promise<void>[] = [];
    for (let i = 1; i < 3_000; i++) {
      const job = await queue.next({ timeoutMs: 1_000 });
      assert.equal(dec(job?.data), String(i));
      if (job) acks.push(job.ack());
    }
    await Promise.all(acks);
    await bus.close();
    assert.ok(lines(join(dir, "kv", "compact.log")).length < 5_000, "kv log compacted");
    assert.ok(lines(join(dir, "stream", "compact.log")).length < 2_500, "stream log compacted");
    assert.ok(lines(join(dir, "queue", "compact.log")).length < 5_000, "queue log compacted");

    bus = await openMemoryBus({ stateDir: dir });
    try {
      const kv2 = await bus.kv("compact");
      assert.deepEqual(
        { value: dec((await kv2.get("k"))?.value), revision: (await kv2.get("k"))?.revision },
        { value: "10", revision: rev },
      );
      assert.equal((await kv2.keys()).length, 52);
      assert.equal(dec((await kv2.get("burst.7"))?.value), "99");
      assert.ok((await kv2.put("new", enc("n"))) > rev, "revisions go on after a compaction");
      const events: number[] = [];
      for await (const e of (await bus.stream("compact", { subjects: ["compact.>"], maxEvents: 10 })).read())
        events.push(e.sequence);
      assert.deepEqual(
        events,
        Array.from({ length: 10 }, (_, i) => 2_991 + i),
      );
      const queue2 = await bus.workQueue("compact", { ackWaitMs: 60_000, maxDeliver: 1 });
      assert.equal(await queue2.pending(), 1);
      assert.equal(dec((await queue2.next({ timeoutMs: 1_000 }))?.data), "3000");
    } finally {
      await bus.close();
    }
  });

  it("bus memory - after close no timer keeps the process alive", async () => {
    // A child with a job in flight (60 s ack deadline), a delayed nak (60 s), a pending request
    // and a waiting next (60 s each), all cut by close(): it must exit on its own, at once.
    const dir = stateDir();
    const script = `
      const { openMemoryBus } = await import(${JSON.stringify(new URL("../../bus/memory.ts", import.meta.url).href)});
      const bus = await openMemoryBus({ stateDir: ${JSON.stringify(dir)} });
      const q = await bus.workQueue("alive", { ackWaitMs: 60000, maxDeliver: 5 });
      await q.push(new Uint8Array([1]));
      await q.push(new Uint8Array([2]));
      await q.next({ timeoutMs: 1000 });
      await (await q.next({ timeoutMs: 1000 })).nak(60000);
      await bus.serve("alive.svc", () => new Promise(() => {}));
      const pending = [bus.request("alive.svc", new Uint8Array(1), { timeoutMs: 60000 }), q.next({ timeoutMs: 60000 })];
      for (const p of pending) p.catch(() => {});
      await bus.close();
      process.stdout.write("closed\\n");
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const code = await deadline(
      "the child to exit",
      20_000,
      once(child, "exit").then(([c]) => c as number | null),
    );
    assert.equal(out, "closed\n");
    assert.equal(code, 0);
  });

  it("bus memory - a process-durable bucket keeps what a killed process had written", async () => {
    // The child puts keys in a bucket opened with durability "process" (no fdatasync per write)
    // and is killed with SIGKILL once the puts resolved: no close, no flush at exit.
    const dir = stateDir();
    const script = `
      const { openMemoryBus } = await import(${JSON.stringify(new URL("../../bus/memory.ts", import.meta.url).href)});
      const bus = await openMemoryBus({ stateDir: ${JSON.stringify(dir)} });
      const kv = await bus.kv("leases", { durability: "process" });
      await Promise.all(Array.from({ length: 100 }, (_, i) => kv.put("k" + i, new TextEncoder().encode("v" + i))));
      await kv.delete("k7");
      process.stdout.write("written\\n");
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    const written = new Promise<void>((resolve) =>
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("written\n")) resolve();
      }),
    );
    const exited = once(child, "exit");
    await deadline("the child to write", 20_000, Promise.race([written, exited]));
    assert.equal(out, "written\n");
    child.kill("SIGKILL");
    const [, signal] = (await exited) as [number | null, string | null];
    assert.equal(signal, "SIGKILL");

    const bus = await openMemoryBus({ stateDir: dir });
    try {
      const kv = await bus.kv("leases");
      const keys = await kv.keys();
      assert.equal(keys.length, 99);
      assert.ok(!keys.includes("k7"), "the delete was kept too");
      assert.equal(dec((await kv.get("k99"))?.value), "v99");
      assert.equal(await kv.put("next", enc("x")), 102, "revisions go on after the 101 written");
    } finally {
      await bus.close();
    }
  });

  it("bus memory - kv durability other than disk or process is refused", async () => {
    const bus = await openMemoryBus();
    try {
      await assert.rejects(bus.kv("d", { durability: "eventually" as never }), {
        name: "RangeError",
        message: 'kv durability must be "disk" or "process", got eventually',
      });
    } finally {
      await bus.close();
    }
  });

  it("bus memory - a publish on a stream's subject is stored, as JetStream does", async () => {
    const bus = await openMemoryBus();
    try {
      const stream = await bus.stream("published", { subjects: ["pub.>"] });
      await bus.publish("pub.a", enc("via publish"));
      await bus.publish("other.a", enc("not covered"));
      const events: string[] = [];
      for await (const e of stream.read()) events.push(`${e.subject}=${dec(e.data)}`);
      assert.deepEqual(events, ["pub.a=via publish"]);
    } finally {
      await bus.close();
    }
  });
});
