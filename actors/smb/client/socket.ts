/**
 * The TCP connect of the SMB client, with a deadline and an abort: a server that refuses, a
 * network with no route, a name that does not resolve and a connect that takes past its deadline
 * are all UNREACHABLE (retryable: nothing was sent).
 */
import net from "node:net";
import { endsOnce, withDeadline } from "../../../base/deadline.ts";
import { SmbUnreachableError } from "./errors.ts";

/** Opens a TCP connection to `host:port` within `timeoutMs`; `signal` gives it up. */
export function connectSocket(options: {
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}): Promise<net.Socket> {
  const where = `${options.host}:${options.port}`;
  const timeout = new SmbUnreachableError(`${where}: no TCP connection within ${options.timeoutMs} ms`);
  return withDeadline<net.Socket>(
    { ms: options.timeoutMs, timeout, signal: options.signal, dispose: (socket) => socket.destroy() },
    (stop) =>
      new Promise((resolve, reject) => {
        const socket = net.connect({ host: options.host, port: options.port });
        const end = endsOnce(stop, reject, () => socket.destroy());
        socket.once("connect", () => {
          socket.removeAllListeners("error");
          if (end.succeed()) resolve(socket);
          else socket.destroy();
        });
        socket.once("error", (err: NodeJS.ErrnoException) =>
          end.fail(new SmbUnreachableError(`${where}: ${err.code ?? err.message}`, { cause: err })),
        );
      }),
  );
}
