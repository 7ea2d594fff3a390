/**
 * SSH for tests that use a linux-target as a push channel: a root login with the container's host
 * key pinned, and SFTP writes, each with a deadline.
 */
import { createHash } from "node:crypto";
import ssh2 from "ssh2";
import { deadline } from "./container.ts";
import type { LinuxTarget } from "./linux-target.ts";

/** Logs in as root with its key; any host key but the container's is refused. */
export function sshLogin(target: LinuxTarget, timeoutMs = 15_000): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client
      .once("ready", () => resolve(client))
      // `on`, not `once`: a dropped connection can emit a second error after the first.
      .on("error", (error) => {
        client.destroy();
        reject(error);
      })
      .connect({
        host: target.host,
        port: target.port,
        username: target.users.root.name,
        privateKey: target.users.root.privateKey,
        readyTimeout: timeoutMs,
        hostVerifier: (key: Buffer) => createHash("sha256").update(key).digest().equals(target.hostKeySha256),
      });
  });
}

/** Writes a local file (by path) or bytes to `remote` over SFTP, failing after `timeoutMs`. */
export function sftpPut(
  ssh: ssh2.Client,
  source: string | Buffer,
  remote: string,
  mode = 0o644,
  timeoutMs = 15_000,
): Promise<void> {
  const put = new Promise<void>((resolve, reject) => {
    ssh.sftp((error, sftp) => {
      if (error) return reject(error);
      const done = (putError: Error | null | undefined): void => {
        sftp.end();
        if (putError) reject(putError);
        else resolve();
      };
      if (typeof source === "string") sftp.fastPut(source, remote, { mode }, done);
      else sftp.writeFile(remote, source, { mode }, done);
    });
  });
  return deadline(`SFTP write of ${remote}`, timeoutMs, put);
}
