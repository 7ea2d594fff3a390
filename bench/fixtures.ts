/**
 * Time to start each test bed fixture, until it really serves (median of N starts, default 5),
 * and time to stop it. Run: `npm run bench -- fixtures [N]` (needs the container engine and images).
 */
import { startLinuxTarget } from "../test/support/linux-target.ts";
import { startNatsContainer, startNatsProcess } from "../test/support/nats.ts";
import { startScmPeer } from "../test/support/scm-peer.ts";
import { startWindowsStandin } from "../test/support/windows-standin.ts";
import { median } from "./stats.ts";

interface Started {
  startedInMs: number;
  stop(): Promise<void>;
}

const fixtures: Record<string, () => Promise<Started>> = {
  "linux-target": () => startLinuxTarget(),
  "linux-target (node)": () => startLinuxTarget({ withNode: true }),
  "windows-standin": () => startWindowsStandin(),
  "scm-peer": () => startScmPeer(),
  "nats (container)": () => startNatsContainer(),
  "nats (process)": async () => {
    const s = await startNatsProcess();
    return { startedInMs: s.startedInMs, stop: () => s.dispose() };
  },
};

const runs = Number(process.argv[2] ?? 5);
if (!Number.isInteger(runs) || runs < 1 || runs > 50)
  throw new Error(`runs: 1 to 50, got ${process.argv[2]}`);

// One warm-up start per fixture builds any missing image and fills the page cache.
console.log(`fixture start until it serves, median of ${runs} (ms)`);
console.log(
  "fixture".padEnd(22),
  "start".padStart(8),
  "min".padStart(8),
  "max".padStart(8),
  "stop".padStart(8),
);
for (const [name, start] of Object.entries(fixtures)) {
  await (await start()).stop();
  const starts: number[] = [];
  const stops: number[] = [];
  for (let i = 0; i < runs; i++) {
    const f = await start();
    starts.push(f.startedInMs);
    const t = performance.now();
    await f.stop();
    stops.push(performance.now() - t);
  }
  const row = [median(starts), Math.min(...starts), Math.max(...starts), median(stops)];
  console.log(name.padEnd(22), ...row.map((v) => v.toFixed(0).padStart(8)));
}
