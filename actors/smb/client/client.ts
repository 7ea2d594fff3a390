/**
 * sumac's own SMB 2/3 client, the public face of actors/smb/client: one connection, one
 * authenticated session, trees on it (ADMIN$ for files, IPC$ for named pipes).
 *
 * Signing is on by default and whenever the server requires it; encryption is on when the caller
 * asks (3.0 and later), when the session's flags or a share's flags say ENCRYPT_DATA.
 */
import type net from "node:net";
import { withDeadline } from "../../../base/deadline.ts";
import { Dialect } from "../codec/negotiate.ts";
import { Budget } from "./budget.ts";
import { SmbConnection, type CallOptions } from "./connection.ts";
import { SmbConfigError, SmbTimeoutError } from "./errors.ts";
import { negotiate, type Negotiated } from "./negotiate.ts";
import { accountName, logoff, setupSession, type Session, type SmbCredentials } from "./session.ts";
import { connectTree, type SmbTree, type TreeContext } from "./tree.ts";
import { validateNegotiate } from "./validate-negotiate.ts";

export type { CallOptions } from "./connection.ts";
export type { SmbCredentials } from "./session.ts";
export { SmbTree } from "./tree.ts";
export type { SmbPipe } from "./pipe.ts";
export type { DirectoryEntry, FileStat } from "./tree.ts";
export {
  SmbAuthError,
  SmbConfigError,
  SmbConnectionLostError,
  SmbNegotiationError,
  SmbNoCreditsError,
  SmbTimeoutError,
  SmbUnreachableError,
} from "./errors.ts";
export { SmbFileTooLargeError } from "./file-transfer.ts";
export { SmbStatusError } from "../codec/status.ts";
export { SmbIntegrityError } from "../crypto/errors.ts";

/** How to reach and log on to a server. */
export interface SmbConnectOptions {
  readonly host: string;
  /** Default 445. Ignored with `socket`. */
  readonly port?: number;
  /** An already connected socket (e.g. a NetBIOS session on port 139); the client owns it then. */
  readonly socket?: net.Socket;
  readonly credentials: SmbCredentials;
  /** Dialect bounds (Dialect values, e.g. 0x0202 to 0x0311; default all of them). */
  readonly dialects?: { readonly min?: number; readonly max?: number };
  /** Sign every message even when the server does not require it (default true). */
  readonly requireSigning?: boolean;
  /** Encrypt every message (3.0 and later; SMB_NEGOTIATION_FAILED otherwise). Default false. */
  readonly encrypt?: boolean;
  /** For the connect, NEGOTIATE and SESSION_SETUP together. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/**
 * A connected, authenticated SMB client.
 *
 * @example
 * const client = await SmbClient.connect({ host, credentials, timeoutMs: 15_000 });
 * const admin = await client.treeConnect("ADMIN$", { timeoutMs: 10_000 });
 * await admin.writeFile("Temp/sumac/agent.zip", bundle, { timeoutMs: 60_000 });
 * await client.close();
 */
export class SmbClient {
  readonly host: string;
  /** The negotiated dialect (0x0202 to 0x0311). */
  readonly dialect: number;
  /** The signing algorithm (0 HMAC-SHA256, 1 AES-CMAC, 2 AES-GMAC), whether or not the session signs. */
  readonly signingAlgorithm: number;
  /** True when messages are signed. */
  readonly signing: boolean;
  /** The cipher (1 AES-128-CCM, 2 AES-128-GCM, 3 AES-256-CCM, 4 AES-256-GCM) when the connection can encrypt. */
  readonly cipher: number | undefined;
  /** True when every message of the session is encrypted. */
  readonly encrypting: boolean;
  private readonly conn: SmbConnection;
  private readonly negotiatedInfo: Negotiated;
  private readonly session: Session;
  private closing: Promise<void> | undefined;

  private constructor(conn: SmbConnection, negotiated: Negotiated, session: Session) {
    this.conn = conn;
    this.host = conn.host;
    this.negotiatedInfo = negotiated;
    this.session = session;
    this.dialect = negotiated.dialect;
    this.signingAlgorithm = negotiated.signingAlgorithm;
    this.signing = negotiated.signingRequired && !session.encryptAll;
    this.cipher = negotiated.cipher;
    this.encrypting = session.encryptAll;
  }

  /**
   * Connects, negotiates, authenticates, and on 3.0 and 3.0.2 validates the negotiation. Rejects
   * with UNREACHABLE, TIMEOUT, AUTH_FAILED (never retried here), SMB_NEGOTIATION_FAILED,
   * SMB_INTEGRITY_FAILED, SMB_STATUS, CONNECTION_LOST or MALFORMED_PACKET.
   */
  static connect(options: SmbConnectOptions): Promise<SmbClient> {
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
      return Promise.reject(
        new SmbConfigError(`an SMB connect needs a positive timeoutMs, not ${options.timeoutMs}`),
      );
    }
    const port = options.port ?? 445;
    const account = accountName(options.credentials);
    const timeout = new SmbTimeoutError(
      `SMB connect to ${options.host} as ${account} did not finish within ${options.timeoutMs} ms`,
    );
    let opened: SmbConnection | undefined;
    return withDeadline<SmbClient>(
      {
        ms: options.timeoutMs,
        timeout,
        signal: options.signal,
        dispose: (client) => void client.close({ timeoutMs: 2_000 }),
      },
      async (stop) => {
        stop.addEventListener("abort", () => opened?.destroy(stop.reason as Error), { once: true });
        const budget = new Budget({ timeoutMs: options.timeoutMs, signal: stop });
        try {
          const conn = await SmbConnection.open({
            host: options.host,
            port,
            socket: options.socket,
            ...budget.next(),
          });
          opened = conn;
          const negotiated = await negotiate(
            conn,
            {
              minDialect: options.dialects?.min,
              maxDialect: options.dialects?.max,
              requireSigning: options.requireSigning ?? true,
            },
            budget.next(),
          );
          const session = await setupSession(
            conn,
            negotiated,
            { credentials: options.credentials, encrypt: options.encrypt ?? false },
            budget.next(),
          );
          const client = new SmbClient(conn, negotiated, session);
          if (negotiated.dialect === Dialect.SMB_3_0 || negotiated.dialect === Dialect.SMB_3_0_2) {
            await validateNegotiate(client.context(), negotiated, budget);
          }
          return client;
        } catch (err) {
          opened?.destroy();
          throw err;
        }
      },
    );
  }

  /** Connects to a share: "ADMIN$", "C$", "IPC$". */
  async treeConnect(share: string, options: CallOptions): Promise<SmbTree> {
    return connectTree(this.context(), share, options);
  }

  /** LOGOFF, then the socket's end. Idempotent; never rejects. */
  close(options: CallOptions = { timeoutMs: 5_000 }): Promise<void> {
    this.closing ??= (async () => {
      if (this.conn.closedBy === undefined) {
        try {
          await logoff(this.conn, options);
        } catch {
          // The session is going away either way.
        }
      }
      await this.conn.end();
    })();
    return this.closing;
  }

  private context(): TreeContext {
    return {
      conn: this.conn,
      host: this.host,
      negotiated: this.negotiatedInfo,
      session: this.session,
    };
  }
}
