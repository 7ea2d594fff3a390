/**
 * Making a Windows target's run directory private. It lies under `C:\Windows\Temp` by default,
 * where ordinary users may create files and folders in any subfolder (an inherited ACE), and a
 * service running as LocalSystem later runs what sumac put there: a local user who could plant or
 * swap a file in it would run code as SYSTEM. So:
 *
 * - The run directory, and the run root when sumac creates it, get a protected DACL (MS-DTYP
 *   2.4.6 SE_DACL_PROTECTED): full control to SYSTEM and Administrators, inherited by everything
 *   in it, nothing from the parent. It is read back: a server may answer success and keep less.
 * - A run root that exists already must be owned by SYSTEM, Administrators or the account sumac
 *   logs on with: its owner can always rewrite its DACL (MS-DTYP 2.5.3.2), and so rename or
 *   replace the run directory in it. The same holds for a run directory that exists already
 *   (a retry), and for everything in the run directory once it is protected: a file that got in
 *   before the DACL was set is owned by whoever made it.
 * - A junction or symbolic link in the place of either is refused, never followed.
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

/** Options of every call on a share. */
export interface ShareCall {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/** What making a run directory private needs of a share (sumac's SmbTree has it all). */
export interface RunDirShare {
  mkdirp(path: string, options: ShareCall): Promise<void>;
  mkdir(path: string, options: ShareCall): Promise<{ created: boolean; reparsePoint: boolean }>;
  list(path: string, options: ShareCall): Promise<readonly { name: string }[]>;
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

/**
 * Creates `root\run` on `share` (share-relative paths with `\`), its parents and the run root as
 * needed, and makes it private as this module's comment says. `label` turns a share path into
 * the path to show. Rejects with PATH_REFUSED for a run root or run directory someone else owns,
 * a link in their place, or an entry of the run directory someone else owns.
 */
export async function prepareRunDir(
  share: RunDirShare,
  paths: { readonly root: string; readonly dir: string; readonly subdirs: readonly string[] },
  options: ShareCall,
  label: (path: string) => string,
  warn: (line: string) => void,
): Promise<void> {
  const { root, dir } = paths;
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
        `${label(path)}: the server reads no security descriptors (${statusName(err.status)}): ` +
          "the owners of the run root and run directory go unchecked, and no DACL set is read back",
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
  const ourSid = async (): Promise<string | undefined> => {
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

  /** Refuses `path` unless SYSTEM, Administrators or this account owns it. */
  const checkOwner = async (path: string, owner: string | undefined): Promise<void> => {
    if (owner === undefined) return;
    if (owner === WellKnownSid.LOCAL_SYSTEM || owner === WellKnownSid.BUILTIN_ADMINISTRATORS) return;
    const account = await ourSid();
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

  const parent = root.includes("\\") ? root.slice(0, root.lastIndexOf("\\")) : "";
  if (parent !== "") await share.mkdirp(parent, next());
  const rootMade = await share.mkdir(root, next());
  refuseLink(root, rootMade);
  const rootOwner = rootMade.created ? await protect(root) : await ownerOf(root);
  if (rootMade.created) ours = rootOwner;

  const dirMade = await share.mkdir(dir, next());
  refuseLink(dir, dirMade);
  if (dirMade.created) {
    ours = (await protect(dir)) ?? ours;
    try {
      if (!rootMade.created) await checkOwner(root, rootOwner);
    } catch (err) {
      // Best effort: the directory is ours and empty, but it lies in a run root that is not.
      await share.removeTree(dir, next()).catch(() => undefined);
      throw err;
    }
  } else {
    if (!rootMade.created) await checkOwner(root, rootOwner);
    // A retry's run directory: it must still be sumac's, and gets the DACL again in case the
    // attempt that made it stopped before setting it.
    await checkOwner(dir, await ownerOf(dir));
    await protect(dir);
  }
  // Once the DACL is set nobody else can add to the directory; what is there came before.
  if (canQuery) {
    for (const entry of await share.list(dir, next())) {
      const path = `${dir}\\${entry.name}`;
      await checkOwner(path, await ownerOf(path));
    }
  }
  for (const sub of paths.subdirs) await share.mkdirp(`${dir}\\${sub}`, next());
}
