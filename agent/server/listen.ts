/**
 * Binding the agent's listener. This is the one place that chooses the port, kept small so the
 * port strategy of `agent/protocol/port-binding.ts` (base 62286, next free, random window) can replace it.
 */
import type { Server } from "node:net";

/** Binds `server` and resolves with the port it listens on. */
export type BindListener = (server: Server) => Promise<number>;

/** Binds exactly `{ host, port }` (port 0: any free port). */
export function listenOn(address: { readonly host: string; readonly port: number }): BindListener {
  return (server) =>
    new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      server.once("error", onError);
      server.listen({ host: address.host, port: address.port, exclusive: true }, () => {
        server.off("error", onError);
        const bound = server.address();
        if (bound === null || typeof bound === "string") reject(new Error("not bound to a TCP port"));
        else resolve(bound.port);
      });
    });
}
