import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NetbiosNameNotFoundError } from "../../../actors/netbios/errors.ts";
import type { NameQueryOptions } from "../../../actors/netbios/name-query.ts";
import { resolveHost } from "../../../actors/netbios/resolve.ts";

const dnsError = (code: string) => (): Promise<string> =>
  Promise.reject(Object.assign(new Error(`getaddrinfo ${code}`), { code }));

/** A NetBIOS query that knows one name, and records where it was asked. */
function fakeQuery(known: Record<string, string>, asked: NameQueryOptions[] = []) {
  return (name: string, options: NameQueryOptions): Promise<string[]> => {
    asked.push(options);
    const address = known[name.toUpperCase()];
    if (address === undefined) {
      return Promise.reject(new NetbiosNameNotFoundError(`NetBIOS name ${name}<20> not found (fake)`));
    }
    return Promise.resolve([address]);
  };
}

describe("netbios resolve", () => {
  it("resolve - an IP literal is used as it is, in every mode", async () => {
    for (const mode of ["auto", "always", "never"] as const) {
      assert.deepEqual(await resolveHost("10.0.0.7", { mode, timeoutMs: 100 }), {
        address: "10.0.0.7",
        via: "literal",
      });
      assert.deepEqual(await resolveHost("fe80::1", { mode, timeoutMs: 100 }), {
        address: "fe80::1",
        via: "literal",
      });
    }
  });

  it("resolve - auto: DNS's answer wins, NetBIOS is not asked", async () => {
    const asked: NameQueryOptions[] = [];
    const r = await resolveHost("WINTARGET", {
      mode: "auto",
      lookup: () => Promise.resolve("10.0.0.1"),
      query: fakeQuery({ WINTARGET: "10.0.0.2" }, asked),
      broadcast: "10.0.0.255",
      timeoutMs: 1000,
    });
    assert.deepEqual(r, { address: "10.0.0.1", via: "dns" });
    assert.equal(asked.length, 0);
  });

  it("resolve - auto: a name DNS does not know (ENOTFOUND, EAI_AGAIN) is asked of WINS, then by broadcast", async () => {
    for (const code of ["ENOTFOUND", "EAI_AGAIN", "ENODATA"]) {
      const asked: NameQueryOptions[] = [];
      const query = async (name: string, options: NameQueryOptions): Promise<string[]> => {
        asked.push(options);
        if (options.server !== undefined) throw new NetbiosNameNotFoundError("WINS does not know it");
        return fakeQuery({ WINTARGET: "10.0.0.2" })(name, options);
      };
      const r = await resolveHost("wintarget", {
        mode: "auto",
        lookup: dnsError(code),
        query,
        nameServer: "10.0.0.53",
        broadcast: "10.0.0.255",
        timeoutMs: 1000,
      });
      assert.deepEqual(r, { address: "10.0.0.2", via: "netbios" }, code);
      assert.deepEqual(
        asked.map((o) => o.server ?? o.broadcast),
        ["10.0.0.53", "10.0.0.255"],
      );
      const wins = asked[0]?.timeoutMs ?? 0;
      assert.ok(wins > 400 && wins <= 500, `WINS gets half of what DNS left: ${wins} ms`);
    }
  });

  it("resolve - auto: neither knows the name: NETBIOS_NAME_NOT_FOUND naming both attempts", async () => {
    await assert.rejects(
      resolveHost("NOSUCH", {
        mode: "auto",
        lookup: dnsError("ENOTFOUND"),
        query: fakeQuery({}),
        broadcast: "10.0.0.255",
        timeoutMs: 1000,
      }),
      (err) => {
        assert.ok(err instanceof NetbiosNameNotFoundError);
        assert.match(
          err.message,
          /^NOSUCH not resolved: DNS: ENOTFOUND; NetBIOS: NetBIOS name NOSUCH<20> not found/,
        );
        return true;
      },
    );
  });

  it("resolve - auto: a dotted name or a DNS failure other than not-found stays with DNS (UNREACHABLE)", async () => {
    const asked: NameQueryOptions[] = [];
    const query = fakeQuery({ WINTARGET: "10.0.0.2" }, asked);
    await assert.rejects(
      resolveHost("web.example.net", {
        mode: "auto",
        lookup: dnsError("ENOTFOUND"),
        query,
        broadcast: "10.0.0.255",
        timeoutMs: 100,
      }),
      { code: "UNREACHABLE", message: /web\.example\.net not resolved: DNS: ENOTFOUND \(not a NetBIOS name/ },
    );
    await assert.rejects(
      resolveHost("WINTARGET", {
        mode: "auto",
        lookup: dnsError("EAI_FAIL"),
        query,
        broadcast: "10.0.0.255",
        timeoutMs: 100,
      }),
      { code: "UNREACHABLE", message: /DNS: EAI_FAIL/ },
    );
    assert.equal(asked.length, 0);
  });

  it("resolve - auto: a DNS that hangs gets half the deadline, NetBIOS the rest", async () => {
    const asked: NameQueryOptions[] = [];
    const started = performance.now();
    const r = await resolveHost("WINTARGET", {
      mode: "auto",
      lookup: () => new Promise<string>(() => {}),
      query: fakeQuery({ WINTARGET: "10.0.0.2" }, asked),
      broadcast: "10.0.0.255",
      timeoutMs: 400,
    });
    const elapsed = performance.now() - started;
    assert.deepEqual(r, { address: "10.0.0.2", via: "netbios" });
    assert.ok(elapsed >= 190 && elapsed < 350, `${elapsed} ms`);
    assert.ok((asked[0]?.timeoutMs ?? 0) > 100 && (asked[0]?.timeoutMs ?? 0) <= 210);
  });

  it("resolve - always: NetBIOS only; never: DNS only", async () => {
    let dnsAsked = 0;
    const lookup = (): Promise<string> => {
      dnsAsked++;
      return Promise.resolve("10.0.0.1");
    };
    const query = fakeQuery({ WINTARGET: "10.0.0.2" });
    assert.deepEqual(
      await resolveHost("WINTARGET", {
        mode: "always",
        lookup,
        query,
        broadcast: "10.0.0.255",
        timeoutMs: 100,
      }),
      {
        address: "10.0.0.2",
        via: "netbios",
      },
    );
    assert.equal(dnsAsked, 0);
    await assert.rejects(
      resolveHost("WINTARGET", {
        mode: "never",
        lookup: dnsError("ENOTFOUND"),
        query,
        broadcast: "10.0.0.255",
        timeoutMs: 100,
      }),
      { code: "UNREACHABLE", message: /^WINTARGET not resolved: DNS: ENOTFOUND$/ },
    );
    await assert.rejects(resolveHost("web.example.net", { mode: "always", query, timeoutMs: 100 }), {
      code: "CONFIG_INVALID",
    });
  });

  it("resolve - abort during DNS rejects with the signal's reason, NetBIOS not asked", async () => {
    const asked: NameQueryOptions[] = [];
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("cancelled")), 20);
    await assert.rejects(
      resolveHost("WINTARGET", {
        mode: "auto",
        lookup: () => new Promise<string>(() => {}),
        query: fakeQuery({ WINTARGET: "10.0.0.2" }, asked),
        broadcast: "10.0.0.255",
        timeoutMs: 5000,
        signal: controller.signal,
      }),
      /cancelled/,
    );
    assert.equal(asked.length, 0);
  });
});
