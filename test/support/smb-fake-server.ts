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
}

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
      for (const message of deframer.push(chunk)) {
        const request = { header: decodeHeader(message), message };
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
