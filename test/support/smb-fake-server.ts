/**
 * An in-process SMB2 server for the client's unit tests: it deframes requests and hands each to a
 * handler that answers (or not) with whatever header and body the test wants.
 */
import net from "node:net";
import { decodeHeader, encodeHeader, HeaderFlag, type Smb2Header } from "../../actors/smb/codec/header.ts";
import { Deframer, encodeFrame } from "../../actors/smb/client/framing.ts";

export interface FakeRequest {
  readonly header: Smb2Header;
  readonly message: Buffer;
  /** It came "encrypted" by {@link fakeSeal}. */
  readonly sealed: boolean;
}

/** A stand-in for a session's encryption: the transform protocol id in front, nothing secret. */
export const fakeSeal = {
  encrypt: (message: Buffer): Buffer => Buffer.concat([Buffer.from([0xfd, 0x53, 0x4d, 0x42]), message]),
  decrypt: (frame: Buffer): Buffer => frame.subarray(4),
};

export interface FakeServer {
  readonly port: number;
  /** Connections the client has closed (or that dropped). */
  readonly closedConnections: () => number;
  /** Every request received, in order. */
  readonly requests: FakeRequest[];
  /** Sends a raw message (framed) on the current connection. */
  send(message: Buffer): void;
  /** Closes the current connection. */
  drop(): void;
  stop(): Promise<void>;
}

/** An answer to `request`: its header fields overridden by `fields`, then `body`. */
export function answer(
  request: Smb2Header,
  fields: Partial<Smb2Header>,
  body: Buffer = Buffer.from([9, 0, 0, 0, 0, 0, 0, 0, 0]),
): Buffer {
  const header = encodeHeader({
    creditCharge: request.creditCharge,
    status: 0,
    command: request.command,
    credits: 1,
    flags: HeaderFlag.SERVER_TO_REDIR,
    nextCommand: 0,
    messageId: request.messageId,
    treeId: request.treeId ?? 0,
    sessionId: request.sessionId,
    signature: Buffer.alloc(16),
    ...fields,
  });
  return Buffer.concat([header, body]);
}

/** Starts a fake server on a free port; `handle` is called with each request. */
export async function startFakeServer(
  handle: (request: FakeRequest, server: FakeServer) => void,
): Promise<FakeServer> {
  let current: net.Socket | undefined;
  const requests: FakeRequest[] = [];
  let closed = 0;
  const server = net.createServer((socket) => {
    current = socket;
    const deframer = new Deframer(1 << 20);
    socket.on("error", () => {});
    socket.on("close", () => closed++);
    socket.on("data", (chunk: Buffer) => {
      for (const frame of deframer.push(chunk)) {
        // The tests' stand-in for encryption: the transform protocol id put in front (see fakeSeal).
        const sealed = frame.readUInt32BE(0) === 0xfd534d42;
        const message = sealed ? frame.subarray(4) : frame;
        const request = { header: decodeHeader(message), message, sealed };
        requests.push(request);
        handle(request, fake);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const fake: FakeServer = {
    port: (server.address() as net.AddressInfo).port,
    requests,
    closedConnections: () => closed,
    send: (message) => current?.write(encodeFrame(message)),
    drop: () => current?.destroy(),
    stop: () =>
      new Promise((resolve) => {
        current?.destroy();
        server.close(() => resolve());
      }),
  };
  return fake;
}
