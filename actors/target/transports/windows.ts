/**
 * Windows servers over SMB, composed in one place: a session is one SMB connection (actors/smb,
 * docs/smb.md; signed always, encrypted when asked) to the target, found by DNS or NetBIOS, logged
 * in as an administrator; its file channel is `ADMIN$` and it has no shell (nothing a step needs
 * runs outside the agent). The agent's files are Node for Windows and the bundle pushed there
 * (windows/agent-files.ts); the agent is started as a service through the service control manager
 * over `IPC$` and talked to through files while it starts (windows/agent-service.ts).
 */
import { openSmbFiles } from "../../smb/connect.ts";
import type { NetbiosMode } from "../../netbios/resolve.ts";
import type { RemoteShell } from "../../remote.ts";
import { TransportUnsupportedError } from "../errors.ts";
import type { SmbAccess, StepLog, TargetTransport } from "../transport.ts";
import { windowsAgentFiles, type WindowsFilesDeps } from "../windows/agent-files.ts";
import { windowsAgentLauncher } from "../windows/agent-service.ts";
import { linkWindows, windowsLinkOf } from "../windows/link.ts";
import { cleanWindowsTarget } from "../windows/clean.ts";
import { localAddressTowards } from "./ssh.ts";

export interface WindowsTransportDeps {
  /** Each target's place in the job: its services are named by it. */
  readonly targetIndex: ReadonlyMap<string, number>;
  /** Job options `netbios` and `netbiosServer`. */
  readonly netbios: NetbiosMode;
  readonly netbiosServer?: string;
  /** Job option `smb`: encryption, and the run root (`/ADMIN$/Temp/sumac`). */
  readonly smb: { readonly encrypt: boolean; readonly runRoot: string };
  readonly agentFiles: Omit<WindowsFilesDeps, "log">;
  readonly log: StepLog;
  /** Deadline of resolution, connect, negotiation and logon; default 30 s. */
  readonly connectTimeoutMs?: number;
}

const CONNECT_MS = 30_000;
/** Dialect revisions as people name them (MS-SMB2 2.2.3). */
const DIALECTS: Readonly<Record<number, string>> = {
  0x0202: "2.0.2",
  0x0210: "2.1",
  0x0300: "3.0",
  0x0302: "3.0.2",
  0x0311: "3.1.1",
};

/** Windows targets have no shell: a step that asks for one is told so. */
const noShell: RemoteShell = {
  exec: () => Promise.reject(new TransportUnsupportedError("a Windows target has no shell over SMB")),
  spawn: () => Promise.reject(new TransportUnsupportedError("a Windows target has no shell over SMB")),
  close: () => Promise.resolve(),
};

export function windowsTransport(deps: WindowsTransportDeps): TargetTransport<SmbAccess> {
  return {
    async open(target, signal) {
      const index = deps.targetIndex.get(target.id);
      if (index === undefined) throw new TransportUnsupportedError(`the job has no target ${target.id}`);
      const files = await openSmbFiles({
        host: target.host,
        port: target.port,
        credentials: { user: target.user, domain: target.domain, password: await target.password() },
        netbios: deps.netbios,
        ...(deps.netbiosServer === undefined ? {} : { nameServer: deps.netbiosServer }),
        encrypt: deps.smb.encrypt,
        runRoot: deps.smb.runRoot,
        onWarning: (line) => deps.log(target.id, "warn", line),
        timeoutMs: deps.connectTimeoutMs ?? CONNECT_MS,
        signal,
      });
      linkWindows(files, index);
      const c = files.connection;
      const dialect = `SMB ${DIALECTS[c.dialect] ?? `0x${c.dialect.toString(16)}`}`;
      return {
        shell: noShell,
        files,
        remoteAddress: c.address,
        localAddress: await localAddressTowards(c.address),
        local: false,
        description: `connected to ${target.domain === "" ? "" : `${target.domain}\\`}${target.user}@${target.host}:${c.port} (${c.address}, ${dialect}, ${c.encrypting ? "encrypted" : "signed"})`,
      };
    },
    files: windowsAgentFiles({ ...deps.agentFiles, log: deps.log }),
    launcher: windowsAgentLauncher(deps.log),
    clean(connection, targetId, signal) {
      const link = windowsLinkOf(connection.files);
      if (link === undefined) throw new TransportUnsupportedError(`${targetId}: not a Windows session`);
      return cleanWindowsTarget(link, targetId, deps.log, signal);
    },
  };
}
