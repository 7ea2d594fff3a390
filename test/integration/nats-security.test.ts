/**
 * NATS with accounts, credentials and TLS, against real nats-servers: the accounts configuration
 * of docs/nats.md (docs/nats/accounts.conf, included by the server as it is) keeps subscribers
 * from publishing lease requests or answering them and workers from serving leases; a creds file
 * (operator mode), an nkey seed and a token work from files and the environment; loose secret files
 * are refused; TLS with the right CA works and with a wrong one fails clearly; and a real `sumac`
 * run over a token never shows it in its command line, its output, its files or its children's
 * environment.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { inCI } from "../support/engine.ts";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  PermissionViolationError,
} from "@nats-io/transport-node";
import { openNatsBus } from "../../bus/nats.ts";
import { BusError, encodeJson, type Bus } from "../../bus/bus.ts";
import { LEASE_EVENT_SUBJECTS, LEASE_SUBJECTS } from "../../bus/subjects.ts";
import { EVENT_STREAM } from "../../run/events/subjects.ts";
import { SNAPSHOT_BUCKET } from "../../run/snapshot-store.ts";
import { startLeaseService, type LeaseService } from "../../actors/lease/service.ts";
import { createLeaseClient } from "../../actors/lease/client.ts";
import { natsBinarySkipReason } from "../support/nats.ts";
import {
  operatorMode,
  privateFile,
  rolePermissions,
  startConfiguredNats,
  testTls,
  userNkey,
  type ConfiguredNats,
} from "../support/nats-secure.ts";

const skip = await natsBinarySkipReason();
const root = fileURLToPath(new URL("../../", import.meta.url));

/**
 * The quick-start job, copied into `dir` with its component looking for its file under `dir`: the
 * agent gives commands a clean environment (SUMAC_QUICKSTART_DIR does not reach them), and the
 * machine may hold the quick start's own install, which would make an inventory find nothing to do.
 */
async function quickstartJob(dir: string): Promise<string> {
  const jobDir = join(dir, "job");
  await mkdir(join(jobDir, "quickstart"), { recursive: true });
  const script = await readFile(join(root, "examples/quickstart/hello.sh"), "utf8");
  const moved = script.replaceAll("/var/tmp/sumac-quickstart", join(dir, "quickstart-out"));
  assert.notEqual(moved, script, "the quick start's script names its default directory");
  await writeFile(join(jobDir, "quickstart", "hello.sh"), moved);
  await writeFile(join(jobDir, "quickstart.yaml"), await readFile(join(root, "examples/quickstart.yaml")));
  return join(jobDir, "quickstart.yaml");
}
const accountsConf = await readFile(join(root, "docs/nats/accounts.conf"), "utf8");

/** Runs `sumac ARGS` to its end with `env` added; its exit code and what it printed. */
async function runSumac(
  args: readonly string[],
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [join(root, "cli/sumac.ts"), ...args], {
    env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  return { code, output };
}

/** The bus error a promise rejects with (fails the test when it resolves). */
async function busErrorOf(work: Promise<unknown>): Promise<BusError> {
  try {
    await work;
  } catch (err) {
    assert.ok(err instanceof BusError, `a BusError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected a BusError");
}

/**
 * JetStream API requests as a user of `docs/nats/accounts.conf` (sumac's Bus takes no `$` subjects):
 * `refused` resolves to the server's refusal of one (fails the test when it is answered).
 */
async function apiClient(url: string, seed: string, inboxPrefix: string) {
  const nc = await connect({
    servers: url,
    authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)),
    inboxPrefix,
  });
  const ask = async (subject: string, body: unknown): Promise<Record<string, unknown>> =>
    (await nc.request(subject, encodeJson(body), { timeout: 5_000 })).json<Record<string, unknown>>();
  const refused = async (subject: string, body: unknown): Promise<string> => {
    try {
      const answer = await ask(subject, body);
      assert.fail(`${subject} was answered: ${JSON.stringify(answer)}`);
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      // nats.js wraps the server's refusal of a request's publish in a RequestError.
      const violation = err instanceof PermissionViolationError ? err : (err as Error).cause;
      assert.ok(violation instanceof PermissionViolationError, `${subject}: ${String(err)}`);
      assert.equal(violation.operation, "publish");
      assert.equal(violation.subject, subject);
      return violation.message;
    }
  };
  return { nc, ask, refused };
}

describe("nats security - the accounts of docs/nats.md", { skip, timeout: 120_000 }, () => {
  let dir: string;
  let server: ConfiguredNats;
  const coordinator = userNkey();
  const worker = userNkey();
  const subscriber = userNkey();
  let coordinatorBus: Bus;
  let service: LeaseService;
  const buses: Bus[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-nats-accounts-"));
    server = await startConfiguredNats(
      dir,
      `listen: 127.0.0.1:-1\njetstream { store_dir: "${join(dir, "js")}" }\ninclude accounts.conf\n`,
      {
        files: { "accounts.conf": accountsConf },
        env: {
          SUMAC_COORDINATOR_NKEY: coordinator.publicKey,
          SUMAC_WORKER_NKEY: worker.publicKey,
          SUMAC_SUBSCRIBER_NKEY: subscriber.publicKey,
        },
      },
    );
    // The coordinator's seed from a file, as `--nats-nkey FILE` gives it, written as
    // `nk -gen user -pubout` does: the seed, then the public key.
    const seedFile = await privateFile(
      join(dir, "coordinator.nk"),
      `${coordinator.seed}\n${coordinator.publicKey}\n`,
    );
    coordinatorBus = await openNatsBus({
      servers: server.url,
      security: { credential: { kind: "nkey", file: seedFile }, inboxPrefix: "_INBOX.coordinator" },
    });
    buses.push(coordinatorBus);
    // Coordinators create sumac's stream and buckets; the others may only use them.
    await coordinatorBus.stream(EVENT_STREAM.name, { subjects: EVENT_STREAM.subjects });
    await coordinatorBus.kv(SNAPSHOT_BUCKET);
    service = await startLeaseService({ bus: coordinatorBus, lockMs: 3_000 });
    await service.whenActive();
  });

  after(async () => {
    await service?.stop();
    for (const bus of buses) await bus.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("nats security - docs/nats.md shows docs/nats/accounts.conf as it is", async () => {
    const doc = await readFile(join(root, "docs/nats.md"), "utf8");
    assert.ok(
      doc.includes(accountsConf.trimEnd()),
      "docs/nats.md must include docs/nats/accounts.conf verbatim",
    );
  });

  it("nats security - a worker (seed from the environment) gets a lease from the coordinator but cannot serve leases", async () => {
    const bus = await openNatsBus({
      servers: server.url,
      timeoutMs: 2_000,
      security: {
        credential: { kind: "nkey", value: worker.seed, from: "SUMAC_NATS_NKEY_SEED" },
        inboxPrefix: "_INBOX.worker",
      },
    });
    buses.push(bus);
    const client = createLeaseClient({ bus, workerHost: "w1", leaseMs: 60_000 });
    const lease = await client.acquire("callback", { run: "r1", target: "t1" });
    assert.equal(lease.workerHost, "w1");
    const refused = await busErrorOf(bus.serve(LEASE_SUBJECTS.status, () => Promise.resolve(encodeJson({}))));
    assert.equal(refused.code, "BUS_PERMISSION_DENIED");
    assert.equal(refused.retryable, false);
    assert.match(refused.message, /may not subscribe to sumac\.v1\.lease\.status/);
    // Nor can it write the lease bucket, where the lock is.
    const leases = await bus.kv("sumac-leases");
    const write = await busErrorOf(leases.put("lock", encodeJson({ owner: "worker", expiresAt: 0 })));
    assert.equal(write.code, "BUS_PERMISSION_DENIED");
    assert.match(write.message, /may not publish to \$KV\.sumac-leases\.lock/);
    const lock = await (await coordinatorBus.kv("sumac-leases")).get("lock");
    assert.ok(lock !== undefined && !new TextDecoder().decode(lock.value).includes('"worker"'));
    // Nor read the replies meant for others: its inboxes are its own.
    for (const inbox of ["_INBOX.>", "_INBOX.coordinator.>", "_INBOX.subscriber.>"]) {
      const peek = await busErrorOf(bus.subscribe(inbox, () => undefined));
      assert.equal(peek.code, "BUS_PERMISSION_DENIED", inbox);
    }
    await client.close({ release: true });
  });

  it("nats security - a worker cannot make streams or consumers of its own, nor change or remove sumac's", async () => {
    const api = await apiClient(server.url, worker.seed, "_INBOX.worker");
    const admin = await apiClient(server.url, coordinator.seed, "_INBOX.coordinator");
    const stream = (name: string, config: Record<string, unknown>) => ({
      name,
      retention: "limits",
      storage: "memory",
      ...config,
    });
    const attacks: [string, unknown][] = [
      // Would take every lease request (JetStream's ack answering first) and keep a copy.
      ["$JS.API.STREAM.CREATE.EVIL1", stream("EVIL1", { subjects: ["sumac.v1.lease.*"] })],
      // Would capture the coordinators' replies.
      ["$JS.API.STREAM.CREATE.EVIL2", stream("EVIL2", { subjects: ["_INBOX.coordinator.>"] })],
      // Would write the lease lock (or forge a reply) through the server's republish.
      [
        "$JS.API.STREAM.CREATE.EVIL3",
        stream("EVIL3", {
          subjects: ["evil.>"],
          republish: { src: ">", dest: "$KV.sumac-leases.lock" },
        }),
      ],
      ["$JS.API.STREAM.DELETE.sumac_events_v1", {}],
      ["$JS.API.STREAM.PURGE.sumac_events_v1", {}],
      ["$JS.API.STREAM.UPDATE.sumac_events_v1", stream("sumac_events_v1", { subjects: [">"] })],
      ["$JS.API.STREAM.DELETE.KV_sumac-leases", {}],
      ["$JS.API.STREAM.MSG.DELETE.KV_sumac-leases", { seq: 1 }],
      // A push consumer on a bucket it writes, delivering to the lease lock.
      [
        "$JS.API.CONSUMER.CREATE.KV_sumac-targets",
        {
          stream_name: "KV_sumac-targets",
          config: { deliver_subject: "$KV.sumac-leases.lock", ack_policy: "none" },
        },
      ],
      // Nor read the leases' values (their holders' secret hashes), only the lock and the domain.
      ["$JS.API.DIRECT.GET.KV_sumac-leases", { seq: 1 }],
    ];
    try {
      for (const [subject, body] of attacks)
        assert.match(await api.refused(subject, body), /Permissions Violation for Publish/);
      // The same requests are well formed: the coordinator, which may, makes such a stream.
      const ask = admin.ask;
      const made = await ask("$JS.API.STREAM.CREATE.PROBE", stream("PROBE", { subjects: ["probe.>"] }));
      assert.equal(made.error, undefined, JSON.stringify(made));
      await ask("$JS.API.STREAM.DELETE.PROBE", {});
      const names = (await ask("$JS.API.STREAM.NAMES", {})).streams as string[];
      assert.deepEqual(
        [...names].sort(),
        ["KV_sumac-leases", "KV_sumac-targets", "sumac_events_v1"],
        "no stream of the worker's, and sumac's are all there",
      );
    } finally {
      await api.nc.close();
      await admin.nc.close();
    }
  });

  it("nats security - a worker cannot release, renew or report another run's lease: it lacks the lease's secret", async () => {
    const holder = createLeaseClient({ bus: coordinatorBus, workerHost: "w3", leaseMs: 60_000 });
    const lease = await holder.acquire("callback", { run: "r3", target: "t3" });
    const bus = await openNatsBus({
      servers: server.url,
      security: {
        credential: { kind: "nkey", value: worker.seed, from: "SUMAC_NATS_NKEY_SEED" },
        inboxPrefix: "_INBOX.worker",
      },
    });
    buses.push(bus);
    const guess = "A".repeat(22);
    const asks: [string, unknown][] = [
      [LEASE_SUBJECTS.release, { leaseIds: [lease.leaseId], secrets: [guess] }],
      [LEASE_SUBJECTS.renew, { leaseIds: [lease.leaseId], secrets: [guess], leaseMs: 1_000 }],
      [
        LEASE_SUBJECTS.conflict,
        { leaseId: lease.leaseId, secret: guess, nextLeaseId: "Lx", nextSecret: guess, leaseMs: 1_000 },
      ],
    ];
    for (const [subject, body] of asks) {
      const reply = JSON.parse(
        new TextDecoder().decode((await bus.request(subject, encodeJson(body), { timeoutMs: 5_000 })).data),
      ) as { ok: boolean; error?: { code: string } };
      assert.deepEqual([reply.ok, reply.error?.code], [false, "not-holder"], subject);
    }
    const worker2 = createLeaseClient({ bus, workerHost: "w3" });
    await assert.rejects(worker2.release(lease.leaseId), /not its holder's/);
    await worker2.close();
    assert.equal(await holder.release(lease.leaseId), 1, "the holder still has it, and releases it");
    await holder.close();
  });

  it("nats security - a worker without its inbox prefix is told which option sets it", async () => {
    const refused = await busErrorOf(
      openNatsBus({
        servers: server.url,
        timeoutMs: 3_000,
        security: { credential: { kind: "nkey", value: worker.seed, from: "SUMAC_NATS_NKEY_SEED" } },
      }),
    );
    assert.equal(refused.code, "BUS_PERMISSION_DENIED");
    assert.match(
      refused.message,
      /may not subscribe to _INBOX\.[A-Za-z0-9]+\.\*, its reply inbox: give sumac the inbox prefix the user may subscribe to \(--nats-inbox-prefix or SUMAC_NATS_INBOX_PREFIX\)/,
    );
  });

  for (const role of ["worker", "coordinator"] as const) {
    it(`nats security - a real sumac run as a ${role} (nkey seed file) succeeds with these permissions`, async () => {
      const seedFile = await privateFile(
        join(dir, `${role}-run.nk`),
        (role === "worker" ? worker : coordinator).seed,
      );
      const run = await runSumac(
        ["inventory", await quickstartJob(join(dir, role)), "--state-dir", join(dir, `state-${role}`)],
        {
          SUMAC_NATS_URL: server.url,
          SUMAC_NATS_NKEY: seedFile,
          SUMAC_NATS_INBOX_PREFIX: `_INBOX.${role}`,
        },
      );
      assert.equal(run.code, 0, run.output);
      assert.match(run.output, /hello/);
    });
  }

  it("nats security - a subscriber cannot publish a lease request or answer one: the server refuses, the client says so", async () => {
    // A lease held by someone else, which a release from the subscriber would end.
    const holder = createLeaseClient({ bus: coordinatorBus, workerHost: "w2", leaseMs: 60_000 });
    const lease = await holder.acquire("callback", { run: "r2", target: "t2" });
    const seedFile = await privateFile(join(dir, "subscriber.nk"), subscriber.seed);
    const bus = await openNatsBus({
      servers: server.url,
      security: { credential: { kind: "nkey", file: seedFile }, inboxPrefix: "_INBOX.subscriber" },
    });
    buses.push(bus);
    const release = await busErrorOf(
      bus.request(LEASE_SUBJECTS.release, encodeJson({ leaseIds: [lease.leaseId] }), { timeoutMs: 10_000 }),
    );
    // Refused by the server (the code says so), not timed out.
    assert.equal(release.code, "BUS_PERMISSION_DENIED");
    assert.match(release.message, /Permissions Violation for Publish to "sumac\.v1\.lease\.release"/);
    for (const subject of Object.values(LEASE_SUBJECTS)) {
      const serve = await busErrorOf(bus.serve(subject, () => Promise.resolve(encodeJson({}))));
      assert.equal(serve.code, "BUS_PERMISSION_DENIED", subject);
    }
    // The lease is still there: the refused release never reached the service.
    const status = await coordinatorBus.request(LEASE_SUBJECTS.status, encodeJson({ workerHost: "w2" }), {
      timeoutMs: 5_000,
    });
    const reply = JSON.parse(new TextDecoder().decode(status.data)) as { leases: { leaseId: string }[] };
    assert.ok(reply.leases.some((l) => l.leaseId === lease.leaseId));
    await holder.close({ release: true });
  });

  it("nats security - a subscriber cannot make a consumer, so none delivers stored events to another subject", async () => {
    const api = await apiClient(server.url, subscriber.seed, "_INBOX.subscriber");
    const admin = await apiClient(server.url, coordinator.seed, "_INBOX.coordinator");
    const push = { deliver_subject: "sumac.v1.lease.release", ack_policy: "none" };
    const attempts: [string, unknown][] = [
      ["$JS.API.CONSUMER.CREATE.sumac_events_v1", { stream_name: "sumac_events_v1", config: push }],
      [
        "$JS.API.CONSUMER.CREATE.sumac_events_v1.evil",
        { stream_name: "sumac_events_v1", config: { ...push, name: "evil" } },
      ],
      [
        "$JS.API.CONSUMER.DURABLE.CREATE.sumac_events_v1.evil",
        { stream_name: "sumac_events_v1", config: { ...push, durable_name: "evil" } },
      ],
      ["$JS.API.STREAM.CREATE.EVIL", { name: "EVIL", subjects: ["evil.>"], storage: "memory" }],
      ["$JS.API.STREAM.DELETE.sumac_events_v1", {}],
    ];
    try {
      for (const [subject, body] of attempts)
        assert.match(await api.refused(subject, body), /Permissions Violation for Publish/);
      const consumers = await admin.ask("$JS.API.CONSUMER.NAMES.sumac_events_v1", {});
      assert.deepEqual(consumers.consumers ?? [], []);
      // A push consumer is what the permissions keep out: the coordinator's request makes one.
      const made = await admin.ask("$JS.API.CONSUMER.CREATE.sumac_events_v1", attempts[0]![1]);
      assert.equal(made.error, undefined, JSON.stringify(made));
      await admin.ask(`$JS.API.CONSUMER.DELETE.sumac_events_v1.${(made as { name: string }).name}`, {});
    } finally {
      await api.nc.close();
      await admin.nc.close();
    }
  });

  it("nats security - a subscriber follows lease events live and reads the run events' stream message by message", async () => {
    const seedFile = await privateFile(join(dir, "subscriber2.nk"), subscriber.seed);
    const bus = await openNatsBus({
      servers: server.url,
      security: { credential: { kind: "nkey", file: seedFile }, inboxPrefix: "_INBOX.subscriber" },
    });
    buses.push(bus);
    const seen: string[] = [];
    const sub = await bus.subscribe("sumac.v1.lease.event.>", (m) => seen.push(m.subject));
    await coordinatorBus.publish("sumac.v1.run.r9.started", encodeJson({ run: "r9" }));
    await coordinatorBus.publish(LEASE_EVENT_SUBJECTS.conflict, encodeJson({ probe: true }));
    // Past events one message at a time, as `nats stream get` reads them (no consumer).
    const api = await apiClient(server.url, subscriber.seed, "_INBOX.subscriber");
    const read: string[] = [];
    const deadline = Date.now() + 10_000;
    try {
      for (let seq = 1; Date.now() < deadline && !read.includes("sumac.v1.run.r9.started");) {
        const info = await api.ask(`$JS.API.STREAM.INFO.${EVENT_STREAM.name}`, {});
        const last = (info.state as { last_seq: number }).last_seq;
        for (; seq <= last; seq++) {
          const got = await api.ask(`$JS.API.STREAM.MSG.GET.${EVENT_STREAM.name}`, { seq });
          const message = got.message as { subject: string } | undefined;
          if (message) read.push(message.subject);
        }
      }
    } finally {
      await api.nc.close();
    }
    assert.ok(read.includes("sumac.v1.run.r9.started"), `read ${read.join(", ")}`);
    while (Date.now() < deadline && seen.length === 0) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen, [LEASE_EVENT_SUBJECTS.conflict]);
    await sub.unsubscribe();
  });
});

describe("nats security - credentials and TLS", { skip, timeout: 120_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-nats-creds-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("nats security - a coordinator with a creds file (operator mode) opens the bus and serves leases", async () => {
    const op = operatorMode();
    const server = await startConfiguredNats(
      join(dir, "operator"),
      `listen: 127.0.0.1:-1\njetstream { store_dir: "${join(dir, "operator", "js")}" }\n${op.serverConfig}\n`,
    );
    const buses: Bus[] = [];
    try {
      const creds = await privateFile(
        join(dir, "coordinator.creds"),
        op.creds("coordinator", rolePermissions(accountsConf, "SUMAC_COORDINATOR")),
      );
      const bus = await openNatsBus({
        servers: server.url,
        security: { credential: { kind: "creds", file: creds }, inboxPrefix: "_INBOX.coordinator" },
      });
      buses.push(bus);
      const service = await startLeaseService({ bus, lockMs: 3_000 });
      await service.whenActive();
      const client = createLeaseClient({ bus, workerHost: "w1" });
      const lease = await client.acquire("workstation", { run: "r", target: "t" });
      assert.ok(lease.port >= 60_000);
      await client.close({ release: true });
      await service.stop();
      // A subscriber's creds, with the subscriber's permissions in its JWT: refused a lease request.
      const subscriberCreds = op.creds("watcher", rolePermissions(accountsConf, "SUMAC_SUBSCRIBER"));
      const nc = await connect({
        servers: server.url,
        authenticator: credsAuthenticator(new TextEncoder().encode(subscriberCreds)),
      });
      const violation = (async () => {
        for await (const s of nc.status()) if (s.type === "error") return s.error.message;
        return "";
      })();
      nc.publish(LEASE_SUBJECTS.release, encodeJson({ leaseIds: [lease.leaseId] }));
      assert.match(await violation, /Permissions Violation for Publish to "sumac\.v1\.lease\.release"/);
      await nc.close();
      // Someone else's creds are refused with a clear, unretried error.
      const stranger = operatorMode().creds("stranger");
      const strangerFile = await privateFile(join(dir, "stranger.creds"), stranger);
      const refused = await busErrorOf(
        openNatsBus({ servers: server.url, security: { credential: { kind: "creds", file: strangerFile } } }),
      );
      assert.equal(refused.code, "BUS_AUTH_FAILED");
      assert.equal(refused.retryable, false);
      assert.match(
        refused.message,
        /refused sumac's credentials \(Authorization Violation\); the creds file .*stranger\.creds/,
      );
      assert.ok(!refused.message.includes(stranger.split("\n")[1]!), "the JWT is not in the message");
    } finally {
      for (const bus of buses) await bus.close();
      await server.stop();
    }
  });

  it("nats security - a token from a file works; a loose file, a wrong token and none are refused without showing it", async () => {
    const token = `tok-${Math.random().toString(36).slice(2)}-${Date.now()}`;
    const server = await startConfiguredNats(
      join(dir, "token"),
      `listen: 127.0.0.1:-1\njetstream { store_dir: "${join(dir, "token", "js")}" }\nauthorization { token: "${token}" }\n`,
    );
    try {
      const file = await privateFile(join(dir, "token.txt"), `${token}\n`);
      const bus = await openNatsBus({
        servers: server.url,
        security: { credential: { kind: "token", file } },
      });
      await (await bus.kv("probe")).put("k", encodeJson(1));
      await bus.close();

      const loose = join(dir, "token-loose");
      await privateFile(loose, token);
      const { chmod } = await import("node:fs/promises");
      await chmod(loose, 0o640);
      const tooOpen = await busErrorOf(
        openNatsBus({ servers: server.url, security: { credential: { kind: "token", file: loose } } }),
      );
      assert.equal(tooOpen.code, "BUS_CREDENTIALS_INVALID");
      assert.match(tooOpen.message, /token-loose may be read by others \(mode 0640\).*chmod 600/);

      const wrong = await busErrorOf(
        openNatsBus({
          servers: server.url,
          security: { credential: { kind: "token", value: `${token}x`, from: "SUMAC_NATS_TOKEN" } },
        }),
      );
      assert.equal(wrong.code, "BUS_AUTH_FAILED");
      assert.match(wrong.message, /the token in SUMAC_NATS_TOKEN/);
      const none = await busErrorOf(openNatsBus({ servers: server.url }));
      assert.equal(none.code, "BUS_AUTH_FAILED");
      assert.match(
        none.message,
        /it requires credentials and none were given; give a creds file, an nkey seed or a token/,
      );
      const inUrl = await busErrorOf(openNatsBus({ servers: server.url.replace("//", "//wrong@") }));
      assert.equal(inUrl.code, "BUS_AUTH_FAILED");
      assert.match(inUrl.message, /nats:\/\/\*\*\*@127.*the user and password \(or token\) in the NATS URL/);
      for (const e of [tooOpen, wrong, none]) assert.ok(!e.message.includes(token), e.message);
    } finally {
      await server.stop();
    }
  });

  it("nats security - a token for another host goes over TLS only, unless SUMAC_NATS_ALLOW_PLAINTEXT allows it, with one warning", async (t) => {
    // An address of this machine that is not loopback, as another host's would be.
    const address = Object.values(networkInterfaces())
      .flat()
      .find((a) => a?.family === "IPv4" && !a.internal)?.address;
    if (address === undefined) {
      const why = "no non-loopback IPv4 address on this machine";
      if (inCI()) assert.fail(`${why}: CI runs this test`);
      return t.skip(why);
    }
    const token = `tok-${Math.random().toString(36).slice(2)}-${Date.now()}`;
    const d = join(dir, "plain");
    const server = await startConfiguredNats(
      d,
      `listen: 0.0.0.0:-1\njetstream { store_dir: "${join(d, "js")}" }\nauthorization { token: "${token}" }\n`,
    );
    try {
      const url = server.url.replace("127.0.0.1", address);
      const file = await privateFile(join(dir, "plain-token.txt"), token);
      const warnings: string[] = [];
      const refused = await busErrorOf(
        openNatsBus({
          servers: url,
          timeoutMs: 3_000,
          warn: (m) => warnings.push(m),
          security: { credential: { kind: "token", file } },
        }),
      );
      assert.equal(refused.code, "BUS_TLS_FAILED");
      assert.equal(refused.retryable, false);
      assert.match(
        refused.message,
        /does not offer TLS, and sumac sends the token .*plain-token\.txt to another host over TLS only: .*SUMAC_NATS_ALLOW_PLAINTEXT=1/,
      );
      assert.ok(!refused.message.includes(token));
      assert.equal(warnings.length, 0);
      for (let i = 0; i < 2; i++) {
        const bus = await openNatsBus({
          servers: url,
          warn: (m) => warnings.push(m),
          security: { credential: { kind: "token", file }, allowPlaintext: true },
        });
        await (await bus.kv("probe")).put("k", encodeJson(i));
        await bus.close();
      }
      assert.equal(warnings.length, 1, "warned once per process");
      const warning = warnings[0] ?? "";
      assert.match(warning, /the token .*plain-token\.txt goes to NATS at nats:\/\/[\d.]+:\d+ in plain text/);
      assert.ok(!warning.includes(token));
    } finally {
      await server.stop();
    }
  });

  it("nats security - mutual TLS with the test CA works; a wrong CA, no CA and no client certificate fail clearly", async () => {
    const tls = testTls();
    const other = testTls();
    const d = join(dir, "tls");
    const server = await startConfiguredNats(
      d,
      [
        "listen: 127.0.0.1:-1",
        `jetstream { store_dir: "${join(d, "js")}" }`,
        `tls { cert_file: "${join(d, "server.pem")}", key_file: "${join(d, "server.key")}", ca_file: "${join(d, "ca.pem")}", verify: true, timeout: 2 }`,
        "",
      ].join("\n"),
      { files: { "server.pem": tls.serverCertPem, "server.key": tls.serverKeyPem, "ca.pem": tls.caPem } },
    );
    try {
      const caFile = await privateFile(join(dir, "ca.pem"), tls.caPem);
      const certFile = await privateFile(join(dir, "client.pem"), tls.clientCertPem);
      const keyFile = await privateFile(join(dir, "client.key"), tls.clientKeyPem);
      const wrongCa = await privateFile(join(dir, "other-ca.pem"), other.caPem);
      const bus = await openNatsBus({
        servers: server.url,
        security: { tls: { caFile, certFile, keyFile } },
      });
      await (await bus.kv("probe")).put("k", encodeJson(1));
      await bus.close();

      const wrong = await busErrorOf(
        openNatsBus({ servers: server.url, security: { tls: { caFile: wrongCa, certFile, keyFile } } }),
      );
      assert.equal(wrong.code, "BUS_TLS_FAILED");
      assert.equal(wrong.retryable, false);
      assert.match(
        wrong.message,
        /TLS with NATS at nats:\/\/127\.0\.0\.1:\d+ failed: .*certificate.*other-ca\.pem/,
      );
      assert.doesNotMatch(wrong.message, /--use-system-ca/);

      const noCa = await busErrorOf(openNatsBus({ servers: server.url, timeoutMs: 3_000 }));
      assert.equal(noCa.code, "BUS_TLS_FAILED");
      assert.match(noCa.message, /none given, so the system's: give one with --nats-ca or SUMAC_NATS_CA/);

      const noCert = await busErrorOf(
        openNatsBus({ servers: server.url, timeoutMs: 3_000, security: { tls: { caFile } } }),
      );
      assert.equal(noCert.code, "BUS_TLS_FAILED");
      assert.match(
        noCert.message,
        /verifies its clients' certificates \(mutual TLS\) and sumac has none: give one with --nats-cert and --nats-key/,
      );

      const { chmod } = await import("node:fs/promises");
      await chmod(keyFile, 0o644);
      const looseKey = await busErrorOf(
        openNatsBus({ servers: server.url, security: { tls: { caFile, certFile, keyFile } } }),
      );
      assert.equal(looseKey.code, "BUS_CREDENTIALS_INVALID");
      assert.match(looseKey.message, /client\.key may be read by others/);
    } finally {
      await server.stop();
    }
  });
});

describe("nats security - a real sumac run", { skip, timeout: 180_000 }, () => {
  it("nats security - sumac runs over mutual TLS with a coordinator's creds file and inbox prefix, all from its options", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sumac-nats-tls-run-"));
    const tls = testTls();
    const op = operatorMode();
    const server = await startConfiguredNats(
      join(dir, "server"),
      [
        "listen: 127.0.0.1:-1",
        `jetstream { store_dir: "${join(dir, "server", "js")}" }`,
        `tls { cert_file: "${join(dir, "server", "server.pem")}", key_file: "${join(dir, "server", "server.key")}", ca_file: "${join(dir, "server", "ca.pem")}", verify: true }`,
        op.serverConfig,
        "",
      ].join("\n"),
      { files: { "server.pem": tls.serverCertPem, "server.key": tls.serverKeyPem, "ca.pem": tls.caPem } },
    );
    try {
      const creds = await privateFile(
        join(dir, "coordinator.creds"),
        op.creds("coordinator", rolePermissions(accountsConf, "SUMAC_COORDINATOR")),
      );
      const ca = await privateFile(join(dir, "ca.pem"), tls.caPem);
      const cert = await privateFile(join(dir, "client.pem"), tls.clientCertPem);
      const key = await privateFile(join(dir, "client.key"), tls.clientKeyPem);
      const common = ["inventory", await quickstartJob(dir), "--nats", server.url];
      const options = ["--nats-ca", ca, "--nats-cert", cert, "--nats-key", key, "--nats-creds", creds];
      const env = {};
      const run = await runSumac(
        [...common, ...options, "--nats-inbox-prefix", "_INBOX.coordinator", "--state-dir", join(dir, "s1")],
        env,
      );
      assert.equal(run.code, 0, run.output);
      assert.match(run.output, /hello/);
      // Without the client certificate the server drops sumac: exit 255, saying what to give.
      const noCert = await runSumac(
        [...common, "--nats-ca", ca, "--nats-creds", creds, "--state-dir", join(dir, "s2")],
        env,
      );
      assert.equal(noCert.code, 255, noCert.output);
      assert.match(
        noCert.output,
        /verifies its clients' certificates \(mutual TLS\) and sumac has none: give one with --nats-cert and --nats-key/,
      );
      const jwt = (await readFile(creds, "utf8")).split("\n")[1]!;
      for (const output of [run.output, noCert.output])
        assert.ok(!output.includes(jwt), "the JWT is not shown");
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  for (const from of ["SUMAC_NATS_TOKEN", "--nats-token-file"] as const) {
    it(`nats security - a token given by ${from} is in no command line, output, run file or child's environment`, async () => {
      const dir = await mkdtemp(join(tmpdir(), "sumac-nats-run-"));
      const token = `secret-${Math.random().toString(36).slice(2)}${Date.now()}`;
      const server = await startConfiguredNats(
        join(dir, "server"),
        `listen: 127.0.0.1:-1\njetstream { store_dir: "${join(dir, "server", "js")}" }\nauthorization { token: "${token}" }\n`,
      );
      try {
        const stateDir = join(dir, "state");
        const tokenFile = await privateFile(join(dir, "nats.token"), token);
        const child = spawn(
          process.execPath,
          [
            join(root, "cli/sumac.ts"),
            "inventory",
            await quickstartJob(dir),
            "--state-dir",
            stateDir,
            ...(from === "--nats-token-file" ? ["--nats", server.url, "--nats-token-file", tokenFile] : []),
          ],
          {
            env: {
              ...process.env,
              ...(from === "SUMAC_NATS_TOKEN" ? { SUMAC_NATS_URL: server.url, SUMAC_NATS_TOKEN: token } : {}),
              NODE_DISABLE_COMPILE_CACHE: "1",
            },
            stdio: ["ignore", "pipe", "pipe"],
          },
        );
        let output = "";
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
        const pid = child.pid!;
        const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
        assert.ok(cmdline.includes("inventory"), "read the real process's command line");
        assert.ok(!cmdline.includes(token));
        if (from === "--nats-token-file")
          assert.ok(cmdline.includes("nats.token"), "the file's path is there");
        // Every process sumac starts (the local agent, its shell) while the run lasts.
        const children = new Map<number, string>();
        let running = true;
        void exited.then(() => (running = false));
        while (running) {
          for (const entry of await readdir("/proc").catch(() => [])) {
            if (!/^\d+$/.test(entry) || children.has(Number(entry))) continue;
            const st = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
            const ppid = Number(/\) \S+ (\d+)/.exec(st)?.[1]);
            if (ppid !== pid && !children.has(ppid)) continue;
            // Between fork and exec a child is still a copy of sumac, whose own environment
            // block (readable by this user only) is the one it was started with: look once the
            // child runs its own program.
            const args = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
            if (args === cmdline) continue;
            const environ = await readFile(`/proc/${entry}/environ`, "utf8").catch(() => undefined);
            if (environ !== undefined) children.set(Number(entry), `${args}\n${environ}`);
          }
          await new Promise((r) => setTimeout(r, 20));
        }
        const code = await exited;
        assert.equal(code, 0, `sumac inventory exited ${code}: ${output}`);
        assert.match(output, /hello/);
        assert.ok(children.size > 0, "saw the processes sumac started");
        for (const [childPid, text] of children) {
          assert.ok(!text.includes(token), `process ${childPid} holds the token`);
          assert.ok(!text.includes("SUMAC_NATS_TOKEN="), `process ${childPid} inherited SUMAC_NATS_TOKEN`);
        }
        assert.ok(!output.includes(token));
        assert.match(output, /inventory|would install|hello/);
        const files: string[] = [];
        const walk = async (p: string): Promise<void> => {
          for (const e of await readdir(p, { withFileTypes: true })) {
            const full = join(p, e.name);
            if (e.isDirectory()) await walk(full);
            else if (e.isFile()) files.push(full);
          }
        };
        await walk(stateDir);
        assert.ok(
          files.some((f) => f.endsWith("report.json")),
          files.join(", "),
        );
        for (const f of files) {
          if ((await stat(f)).size > 64 * 1024 * 1024) continue;
          assert.ok(!(await readFile(f, "utf8")).includes(token), f);
        }
        // The server shows the connection and logged nothing of the token.
        assert.ok(!server.log().includes(token));
      } finally {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
