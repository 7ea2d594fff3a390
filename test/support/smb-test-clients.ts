/**
 * Clients that tests point at the `windows-standin` container to see what its smbd accepts: an
 * impacket client that stops signing after it authenticates, and an smbclient session held open
 * while the server's own `smbstatus` is read.
 */
import { spawn } from "node:child_process";
import { waitUntil } from "./container.ts";
import type { WindowsStandin } from "./windows-standin.ts";

/**
 * A client that authenticates and then stops signing: Samba's own smbclient cannot be made to (on
 * SMB2 and later it signs whenever the server requires it, whatever `client signing` says), so this
 * is impacket (Debian's python3-impacket 0.10). It logs in twice: once signing when impacket thinks
 * it must (the control), once turning signing off after the session setup, and reports what the
 * server said to each tree connect. Arguments: host port user domain dialect (`311` or `210`); the
 * password comes on stdin.
 */
export const unsignedClient = `
import json, sys
try:
    from impacket.smbconnection import SMBConnection, SessionError
    from impacket.smb3structs import SMB2_DIALECT_21, SMB2_DIALECT_311
except ImportError as e:
    print(json.dumps({"error": "python3-impacket is missing: " + str(e)}))
    sys.exit(5)
host, port, user, domain, dialect = sys.argv[1:6]
preferred = {"311": SMB2_DIALECT_311, "210": SMB2_DIALECT_21}[dialect]
password = sys.stdin.readline().rstrip("\\n")

def attempt(sign):
    conn = SMBConnection(host, host, sess_port=int(port), preferredDialect=preferred, timeout=10)
    smb3 = conn.getSMBServer()
    if preferred == SMB2_DIALECT_311:
        # impacket 0.10 does not seed the session's pre-auth integrity hash from the connection's
        # (fixed in 0.11); without this its SMB 3.1.1 signatures are wrong.
        smb3._Session["PreauthIntegrityHashValue"] = smb3._Connection["PreauthIntegrityHashValue"]
    conn.login(user, password, domain)
    result = {"dialect": "%x" % conn.getDialect(), "signingActivated": smb3._Session["SigningActivated"]}
    if not sign:
        smb3._Session["SigningActivated"] = False  # every request from here on goes unsigned
    try:
        conn.connectTree("ADMIN$")
        result["treeConnect"] = "STATUS_SUCCESS"
    except SessionError as e:
        result["treeConnect"] = e.getErrorString()[0]
    try:
        conn.close()
    except Exception:
        pass
    return result

print(json.dumps({"signed": attempt(True), "unsigned": attempt(False)}))
`;

/** What `smbstatus --json` (Samba 4.16+) says about sessions and tree connects; only what is read. */
export interface SmbStatus {
  sessions?: Record<
    string,
    {
      username: string;
      session_dialect: string;
      signing: { cipher: string; degree: string };
      encryption: { cipher: string; degree: string };
    }
  >;
  tcons?: Record<
    string,
    {
      service: string;
      session_id: string;
      signing: { cipher: string; degree: string };
      encryption: { cipher: string; degree: string };
    }
  >;
}

/** What {@link holdSession} saw. */
export interface HeldSession {
  /** smbstatus once the tree connect to ADMIN$ showed and `ready` passed. */
  status: SmbStatus;
  /** smbclient's exit code after `exit`. */
  exitCode: number | null;
  /** smbclient's stdout and stderr. */
  out: string;
}

/**
 * Runs smbclient against `ADMIN$` with `args` (target, port, `-A` file and options), writes
 * `commands` to its stdin and, while the session lasts, reads `smbstatus --json` in the container
 * until a tree connect to ADMIN$ shows and `ready` (if given) passes; then ends the session.
 */
export async function holdSession(
  standin: WindowsStandin,
  args: readonly string[],
  commands: string,
  timeoutMs: number,
  ready?: (status: SmbStatus, out: string) => Promise<void>,
): Promise<HeldSession> {
  const child = spawn("smbclient", args, { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const closed = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    child.stdin.write(commands);
    let status: SmbStatus = {};
    await waitUntil(
      "a tree connect to ADMIN$ in smbstatus",
      async () => {
        const r = await standin.exec("smbstatus --json");
        if (r.exitCode !== 0) throw new Error(`smbstatus: ${r.stderr}`);
        status = JSON.parse(r.stdout) as SmbStatus;
        if (!Object.values(status.tcons ?? {}).some((t) => t.service === "ADMIN$")) {
          throw new Error(`no tree connect to ADMIN$ yet (smbclient said: ${out.trim() || "nothing"})`);
        }
        await ready?.(status, out);
      },
      timeoutMs,
    );
    child.stdin.end("exit\n");
    return { status, exitCode: await closed, out };
  } finally {
    clearTimeout(killer);
    child.kill("SIGKILL");
  }
}
