/**
 * SMB2 credits and message ids (MS-SMB2 3.2.4.1.2, 3.2.5.1.4): the server grants credits in every
 * response; a request spends CreditCharge of them and as many consecutive MessageIds. A request
 * that finds too few waits, in order, until responses grant more. When nothing is in flight, no
 * response can grant any: waiting would last forever, so the request fails at once.
 */
import { SmbNoCreditsError } from "./errors.ts";

/** How many credits the client asks to hold (MS-SMB2 3.2.4.1.2 leaves the number to it). */
export const CREDIT_TARGET = 256;

/**
 * The most credits held at once. A server may grant up to 65535 in every answer, interim ones
 * included; each credit is a request the client may leave waiting on a silent server, so what a
 * hostile server grants is not taken past this (MS-SMB2 3.2.5.1.4 lets the client use fewer).
 */
export const MAX_CREDITS_HELD = 8192;

/** Bytes one credit pays for on dialects with multi-credit requests (MS-SMB2 3.1.5.2). */
const BYTES_PER_CREDIT = 65536;

/** What a request spends: its header's CreditCharge and the MessageIds it consumes. */
export interface CreditGrant {
  readonly messageId: bigint;
  /** The CreditCharge field: 0 without multi-credit (2.0.2 and before NEGOTIATE). */
  readonly creditCharge: number;
  /** Credits (and MessageIds) spent: at least 1. */
  readonly spent: number;
  /** The CreditRequest field: enough to climb back to {@link CREDIT_TARGET}. */
  readonly creditRequest: number;
}

interface Waiter {
  readonly spent: number;
  readonly charge: number;
  readonly resolve: (grant: CreditGrant) => void;
  readonly reject: (error: Error) => void;
}

/**
 * The credit window of one connection.
 *
 * @example
 * const grant = await credits.take(65536 * 4, signal); // 4 credits on 2.1+, 1 on 2.0.2
 * // send with grant.messageId, grant.creditCharge, grant.creditRequest; on the response:
 * credits.granted(header.credits);
 */
export class CreditWindow {
  private available = 1; // MS-SMB2 3.2.3: one credit before the first response
  private nextMessageId = 0n;
  private multiCredit = false;
  private readonly waiters: Waiter[] = [];
  /** Requests whose final answer is still to come (only they can grant credits). */
  private inFlight = 0;

  /** Credits held now. */
  get credits(): number {
    return this.available;
  }

  /** Requests waiting for credits. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** From NEGOTIATE on: 2.1 and later charge by payload (MS-SMB2 3.2.5.2 SupportsMultiCredit). */
  setMultiCredit(on: boolean): void {
    this.multiCredit = on;
  }

  /** The credits a request moving `payload` bytes costs. */
  chargeFor(payload: number): number {
    return this.multiCredit ? Math.max(1, Math.ceil(payload / BYTES_PER_CREDIT)) : 0;
  }

  /**
   * Takes credits for a request moving `payload` bytes (written, read, or transacted at most),
   * waiting for them in order; the request then counts as in flight until {@link settled}.
   * Rejects with SMB_NO_CREDITS when none can come.
   */
  take(payload: number, signal?: AbortSignal): Promise<CreditGrant> {
    const charge = this.chargeFor(payload);
    const spent = Math.max(1, charge);
    if (this.waiters.length === 0 && this.available >= spent)
      return Promise.resolve(this.spend(spent, charge));
    if (this.inFlight === 0) return Promise.reject(this.noCredits(spent));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { spent, charge, resolve, reject };
      const onAbort = (): void => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
        this.pump(); // the head may have left
      };
      if (signal?.aborted === true) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push({
        spent,
        charge,
        resolve: (grant) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(grant);
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      });
    });
  }

  /** Credits a response granted (interim ones included: MS-SMB2 3.2.5.1.4). */
  granted(credits: number): void {
    this.available = Math.min(this.available + credits, MAX_CREDITS_HELD);
    this.pump();
  }

  /** A request's final answer came, or will never come (the connection is gone). */
  settled(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    this.pump();
  }

  /** Fails every waiter with `error` (the connection is gone). */
  failAll(error: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(error);
  }

  private spend(spent: number, charge: number): CreditGrant {
    const messageId = this.nextMessageId;
    this.nextMessageId += BigInt(spent);
    this.available -= spent;
    this.inFlight++;
    const creditRequest = Math.max(spent, CREDIT_TARGET - this.available);
    return { messageId, creditCharge: charge, spent, creditRequest };
  }

  private pump(): void {
    for (;;) {
      const head = this.waiters[0];
      if (head === undefined) return;
      if (this.available >= head.spent) {
        this.waiters.shift();
        head.resolve(this.spend(head.spent, head.charge));
        continue;
      }
      if (this.inFlight === 0) {
        // Nothing left that could grant: every waiter would wait for ever.
        for (const w of this.waiters.splice(0)) w.reject(this.noCredits(w.spent));
      }
      return;
    }
  }

  private noCredits(spent: number): SmbNoCreditsError {
    return new SmbNoCreditsError(
      `the server granted no credits: ${this.available} held, ${spent} needed, none to come`,
    );
  }
}
