/**
 * ScmClient.queryConfig against a fake svcctl binding: one call of 8 KiB by default, the
 * ERROR_INSUFFICIENT_BUFFER retry with pcbBytesNeeded and its limits (8 KiB, one retry, a size
 * no larger than sent), typed errors, and buffer sizes refused before sending.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ScmClient, type ScmCallOptions } from "../../../actors/scmr/client.ts";
import { ScmOpnum } from "../../../actors/scmr/constants.ts";
import { encodeQueryServiceConfigResponse, type ServiceConfig } from "../../../actors/scmr/service-config.ts";
import { ScmConfigError } from "../../../actors/scmr/service-names.ts";
import { ScmError, Win32Error } from "../../../actors/scmr/win32-errors.ts";
import { NdrReader } from "../../../actors/rpc/ndr.ts";
import { FakeRpc } from "./fake-rpc.ts";

const SVC = Buffer.alloc(20, 0x22);
const o: ScmCallOptions = { timeoutMs: 1_000 };
const { ERROR_INSUFFICIENT_BUFFER, ERROR_ACCESS_DENIED } = Win32Error;

const CONFIG: ServiceConfig = {
  serviceType: 0x10,
  startType: 3,
  errorControl: 0,
  binaryPath: "%SystemRoot%\\sumac-agent.exe",
  loadOrderGroup: "",
  tagId: 0,
  dependencies: [],
  serviceStartName: "LocalSystem",
  displayName: "sumac agent",
};
const EMPTY: ServiceConfig = {
  serviceType: 0,
  startType: 0,
  errorControl: 0,
  binaryPath: null,
  loadOrderGroup: null,
  tagId: 0,
  dependencies: [],
  serviceStartName: null,
  displayName: null,
};

/** Answers RQueryServiceConfigW: the config when cbBufSize ≥ `needed`, else ERROR_INSUFFICIENT_BUFFER. */
function configServer(needed: number, sizes: number[]) {
  return (stub: Buffer): Buffer => {
    const r = new NdrReader(stub, "RQueryServiceConfigW request");
    assert.deepEqual(r.contextHandle(), SVC);
    const size = r.u32();
    sizes.push(size);
    return size >= needed
      ? encodeQueryServiceConfigResponse({ config: CONFIG, bytesNeeded: 0, returnValue: 0 })
      : encodeQueryServiceConfigResponse({
          config: EMPTY,
          bytesNeeded: needed,
          returnValue: ERROR_INSUFFICIENT_BUFFER,
        });
  };
}

const insufficient = (err: unknown) =>
  err instanceof ScmError && err.win32Error === 122 && err.win32ErrorName === "ERROR_INSUFFICIENT_BUFFER";

describe("scmr client queryConfig", () => {
  it("scmr client queryConfig - one call of 8 KiB by default", async () => {
    const rpc = new FakeRpc();
    const sizes: number[] = [];
    rpc.answers.set(ScmOpnum.RQueryServiceConfigW, configServer(236, sizes));
    const scm = await ScmClient.open(rpc, o);
    assert.deepEqual(await scm.queryConfig(SVC, o), CONFIG);
    assert.deepEqual(sizes, [8192]);
  });

  it("scmr client queryConfig - ERROR_INSUFFICIENT_BUFFER: asked again with pcbBytesNeeded", async () => {
    const rpc = new FakeRpc();
    const sizes: number[] = [];
    rpc.answers.set(ScmOpnum.RQueryServiceConfigW, configServer(236, sizes));
    const scm = await ScmClient.open(rpc, o);
    assert.deepEqual(await scm.queryConfig(SVC, { ...o, bufferSize: 0 }), CONFIG);
    assert.deepEqual(sizes, [0, 236]);
  });

  it("scmr client queryConfig - more than 8 KiB needed is ScmError ERROR_INSUFFICIENT_BUFFER, not asked for", async () => {
    const rpc = new FakeRpc();
    const sizes: number[] = [];
    rpc.answers.set(ScmOpnum.RQueryServiceConfigW, configServer(8193, sizes));
    const scm = await ScmClient.open(rpc, o);
    await assert.rejects(scm.queryConfig(SVC, o), insufficient);
    await assert.rejects(scm.queryConfig(SVC, { ...o, bufferSize: 0 }), insufficient);
    assert.deepEqual(sizes, [8192, 0]);
  });

  it("scmr client queryConfig - one retry only, and none for a size no larger than sent", async () => {
    const rpc = new FakeRpc();
    let calls = 0;
    rpc.answers.set(ScmOpnum.RQueryServiceConfigW, () => {
      calls++;
      return encodeQueryServiceConfigResponse({
        config: EMPTY,
        bytesNeeded: 100 * calls,
        returnValue: ERROR_INSUFFICIENT_BUFFER,
      });
    });
    const scm = await ScmClient.open(rpc, o);
    await assert.rejects(scm.queryConfig(SVC, { ...o, bufferSize: 0 }), insufficient);
    assert.equal(calls, 2);
    calls = 0;
    await assert.rejects(scm.queryConfig(SVC, { ...o, bufferSize: 100 }), insufficient);
    assert.equal(calls, 1);
  });

  it("scmr client queryConfig - other errors are ScmErrors; a bad buffer size is refused before sending", async () => {
    const rpc = new FakeRpc();
    rpc.answers.set(ScmOpnum.RQueryServiceConfigW, () =>
      encodeQueryServiceConfigResponse({ config: EMPTY, bytesNeeded: 0, returnValue: ERROR_ACCESS_DENIED }),
    );
    const scm = await ScmClient.open(rpc, o);
    await assert.rejects(
      scm.queryConfig(SVC, o),
      (err: unknown) =>
        err instanceof ScmError && err.win32Error === 5 && err.message.includes("RQueryServiceConfigW"),
    );
    for (const bufferSize of [-1, 8193, 1.5, Number.NaN]) {
      await assert.rejects(scm.queryConfig(SVC, { ...o, bufferSize }), ScmConfigError, String(bufferSize));
    }
    assert.equal(rpc.callsOf(ScmOpnum.RQueryServiceConfigW).length, 1);
  });
});
