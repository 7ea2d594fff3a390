/**
 * Paths as the client takes them and as SMB2 sends them: relative to the share, components
 * separated by `\` (MS-SMB2 2.2.13: the name in CREATE has no leading separator). Callers may write
 * `/` or `\`; `..` (which would climb out of what the caller meant), NUL and other control
 * characters, and `:` (an alternate data stream, MS-FSCC 2.1.5.3: `dir::$INDEX_ALLOCATION` is the
 * directory itself, `file:x` another content than the file's) are refused.
 */
import { SmbConfigError } from "./errors.ts";

/** The longest path sent, in characters (MS-FSCC 2.1.5: 32,767 for a full path). */
const MAX_PATH_CHARS = 32_000;

/**
 * The wire form of a share-relative path: "" for the share's root.
 *
 * @example
 * wirePath("/Temp/sumac/agent.zip") // "Temp\\sumac\\agent.zip"
 */
export function wirePath(path: string): string {
  if (/[\0-\x1f]/.test(path)) throw new SmbConfigError("an SMB path with a control character");
  if (path.includes(":"))
    throw new SmbConfigError(`an SMB path with ':' (a stream): ${JSON.stringify(path)}`);
  const parts = path.split(/[\\/]+/).filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new SmbConfigError(`an SMB path with "..": ${JSON.stringify(path)}`);
  const out = parts.join("\\");
  if (out.length > MAX_PATH_CHARS) throw new SmbConfigError(`an SMB path of ${out.length} characters`);
  return out;
}

/** The parent of a wire path ("" for a name at the root) and its last component. */
export function splitWirePath(path: string): { parent: string; name: string } {
  const at = path.lastIndexOf("\\");
  return at < 0 ? { parent: "", name: path } : { parent: path.slice(0, at), name: path.slice(at + 1) };
}

/** A wire path under `parent` ("" is the root). */
export function joinWirePath(parent: string, name: string): string {
  return parent === "" ? name : `${parent}\\${name}`;
}
