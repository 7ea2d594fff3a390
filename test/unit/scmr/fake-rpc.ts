/**
 * A fake svcctl binding for ScmClient's unit tests: answers each opnum with a stub made by a
 * canned function, records every call, and opens the SCM as {@link FAKE_SCM_HANDLE}.
 */
import assert from "node:assert/strict";
import type { RpcCaller, ScmCallOptions } from "../../../actors/scmr/client.ts";
import { ScmOpnum } from "../../../actors/scmr/constants.ts";
import { encodeHandleResponse } from "../../../actors/scmr/responses.ts";

/** The SCM handle ROpenSCManagerW answers with. */
export const FAKE_SCM_HANDLE = Buffer.alloc(20, 0x11);

/** Answers by opnum; records each call. */
export class FakeRpc implements RpcCaller {
  calls: { opnum: number; stub: Buffer }[] = [];
  answers = new Map<number, (stub: Buffer) => Buffer>();

  constructor() {
    this.answers.set(ScmOpnum.ROpenSCManagerW, () =>
      encodeHandleResponse({ handle: FAKE_SCM_HANDLE, returnValue: 0 }),
    );
  }

  call(opnum: number, stub: Buffer, options: ScmCallOptions): Promise<Buffer> {
    assert.ok(options.timeoutMs > 0);
    this.calls.push({ opnum, stub });
    const answer = this.answers.get(opnum);
    if (!answer) return Promise.reject(new Error(`no answer for opnum ${opnum}`));
    return Promise.resolve(answer(stub));
  }

  /** The calls made with `opnum`. */
  callsOf(opnum: number): { opnum: number; stub: Buffer }[] {
    return this.calls.filter((c) => c.opnum === opnum);
  }
}
