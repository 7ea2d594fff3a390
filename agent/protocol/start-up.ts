/**
 * The agent's start-up dialogue, one JSON document per line, over the push channel that started it
 * (agent/server/main.ts is the agent's side). On Linux it runs on the agent's stdin and stdout; on
 * Windows, where the service control manager starts the agent with no channel at all, over files
 * beside the bundle (`--dialogue=files`, files-dialogue.ts):
 *
 * 1. in: the configuration, {@link AgentConfigDocument};
 * 2. out: `{"event":"publicKey","publicKeyPem":...}` (with `"pid":N` over files): the agent made
 *    its key pair, whose private half never leaves the target;
 * 3. in: {@link CertificateLine}: the leaves the workstation issued on that key with the run's
 *    CA, a server leaf for the agent's listener and a client leaf for its callbacks;
 * 4. out: `{"event":"listening","port":N,"busy":[...],"fingerprint256":...}`, later
 *    `{"event":"stopped","reason":...,"removed":bool}`, or at any point
 *    `{"event":"failed","message":...}` ({@link AgentEvent}).
 *
 * Trust: the agent accepts the run CA's certificates only, and of the clients only the one whose
 * SHA-256 fingerprint is `workstationFingerprint256` (any other, even of the same CA, is refused
 * once its handshake is done, before anything is read); it calls back only to the listener whose
 * certificate is `callback.fingerprint256`. The workstation pins the agent's two leaves in turn.
 */
import type { PortStrategy } from "./port-binding.ts";

/** What the agent says during and after its start-up, one line each. */
export type AgentEvent =
  | {
      readonly event: "publicKey";
      readonly publicKeyPem: string;
      /** Over files only: the agent's process id, for a forced stop (`taskkill /PID`). */
      readonly pid?: number;
    }
  | {
      readonly event: "listening";
      readonly port: number;
      /** The ports found taken on the way to `port`. */
      readonly busy: readonly number[];
      readonly fingerprint256: string;
    }
  | {
      readonly event: "stopped";
      readonly reason: string;
      /** Whether every program file and the staging directory are gone. */
      readonly removed: boolean;
    }
  | { readonly event: "failed"; readonly message: string };

/** The third line of the dialogue: the agent's leaves, both on the key it made. */
export interface CertificateLine {
  /** serverAuth only: the certificate of the agent's TLS listener. */
  readonly certPem: string;
  /** clientAuth only: the certificate the agent presents to the callback listener; with `callback`. */
  readonly callbackCertPem?: string;
}

/** Where the agent sends its callbacks: the workstation's listener, its certificate pinned. */
export interface CallbackTarget {
  readonly host: string;
  readonly port: number;
  /** SHA-256 fingerprint of the listener's certificate (AB:CD:…): pinned. */
  readonly fingerprint256: string;
  /**
   * Heartbeat period (agent/server/workstation-watch.ts); default 15 s. The first heartbeat goes as
   * soon as the agent listens: the workstation waits for it to know callbacks get through.
   */
  readonly heartbeatMs?: number;
  /**
   * Nothing from the workstation for this long (no callback acknowledged, no authenticated
   * request received or in progress): it is gone and the agent stops; default 60 s.
   */
  readonly lostAfterMs?: number;
}

/**
 * The configuration the workstation writes as the first line. It holds only public material (the
 * run CA's certificate) and places; the agent checks it and fills in defaults
 * (agent/server/config.ts).
 */
export interface AgentConfigDocument {
  readonly runId: string;
  readonly targetId: string;
  readonly caCertPem: string;
  /**
   * SHA-256 fingerprint (AB:CD:…) of the workstation's client certificate: the one client the agent
   * answers.
   */
  readonly workstationFingerprint256: string;
  /**
   * Absolute, as are `programFiles` and `logDir`; over files (Windows) each may instead be relative,
   * with `/` separators, and the agent resolves it against its bundle's directory.
   */
  readonly stagingDir: string;
  /** The agent's program files, removed at stop. */
  readonly programFiles: readonly string[];
  /** Default `/var/log/sumac/<runId>`. */
  readonly logDir?: string;
  /** No authenticated request for this long and the agent stops; default 10 minutes. */
  readonly idleTimeoutMs?: number;
  /**
   * Where to listen. `port` binds exactly that port (0: any free one); without it the agent binds
   * `basePort` (default 62286) or the next free port, or with `strategy: "random"` a random free
   * port in [basePort, basePort + window).
   */
  readonly listen: {
    readonly host: string;
    readonly port?: number;
    readonly basePort?: number;
    readonly strategy?: PortStrategy;
    readonly window?: number;
  };
  /**
   * The workstation's address as the target sees it. With it, and `firewall` not `none`, the agent
   * admits that address to its port while it runs, in nftables or Windows Firewall.
   */
  readonly workstationAddress?: string;
  /**
   * Default `nft`; `netsh` on Windows (agent/server/firewall-netsh.ts), which also sweeps the
   * rules of runs whose agent is gone.
   */
  readonly firewall?: "nft" | "netsh" | "none";
  readonly maxBodyBytes?: number;
  readonly limits?: Readonly<Record<string, number>>;
  /** The workstation's callback listener; optional. */
  readonly callback?: CallbackTarget;
}
