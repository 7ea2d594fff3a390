/**
 * The account an SMB target logs on with, as a job writes it: `DOMAIN\user` (down-level logon
 * name), `user@domain`, or a bare `user` whose domain is the default given (a local account: the
 * server's own name, or empty, which NTLM servers take as their own).
 */
import { SmbAccountError } from "./errors.ts";

/** The user and domain NTLM sends (MS-NLMP 2.2.1.3 UserName, DomainName). */
export interface SmbAccount {
  readonly user: string;
  readonly domain: string;
}

/** The longest user or domain name accepted (Windows' own limits are lower). */
const MAX_PART = 256;

// C0 and C1 control characters, and DEL.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Parses an account name. Throws {@link SmbAccountError} (CONFIG_INVALID) for an empty user or
 * domain part, a control character, or a part over 256 characters. Only the account text is ever
 * quoted in the error, never a password.
 *
 * @example
 * parseAccount("CORP\\deploy"); // { user: "deploy", domain: "CORP" }
 * parseAccount("deploy@corp.example"); // { user: "deploy", domain: "corp.example" }
 * parseAccount("deploy", "WEB01"); // { user: "deploy", domain: "WEB01" }
 */
export function parseAccount(text: string, defaultDomain = ""): SmbAccount {
  const refuse = (why: string): never => {
    throw new SmbAccountError(`the SMB account ${JSON.stringify(text)} ${why}`);
  };
  if (CONTROL.test(text) || CONTROL.test(defaultDomain)) refuse("has a control character");
  let user: string;
  let domain: string;
  const slash = text.indexOf("\\");
  if (slash >= 0) {
    domain = text.slice(0, slash);
    user = text.slice(slash + 1);
    if (user.includes("\\")) refuse("has more than one backslash");
    if (domain === "") refuse("has an empty domain before its backslash");
  } else if (text.includes("@")) {
    const at = text.lastIndexOf("@");
    user = text.slice(0, at);
    domain = text.slice(at + 1);
    if (domain === "") refuse("has an empty domain after its @");
  } else {
    user = text;
    domain = defaultDomain;
  }
  if (user === "") refuse("has an empty user name");
  if (user.length > MAX_PART || domain.length > MAX_PART) refuse(`has a part over ${MAX_PART} characters`);
  return { user, domain };
}
