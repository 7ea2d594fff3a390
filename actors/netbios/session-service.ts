/**
 * Opening a NetBIOS session (RFC 1002 4.3, 5.3; TCP 139): connect, send the SESSION REQUEST with
 * the server's name, and read its answer. On a positive answer the socket is the caller's, for SMB
 * in session messages (MS-SMB2 2.1); a retarget is followed to the port it gives on the same host,
 * never to another host.
 */
import { connect, type Socket } from "node:net";
import { hostname } from "node:os";
import { endsOnce, withDeadline } from "../../base/deadline.ts";
import { RemoteTimeoutError } from "../remote-errors.ts";
import {
  NetbiosConfigError,
  NetbiosConnectionLostError,
  NetbiosSessionRefusedError,
  NetbiosUnreachableError,
} from "./errors.ts";
import { NameSuffix, netbiosNameProblem, type NetbiosName } from "./name.ts";
import {
  decodeSessionHeader,
  decodeSessionPacket,
  encodeSessionPacket,
  negativeSessionMeaning,
  NegativeSessionCode,
  SESSION_HEADER_LENGTH,
} from "./session-codec.ts";
import { MalformedPacketError } from "../wire/bytes.ts";

/** The session service's port (RFC 1002 4.3). */
export const SESSION_SERVICE_PORT = 139;
/** The name every Windows and Samba server answers to, when its own is not known (MS-SMB 3.2.4.2.1). */
export const ANY_SMB_SERVER = "*SMBSERVER";
/** Retargets followed before giving up (RFC 1002 5.3 sets no bound; a loop must end). */
const MAX_RETARGETS = 3;
/** The answers to a session request are 0 to 6 bytes long; anything larger is not one. */
const MAX_ANSWER_TRAILER = 6;

export interface NetbiosSessionOptions {
  /** The server's address (or a name the system resolver knows). */
  readonly host: string;
  /** Default 139. */
  readonly port?: number;
  /** The server's NetBIOS name (asked with suffix 0x20), or `*SMBSERVER`. */
  readonly calledName: string;
  /** This machine's name (default: its host name's first label when a NetBIOS name, else SUMAC). */
  readonly callingName?: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

function calledName(name: string): NetbiosName {
  if (name.toUpperCase() === ANY_SMB_SERVER)
    return { name: ANY_SMB_SERVER, suffix: NameSuffix.FILE_SERVER, scope: "" };
  const problem = netbiosNameProblem(name);
  if (problem !== undefined) throw new NetbiosConfigError(`called name: ${problem}`);
  return { name: name.toUpperCase(), suffix: NameSuffix.FILE_SERVER, scope: "" };
}

function callingName(name: string | undefined): NetbiosName {
  const own = hostname().split(".")[0] ?? "";
  const chosen = name ?? (netbiosNameProblem(own) === undefined ? own : "SUMAC");
  const problem = netbiosNameProblem(chosen);
  if (problem !== undefined) throw new NetbiosConfigError(`calling name: ${problem}`);
  return { name: chosen.toUpperCase(), suffix: NameSuffix.WORKSTATION, scope: "" };
}

type Answer =
  | { readonly kind: "positive"; readonly socket: Socket }
  | { readonly kind: "retarget"; readonly host: string; readonly port: number; readonly from: string };

/** One connection: the request, then the first answer (keep-alives skipped). */
function requestSession(
  host: string,
  port: number,
  request: Buffer,
  label: string,
  stop: AbortSignal,
): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const socket = connect({ host, port });
    const end = endsOnce(stop, reject, () => socket.destroy());
    let received = Buffer.alloc(0);
    const where = `${host}:${port}`;
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      while (!end.done && received.length >= SESSION_HEADER_LENGTH) {
        let answer;
        try {
          const { length } = decodeSessionHeader(received.subarray(0, SESSION_HEADER_LENGTH));
          if (length > MAX_ANSWER_TRAILER) {
            throw new MalformedPacketError(`NetBIOS session: an answer of ${length} bytes from ${where}`);
          }
          if (received.length < SESSION_HEADER_LENGTH + length) return;
          answer = decodeSessionPacket(received.subarray(0, SESSION_HEADER_LENGTH + length));
          received = received.subarray(SESSION_HEADER_LENGTH + length);
        } catch (err) {
          return end.fail(err as Error);
        }
        if (answer.kind === "keep-alive") continue;
        if (answer.kind === "positive-session-response") {
          if (!end.succeed()) return;
          // What the server sent after its answer belongs to the caller: put it back, unread. With
          // no 'readable' listener left the stream is neither paused nor flowing, so the caller's
          // first 'data' listener starts it (it would not after an explicit pause()).
          socket.off("readable", onReadable).off("error", onError).off("close", onClose);
          if (received.length > 0) socket.unshift(received);
          return resolve({ kind: "positive", socket });
        }
        if (answer.kind === "retarget-session-response") {
          if (end.succeed()) {
            const from = socket.remoteAddress ?? "";
            socket.destroy();
            resolve({ kind: "retarget", host: answer.address, port: answer.port, from });
          }
          return;
        }
        if (answer.kind === "negative-session-response") {
          const code = answer.errorCode;
          const hint =
            code === NegativeSessionCode.CALLED_NAME_NOT_PRESENT && label.startsWith(ANY_SMB_SERVER)
              ? "; ask again with the server's own name (its node status lists it)"
              : "";
          const meaning = `${negativeSessionMeaning(code)} (0x${code.toString(16)})`;
          return end.fail(
            new NetbiosSessionRefusedError(
              code,
              `${where} refused a NetBIOS session for ${label}: ${meaning}${hint}`,
            ),
          );
        }
        return end.fail(
          new MalformedPacketError(`NetBIOS session: ${answer.kind} from ${where} before any answer`),
        );
      }
    };
    const onError = (err: Error): void =>
      end.fail(
        new NetbiosUnreachableError(`NetBIOS session service at ${where}: ${err.message}`, { cause: err }),
      );
    const onClose = (): void =>
      end.fail(
        new NetbiosConnectionLostError(
          `${where} closed the connection before answering the session request for ${label}`,
        ),
      );
    // 'readable' and read() rather than 'data': nothing is pulled from the socket past the chunk
    // that holds the answer, and the stream is left as a fresh one for the caller.
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while (!end.done && (chunk = socket.read() as Buffer | null) !== null) onData(chunk);
    };
    socket.on("readable", onReadable).on("error", onError).on("close", onClose);
    socket.once("connect", () => socket.write(request));
  });
}

/**
 * A TCP connection to the session service with a NetBIOS session open on it, ready for session
 * messages. The caller owns the socket (and should add its `error` listener at once); whatever the
 * server sent after its positive answer is still in it. A retarget to another port of the same
 * host is followed, at most 3 times, all within `timeoutMs`; one to another host is UNREACHABLE.
 *
 * Rejects with NetbiosSessionRefusedError on a negative answer (its `sessionErrorCode` is the
 * answer's): 0x82, called name not present, after `*SMBSERVER` means the server wants its own
 * name; the caller may find it (nodeStatus) and call again. Rejects with NetbiosUnreachableError
 * when the connection fails, NetbiosConnectionLostError when it closes before an answer,
 * RemoteTimeoutError at the deadline, the signal's reason on abort.
 *
 * @example
 * const socket = await openNetbiosSession({ host: "172.17.0.2", calledName: "WINTARGET", timeoutMs: 5000 });
 * socket.write(Buffer.concat([encodeSessionHeader(SessionPacketType.MESSAGE, smb2.length), smb2]));
 */
export async function openNetbiosSession(options: NetbiosSessionOptions): Promise<Socket> {
  const called = calledName(options.calledName);
  const request = encodeSessionPacket({
    kind: "session-request",
    called,
    calling: callingName(options.callingName),
  });
  const label = `${called.name}<20>`;
  const first = { host: options.host, port: options.port ?? SESSION_SERVICE_PORT };
  const timeout = new RemoteTimeoutError(
    `NetBIOS session with ${first.host}:${first.port} for ${label} not open within ${options.timeoutMs} ms`,
  );
  return withDeadline<Socket>(
    { ms: options.timeoutMs, timeout, signal: options.signal, dispose: (socket) => socket.destroy() },
    async (stop) => {
      let at = first;
      for (let hop = 0; ; hop++) {
        const answer = await requestSession(at.host, at.port, request, label, stop);
        if (answer.kind === "positive") return answer.socket;
        if (hop >= MAX_RETARGETS) {
          throw new NetbiosUnreachableError(
            `NetBIOS session for ${label}: more than ${MAX_RETARGETS} retargets from ${first.host}:${first.port}`,
          );
        }
        // Another port of the same host only: a retarget elsewhere would take the session, the
        // account's logon and the job meant for this target to a machine the server chose.
        if (answer.host !== answer.from) {
          throw new NetbiosUnreachableError(
            `NetBIOS session for ${label}: ${answer.from} retargets to another host (${answer.host}:${answer.port}), refused`,
          );
        }
        at = { host: answer.host, port: answer.port };
      }
    },
  );
}
