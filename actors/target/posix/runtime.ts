/**
 * Node on a target: which one runs the agent bundle, and the runtime pushed where there is none.
 * The probe (one command) lists the Node binaries found (`command -v node` and common paths) with
 * their versions, `uname -sm`, and whether gzip is there; the first Node >= 18 wins. Without one,
 * this workstation's own Node binary (`process.execPath`) can be pushed when the target's OS and
 * architecture are the same, gzip-compressed once and cached by hash under the state directory.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { isIP } from "node:net";
import { createGzip } from "node:zlib";
import { shellQuote } from "../../ssh/become.ts";

/** The oldest Node the agent bundle runs on (agent/build.ts builds for `node18`). */
export const MIN_NODE_MAJOR = 18;

/** Where Node is looked for besides `command -v node` (PATH of a non-login shell is short). */
export const COMMON_NODE_PATHS: readonly string[] = [
  "/usr/bin/node",
  "/usr/local/bin/node",
  "/usr/bin/nodejs",
  "/opt/node/bin/node",
  "/snap/bin/node",
];

/** `vMAJOR.MINOR.PATCH` as `node --version` prints it, or undefined. */
export function parseNodeVersion(text: string): { major: number; minor: number; patch: number } | undefined {
  const m = /^v(\d{1,4})\.(\d{1,4})\.(\d{1,4})(?:[-+][0-9A-Za-z.-]*)?$/.exec(text.trim());
  if (m === null) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

/** Node's `process.platform` and `process.arch` for a `uname -sm` line, or undefined. */
export function platformOfUname(uname: string): { platform: string; arch: string } | undefined {
  const [system = "", machine = ""] = uname.trim().split(/\s+/);
  const platform = ({ Linux: "linux", Darwin: "darwin", FreeBSD: "freebsd" } as Record<string, string>)[
    system
  ];
  const arch = (
    {
      x86_64: "x64",
      amd64: "x64",
      aarch64: "arm64",
      arm64: "arm64",
      armv7l: "arm",
      ppc64le: "ppc64",
      s390x: "s390x",
      riscv64: "riscv64",
    } as Record<string, string>
  )[machine];
  return platform === undefined || arch === undefined ? undefined : { platform, arch };
}

/** Can a Node binary built for `platform`/`arch` run on a host with this `uname -sm`? */
export function runtimeFits(
  uname: string,
  platform: string = process.platform,
  arch: string = process.arch,
): boolean {
  const target = platformOfUname(uname);
  return target !== undefined && target.platform === platform && target.arch === arch;
}

/** What the probe found on a target. */
export interface TargetFacts {
  /** The first Node >= {@link MIN_NODE_MAJOR} found. */
  readonly node?: { readonly path: string; readonly version: string };
  /** Nodes found that are too old or did not answer, for the message when none fits. */
  readonly rejected: readonly string[];
  /** `uname -sm`, e.g. `Linux x86_64`. */
  readonly uname: string;
  readonly gzip: boolean;
  /** Paths (asked with `cached`) whose SHA-256 matched. */
  readonly cached: ReadonlySet<string>;
  /**
   * This workstation's address as the target sees it: the first word of `$SSH_CLIENT` there
   * (behind NAT it is not this host's own). Absent in local mode or when not an IP address.
   */
  readonly seenAs?: string;
}

/**
 * A shell function: `rootowned PATH` succeeds when PATH has no symbolic link in it (one could be
 * pointed elsewhere after the check), and it and every directory above it belong to root and are
 * writable by no one else (a sticky directory such as /tmp excepted above it): a file that only
 * root can replace. Node binaries run as root must be such.
 */
export const ROOT_OWNED_FUNCTION = `rootowned() {
  f=$(readlink -f -- "$1" 2>/dev/null) && [ "$f" = "$1" ] && [ -f "$f" ] || return 1
  m=$(stat -c %u:%a -- "$f") || return 1
  case "$m" in 0:*) ;; *) return 1 ;; esac
  [ $(( 0\${m#*:} & 022 )) -eq 0 ] || return 1
  while [ "$f" != / ]; do
    f=$(dirname -- "$f")
    m=$(stat -c %u:%a -- "$f") || return 1
    case "$m" in 0:*) ;; *) return 1 ;; esac
    [ $(( 0\${m#*:} & 022 )) -eq 0 ] || [ $(( 0\${m#*:} & 01000 )) -ne 0 ] || return 1
  done
}`;

/**
 * The probe: one shell command. `extraNodes` are tried first (local mode: this process's own
 * Node); `cached` are `[path, sha256]` pairs checked with `sha256sum` (the agent cache). With
 * `rootOwnedOnly`, a Node that the login (or anyone but root) could replace is passed over and
 * reported as `untrusted` (it would run as root), and the one taken is given with its links
 * resolved.
 */
export function probeCommand(
  extraNodes: readonly string[] = [],
  cached: readonly (readonly [string, string])[] = [],
  rootOwnedOnly = false,
): string {
  const q = shellQuote;
  const lines = [
    ...(rootOwnedOnly ? [ROOT_OWNED_FUNCTION] : []),
    'seen=" "',
    `for n in ${[...extraNodes.map(q), '"$(command -v node 2>/dev/null)"', ...COMMON_NODE_PATHS.map(q)].join(" ")}; do`,
    '  if [ -n "$n" ] && [ -f "$n" ] && [ -x "$n" ]; then',
    // Each binary asked once (links resolved; `node --version` costs tens of ms), and none after
    // the first that is recent enough.
    '    r=$(readlink -f -- "$n" 2>/dev/null) || r=$n',
    '    case "$seen" in *" $r "*) continue ;; esac',
    '    seen="$seen$r "',
    // Root is given the binary itself: a link on the way could be pointed elsewhere later.
    ...(rootOwnedOnly ? ['    if ! rootowned "$r"; then echo "untrusted $n"; continue; fi', "    n=$r"] : []),
    // The version first: a path may hold spaces. An empty version means it did not answer.
    '    v=$("$n" --version 2>/dev/null | head -n 1); echo "node ${v:-none} $n"',
    "    m=${v#v}; m=${m%%.*}",
    `    case "$m" in ''|*[!0-9]*) ;; *) if [ "$m" -ge ${MIN_NODE_MAJOR} ]; then break; fi ;; esac`,
    "  fi",
    "done",
    'echo "uname $(uname -sm)"',
    'echo "ssh_client ${SSH_CLIENT%% *}"',
    'if command -v gzip >/dev/null 2>&1; then echo "gzip yes"; else echo "gzip no"; fi',
  ];
  return [...lines, cachedCommand(cached)].join("\n");
}

/** Prints `cached <path>` for each `[path, sha256]` whose file has that SHA-256 (the agent cache). */
export function cachedCommand(cached: readonly (readonly [string, string])[]): string {
  const q = shellQuote;
  return cached
    .map(
      ([path, sha256]) =>
        `if [ -f ${q(path)} ] && [ "$(sha256sum ${q(path)} 2>/dev/null | cut -d' ' -f1)" = ${q(sha256)} ]; then echo "cached ${path}"; fi`,
    )
    .join("\n");
}

/** Reads the probe's output (bounded by the shell's output cap). */
export function parseProbe(stdout: string): TargetFacts {
  let node: TargetFacts["node"];
  const rejected: string[] = [];
  const cached = new Set<string>();
  let uname = "";
  let gzip = false;
  let seenAs: string | undefined;
  for (const line of stdout.split("\n")) {
    const [kind = "", ...rest] = line.trim().split(" ");
    if (kind === "node" && rest.length >= 2) {
      const [version = "", ...words] = rest;
      const path = words.join(" ");
      const parsed = parseNodeVersion(version);
      if (parsed !== undefined && parsed.major >= MIN_NODE_MAJOR) node ??= { path, version };
      else rejected.push(`${path} (${version === "none" ? "no version" : version})`);
    } else if (kind === "uname") uname = rest.join(" ");
    else if (kind === "gzip") gzip = rest[0] === "yes";
    else if (kind === "untrusted" && rest.length > 0) rejected.push(`${rest.join(" ")} (not root's own)`);
    else if (kind === "cached") cached.add(rest.join(" "));
    else if (kind === "ssh_client" && rest.length === 1 && isIP(rest[0] ?? "") !== 0) seenAs = rest[0];
  }
  return {
    ...(node === undefined ? {} : { node }),
    rejected,
    uname,
    gzip,
    cached,
    ...(seenAs === undefined ? {} : { seenAs: seenAs.replace(/^::ffff:/, "") }),
  };
}

/** This workstation's Node binary, compressed for transfer. */
export interface RuntimeArtifact {
  /** The gzip file on this machine. */
  readonly gzPath: string;
  readonly gzSha256: string;
  /** SHA-256 of the binary, checked on the target after `gzip -dc`. */
  readonly sha256: string;
  readonly bytes: number;
  readonly version: string;
  readonly platform: string;
  readonly arch: string;
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

/** What identifies a file's content while it is not changed: a change moves its ctime. */
function identity(st: { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  return [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs].join(":");
}

/**
 * The binary's SHA-256, remembered in `cacheDir/binary.json` with the file's identity (device,
 * inode, size, modification and change times): hashing 120 MB of Node took about 0.4 s of every
 * run that pushes a runtime. Any change to the file (a new Node installed over it) changes its
 * ctime, which no caller can set, and the hash is taken again.
 */
async function binarySha256(cacheDir: string, binary: string): Promise<string> {
  const memo = join(cacheDir, "binary.json");
  const before = identity(await stat(binary));
  try {
    const known = JSON.parse(await readFile(memo, "utf8")) as {
      path?: unknown;
      id?: unknown;
      sha256?: unknown;
    };
    if (
      known.path === binary &&
      known.id === before &&
      typeof known.sha256 === "string" &&
      /^[0-9a-f]{64}$/.test(known.sha256)
    )
      return known.sha256;
  } catch {
    // Not remembered yet, or damaged: hashed below.
  }
  const sha256 = await sha256Of(binary);
  // Remembered only when the file did not change while it was read.
  if (identity(await stat(binary)) === before) {
    const tmp = `${memo}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ path: binary, id: before, sha256 }), { mode: 0o600 });
    await rename(tmp, memo);
  }
  return sha256;
}

/**
 * Compresses `binary` (default this process's Node) into `cacheDir/<sha256>.gz`, or reuses the
 * one made before for the same binary (found by its hash, described by `<sha256>.json`).
 */
export async function compressRuntime(
  cacheDir: string,
  binary: string = process.execPath,
): Promise<RuntimeArtifact> {
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const sha256 = await binarySha256(cacheDir, binary);
  const gzPath = join(cacheDir, `${sha256}.gz`);
  const metaPath = join(cacheDir, `${sha256}.json`);
  try {
    const known = JSON.parse(await readFile(metaPath, "utf8")) as RuntimeArtifact;
    if (known.sha256 === sha256 && known.gzPath === gzPath && (await sha256Of(gzPath)) === known.gzSha256)
      return known;
  } catch {
    // Not made yet, or damaged: made again below.
  }
  const partial = `${gzPath}.${process.pid}.part`;
  try {
    await pipeline(
      createReadStream(binary),
      createGzip({ level: 6 }),
      createWriteStream(partial, { mode: 0o600 }),
    );
    await rename(partial, gzPath);
  } finally {
    await rm(partial, { force: true });
  }
  const artifact: RuntimeArtifact = {
    gzPath,
    gzSha256: await sha256Of(gzPath),
    sha256,
    bytes: (await stat(binary)).size,
    version: process.version,
    platform: process.platform,
    arch: process.arch,
  };
  await writeFile(metaPath, JSON.stringify(artifact), { mode: 0o600 });
  return artifact;
}

/** The runtime of one run: compressed on first use (most fleets have Node), once; a failure is not kept. */
export function runtimeOnce(cacheDir: string, binary?: string): () => Promise<RuntimeArtifact> {
  let made: Promise<RuntimeArtifact> | undefined;
  return () => {
    made ??= compressRuntime(cacheDir, binary);
    made.catch(() => (made = undefined));
    return made;
  };
}
