/**
 * Upload throughput of sumac's SMB client against Debian's smbclient: 100 MiB put into ADMIN$ of a
 * windows-standin container (Samba 4.17, SMB 3.1.1), both clients interleaved, N rounds (default 5)
 * after one warm-up each; first signed (signing mandatory, no encryption), then encrypted (the
 * server requires it). Run: `npm run bench -- smb [ROUNDS] [MiB]` (needs the container engine,
 * the windows-standin image and the smbclient package).
 *
 * Two figures per upload. `whole`: one upload as a deployment does it, connect, negotiate, log on,
 * upload, log off (smbclient: its process from start to exit; sumac: openSmbFiles, put, close).
 * `transfer`: the upload alone (smbclient's own "kb/s" figure; sumac's put).
 * Both reach the container's address on the bridge, not a published port, so that no userland
 * proxy sits between client and server.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import { openSmbFiles, type SmbFiles } from "../actors/smb/connect.ts";
import {
  runTool,
  startWindowsStandin,
  withAuthFile,
  type WindowsStandin,
} from "../test/support/windows-standin.ts";
import { median } from "./stats.ts";

const rounds = Number(process.argv[2] ?? 5);
const mib = Number(process.argv[3] ?? 100);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50)
  throw new Error(`rounds: 1 to 50, got ${process.argv[2]}`);
if (!Number.isInteger(mib) || mib < 1 || mib > 4096)
  throw new Error(`MiB: 1 to 4096, got ${process.argv[3]}`);
const bytes = mib * 2 ** 20;

/** MB/s (10^6 bytes) of one upload: from connect to close, and of the transfer alone. */
interface Sample {
  readonly whole: number;
  readonly transfer: number;
}

interface Leg {
  readonly name: string;
  readonly encrypt: boolean;
}
const legs: readonly Leg[] = [
  { name: "signed", encrypt: false },
  { name: "encrypted", encrypt: true },
];

/** Names of MS-SMB2 2.2.3.1.7 signing algorithms and 2.2.3.1.2 ciphers. */
const signingNames = ["HMAC-SHA256", "AES-CMAC", "AES-GMAC"];
const cipherNames = ["", "AES-128-CCM", "AES-128-GCM", "AES-256-CCM", "AES-256-GCM"];

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

async function randomFile(path: string, size: number): Promise<void> {
  const out = createWriteStream(path);
  for (let done = 0; done < size; done += 2 ** 20) {
    if (!out.write(randomBytes(Math.min(2 ** 20, size - done)))) await once(out, "drain");
  }
  out.end();
  await finished(out);
}

/** What smbstatus in the container says of the sessions it serves: "Encryption Signing" per line. */
async function serverSays(s: WindowsStandin): Promise<string[]> {
  const out = (await s.exec("smbstatus -b")).stdout;
  return out
    .split("\n")
    .filter((l) => /ipv4:/.test(l))
    .map((l) => l.trim().split(/\s+/).slice(-2).join(" / "));
}

/** smbclient's arguments for the leg: SMB 3.1.1 only, signing required, encryption as the leg says. */
function smbclientArgs(s: WindowsStandin, auth: string, leg: Leg): string[] {
  return [
    `//${s.address}/ADMIN$`,
    "-A",
    auth,
    "--option=client min protocol=SMB3_11",
    "--option=client max protocol=SMB3_11",
    "--option=client signing=required",
    `--option=client smb encrypt=${leg.encrypt ? "required" : "off"}`,
  ];
}

console.log(`smb upload bench: ${mib} MiB, ${rounds} rounds per leg, load average ${load()}`);
const dir = await mkdtemp(join(tmpdir(), "sumac-bench-smb-"));
const file = join(dir, "upload.bin");
try {
  await randomFile(file, bytes);
  for (const leg of legs) {
    const s = await startWindowsStandin({
      netbiosName: `BENCH-${leg.encrypt ? "SEAL" : "SIGN"}`,
      encrypt: leg.encrypt ? "required" : "if_required",
    });
    try {
      const credentials = { user: s.user, domain: s.workgroup, password: s.password };
      const open = (): Promise<SmbFiles> =>
        openSmbFiles({
          host: s.address,
          credentials,
          netbios: "never",
          encrypt: leg.encrypt,
          dialects: { min: 0x0311, max: 0x0311 },
          timeoutMs: 30_000,
        });
      await withAuthFile({ ...credentials }, async (auth) => {
        const args = smbclientArgs(s, auth, leg);
        const setup = await open();
        await setup.createRunDir("bench");
        const info = setup.connection;
        console.log(
          `\n${leg.name}: sumac ${signingNames[info.signingAlgorithm] ?? info.signingAlgorithm}` +
            `${info.signing ? " signing" : ""}` +
            `${info.encrypting ? `, ${cipherNames[info.cipher ?? 0] ?? info.cipher} encryption` : ""}; ` +
            `server sees ${(await serverSays(s)).join(", ")} (encryption / signing)`,
        );
        await setup.close();
        // smbclient kept open for smbstatus to see its session.
        const held = spawn("smbclient", args, { stdio: ["pipe", "ignore", "ignore"] });
        held.stdin.write("ls\n");
        await new Promise((r) => setTimeout(r, 1_500));
        console.log(`${leg.name}: smbclient: server sees ${(await serverSays(s)).join(", ")}`);
        held.stdin.end("exit\n");
        await once(held, "close");

        const sumac = async (): Promise<Sample> => {
          const t0 = performance.now();
          const files = await open();
          const t1 = performance.now();
          await files.put(file, "/ADMIN$/Temp/sumac/bench/sumac.bin", { mode: 0o644, timeoutMs: 600_000 });
          const t2 = performance.now();
          await files.close();
          return { whole: bytes / 1e3 / (performance.now() - t0), transfer: bytes / 1e3 / (t2 - t1) };
        };
        const smbclient = async (): Promise<Sample> => {
          const t0 = performance.now();
          const r = await runTool(
            "smbclient",
            [...args, "-c", `put ${file} Temp\\sumac\\bench\\smbclient.bin`],
            {
              timeoutMs: 600_000,
            },
          );
          if (r.exitCode !== 0) throw new Error(`smbclient: ${r.stdout}${r.stderr}`);
          // Its own figure for the transfer alone: "(12345.6 kb/s)", kb being 1024 bytes.
          const own = /\(([\d.]+) kb\/s\)/.exec(`${r.stdout}${r.stderr}`)?.[1];
          return { whole: bytes / 1e3 / (performance.now() - t0), transfer: (Number(own) * 1024) / 1e6 };
        };
        await sumac();
        await smbclient();
        const ours: Sample[] = [];
        const theirs: Sample[] = [];
        for (let i = 0; i < rounds; i++) {
          // Each goes first in turn: the page cache and the server's state favour neither.
          if (i % 2 === 0) {
            ours.push(await sumac());
            theirs.push(await smbclient());
          } else {
            theirs.push(await smbclient());
            ours.push(await sumac());
          }
        }
        for (const kind of ["whole", "transfer"] as const) {
          const [a, b] = [median(ours.map((x) => x[kind])), median(theirs.map((x) => x[kind]))];
          const fmt = (xs: Sample[]): string => xs.map((x) => x[kind].toFixed(1)).join(" ");
          console.log(`${leg.name} ${kind}: sumac     MB/s median ${a.toFixed(1)} (${fmt(ours)})`);
          console.log(`${leg.name} ${kind}: smbclient MB/s median ${b.toFixed(1)} (${fmt(theirs)})`);
          console.log(`${leg.name} ${kind}: ratio sumac/smbclient ${(a / b).toFixed(2)}`);
        }
        console.log(`${leg.name}: load average ${load()}`);
      });
    } finally {
      await s.stop();
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
