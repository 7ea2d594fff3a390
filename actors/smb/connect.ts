/**
 * Opening the file channel of a Windows target, the one call the Windows transport makes: the
 * target's host to an address (DNS, NetBIOS), SMB direct on TCP 445 (MS-SMB2 2.1), and when 445
 * refuses or stays silent, SMB over the NetBIOS session service on TCP 139 (RFC 1002 4.3, as
 * Windows clients still do for servers with 445 closed), then an authenticated session and
 * actors/smb/files.ts's channel over it.
 *
 * The fallback is decided on the TCP connect alone: once 445 has accepted a connection, a refused
 * account, a failed negotiation or a lost connection there is the answer, and 139 is not tried (it
 * would be a second logon attempt with the same password, and lockout policies count them).
 */
import type net from "node:net";
import { withDeadline } from "../../base/deadline.ts";
import { isSumacError } from "../../base/errors.ts";
import { NetbiosSessionRefusedError } from "../netbios/errors.ts";
import { isNetbiosName, NameSuffix } from "../netbios/name.ts";
import { nodeStatus } from "../netbios/name-query.ts";
import { NodeNameFlag } from "../netbios/name-service-codec.ts";
import { resolveHost, type NetbiosMode } from "../netbios/resolve.ts";
import { NegativeSessionCode } from "../netbios/session-codec.ts";
import { ANY_SMB_SERVER, openNetbiosSession, SESSION_SERVICE_PORT } from "../netbios/session-service.ts";
import { SmbClient, type SmbCredentials } from "./client/client.ts";
import { SmbTimeoutError, SmbUnreachableError } from "./client/errors.ts";
import { connectSocket } from "./client/socket.ts";
import { smbFileChannel, type SmbFileChannel } from "./files.ts";

/** SMB direct over TCP (MS-SMB2 2.1). */
export const SMB_DIRECT_PORT = 445;

/** What {@link openSmbFiles} needs. */
export interface OpenSmbFilesOptions {
  /** An IP address, a DNS name, or a NetBIOS name. */
  readonly host: string;
  /** SMB direct's port (default 445). */
  readonly port?: number;
  readonly credentials: SmbCredentials;
  /**
   * The job's `options.netbios`. `auto` (default): DNS, then NetBIOS for a NetBIOS name DNS does not
   * know, and the session service on 139 when 445 does not answer. `always`: the name by NetBIOS
   * only. `never`: no NetBIOS at all, neither names nor 139 (Windows' "Disable NetBIOS over TCP/IP").
   */
  readonly netbios?: NetbiosMode;
  /** A WINS server asked before broadcasting. */
  readonly nameServer?: string;
  /** Where NetBIOS name queries are broadcast (default: every IPv4 interface's broadcast address). */
  readonly broadcast?: string;
  /** The session service's port (default 139). */
  readonly sessionPort?: number;
  /** Encrypt every message (SMB 3.x); the server may require it anyway. */
  readonly encrypt?: boolean;
  /** Dialect bounds (0x0202 to 0x0311), as SmbClient.connect takes them. */
  readonly dialects?: { readonly min?: number; readonly max?: number };
  /** Where runs' directories go (default `/ADMIN$/Temp/sumac`). */
  readonly runRoot?: string;
  /**
   * Told when a run directory goes without its private DACL (actors/smb/run-dir.ts); Node's
   * process warning when not given.
   */
  readonly onWarning?: (line: string) => void;
  /** For the whole open: resolution, connects, negotiation, logon. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** How the channel's connection was made, for logs and reports. */
export interface SmbFilesConnection {
  readonly address: string;
  /** How the address was found. */
  readonly via: "literal" | "dns" | "netbios";
  /** 445 (SMB direct) or 139 (NetBIOS session service), or the ports given in their place. */
  readonly port: number;
  readonly transport: "direct" | "netbios-session";
  readonly dialect: number;
  /** 0 HMAC-SHA256, 1 AES-CMAC, 2 AES-GMAC (MS-SMB2 2.2.3.1.7). */
  readonly signingAlgorithm: number;
  readonly signing: boolean;
  /** 1 AES-128-CCM, 2 AES-128-GCM, 3 AES-256-CCM, 4 AES-256-GCM (MS-SMB2 2.2.3.1.2). */
  readonly cipher: number | undefined;
  readonly encrypting: boolean;
}

/** A file channel over SMB, and how it was reached. */
/**
 * The file channel of a target, what was negotiated, and the client itself (its other shares:
 * `IPC$` for the service control manager's pipe).
 */
export type SmbFiles = SmbFileChannel & {
  readonly connection: SmbFilesConnection;
  readonly client: SmbClient;
};

/** The first label of a host name when it can be the server's NetBIOS name, else undefined. */
function serverNetbiosName(host: string, via: SmbFilesConnection["via"]): string | undefined {
  if (via === "literal") return undefined;
  const label = host.split(".")[0] ?? "";
  return isNetbiosName(label) ? label : undefined;
}

/** The server's own file-server name from its node status (RFC 1002 4.2.18), if it tells. */
async function askServerName(
  address: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<string | undefined> {
  try {
    const status = await nodeStatus(address, { timeoutMs, signal, retries: 1 });
    const own = status.names.find(
      (n) => n.suffix === NameSuffix.FILE_SERVER && (n.flags & NodeNameFlag.GROUP) === 0,
    );
    return own?.name.trim();
  } catch {
    return undefined;
  }
}

/**
 * A NetBIOS session on 139 for SMB. Called with the server's name when known, else `*SMBSERVER`;
 * a server that wants its own name (0x82, MS-SMB 3.2.4.2.1) is asked for it by a node status and
 * called again once.
 */
async function openSessionService(
  address: string,
  name: string | undefined,
  port: number,
  timeoutMs: number,
  stop: AbortSignal,
): Promise<net.Socket> {
  const started = performance.now();
  const left = (): number => Math.max(1, timeoutMs - (performance.now() - started));
  const calledName = name ?? ANY_SMB_SERVER;
  try {
    return await openNetbiosSession({ host: address, port, calledName, timeoutMs, signal: stop });
  } catch (err) {
    const wantsName =
      err instanceof NetbiosSessionRefusedError &&
      err.sessionErrorCode === NegativeSessionCode.CALLED_NAME_NOT_PRESENT &&
      name === undefined;
    if (!wantsName) throw err;
    const own = await askServerName(address, left() / 2, stop);
    if (own === undefined) throw err;
    return openNetbiosSession({ host: address, port, calledName: own, timeoutMs: left(), signal: stop });
  }
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Resolves, connects and logs on to a Windows target, and returns its file channel (runs'
 * directories under `ADMIN$\Temp\sumac` by default). `close()` on the channel logs off.
 *
 * Deadline shares: resolution gets at most a third of `timeoutMs`; the TCP connect to 445 a third
 * of what is left when 139 may follow (a silent 445 must leave 139 its time), all of it otherwise;
 * the session on 139 half of what is left then; the SMB negotiation and logon the rest.
 *
 * Rejects with the resolver's errors (NETBIOS_NAME_NOT_FOUND, UNREACHABLE, CONFIG_INVALID),
 * UNREACHABLE when neither 445 nor 139 answered (naming both), TIMEOUT at the deadline, and
 * SmbClient.connect's errors as they are (AUTH_FAILED after one attempt, SMB_NEGOTIATION_FAILED,
 * SMB_INTEGRITY_FAILED, CONNECTION_LOST, ...).
 *
 * @example
 * const files = await openSmbFiles({ host: "WINTARGET", credentials, timeoutMs: 30_000 });
 * try {
 *   const dir = await files.createRunDir(run);
 *   await files.put(bundlePath, `${dir}/agent.zip`, { sha256 });
 * } finally {
 *   await files.close();
 * }
 */
export function openSmbFiles(options: OpenSmbFilesOptions): Promise<SmbFiles> {
  const mode = options.netbios ?? "auto";
  const directPort = options.port ?? SMB_DIRECT_PORT;
  const sessionPort = options.sessionPort ?? SESSION_SERVICE_PORT;
  const timeout = new SmbTimeoutError(
    `opening SMB files on ${options.host} did not finish within ${options.timeoutMs} ms`,
  );
  return withDeadline<SmbFiles>(
    {
      ms: options.timeoutMs,
      timeout,
      signal: options.signal,
      dispose: (files) => void files.close(),
    },
    async (stop) => {
      const started = performance.now();
      const left = (): number => Math.max(1, options.timeoutMs - (performance.now() - started));
      const resolved = await resolveHost(options.host, {
        mode,
        nameServer: options.nameServer,
        broadcast: options.broadcast,
        timeoutMs: options.timeoutMs / 3,
        signal: stop,
      });
      const { address } = resolved;
      const fallback = mode !== "never";

      let socket: net.Socket | undefined;
      let port = directPort;
      let transport: SmbFilesConnection["transport"] = "direct";
      try {
        socket = await connectSocket({
          host: address,
          port: directPort,
          timeoutMs: fallback ? left() / 3 : left(),
          signal: stop,
        });
      } catch (direct) {
        if (!fallback || !isSumacError(direct) || direct.code !== "UNREACHABLE") throw direct;
        const name = serverNetbiosName(options.host, resolved.via);
        try {
          socket = await openSessionService(address, name, sessionPort, left() / 2, stop);
        } catch (session) {
          if (stop.aborted) throw session;
          throw new SmbUnreachableError(
            `${options.host} (${address}): port ${directPort}: ${reason(direct)}; port ${sessionPort}: ${reason(session)}`,
            { cause: session },
          );
        }
        port = sessionPort;
        transport = "netbios-session";
      }

      const client = await SmbClient.connect({
        host: address,
        socket,
        credentials: options.credentials,
        dialects: options.dialects,
        encrypt: options.encrypt,
        timeoutMs: left(),
        signal: stop,
      });
      const connection: SmbFilesConnection = {
        address,
        via: resolved.via,
        port,
        transport,
        dialect: client.dialect,
        signingAlgorithm: client.signingAlgorithm,
        signing: client.signing,
        cipher: client.cipher,
        encrypting: client.encrypting,
      };
      const channel = smbFileChannel({
        openShare: (share, o) => client.treeConnect(share, o),
        close: () => client.close(),
        runRoot: options.runRoot,
        onWarning: options.onWarning,
      });
      return Object.assign(channel, { connection, client });
    },
  );
}
