/**
 * Message security of every SOAP message in both directions, as pure functions:
 * no sockets, no XML. Each message carries a {@link SecurityHeader} (session id, sequence number,
 * nonce, timestamp, MAC); the MAC is HMAC-SHA-256 (RFC 2104) over {@link canonicalBytes}, keyed with
 * key material exported from the message's own TLS connection (RFC 8446 7.5, RFC 5705), so a
 * message cannot be moved to another connection, run or target.
 *
 * Canonical encoding, version 1. Every field is written as a 4-byte big-endian unsigned length
 * followed by exactly that many bytes, in this order:
 *
 * | # | field      | bytes                                                                     |
 * | - | ---------- | ------------------------------------------------------------------------- |
 * | 1 | label      | ASCII `sumac-message-mac-v1`                                              |
 * | 2 | direction  | ASCII `workstation-to-agent` or `agent-to-workstation`                    |
 * | 3 | operation  | UTF-8 operation name (e.g. `Install`, `InstallResponse`)                  |
 * | 4 | session id | UTF-8 session id                                                          |
 * | 5 | sequence   | 8-byte big-endian unsigned integer                                        |
 * | 6 | nonce      | the 16 bytes the base64 text decodes to                                   |
 * | 7 | timestamp  | 8-byte big-endian unsigned integer, milliseconds since the Unix epoch     |
 * | 8 | body       | the body bytes exactly as sent, no XML canonicalisation                   |
 *
 * The length prefixes make the encoding injective (no two field lists give the same bytes); the
 * label versions it; direction and operation stop a message being reflected back to its sender or
 * replayed as another operation on the same key.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import {
  BadMacError,
  FutureTimestampError,
  MalformedHeaderError,
  OutOfOrderError,
  ReplayedMessageError,
  StaleTimestampError,
  UnknownSessionError,
} from "./errors.ts";

/** Who sent a message: the MAC covers it, so a message reflected to its sender fails. */
export type Direction = "workstation-to-agent" | "agent-to-workstation";

/** The security header of one message; the SOAP layer maps it to and from a header element. */
export interface SecurityHeader {
  readonly sessionId: string;
  /** 1 for the first message of a session in one direction, then one more for each. */
  readonly sequence: number;
  /** 16 random bytes, canonical base64 (24 characters). */
  readonly nonce: string;
  /** Milliseconds since the Unix epoch, by the sender's clock. */
  readonly timestamp: number;
  /** HMAC-SHA-256 over {@link canonicalBytes}, canonical base64 (44 characters). */
  readonly mac: string;
}

/** What the MAC covers: the header's fields but the MAC, and the direction, operation and body. */
export interface MacInput extends Omit<SecurityHeader, "mac"> {
  readonly direction: Direction;
  readonly operation: string;
  readonly body: Uint8Array;
}

/** The TLS exporter label (RFC 5705 4) for the MAC key. */
export const MAC_KEY_LABEL = "EXPORTER-sumac-message-mac";
export const MAC_KEY_BYTES = 32;
export const NONCE_BYTES = 16;
/** Allowed drift of a timestamp from the sender's clock as measured at the first message. */
export const DEFAULT_MAX_SKEW_MS = 30_000;
/** Allowed offset between the two clocks at the first message: only an absurd one is refused. */
export const DEFAULT_MAX_OFFSET_MS = 24 * 3_600_000;
/** Nonces each verifier remembers (the latest); older replays fail on their sequence. */
export const DEFAULT_MAX_NONCES = 1024;

const LABEL = Buffer.from("sumac-message-mac-v1", "ascii");
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;
const OPERATION = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const HEADER_FIELDS = ["mac", "nonce", "sequence", "sessionId", "timestamp"];

/** The exact bytes the MAC is computed over; see the module comment for the layout. */
export function canonicalBytes(input: MacInput): Buffer {
  const fields = [
    LABEL,
    Buffer.from(input.direction, "ascii"),
    Buffer.from(input.operation, "utf8"),
    Buffer.from(input.sessionId, "utf8"),
    uint64(input.sequence),
    Buffer.from(input.nonce, "base64"),
    uint64(input.timestamp),
    input.body,
  ];
  const out = Buffer.alloc(fields.reduce((n, f) => n + 4 + f.byteLength, 0));
  let at = 0;
  for (const field of fields) {
    at = out.writeUInt32BE(field.byteLength, at);
    out.set(field, at);
    at += field.byteLength;
  }
  return out;
}

/** HMAC-SHA-256 of {@link canonicalBytes} under `key`, as raw bytes. */
export function computeMac(key: Uint8Array, input: MacInput): Buffer {
  return createHmac("sha256", key).update(canonicalBytes(input)).digest();
}

/** Options of a {@link Signer}: `direction` is the direction of the messages it signs. */
export interface SignerOptions {
  readonly sessionId: string;
  readonly key: Uint8Array;
  readonly direction: Direction;
  readonly now?: () => number;
}

/**
 * The sending half of a session in one direction: numbers messages from 1, draws a fresh nonce for
 * each, stamps the injected clock and MACs.
 *
 * @example
 * const signer = new Signer({ sessionId, key, direction: "workstation-to-agent" });
 * const header = signer.sign("Install", bodyBytes);
 */
export class Signer {
  readonly #options: SignerOptions;
  #sequence = 0;

  constructor(options: SignerOptions) {
    checkSessionOptions(options.sessionId, options.key);
    this.#options = { ...options };
  }

  /** Makes the header of the next message for `operation` with `body`. */
  sign(operation: string, body: Uint8Array): SecurityHeader {
    if (!OPERATION.test(operation))
      throw new TypeError(`invalid operation name: ${JSON.stringify(operation)}`);
    const { sessionId, key, direction, now = Date.now } = this.#options;
    const nonce = randomBytes(NONCE_BYTES).toString("base64");
    const fields = { sessionId, sequence: ++this.#sequence, nonce, timestamp: now() };
    const mac = computeMac(key, { ...fields, direction, operation, body });
    return { ...fields, mac: mac.toString("base64") };
  }
}

/** Options of a {@link Verifier}. */
export interface VerifierOptions {
  readonly sessionId: string;
  /** {@link MAC_KEY_BYTES} bytes from {@link exportMacKey} on this connection. */
  readonly key: Uint8Array;
  /** The direction of the messages this verifier receives. */
  readonly direction: Direction;
  /**
   * Allowed distance, each way, of a timestamp from where the sender's clock should be: the
   * receiver's clock plus the offset measured at the session's first message. Default 30 s.
   */
  readonly maxSkewMs?: number;
  /**
   * Allowed offset between the two clocks at the session's first message, each way: only a clock
   * absurdly far off is refused. Default {@link DEFAULT_MAX_OFFSET_MS}.
   */
  readonly maxOffsetMs?: number;
  /** Nonces remembered, the latest ones; default {@link DEFAULT_MAX_NONCES}. */
  readonly maxNonces?: number;
  /** The receiver's clock, milliseconds since the epoch; default `Date.now`. */
  readonly now?: () => number;
}

/**
 * The receiving half of one session in one direction. {@link Verifier.verify} checks, in this
 * order, and throws the first failure: header shape and sizes (MALFORMED_HEADER); session
 * (UNKNOWN_SESSION); MAC in constant time (BAD_MAC); timestamp (STALE_TIMESTAMP,
 * FUTURE_TIMESTAMP); nonce unseen (REPLAYED); sequence exactly one more than the last accepted
 * (OUT_OF_ORDER). The MAC comes before anything stateful, so unauthenticated bytes never change the
 * state; a rejected message changes nothing.
 *
 * Clocks: the two ends' clocks need not agree. The first accepted message of the session (Hello,
 * in each direction) measures the offset between the sender's clock and the receiver's (refused
 * only beyond `maxOffsetMs`, a clock absurdly far off); every later timestamp is judged against the
 * receiver's clock plus that offset, within `maxSkewMs` each way. Replay protection needs no clock:
 * the sequence must grow by exactly one, so a message seen before can never pass again, and the
 * latest `maxNonces` nonces are remembered on top, so a replay of a recent message is named
 * REPLAYED (an older one fails as OUT_OF_ORDER). Memory is bounded by `maxNonces`.
 */
export class Verifier {
  readonly #sessionId: string;
  readonly #key: Uint8Array;
  readonly #direction: Direction;
  readonly #maxSkewMs: number;
  readonly #maxOffsetMs: number;
  readonly #maxNonces: number;
  readonly #now: () => number;
  /** The latest accepted nonces, oldest first. */
  readonly #nonces = new Set<string>();
  /** Sender's clock minus the receiver's, measured at the first accepted message. */
  #offsetMs: number | undefined;
  #lastSequence = 0;
  #closed = false;

  constructor(options: VerifierOptions) {
    checkSessionOptions(options.sessionId, options.key);
    this.#sessionId = options.sessionId;
    this.#key = options.key;
    this.#direction = options.direction;
    this.#maxSkewMs = nonNegative(options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS, "maxSkewMs");
    this.#maxOffsetMs = nonNegative(options.maxOffsetMs ?? DEFAULT_MAX_OFFSET_MS, "maxOffsetMs");
    this.#maxNonces = nonNegative(options.maxNonces ?? DEFAULT_MAX_NONCES, "maxNonces");
    this.#now = options.now ?? Date.now;
  }

  /** How many nonces are remembered now (for tests and metrics). */
  get nonceCount(): number {
    return this.#nonces.size;
  }

  /**
   * The sender's clock minus the receiver's, in ms, as measured at the session's first accepted
   * message; undefined before it.
   */
  get offsetMs(): number | undefined {
    return this.#offsetMs;
  }

  /** Ends the session: every later message is UNKNOWN_SESSION. */
  close(): void {
    this.#closed = true;
    this.#nonces.clear();
  }

  /**
   * Verifies one received message and, when it passes, records its nonce and sequence (and, for
   * the first, the clocks' offset). `header` is untrusted (straight from the parsed XML), hence
   * `unknown`.
   *
   * @throws a `MessageSecurityError` subclass with a stable `code` and `retryable: false`.
   */
  verify(header: unknown, operation: string, body: Uint8Array): SecurityHeader {
    const h = checkShape(header);
    if (!OPERATION.test(operation))
      throw new MalformedHeaderError(`invalid operation name: ${JSON.stringify(operation)}`);
    if (this.#closed || h.sessionId !== this.#sessionId)
      throw new UnknownSessionError(`unknown session ${h.sessionId}`);

    const expected = computeMac(this.#key, { ...h, direction: this.#direction, operation, body });
    if (!timingSafeEqual(expected, Buffer.from(h.mac, "base64"))) throw new BadMacError("MAC does not match");

    const now = this.#now();
    const measured = h.timestamp - now;
    if (this.#offsetMs === undefined) {
      if (measured < -this.#maxOffsetMs)
        throw new StaleTimestampError(
          `first message's timestamp ${-measured} ms behind this clock (over ${this.#maxOffsetMs} ms)`,
        );
      if (measured > this.#maxOffsetMs)
        throw new FutureTimestampError(
          `first message's timestamp ${measured} ms ahead of this clock (over ${this.#maxOffsetMs} ms)`,
        );
    } else {
      const drift = measured - this.#offsetMs;
      if (drift < -this.#maxSkewMs)
        throw new StaleTimestampError(
          `timestamp ${-drift} ms older than the sender's clock (offset ${this.#offsetMs} ms, measured at the first message)`,
        );
      if (drift > this.#maxSkewMs)
        throw new FutureTimestampError(
          `timestamp ${drift} ms ahead of the sender's clock (offset ${this.#offsetMs} ms, measured at the first message)`,
        );
    }

    if (this.#nonces.has(h.nonce)) throw new ReplayedMessageError(`nonce ${h.nonce} already seen`);
    if (h.sequence !== this.#lastSequence + 1)
      throw new OutOfOrderError(`sequence ${h.sequence}, expected ${this.#lastSequence + 1}`);

    this.#lastSequence = h.sequence;
    this.#offsetMs ??= measured;
    this.#nonces.add(h.nonce);
    // Sets iterate in insertion order: the first is the oldest. A replay of a forgotten nonce
    // still fails, as OUT_OF_ORDER: its sequence is behind.
    if (this.#nonces.size > this.#maxNonces) {
      const oldest = this.#nonces.values().next();
      if (oldest.done !== true) this.#nonces.delete(oldest.value);
    }
    return h;
  }
}

/** The part of a `TLSSocket` that {@link exportMacKey} uses (ports and adapters: tests need no socket). */
export interface KeyingMaterialSource {
  getProtocol(): string | null;
  exportKeyingMaterial(length: number, label: string, context?: Buffer): Buffer;
}

/**
 * Derives the session's MAC key from its TLS connection: the TLS 1.3 exporter (RFC 8446 7.5) gives
 * both ends of one connection the same bytes, and any other connection different ones. Call it once
 * the handshake is done (`secureConnect` on the client, `secureConnection` on the server); a
 * kept-alive connection keeps one key, a reconnection needs a new session. `context` binds the key to
 * the run and target, e.g. `${runId}/${targetId}`.
 */
export function exportMacKey(socket: KeyingMaterialSource, context: string): Buffer {
  // TLS 1.2's exporter is only safe with extended master secret (RFC 7627); sumac speaks 1.3 only.
  if (socket.getProtocol() !== "TLSv1.3")
    throw new TypeError(`message keys need TLS 1.3, got ${socket.getProtocol()}`);
  return socket.exportKeyingMaterial(MAC_KEY_BYTES, MAC_KEY_LABEL, Buffer.from(context, "utf8"));
}

function checkShape(header: unknown): SecurityHeader {
  if (typeof header !== "object" || header === null || Array.isArray(header))
    throw new MalformedHeaderError("security header missing or not an object");
  const keys = Object.keys(header).sort();
  if (keys.join() !== HEADER_FIELDS.join())
    throw new MalformedHeaderError(`security header fields: ${keys.join(",")}`);
  const h = header as Record<string, unknown>;
  if (typeof h.sessionId !== "string" || !SESSION_ID.test(h.sessionId))
    throw new MalformedHeaderError("sessionId must be 1 to 64 characters of [A-Za-z0-9_-]");
  if (typeof h.sequence !== "number" || !Number.isSafeInteger(h.sequence) || h.sequence < 1)
    throw new MalformedHeaderError("sequence must be a positive safe integer");
  if (typeof h.timestamp !== "number" || !Number.isSafeInteger(h.timestamp) || h.timestamp < 0)
    throw new MalformedHeaderError("timestamp must be a non-negative safe integer");
  if (!isCanonicalBase64(h.nonce, NONCE_BYTES))
    throw new MalformedHeaderError("nonce must be 16 bytes in base64");
  if (!isCanonicalBase64(h.mac, 32)) throw new MalformedHeaderError("mac must be 32 bytes in base64");
  return { sessionId: h.sessionId, sequence: h.sequence, nonce: h.nonce, timestamp: h.timestamp, mac: h.mac };
}

/**
 * Base64 decoding ignores stray characters and spare low bits, so two spellings can decode to the
 * same bytes; requiring the one canonical spelling keeps the nonce memory keyed on the bytes.
 */
function isCanonicalBase64(value: unknown, bytes: number): value is string {
  if (typeof value !== "string" || value.length !== 4 * Math.ceil(bytes / 3)) return false;
  const decoded = Buffer.from(value, "base64");
  return decoded.byteLength === bytes && decoded.toString("base64") === value;
}

function nonNegative(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new TypeError(`${name} must be a non-negative integer`);
  return value;
}

function checkSessionOptions(sessionId: string, key: Uint8Array): void {
  if (!SESSION_ID.test(sessionId))
    throw new TypeError("sessionId must be 1 to 64 characters of [A-Za-z0-9_-]");
  if (key.byteLength !== MAC_KEY_BYTES) throw new TypeError(`the MAC key must be ${MAC_KEY_BYTES} bytes`);
}

function uint64(value: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(value));
  return out;
}
