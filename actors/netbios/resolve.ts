/**
 * A target's host to an address, as HP SUM finds Windows servers: an IP literal as it is, a name by
 * DNS, and a name DNS does not know by NetBIOS (a WINS server if the job names one, then broadcast
 * on the subnets this machine is on, the order of Windows' H-node, RFC 1001 10 and [MS-NBTE]).
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import { withDeadline } from "../../base/deadline.ts";
import { isSumacError } from "../../base/errors.ts";
import { NetbiosConfigError, NetbiosNameNotFoundError, NetbiosUnreachableError } from "./errors.ts";
import { isNetbiosName } from "./name.ts";
import { localBroadcastAddresses, queryName } from "./name-query.ts";

/** How names are resolved: the job's `options.netbios`. */
export type NetbiosMode = "auto" | "always" | "never";

export interface ResolveOptions {
  /** auto: DNS, then NetBIOS for a name DNS does not know; always: NetBIOS only; never: DNS only. */
  readonly mode: NetbiosMode;
  /** DNS (default node:dns's lookup, the system resolver: /etc/hosts, then DNS). */
  readonly lookup?: (host: string) => Promise<string>;
  /** The NetBIOS query (tests give a fake). */
  readonly query?: typeof queryName;
  /** A WINS (NBNS) server asked first, by unicast. */
  readonly nameServer?: string;
  /** The broadcast address to ask on (default: every IPv4 interface's, at once). */
  readonly broadcast?: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export interface ResolvedHost {
  readonly address: string;
  readonly via: "literal" | "dns" | "netbios";
}

/**
 * The system resolver's codes for "this name has no address" (getaddrinfo's EAI_NONAME and
 * EAI_NODATA, which Node reports as ENOTFOUND and ENODATA) and "no DNS server answered"
 * (EAI_AGAIN): on a LAN without DNS for its Windows hosts, the cases NetBIOS is there for. Other
 * failures (EAI_FAIL, EAI_MEMORY, a bad name) are not retried by NetBIOS.
 */
const DNS_DOES_NOT_KNOW: ReadonlySet<string> = new Set([
  "ENOTFOUND",
  "ENODATA",
  "EAI_NONAME",
  "EAI_NODATA",
  "EAI_AGAIN",
]);

const defaultLookup = async (host: string): Promise<string> => (await dnsLookup(host)).address;

class DnsSilence extends Error {
  override readonly name = "DnsSilence";
}

/** DNS's answer, or why it has none: `known` false when NetBIOS may know better. */
async function askDns(
  host: string,
  options: ResolveOptions,
  ms: number,
): Promise<{ address: string } | { why: string; known: boolean; cause: unknown }> {
  const lookup = options.lookup ?? defaultLookup;
  try {
    const silence = new DnsSilence(`no DNS answer within ${ms} ms`);
    return {
      address: await withDeadline({ ms, timeout: silence, signal: options.signal }, () => lookup(host)),
    };
  } catch (err) {
    if (options.signal?.aborted === true) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof DnsSilence) return { why: err.message, known: false, cause: err };
    const why = `DNS: ${code ?? (err instanceof Error ? err.message : String(err))}`;
    return { why, known: code === undefined || !DNS_DOES_NOT_KNOW.has(code), cause: err };
  }
}

/** Asks the WINS server, then broadcasts (on each interface at once), within one deadline. */
async function askNetbios(host: string, options: ResolveOptions, ms: number): Promise<string> {
  const query = options.query ?? queryName;
  const started = performance.now();
  const left = (): number => Math.max(1, ms - (performance.now() - started));
  const failures: string[] = [];
  const broadcasts = options.broadcast !== undefined ? [options.broadcast] : localBroadcastAddresses();
  // With both, the server gets half the time: a silent WINS server must leave room for the broadcast.
  if (options.nameServer !== undefined) {
    const share = broadcasts.length > 0 ? ms / 2 : ms;
    try {
      const [address] = await query(host, {
        server: options.nameServer,
        timeoutMs: share,
        signal: options.signal,
      });
      if (address !== undefined) return address;
    } catch (err) {
      if (!isSumacError(err) || err.code !== "NETBIOS_NAME_NOT_FOUND") throw err;
      failures.push(err.message);
    }
  }
  if (broadcasts.length === 0 && failures.length === 0) {
    throw new NetbiosConfigError(
      `NetBIOS name ${host}: no WINS server given and no IPv4 interface to broadcast on`,
    );
  }
  if (broadcasts.length > 0) {
    const timeoutMs = left();
    try {
      const answers = broadcasts.map((broadcast) =>
        query(host, { broadcast, timeoutMs, signal: options.signal }),
      );
      const [address] = await Promise.any(answers);
      if (address !== undefined) return address;
    } catch (err) {
      const all = err instanceof AggregateError ? (err.errors as unknown[]) : [err];
      for (const e of all) {
        if (!isSumacError(e) || e.code !== "NETBIOS_NAME_NOT_FOUND") throw e;
        failures.push(e.message);
      }
    }
  }
  throw new NetbiosNameNotFoundError(failures.join("; "));
}

/**
 * The address to reach `host` at, and how it was found. In `auto`, DNS gets half the deadline when
 * NetBIOS may follow (a resolver that hangs must leave it time), and NetBIOS is asked only when
 * DNS does not know the name and the name is a NetBIOS name (no dots: see netbiosNameProblem).
 *
 * Rejects with NetbiosNameNotFoundError when NetBIOS was asked and found nothing (its message says
 * what DNS said too), and with an UNREACHABLE-coded NetbiosUnreachableError when only DNS was.
 *
 * @example
 * const { address, via } = await resolveHost("WINTARGET", { mode: "auto", timeoutMs: 5000 });
 */
export async function resolveHost(host: string, options: ResolveOptions): Promise<ResolvedHost> {
  if (isIP(host) !== 0) return { address: host, via: "literal" };
  const netbiosName = isNetbiosName(host);
  if (options.mode === "always") {
    if (!netbiosName)
      throw new NetbiosConfigError(`${JSON.stringify(host)} is not a NetBIOS name (netbios: always)`);
    return { address: await askNetbios(host, options, options.timeoutMs), via: "netbios" };
  }
  const fallback = options.mode === "auto" && netbiosName;
  const started = performance.now();
  const dns = await askDns(host, options, fallback ? options.timeoutMs / 2 : options.timeoutMs);
  if ("address" in dns) return { address: dns.address, via: "dns" };
  if (!fallback || dns.known) {
    const why =
      options.mode === "auto" && !netbiosName ? " (not a NetBIOS name, so not asked of NetBIOS)" : "";
    throw new NetbiosUnreachableError(`${host} not resolved: ${dns.why}${why}`, { cause: dns.cause });
  }
  const left = Math.max(1, options.timeoutMs - (performance.now() - started));
  try {
    return { address: await askNetbios(host, options, left), via: "netbios" };
  } catch (err) {
    if (!(err instanceof NetbiosNameNotFoundError)) throw err;
    throw new NetbiosNameNotFoundError(`${host} not resolved: ${dns.why}; NetBIOS: ${err.message}`, {
      cause: err,
    });
  }
}
