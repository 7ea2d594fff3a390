/**
 * The small schemas a job file is built from (ports, durations, host names, fingerprints, secret
 * references), each with a description for editors (it goes into the JSON Schema) and the words an
 * error uses for it: what it is and what is expected.
 */
import { isIP, isIPv4 } from "node:net";
import { z } from "zod";
import { SUDO_CANDIDATES, SUDO_PATH, SUDO_PATH_MAX } from "../../actors/ssh/become.ts";
import { versionProblem } from "../../machines/target/components.ts";

/** How errors speak of a schema: `"70000" is not a valid <what> (expected <expected>)`. */
export interface Expectation {
  readonly expected: string;
  readonly what?: string;
  /** A secret reference: a plain value here is a secret typed into the file, never echoed back. */
  readonly secret?: boolean;
}

/** The words errors use per schema; read back by the issue mapper (`issues.ts`). */
export const expectations = z.registry<Expectation>();

/** `schema` with its description (for editors) and its error words. */
export function described<T extends z.ZodType>(
  schema: T,
  description: string,
  expectation: Expectation,
  jsonSchema: Record<string, unknown> = {},
): T {
  const withMeta = schema.meta({ description, ...jsonSchema });
  expectations.add(withMeta, expectation);
  return withMeta;
}

/** An integer in [min, max]; errors call it `what`. */
export function integer(min: number, max: number, what: string): z.ZodInt {
  return described(z.int().min(min).max(max), `An integer from ${min} to ${max}.`, {
    expected: `an integer from ${min} to ${max}`,
    what,
  });
}

export const Port = described(z.int().min(1).max(65535), "A TCP port.", {
  expected: "an integer from 1 to 65535",
  what: "port",
});

/**
 * DNS labels, and `_` inside them as well: Windows computers' NetBIOS names often have one
 * (`WIN_SRV01`), and resolving such a name is DNS's or NetBIOS's answer to give, not the schema's.
 */
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** A DNS name, an IPv4 or IPv6 address (without brackets), or `local` (this machine). */
export const Host = described(
  z.string().refine((h) => isIP(h) !== 0 || HOST_NAME.test(h)),
  "The target's DNS name or IP address, or `local` for this machine (local mode: the agent runs as a local process, no SSH).",
  { expected: 'a DNS name, an IPv4 or IPv6 address, or "local"', what: "host" },
  { minLength: 1, maxLength: 253 },
);

/** The NetBIOS name service (RFC 1002) runs over IPv4 only: a WINS server has an IPv4 address. */
export const NetbiosServer = described(
  z.string().refine((a) => isIPv4(a)),
  "A WINS (NetBIOS name) server, asked by unicast on UDP 137 before broadcasting, for Windows targets' names that DNS does not know.",
  { expected: "an IPv4 address such as 10.0.0.53", what: "NetBIOS name server" },
);

/**
 * Where runs' directories go on Windows targets: a share, then directories, with `/` or `\`
 * (actors/smb/files.ts). No `.` or `..` component, nothing a Windows path could not hold.
 */
export const WindowsRunRoot = described(
  z
    .string()
    .regex(/^[\\/][A-Za-z0-9_$-]{1,80}([\\/][A-Za-z0-9 ._$-]{1,255}){1,16}$/)
    .refine((p) => !p.split(/[\\/]/).some((part) => /^\.+$/.test(part) || / $|\.$/.test(part))),
  "Where runs' directories go on Windows targets: /SHARE/directory, e.g. /ADMIN$/Temp/sumac (C:\\Windows\\Temp\\sumac).",
  {
    expected: "/SHARE/directory..., e.g. /ADMIN$/Temp/sumac, without . or .. components",
    what: "Windows run root",
  },
);

/** Target ids become parts of log lines, file names and event subjects: keep them plain. */
export const TargetName = described(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@[\]-]{0,127}$/),
  "The target's id in reports and events; unique in the job. Default: host, or host:port when the port is not the default.",
  { expected: "1 to 128 of A-Z a-z 0-9 . _ - : @ [ ], starting with a letter or digit", what: "target name" },
);

export const User = described(
  z.string().regex(/^[^\s\x00-\x1f\x7f]{1,256}$/),
  "The login name. Default: root.",
  { expected: "a user name of 1 to 256 characters without spaces", what: "user name" },
);

export const Domain = described(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,254}$/),
  "The Windows domain of the login (windows targets only): its NetBIOS name (CORP) or DNS name (corp.example.com). Default: the server's own accounts. A user written DOMAIN\\user or user@corp.example.com carries its own.",
  { expected: "a domain name such as CORP or corp.example.com", what: "domain" },
);

export const Os = described(
  z.enum(["linux", "windows"]),
  "The target's operating system. Default: linux. windows: reached over SMB with a password (docs/windows.md).",
  { expected: 'one of "linux", "windows"', what: "os" },
);

/** OpenSSH's `SHA256:` fingerprint: 32 bytes of base64 without padding (a trailing `=` is allowed). */
export const Fingerprint = described(
  z.string().regex(/^SHA256:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=?$/),
  "The SSH host key's fingerprint, pinned: SHA256:<base64>, as `ssh-keygen -lf <key>` prints it.",
  {
    expected: "SHA256: followed by 43 base64 characters, as `ssh-keygen -lf` prints it",
    what: "host key fingerprint",
  },
);

export const Tag = described(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
  "A tag to select targets by.",
  {
    expected: "1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
    what: "tag",
  },
);

/** sudo's absolute path on a target, as the SSH transport checks it (`isSudoPath`: its pattern and length). */
export const SudoPath = described(
  z.string().max(SUDO_PATH_MAX).regex(SUDO_PATH),
  `sudo's absolute path on the target, used instead of looking in ${SUDO_CANDIDATES.map((p) => p.slice(0, -"/sudo".length)).join(", ")} (never the login's PATH).`,
  {
    expected: "an absolute path such as /usr/bin/sudo (letters, digits, . _ + -; no . or .. segments)",
    what: "sudo path",
  },
);

/** A path as written: resolved against the job file's directory, `~/` against the home directory. */
export const FilePath = described(
  z.string().regex(/^[^\x00]{1,4096}$/),
  "A file path, relative to the job file's directory (or absolute, or starting with ~/).",
  { expected: "a path of 1 to 4096 characters", what: "path" },
);

const EnvName = described(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/),
  "An environment variable's name.",
  {
    expected: "an environment variable name such as ROOT_PASSWORD",
    what: "environment variable name",
  },
);

/**
 * A secret, by reference only: `{ file: path }` (its content, less one final newline) or
 * `{ env: NAME }`. Exactly one of the two; checked after the shape (see `normalise.ts`).
 */
export const SecretRef = described(
  z.strictObject({ file: FilePath.optional(), env: EnvName.optional() }),
  "A secret, never written in the job: { file: path } (relative to the job file) or { env: NAME }.",
  { expected: "{ env: NAME } or { file: path }", what: "secret reference", secret: true },
  { oneOf: [{ required: ["file"] }, { required: ["env"] }] },
);

export const MAX_DURATION_MS = 7 * 24 * 3600 * 1000;
const DURATION = /^(?:\d{1,9}(?:ms|s|m|h|d))+$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration as written: a number of seconds, or `1h30m`, `90s`, `500ms`. */
export function durationMs(value: number | string): number {
  if (typeof value === "number") return Math.round(value * 1000);
  let total = 0;
  for (const [, n, unit] of value.matchAll(/(\d+)(ms|s|m|h|d)/g))
    total += Number(n) * (UNIT_MS[unit ?? "s"] ?? 0);
  return total;
}

export const Duration = described(
  z.union([z.number().positive(), z.string().regex(DURATION)]).refine((v) => {
    const ms = durationMs(v);
    return ms >= 1 && ms <= MAX_DURATION_MS;
  }),
  "A duration: a number of seconds, or a string such as 90s, 10m, 1h30m, 500ms.",
  { expected: "a number of seconds or a duration such as 90s, 10m or 1h30m, up to 7d", what: "duration" },
);

const SIZE = /^(\d{1,10})(B|KiB|MiB|GiB)$/;
const UNIT_BYTES: Readonly<Record<string, number>> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** Bytes of a size as written: a number of bytes, or `512KiB`, `8MiB`, `1GiB`. */
export function sizeBytes(value: number | string): number {
  if (typeof value === "number") return value;
  const [, n, unit] = SIZE.exec(value) ?? [];
  return Number(n) * (UNIT_BYTES[unit ?? "B"] ?? 0);
}

/** A size from `min` to `max` bytes; errors call it `what`. */
/** A whole number of KiB or MiB as a job writes it: `64KiB`, `8MiB`. */
export function sizeWords(n: number): string {
  return n % 1024 ** 2 === 0 ? `${n / 1024 ** 2}MiB` : `${n / 1024}KiB`;
}

export function size(min: number, max: number, what: string): z.ZodType<number | string> {
  const words = sizeWords;
  return described(
    z.union([z.int(), z.string().regex(SIZE)]).refine((v) => {
      const bytes = sizeBytes(v);
      return bytes >= min && bytes <= max;
    }),
    `A size: a number of bytes, or a string such as 512KiB, 8MiB, 1GiB; from ${words(min)} to ${words(max)}.`,
    {
      expected: `a number of bytes or a size such as 512KiB or 8MiB, from ${words(min)} to ${words(max)}`,
      what,
    },
  );
}

export const Command = described(
  z.string().regex(/^[^\x00]{1,8192}$/),
  "A shell command, run in the staging directory where the component's files are.",
  { expected: "a command of 1 to 8192 characters", what: "command" },
);

export const ComponentId = described(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
  "The component's id; unique in the package.",
  { expected: "1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit", what: "component id" },
);

export const Version = described(
  z.string().refine((v) => versionProblem(v) === null),
  'The component\'s version, compared with what its detect command prints. Quote it: "1.0", not 1.0.',
  {
    expected: 'a version string such as "1.2.0", of letters, digits and . _ + ~ -',
    what: "version",
  },
  { pattern: "^[A-Za-z0-9._+~-]{1,64}$" },
);

export const Name = described(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/), "A name for reports.", {
  expected: "1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
  what: "name",
});
