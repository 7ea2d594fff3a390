/**
 * Named pipes on IPC$ (MS-SMB2 3.2.4.20.1 FSCTL_PIPE_TRANSCEIVE, MS-FSCC 2.3.49): DCE/RPC goes
 * over them as one request and answer per transceive. An answer longer than the IOCTL's output
 * comes with STATUS_BUFFER_OVERFLOW and the rest is READ (MS-SMB2 3.3.5.15.1, 3.3.5.12).
 */
import { Command } from "../codec/header.ts";
import { Access, CreateOption } from "../codec/create.ts";
import { CtlCode, decodeIoctlResponse, encodeIoctlRequest, IoctlFlag } from "../codec/ioctl.ts";
import {
  Channel,
  decodeReadResponse,
  decodeWriteResponse,
  encodeReadRequest,
  encodeWriteRequest,
} from "../codec/read-write.ts";
import { NtStatus } from "../codec/status.ts";
import { RemoteUploadError } from "../../remote-errors.ts";
import { MalformedPacketError } from "../../wire/bytes.ts";
import { Budget } from "./budget.ts";
import type { CallOptions } from "./connection.ts";
import { SmbConfigError, SmbOutputTooLargeError } from "./errors.ts";
import type { TreeIo } from "./tree-io.ts";

/** The default cap of one transceive's answer (DCE/RPC fragments are 4280 bytes by default). */
const DEFAULT_MAX_OUTPUT = 64 * 1024;
/** The most one transceive gathers with its READs after BUFFER_OVERFLOW. */
const MAX_ANSWER = 16 * 1024 * 1024;

/** An open named pipe. */
export interface SmbPipe {
  /** Writes `input` and reads the answer in one FSCTL_PIPE_TRANSCEIVE. */
  transceive(input: Buffer, options: CallOptions & { readonly maxOutput?: number }): Promise<Buffer>;
  /** One WRITE of `data` into the pipe. */
  write(data: Buffer, options: CallOptions): Promise<void>;
  /** One READ of at most `maxBytes`. */
  read(options: CallOptions & { readonly maxBytes: number }): Promise<Buffer>;
  close(options: CallOptions): Promise<void>;
}

/** Opens the pipe `name` ("svcctl", "srvsvc") on an IPC$ tree. */
export async function openPipe(io: TreeIo, name: string, options: CallOptions): Promise<SmbPipe> {
  if (!/^[A-Za-z0-9_.$-]{1,80}$/.test(name)) throw new SmbConfigError(`a pipe name ${JSON.stringify(name)}`);
  const file = await io.open(
    name,
    {
      access:
        Access.FILE_READ_DATA | Access.FILE_WRITE_DATA | Access.FILE_READ_ATTRIBUTES | Access.SYNCHRONIZE,
      options: CreateOption.NON_DIRECTORY_FILE,
    },
    options,
  );
  return new OpenPipe(io, name, file.fileId);
}

class OpenPipe implements SmbPipe {
  private readonly io: TreeIo;
  private readonly name: string;
  private readonly fileId: Buffer;
  private closed = false;

  constructor(io: TreeIo, name: string, fileId: Buffer) {
    this.io = io;
    this.name = name;
    this.fileId = fileId;
  }

  async transceive(input: Buffer, options: CallOptions & { readonly maxOutput?: number }): Promise<Buffer> {
    const budget = new Budget(options);
    const maxOutput = Math.min(options.maxOutput ?? DEFAULT_MAX_OUTPUT, this.io.maxTransact);
    const body = encodeIoctlRequest({
      ctlCode: CtlCode.FSCTL_PIPE_TRANSCEIVE,
      fileId: this.fileId,
      input,
      maxInputResponse: 0,
      output: Buffer.alloc(0),
      maxOutputResponse: maxOutput,
      flags: IoctlFlag.IS_FSCTL,
    });
    const response = await this.io.call(Command.IOCTL, body, `TRANSCEIVE ${this.name}`, budget.next(), {
      payloadSize: Math.max(input.length, maxOutput),
      ok: [NtStatus.BUFFER_OVERFLOW],
    });
    const parts = [decodeIoctlResponse(response.message).output];
    let total = parts[0]!.length;
    let overflow = response.header.status >>> 0 === NtStatus.BUFFER_OVERFLOW;
    while (overflow) {
      const more = await this.readOnce(maxOutput, budget.next());
      parts.push(more.data);
      total += more.data.length;
      overflow = more.overflow;
      if (total > MAX_ANSWER)
        throw new SmbOutputTooLargeError(`${this.name}: an answer over ${MAX_ANSWER} bytes`);
    }
    return Buffer.concat(parts, total);
  }

  async write(data: Buffer, options: CallOptions): Promise<void> {
    const body = encodeWriteRequest({
      offset: 0n,
      fileId: this.fileId,
      channel: Channel.NONE,
      remainingBytes: 0,
      flags: 0,
      data,
    });
    const response = await this.io.call(Command.WRITE, body, `WRITE ${this.name}`, options, {
      payloadSize: data.length,
    });
    const { count } = decodeWriteResponse(response.message);
    // A message-mode pipe takes a whole message or fails: a short count leaves the peer with half
    // a request, so the pipe cannot be used on.
    if (count !== data.length)
      throw new RemoteUploadError(`WRITE ${this.name}: the server took ${count} of ${data.length} bytes`);
  }

  async read(options: CallOptions & { readonly maxBytes: number }): Promise<Buffer> {
    return (await this.readOnce(Math.min(options.maxBytes, this.io.maxRead), options)).data;
  }

  async close(options: CallOptions): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.io.close(this.fileId, options);
  }

  /** One READ; `overflow` when the message goes on (STATUS_BUFFER_OVERFLOW). */
  private async readOnce(length: number, options: CallOptions): Promise<{ data: Buffer; overflow: boolean }> {
    const body = encodeReadRequest({
      padding: 0x50,
      flags: 0,
      length,
      offset: 0n,
      fileId: this.fileId,
      minimumCount: 0,
      channel: Channel.NONE,
      remainingBytes: 0,
    });
    const response = await this.io.call(Command.READ, body, `READ ${this.name}`, options, {
      payloadSize: length,
      ok: [NtStatus.BUFFER_OVERFLOW],
    });
    const { data } = decodeReadResponse(response.message);
    // MS-SMB2 3.3.5.12: never more than Length; a server that sends more is not to be buffered.
    if (data.length > length)
      throw new MalformedPacketError(`READ ${this.name}: ${data.length} bytes answered for ${length} asked`);
    return { data, overflow: response.header.status >>> 0 === NtStatus.BUFFER_OVERFLOW };
  }
}
