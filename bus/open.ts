/**
 * The one place that picks the Bus adapter: NATS when a URL is given (the NATS client is loaded
 * only then), else the in-process bus, with its state under `stateDir` when one is given.
 */
import type { Bus } from "./bus.ts";
import type { NatsSecurity } from "./nats-security.ts";

export type { NatsCredential, NatsSecurity, NatsTls } from "./nats-security.ts";

export interface OpenBusOptions {
  /** `nats://host:port` (or several, comma-separated) for a shared NATS JetStream server. */
  readonly natsUrl?: string;
  /** TLS and credentials for NATS (docs/nats.md); ignored without `natsUrl`. */
  readonly natsSecurity?: NatsSecurity;
  /** Where the in-process bus keeps its state; without it nothing survives the process. */
  readonly stateDir?: string;
}

/**
 * Opens the Bus sumac runs on.
 *
 * @example
 * const bus = await openBus({ natsUrl: process.env.SUMAC_NATS_URL, stateDir: ".sumac/state" });
 */
export async function openBus(options: OpenBusOptions = {}): Promise<Bus> {
  const url = options.natsUrl?.trim();
  if (url) {
    const { openNatsBus } = await import("./nats.ts");
    const servers = url
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    return openNatsBus({
      servers,
      ...(options.natsSecurity === undefined ? {} : { security: options.natsSecurity }),
    });
  }
  const { openMemoryBus } = await import("./memory.ts");
  return openMemoryBus(options.stateDir === undefined ? {} : { stateDir: options.stateDir });
}
