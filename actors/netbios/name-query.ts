/**
 * Asking the NetBIOS name service over UDP (RFC 1001 15.1.1, RFC 1002 4.2.12-4.2.18): a name query
 * to a name server (WINS, or the host itself) or to a subnet's broadcast address, and a node status
 * query to one host. A thin adapter over node:dgram; the packets are name-service-codec.ts's.
 */
import { randomInt } from "node:crypto";
import { createSocket, type RemoteInfo } from "node:dgram";
import { isIPv4 } from "node:net";
import { networkInterfaces } from "node:os";
import { endsOnce, withDeadline } from "../../base/deadline.ts";
import { MalformedPacketError } from "../wire/bytes.ts";
import { NetbiosConfigError, NetbiosNameNotFoundError, NetbiosUnreachableError } from "./errors.ts";
import { NameSuffix, netbiosNameProblem, WILDCARD_NAME, type NetbiosName } from "./name.ts";
import {
  decodeNameServicePacket,
  encodeNameServicePacket,
  type NameServicePacket,
  type NodeName,
} from "./name-service-codec.ts";

/** The name service's port (RFC 1002 4.2). */
export const NAME_SERVICE_PORT = 137;
/** Queries sent in all unless `retries` says otherwise (RFC 1002 6: BCAST_REQ_RETRY_COUNT is 3). */
const DEFAULT_TRIES = 3;
/** The shortest gap between two sends, whatever the deadline. */
const MIN_INTERVAL_MS = 50;

export interface NameQueryOptions {
  /** Ask this name server (WINS, NBNS) or host, by unicast. */
  readonly server?: string;
  /** Ask by broadcast on this address (an interface's broadcast address, e.g. 172.17.255.255). */
  readonly broadcast?: string;
  /** The name service's port there (default 137; tests use others). */
  readonly port?: number;
  /** The 16th byte asked for (default 0x20, the file server: the name SMB is reached at). */
  readonly suffix?: number;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Queries sent again when no answer came (default 2: three in all, spread over the deadline). */
  readonly retries?: number;
}

/** What a host's node status says (RFC 1002 4.2.18). */
export interface NodeStatus {
  /** The names the host has registered, each with its suffix and NAME_FLAGS. */
  readonly names: readonly NodeName[];
  /** The unit id, a MAC address (`00:00:00:00:00:00` from Samba). */
  readonly unitId: string;
}

/** Where queries go, and how an answer's source is checked. */
interface Destination {
  readonly address: string;
  readonly port: number;
  readonly broadcast: boolean;
}

/** What `accept` makes of an answer of the right transaction: a result, a failure, or keep waiting. */
type Verdict<T> = { readonly value: T } | { readonly error: Error } | undefined;

/** Sends `request` `tries` times, spread over the deadline, until `accept` settles on an answer. */
function exchange<T>(
  request: Buffer,
  to: Destination,
  accept: (answer: NameServicePacket) => Verdict<T>,
  options: { timeoutMs: number; signal?: AbortSignal | undefined; tries: number; silence: Error },
): Promise<T> {
  const transactionId = request.readUInt16BE(0);
  return withDeadline({ ms: options.timeoutMs, timeout: options.silence, signal: options.signal }, (stop) => {
    return new Promise<T>((resolve, reject) => {
      const socket = createSocket("udp4");
      let timer: NodeJS.Timeout | undefined;
      let closed = false;
      const release = (): void => {
        clearInterval(timer);
        if (closed) return;
        closed = true;
        socket.close();
      };
      const end = endsOnce(stop, reject, release);
      const where = `${to.address}:${to.port}`;
      socket.on("error", (err) =>
        end.fail(
          new NetbiosUnreachableError(`NetBIOS name service at ${where}: ${err.message}`, { cause: err }),
        ),
      );
      socket.on("message", (datagram: Buffer, from: RemoteInfo) => {
        // In unicast only the server asked may answer; a broadcast is answered by whoever holds the name.
        if (!to.broadcast && (from.address !== to.address || from.port !== to.port)) return;
        let answer: NameServicePacket;
        try {
          answer = decodeNameServicePacket(datagram);
        } catch (err) {
          if (err instanceof MalformedPacketError) return; // noise on a shared port: not ours
          throw err;
        }
        if (answer.transactionId !== transactionId) return;
        const verdict = accept(answer);
        if (verdict === undefined) return;
        if ("error" in verdict) end.fail(verdict.error);
        else if (end.succeed()) {
          release();
          resolve(verdict.value);
        }
      });
      let sent = 0;
      const send = (): void => {
        if (sent++ >= options.tries) return clearInterval(timer);
        socket.send(request, to.port, to.address, (err) => {
          if (err)
            end.fail(
              new NetbiosUnreachableError(`NetBIOS query to ${where}: ${err.message}`, { cause: err }),
            );
        });
      };
      socket.bind(0, () => {
        if (end.done) return;
        if (to.broadcast) socket.setBroadcast(true);
        send();
        const interval = Math.max(MIN_INTERVAL_MS, Math.floor(options.timeoutMs / options.tries));
        timer = setInterval(send, interval);
      });
    });
  });
}

function destination(options: NameQueryOptions): Destination {
  const port = options.port ?? NAME_SERVICE_PORT;
  if ((options.server === undefined) === (options.broadcast === undefined)) {
    throw new NetbiosConfigError(
      "a NetBIOS name query needs either a server or a broadcast address, one of them",
    );
  }
  const address = options.server ?? options.broadcast!;
  if (!isIPv4(address))
    throw new NetbiosConfigError(`NetBIOS name service address ${JSON.stringify(address)}: not IPv4`);
  return { address, port, broadcast: options.broadcast !== undefined };
}

function tries(retries: number | undefined): number {
  if (retries === undefined) return DEFAULT_TRIES;
  if (!Number.isInteger(retries) || retries < 0 || retries > 10) {
    throw new NetbiosConfigError(`NetBIOS query retries ${retries}: 0 to 10`);
  }
  return retries + 1;
}

/**
 * The IPv4 addresses that hold `name` (with suffix 0x20 unless told), asked of `server` or by
 * broadcast on `broadcast`. Rejects with NetbiosNameNotFoundError when the server says it does
 * not know the name or when nothing answers within `timeoutMs`; with the signal's reason on abort.
 *
 * @example
 * const [address] = await queryName("WINTARGET", { broadcast: "172.17.255.255", timeoutMs: 3000 });
 */
export async function queryName(name: string, options: NameQueryOptions): Promise<string[]> {
  const problem = netbiosNameProblem(name);
  if (problem !== undefined) throw new NetbiosConfigError(problem);
  const to = destination(options);
  const asked: NetbiosName = {
    name: name.toUpperCase(),
    suffix: options.suffix ?? NameSuffix.FILE_SERVER,
    scope: "",
  };
  const label = `${asked.name}<${asked.suffix.toString(16).padStart(2, "0")}>`;
  const where = to.broadcast ? `by broadcast on ${to.address}:${to.port}` : `of ${to.address}:${to.port}`;
  const n = tries(options.retries);
  const request = encodeNameServicePacket({
    kind: "name-query-request",
    transactionId: randomInt(0x10000),
    name: asked,
    broadcast: to.broadcast,
    recursionDesired: true,
  });
  const silence = new NetbiosNameNotFoundError(
    `NetBIOS name ${label} not found: no answer ${where} within ${options.timeoutMs} ms (${n} queries)`,
  );
  return exchange<string[]>(
    request,
    to,
    (answer) => {
      if (answer.kind === "negative-name-query-response") {
        // RFC 1002 5.1.1: hosts never answer a broadcast negatively; one that does is not the last word.
        if (to.broadcast) return undefined;
        const error = new NetbiosNameNotFoundError(
          `NetBIOS name ${label} not found: ${to.address}:${to.port} answered that it does not know it (RCODE ${answer.rcode})`,
        );
        return { error };
      }
      if (answer.kind !== "positive-name-query-response") return undefined;
      const addresses = [...new Set(answer.addresses.map((a) => a.address))].filter((a) => a !== "0.0.0.0");
      return addresses.length > 0 ? { value: addresses } : undefined;
    },
    { timeoutMs: options.timeoutMs, signal: options.signal, tries: n, silence },
  );
}

/**
 * The names the host at `address` has registered (a node status request for `*`, RFC 1002 4.2.17),
 * for diagnostics: is it a file server (a name with suffix 0x20), what is its real name?
 */
export async function nodeStatus(
  address: string,
  options: Pick<NameQueryOptions, "port" | "timeoutMs" | "signal" | "retries">,
): Promise<NodeStatus> {
  const to = destination({ ...options, server: address });
  const n = tries(options.retries);
  const request = encodeNameServicePacket({
    kind: "node-status-request",
    transactionId: randomInt(0x10000),
    name: WILDCARD_NAME,
  });
  const silence = new NetbiosNameNotFoundError(
    `no NetBIOS node status from ${to.address}:${to.port} within ${options.timeoutMs} ms (${n} requests)`,
  );
  return exchange<NodeStatus>(
    request,
    to,
    (answer) =>
      answer.kind === "node-status-response"
        ? { value: { names: answer.names, unitId: answer.unitId } }
        : undefined,
    { timeoutMs: options.timeoutMs, signal: options.signal, tries: n, silence },
  );
}

/**
 * The broadcast addresses of this machine's IPv4 interfaces (loopback excepted), from their
 * addresses and netmasks: where a broadcast query reaches the hosts of each attached subnet.
 */
export function localBroadcastAddresses(): string[] {
  const out = new Set<string>();
  for (const entries of Object.values(networkInterfaces())) {
    for (const e of entries ?? []) {
      if (e.family !== "IPv4" || e.internal) continue;
      const toInt = (a: string): number => a.split(".").reduce((acc, p) => (acc << 8) | Number(p), 0) >>> 0;
      const broadcast = (toInt(e.address) | ~toInt(e.netmask)) >>> 0;
      out.add([24, 16, 8, 0].map((shift) => (broadcast >>> shift) & 0xff).join("."));
    }
  }
  return [...out];
}
