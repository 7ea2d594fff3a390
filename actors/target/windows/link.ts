/**
 * What a Windows target's session holds beyond the steps' Connection: the SMB client (for `IPC$`
 * and the service control manager), the file channel with its read, the target's place in the job
 * (its services' names), and the SCM once opened. Kept by the file channel's identity, which the
 * session keeps from its connect to its disconnect.
 */
import type { SmbFiles } from "../../smb/connect.ts";
import type { ScmCallOptions } from "../../scmr/client.ts";
import type { FileChannel } from "../../remote.ts";
import { ServiceControl } from "./service-control.ts";

export interface WindowsLink {
  readonly files: SmbFiles;
  /** The target's index in the job: its services are `sumac-<run>-<index>`. */
  readonly index: number;
  /** The service control manager, opened on first use and again after a failure. */
  scm(options: ScmCallOptions): Promise<ServiceControl>;
  /** Closes the SCM's binding if it was opened; never throws. */
  closeScm(): Promise<void>;
}

const links = new WeakMap<FileChannel, WindowsLink>();

/** Makes and keeps the link of a session whose file channel is `files`. */
export function linkWindows(files: SmbFiles, index: number): WindowsLink {
  let opened: Promise<ServiceControl> | undefined;
  const link: WindowsLink = {
    files,
    index,
    scm(options) {
      if (opened === undefined) {
        const opening = ServiceControl.open(files.client, options);
        opening.catch(() => {
          if (opened === opening) opened = undefined;
        });
        opened = opening;
      }
      return opened;
    },
    async closeScm() {
      const was = opened;
      opened = undefined;
      if (was !== undefined) await (await was.catch(() => undefined))?.close({ timeoutMs: 5_000 });
    },
  };
  links.set(files, link);
  return link;
}

/** The link of a Windows session, found by its file channel. */
export function windowsLinkOf(files: FileChannel): WindowsLink | undefined {
  return links.get(files);
}
