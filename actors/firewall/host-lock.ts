/**
 * The host-wide lock that every sumac process holds while it lists and then changes the `inet
 * sumac` table (docs/firewall.md "One host, several sumac processes"): the `flock(2)` lock of
 * base/host-lock.ts on sumac's own file, failing with the firewall's errors.
 */
import { createHostLock, type HostLock, type HostLockFailure } from "../../base/host-lock.ts";
import { FirewallError, type FirewallErrorCode } from "./firewall.ts";

export type { HostLock, Release } from "../../base/host-lock.ts";

/** Where the nftables backend's lock lives unless told otherwise (root's, like the table). */
export const DEFAULT_NFT_LOCK_PATH = "/run/sumac/nft.lock";
/** How long a call waits for the lock: a holder runs at most two nft processes of 10 s each. */
export const DEFAULT_LOCK_WAIT_MS = 30_000;

const CODES: Readonly<Record<HostLockFailure, FirewallErrorCode>> = {
  "tool-missing": "FIREWALL_TOOL_MISSING",
  "not-permitted": "FIREWALL_NOT_PERMITTED",
  failed: "FIREWALL_TOOL_FAILED",
  timeout: "TIMEOUT",
};

/**
 * A lock on `path` (its directory made when missing, mode 0755; the file mode 0600, never through
 * a symbolic link). Rejects with `TIMEOUT` past its deadline, with the signal's reason when
 * aborted, `FIREWALL_TOOL_MISSING` without a `flock` program, `FIREWALL_NOT_PERMITTED` when the
 * lock file cannot be opened for lack of rights.
 */
export function createFlockLock(
  options: { readonly path?: string; readonly waitMs?: number } = {},
): HostLock {
  return createHostLock({
    path: options.path ?? DEFAULT_NFT_LOCK_PATH,
    waitMs: options.waitMs ?? DEFAULT_LOCK_WAIT_MS,
    name: "the firewall lock",
    heldBy: "another sumac changing the table",
    needs: "sumac's nftables backend locks the host's table with it",
    error: (failure, message, opts) => new FirewallError(CODES[failure], message, opts),
  });
}
