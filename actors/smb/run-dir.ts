/**
 * Making a Windows target's run directory private. It lies under `C:\Windows\Temp` by default,
 * where ordinary users may create files and folders in any subfolder (an inherited ACE), and a
 * service running as LocalSystem later runs what sumac put there: a local user who could plant or
 * swap a file in it would run code as SYSTEM. So:
 *
 * - The run root, the run directory and every other private level sumac makes under the root
 *   (`logs\<run>`) get a protected DACL (MS-DTYP 2.4.6 SE_DACL_PROTECTED): full control to
 *   SYSTEM and Administrators, inherited by everything in it, nothing from the parent. It is read
 *   back: a server may answer success and keep less. A run root or level that exists already gets
 *   it again: an older sumac, or an attempt that stopped early, may have left it with Temp's.
 * - A run root or level that exists already must be owned by SYSTEM, Administrators or the account
 *   sumac logs on with: its owner can always rewrite its DACL (MS-DTYP 2.5.3.2), and so rename or
 *   replace what sumac puts in it.
 * - Once the DACL is in place, the entries of the run root and of the run directory must be owned
 *   by the same and be no links: SET_INFO does not reach existing children, and an entry that got
 *   in before the DACL (a `node_modules` or `package.json` in the root, which Node looks up from
 *   the run directory) is owned by whoever made it.
 * - A junction or symbolic link in the place of the run root or a level is refused, never followed.
 *
 * The account's SID is the owner of a directory it has just created (Windows makes the creator,
 * or for an administrator often the Administrators group, the owner).
 *
 * A server without security descriptors (STATUS_NOT_SUPPORTED, STATUS_INVALID_INFO_CLASS or
 * STATUS_INVALID_PARAMETER), or one that keeps another DACL than the one set, is used without
 * them, and `warn` says so; any other failure, access denied included, is an error.
 */
import { randomBytes } from "node:crypto";
import { RemotePathRefusedError } from "../remote-errors.ts";
import {
  SdControl,
  WellKnownSid,
  privateDirectoryDacl,
  type Ace,
  type Acl,
  type SecurityDescriptor,
} from "./codec/security-descriptor.ts";
import { NtStatus, SmbStatusError, statusName } from "./codec/status.ts";
import { isMissing } from "./client/tree-io.ts";

/** Options of every call on a share. */
export interface ShareCall {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/** What making a run directory private needs of a share (sumac's SmbTree has it all). */
export interface RunDirShare {
  mkdirp(path: string, options: ShareCall): Promise<void>;
  mkdir(path: string, options: ShareCall): Promise<{ created: boolean; reparsePoint: boolean }>;
  /** The entries of a directory; `reparsePoint` from their attributes (MS-FSCC 2.6). */
  list(path: string, options: ShareCall): Promise<readonly { name: string; reparsePoint: boolean }[]>;
  removeTree(path: string, options: ShareCall): Promise<void>;
  getSecurity(
    path: string,
    options: ShareCall & { owner?: boolean; dacl?: boolean },
  ): Promise<SecurityDescriptor>;
  setDacl(path: string, dacl: Acl, options: ShareCall & { protected: boolean }): Promise<void>;
}

/** The statuses of a server that has no security descriptors to read or set. */
const UNSUPPORTED: ReadonlySet<number> = new Set([
  NtStatus.NOT_SUPPORTED,
  NtStatus.INVALID_INFO_CLASS,
  NtStatus.INVALID_PARAMETER,
]);

function unsupported(err: unknown): err is SmbStatusError {
  return err instanceof SmbStatusError && UNSUPPORTED.has(err.status);
}

function sameAce(a: Ace, b: Ace): boolean {
  if (a.type === "other" || b.type === "other") return false;
  return a.type === b.type && a.flags === b.flags && a.mask === b.mask && a.sid === b.sid;
}

/** True when `sd` holds exactly sumac's private DACL, protected. */
export function hasPrivateDacl(sd: SecurityDescriptor): boolean {
  const want = privateDirectoryDacl().aces;
  const got = sd.dacl?.aces ?? [];
  return (
    (sd.control & SdControl.DACL_PROTECTED) !== 0 &&
    got.length === want.length &&
    got.every((ace, i) => want[i] !== undefined && sameAce(ace, want[i]))
  );
}

/**
 * A DACL as one line: `protected: (A;0x3;0x1f01ff;S-1-5-18) ...` (A allowed, D denied; flags,
 * mask, SID), `inheriting: ...` when not protected, or what stands for none and NULL.
 */
export function describeDacl(sd: SecurityDescriptor): string {
  if (sd.dacl === undefined) return "none";
  if (sd.dacl === null) return "NULL (everyone, full control)";
  const aces = sd.dacl.aces.map((a) =>
    a.type === "other"
      ? `(type ${a.aceType})`
      : `(${a.type === "allowed" ? "A" : "D"};0x${a.flags.toString(16)};0x${a.mask.toString(16)};${a.sid})`,
  );
  const kind = (sd.control & SdControl.DACL_PROTECTED) !== 0 ? "protected" : "inheriting";
  return `${kind}: ${aces.join(" ") || "(no ACE: no access)"}`;
}

/** Share paths (with `\`) of a private directory: the run root, and the levels under it. */
export interface PrivateDirPaths {
  /** The run root, share-relative (`Temp\sumac`). */
  readonly root: string;
  /** The names from the run root down to the directory: `[run]`, `["logs", run]`. */
  readonly levels: readonly string[];
  /** Made in the last level once it is private (they inherit its DACL). */
  readonly subdirs?: readonly string[];
}

/**
 * Creates `root\level1\...\levelN` on `share`, its parents and the run root as needed, and makes
 * every level private as this module's comment says; `subdirs` are then made in the last one.
 * `label` turns a share path into the path to show. Rejects with PATH_REFUSED for a run root or
 * level someone else owns, a link in the place of either, an entry of the run root or of the last
 * level that someone else owns or that is a link.
 *
 * An existing middle level (`logs`) is owner-checked and gets the DACL again, but its entries
 * are not listed: they are other runs' directories, none of them on this path, and the list
 * only grows. The run root's entries are, because Node looks up `node_modules` and
 * `package.json` in the parents of the directory it runs from.
 */
export async function preparePrivateDir(
  share: RunDirShare,
  paths: PrivateDirPaths,
  options: ShareCall,
  label: (path: string) => string,
  warn: (line: string) => void,
): Promise<void> {
  const p = privacy(share, options, label, warn);
  await p.prepareRoot(paths.root);
  let path = paths.root;
  for (const [i, name] of paths.levels.entries()) {
    path = `${path}\\${name}`;
    const made = await share.mkdir(path, p.next());
    p.refuseLink(path, made);
    if (made.created) p.learn(await p.protect(path));
    else {
      // A retry's, or an earlier run's (`logs`): it must still be sumac's, and gets the DACL
      // again in case what made it stopped before setting it, or was an older sumac.
      await p.checkOwner(path, await p.ownerOf(path));
      await p.protect(path);
    }
    // Once the DACL is set nobody else can add to it; what is there came before.
    if (made.created || i === paths.levels.length - 1) await p.checkEntries(path);
  }
  for (const sub of paths.subdirs ?? []) await share.mkdirp(`${path}\\${sub}`, p.next());
}

/**
 * Creates `root\run` on `share` (share-relative paths with `\`) and `subdirs` in it, as
 * {@link preparePrivateDir} with the one level `run`.
 */
export async function prepareRunDir(
  share: RunDirShare,
  paths: { readonly root: string; readonly dir: string; readonly subdirs: readonly string[] },
  options: ShareCall,
  label: (path: string) => string,
  warn: (line: string) => void,
): Promise<void> {
  if (!paths.dir.startsWith(`${paths.root}\\`))
    throw new RemotePathRefusedError(`${label(paths.dir)} is not inside the run root ${label(paths.root)}`);
  const levels = paths.dir.slice(paths.root.length + 1).split("\\");
  await preparePrivateDir(share, { root: paths.root, levels, subdirs: paths.subdirs }, options, label, warn);
}

/** The steps of one preparation, sharing its deadline and what it learnt of the server. */
function privacy(
  share: RunDirShare,
  options: ShareCall,
  label: (path: string) => string,
  warn: (line: string) => void,
) {
  // One deadline for the whole preparation: each request gets what is left of it.
  const deadline = performance.now() + options.timeoutMs;
  const next = (): ShareCall => ({
    timeoutMs: Math.max(1, Math.ceil(deadline - performance.now())),
    signal: options.signal,
  });
  let canQuery = true;
  let ours: string | undefined;

  /** The owner of `path`, or undefined once the server has said it has no security to read. */
  const ownerOf = async (path: string): Promise<string | undefined> => {
    if (!canQuery) return undefined;
    try {
      return (await share.getSecurity(path, { ...next(), owner: true })).owner;
    } catch (err) {
      if (!unsupported(err)) throw err;
      canQuery = false;
      warn(
        `${label(path)}: the server reads no security descriptors (${statusName(err.status)}): the owners of ` +
          "the run root and the run directory go unchecked, the run root's entries are not checked for " +
          "other owners or links, and no DACL set is read back",
      );
      return undefined;
    }
  };

  /** Sets the private DACL on `path` and reads it back; the owner read, when there is one. */
  const protect = async (path: string): Promise<string | undefined> => {
    const left = `${label(path)} goes without sumac's private DACL, and local users may be able to create files in it`;
    try {
      await share.setDacl(path, privateDirectoryDacl(), { ...next(), protected: true });
    } catch (err) {
      if (!unsupported(err)) throw err;
      warn(`${label(path)}: the server sets no security descriptors (${statusName(err.status)}); ${left}`);
      return ownerOf(path);
    }
    if (!canQuery) return undefined;
    let sd: SecurityDescriptor;
    try {
      sd = await share.getSecurity(path, { ...next(), owner: true, dacl: true });
    } catch (err) {
      if (!unsupported(err)) throw err;
      return ownerOf(path);
    }
    if (!hasPrivateDacl(sd))
      warn(`${label(path)}: the server answered success but kept another DACL, ${describeDacl(sd)}; ${left}`);
    return sd.owner;
  };

  /** The account's SID, from a directory it creates for the purpose when none was created yet. */
  const ourSid = async (root: string): Promise<string | undefined> => {
    if (ours !== undefined) return ours;
    const probe = `${root}\\.sumac-owner-${randomBytes(6).toString("hex")}`;
    const made = await share.mkdir(probe, next());
    try {
      if (made.created && !made.reparsePoint) ours = await ownerOf(probe);
    } finally {
      // An empty directory of ours left behind does no harm; the answer above is what matters.
      if (made.created) await share.removeTree(probe, next()).catch(() => undefined);
    }
    return ours;
  };

  let probeRoot = "";
  /** Refuses `path` unless SYSTEM, Administrators or this account owns it. */
  const checkOwner = async (path: string, owner: string | undefined): Promise<void> => {
    if (owner === undefined) return;
    if (owner === WellKnownSid.LOCAL_SYSTEM || owner === WellKnownSid.BUILTIN_ADMINISTRATORS) return;
    const account = await ourSid(probeRoot);
    if (owner === account) return;
    throw new RemotePathRefusedError(
      `${label(path)} is owned by ${owner}, not by SYSTEM, Administrators or the account sumac logs on ` +
        `with (${account ?? "unknown"}): its owner can change what sumac puts there; remove it or choose another run root`,
    );
  };

  const refuseLink = (path: string, made: { reparsePoint: boolean }): void => {
    if (made.reparsePoint)
      throw new RemotePathRefusedError(
        `${label(path)} is a junction or symbolic link; refusing to follow it`,
      );
  };

  /**
   * Refuses an entry of `dir` that is a link or that someone else owns. An entry gone since the
   * listing (another run's directory being removed, its owner probe) is no concern.
   */
  const checkEntries = async (dir: string): Promise<void> => {
    if (!canQuery) return;
    for (const entry of await share.list(dir, next())) {
      const path = `${dir}\\${entry.name}`;
      refuseLink(path, entry);
      let owner: string | undefined;
      try {
        owner = await ownerOf(path);
      } catch (err) {
        if (isMissing(err)) continue;
        throw err;
      }
      await checkOwner(path, owner);
    }
  };

  /**
   * Makes the run root (and its parents) or takes the existing one when SYSTEM, Administrators
   * or this account owns it; either way it gets the private DACL, and then its entries are checked:
   * one that got in before the DACL (now, or under an older sumac that left the root with the
   * DACL of Temp) is owned by whoever made it.
   */
  const prepareRoot = async (root: string): Promise<void> => {
    probeRoot = root;
    const parent = root.includes("\\") ? root.slice(0, root.lastIndexOf("\\")) : "";
    if (parent !== "") await share.mkdirp(parent, next());
    const made = await share.mkdir(root, next());
    refuseLink(root, made);
    if (made.created) ours = await protect(root);
    else {
      await checkOwner(root, await ownerOf(root));
      await protect(root);
    }
    await checkEntries(root);
  };

  return {
    next,
    ownerOf,
    protect,
    checkOwner,
    refuseLink,
    checkEntries,
    prepareRoot,
    /** Takes the owner of a directory this preparation made as the account's SID. */
    learn: (owner: string | undefined): void => {
      ours = owner ?? ours;
    },
  };
}
