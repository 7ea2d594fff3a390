/**
 * The floor of bench/fleet.ts: what a bare `ssh2` script costs for the same work sumac does on a
 * target, in parallel on every target: connect (host key pinned), mkdir, upload the component
 * (pipelined writes, as sumac's SFTP uploads), run its install command writing a log, read the log
 * back, delete the directory, disconnect. No agent, no TLS, no leases, no state: the least any tool
 * must do.
 *
 * With an agent bundle given, the same work plus what any tool that starts a Node agent on the
 * target must also do: upload the bundle beside the component and run it with Node once in the
 * install command. Given no configuration on stdin, the agent loads the whole bundle (its modules
 * and Node's built-ins they require) and exits at once, naming what it lacks; nothing listens, no
 * key is made, no TLS. That is less than sumac's agent does, so it bounds from below what sumac can
 * reach on the same targets.
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

/** Uploads each file in one SFTP session, one after the other. */
function upload(client: ssh2.Client, files: readonly (readonly [string, Buffer])[]): Promise<void> {
  return new Promise((resolve, reject) => {
    client.sftp((err, sftp) => {
      if (err) return reject(err);
      const next = (i: number): void => {
        const file = files[i];
        if (file === undefined) return resolve();
        writeFile(sftp, file[0], file[1]).then(() => next(i + 1), reject);
      };
      next(0);
    });
  });
}

function writeFile(sftp: ssh2.SFTPWrapper, remotePath: string, content: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
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
}

/**
 * What the agent prints when it is started with no configuration: proof that it ran and loaded
 * its bundle (agent/server/main.ts).
 */
const AGENT_STARTED = '"stdin closed before the config"';

/** The floor's work on one target, with the agent's start when `agent` is given: its bundle. */
export async function floorOne(
  target: FloorTarget,
  content: Buffer,
  run: string,
  agent?: Buffer,
): Promise<string> {
  const client = await withDeadline(`connect ${target.host}`, connect(target));
  try {
    const dir = `/var/tmp/floor-${run}`;
    await withDeadline("mkdir", exec(client, `mkdir -p ${dir} && chmod 700 ${dir}`));
    const files: [string, Buffer][] = [[`${dir}/component.bin`, content]];
    if (agent !== undefined) files.push([`${dir}/agent.js`, agent]);
    await withDeadline("upload", upload(client, files));
    const startAgent =
      agent === undefined ? "" : ` && { node agent.js </dev/null >> install.log 2>&1 || true; }`;
    await withDeadline(
      "install",
      exec(
        client,
        `cd ${dir} && sha256sum component.bin > install.log${startAgent} && echo installed >> install.log`,
      ),
    );
    const log = await withDeadline("read log", exec(client, `cat ${dir}/install.log`));
    await withDeadline("delete", exec(client, `rm -rf ${dir}`));
    return log;
  } finally {
    client.end();
  }
}

/**
 * The floor on every target at once, with the agent's start when `agent` (its bundle) is given;
 * resolves with the wall time in ms.
 */
export async function floorFleet(
  targets: readonly FloorTarget[],
  content: Buffer,
  run: string,
  agent?: Buffer,
): Promise<number> {
  const started = performance.now();
  const logs = await Promise.all(targets.map((t) => floorOne(t, content, run, agent)));
  for (const log of logs) {
    if (!log.includes("installed")) throw new Error(`floor: unexpected log ${log}`);
    if (agent !== undefined && !log.includes(AGENT_STARTED))
      throw new Error(`floor: the agent did not start as expected:\n${log}`);
  }
  return performance.now() - started;
}
