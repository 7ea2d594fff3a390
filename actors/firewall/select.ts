/**
 * Choosing the firewall backend (`firewall:` in the configuration): `auto` picks Windows Firewall
 * on Windows, nftables on Linux when `nft` runs and is permitted (probed with a harmless
 * `nft list tables` under a deadline), and none otherwise; the log says what was chosen and why.
 */
import { toolFailure } from "./command.ts";
import { createCommandRunner, type CommandRunner } from "../../base/command.ts";
import type { Firewall } from "./firewall.ts";
import { createNetshFirewall } from "./netsh.ts";
import { createNftablesFirewall, NFT_PROBE_ARGV } from "./nftables.ts";
import { createNoneFirewall, type FirewallLog } from "./none.ts";

export type FirewallMode = "auto" | "nftables" | "netsh" | "none";

export interface SelectOptions {
  readonly mode: FirewallMode;
  /** The lease domain whose rules the backend opens and sweeps (`LeaseService.domain`). */
  readonly owner: string;
  /** Defaults to `process.platform`. */
  readonly platform?: NodeJS.Platform;
  readonly log: FirewallLog;
  /** Runs the tools (the probe too); defaults to real processes with a 10 s deadline. */
  readonly run?: CommandRunner;
  readonly signal?: AbortSignal;
}

const PROBE_NOT_PERMITTED = /Operation not permitted|Permission denied/;

/**
 * The firewall to use. With `mode: "nftables"` an unusable nft is an error (FirewallError with
 * `FIREWALL_TOOL_MISSING`, `FIREWALL_NOT_PERMITTED`, `TIMEOUT` or `FIREWALL_TOOL_FAILED`): what was asked for explicitly must
 * not quietly become none. `netsh` is not probed: its listing needs no elevation, so a probe would
 * not tell whether rules can be added; the first open says so.
 *
 * @example
 * const firewall = await selectFirewall({ mode: config.firewall, owner: leases.domain, log: (m) => log.info(m) });
 */
export async function selectFirewall(options: SelectOptions): Promise<Firewall> {
  const { mode, log } = options;
  const platform = options.platform ?? process.platform;
  const run = options.run ?? createCommandRunner();
  const chosen = (firewall: Firewall, why: string): Firewall => {
    log(`firewall: using ${firewall.backend} (${why})`);
    return firewall;
  };
  switch (mode) {
    case "none":
      return chosen(createNoneFirewall({ log }), "configured; ports are not registered");
    case "netsh":
      return chosen(createNetshFirewall({ run, owner: options.owner }), "configured");
    case "nftables": {
      const failure = await probeNft(run, options.signal);
      if (failure !== undefined) throw failure;
      return chosen(
        createNftablesFirewall({ run, owner: options.owner }),
        "configured; nft list tables works",
      );
    }
    case "auto":
      break;
  }
  if (platform === "win32")
    return chosen(createNetshFirewall({ run, owner: options.owner }), "auto: platform is win32");
  if (platform !== "linux")
    return chosen(createNoneFirewall({ log }), `auto: no backend for platform ${platform}`);
  const failure = await probeNft(run, options.signal);
  if (failure === undefined)
    return chosen(
      createNftablesFirewall({ run, owner: options.owner }),
      "auto: linux, and nft list tables works",
    );
  const hint =
    failure.code === "FIREWALL_NOT_PERMITTED"
      ? "needs root or CAP_NET_ADMIN"
      : failure.code === "FIREWALL_TOOL_MISSING"
        ? "install nftables"
        : "nft did not answer as expected";
  return chosen(createNoneFirewall({ log }), `auto: linux, but ${failure.message}; ${hint}`);
}

/** Undefined when `nft list tables` succeeds, else the error saying why not. */
async function probeNft(run: CommandRunner, signal?: AbortSignal) {
  const out = await run(NFT_PROBE_ARGV, { signal });
  if (out.exitCode === 0 && out.missing !== true) return undefined;
  return toolFailure("nft list tables", out, PROBE_NOT_PERMITTED);
}
