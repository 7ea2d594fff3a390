/**
 * The floor of bench/fleet.ts: what a bare `ssh2` script costs for the same work sumac does on a
 * target, in parallel on every target: connect (host key pinned), mkdir, upload the component
 * (pipelined writes, as sumac's SFTP uploads), run its install command writing a log, read the log
 * back, delete the directory, disconnect. No agent, no TLS, no leases, no state: the least any tool
 * must do.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import ssh2 from "ssh2";

export interface FloorTarget {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly privateKey: string;
  /** SHA-256 of the host key blob (what ssh2's hostVerifier sees, hashed). */
  readonly hostKeySha256: Buffer;
}

const DEADLINE_MS = 60_000;

function withDeadline<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function connect(target: FloorTarget): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.once("ready", () => resolve(client));
    client.once("error", reject);
    client.connect({
      host: target.host,
      port: target.port,
      username: target.username,
      privateKey: target.privateKey,
      readyTimeout: DEADLINE_MS,
      hostVerifier: (key: Buffer) => {
        const digest = createHash("sha256").update(key).digest();
        return digest.length === target.hostKeySha256.length && timingSafeEqual(digest, target.hostKeySha256);
      },
    });
  });
}

function exec(client: ssh2.Client, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, channel) => {
      if (err) return reject(err);
      const out: Buffer[] = [];
      channel.on("data", (chunk: Buffer) => out.push(chunk));
      channel.stderr.resume();
      channel.on("close", (code: number | null) => {
        if (code === 0) resolve(Buffer.concat(out).toString("utf8"));
        else reject(new Error(`${command}: exit ${code}`));
      });
    });
  });
}

function upload(client: ssh2.Client, content: Buffer, remotePath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client.sftp((err, sftp) => {
      if (err) return reject(err);
      sftp.open(remotePath, "w", 0o644, (openErr, handle) => {
        if (openErr) return reject(openErr);
        // Pipelined writes: every 32 KiB chunk is sent at once, as sumac's uploads do.
        const chunk = 32 * 1024;
        let pending = 0;
        let failed = false;
        for (let offset = 0; offset < content.length; offset += chunk) {
          pending++;
          const piece = content.subarray(offset, Math.min(offset + chunk, content.length));
          sftp.write(handle, piece, 0, piece.length, offset, (writeErr) => {
            if (failed) return;
            if (writeErr) {
              failed = true;
              return reject(writeErr);
            }
            if (--pending === 0) sftp.close(handle, (closeErr) => (closeErr ? reject(closeErr) : resolve()));
          });
        }
      });
    });
  });
}

/** The floor's work on one target; resolves with the log's text. */
export async function floorOne(target: FloorTarget, content: Buffer, run: string): Promise<string> {
  const client = await withDeadline(`connect ${target.host}`, connect(target));
  try {
    const dir = `/var/tmp/floor-${run}`;
    await withDeadline("mkdir", exec(client, `mkdir -p ${dir} && chmod 700 ${dir}`));
    await withDeadline("upload", upload(client, content, `${dir}/component.bin`));
    await withDeadline(
      "install",
      exec(client, `cd ${dir} && sha256sum component.bin > install.log && echo installed >> install.log`),
    );
    const log = await withDeadline("read log", exec(client, `cat ${dir}/install.log`));
    await withDeadline("delete", exec(client, `rm -rf ${dir}`));
    return log;
  } finally {
    client.end();
  }
}

/** The floor on every target at once; resolves with the wall time in ms. */
export async function floorFleet(
  targets: readonly FloorTarget[],
  content: Buffer,
  run: string,
): Promise<number> {
  const started = performance.now();
  const logs = await Promise.all(targets.map((t) => floorOne(t, content, run)));
  for (const log of logs) if (!log.includes("installed")) throw new Error(`floor: unexpected log ${log}`);
  return performance.now() - started;
}
