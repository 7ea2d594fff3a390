"""scm-peer: an SMB server with ADMIN$ and IPC$ whose \\PIPE\\svcctl creates and runs services.

A stand-in for the part of a Windows host that PsExec-style deployment uses: upload a program to
ADMIN$ (C:\\Windows), then create, start, query, stop and delete a service for it over MS-SCMR.
Samba cannot create services, hence this peer on impacket's SMB server (SMB 2.0.2, no signing;
Samba covers SMB3 and signing in another image).

The only account is read at start from a credentials file (JSON: user, password, domain) that
the test copies in with mode 0600 and that is deleted once read: the password is never in argv,
in the environment or in the image. Logs go to stdout, one line per RPC call.
"""

import argparse
import configparser
import json
import logging
import os
import re
import secrets
import signal
import sys
import threading

from impacket import ntlm, smb, smb3structs as smb2, smbserver
from impacket.nt_errors import (STATUS_ACCESS_DENIED, STATUS_NO_SUCH_FILE, STATUS_NOT_SUPPORTED,
                                 STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS)

import rpc_pipe
from services import ServiceDatabase
from svcctl import Svcctl

LOG = logging.getLogger("scm-peer")


class HideNtlmResponses(logging.Filter):
    """impacket logs every client's NTLM response in John the Ripper's format (user::domain:...):
    an offline-crackable secret that must not reach the logs."""

    pattern = re.compile(r"^[^\s:]*::[^\s:]*:")

    def filter(self, record):
        return not self.pattern.match(str(record.msg))


def read_credentials(path):
    try:
        with open(path, encoding="utf-8") as f:
            creds = json.load(f)
    except OSError as err:
        sys.exit("scm-peer: cannot read the credentials file %s: %s" % (path, err.strerror))
    except ValueError as err:
        sys.exit("scm-peer: the credentials file %s is not JSON: %s" % (path, err))
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    for key in ("user", "password", "domain"):
        if not isinstance(creds.get(key), str) or not creds[key]:
            sys.exit("scm-peer: the credentials file lacks a non-empty string '%s'" % key)
    return creds


def require_authentication(server):
    """Make a failed login keep the client out, which impacket 0.10's server does not do.

    Its SMB2 SESSION_SETUP marks the connection authenticated after any message, a refused
    AUTHENTICATE included, and it checks authentication only on the first command of a compound
    request; its SMB1 SESSION_SETUP_ANDX grants access without checking anything. So: SMB1 is
    refused outright (Windows with SMB1 disabled does the same), a session setup that does not
    succeed leaves the connection unauthenticated, and every other SMB2 command is checked.
    """
    handlers = server._SMBSERVER__smb2Commands  # no public accessor; hookSmb2Command replaces

    def refuse_smb1(_conn_id, _server, _command, packet, *_trans):
        return [smb.SMBCommand(packet["Command"])], None, STATUS_NOT_SUPPORTED

    for code in list(server._SMBSERVER__smbCommands):
        server.hookSmbCommand(code, refuse_smb1)

    original_setup = handlers[smb2.SMB2_SESSION_SETUP]

    def session_setup(conn_id, smb_server, packet):
        answer, packets, status = original_setup(conn_id, smb_server, packet)
        if status != STATUS_SUCCESS:
            conn = smb_server.getConnectionData(conn_id, checkStatus=False)
            conn["Authenticated"] = False
            smb_server.setConnectionData(conn_id, conn)
        return answer, packets, status

    server.hookSmb2Command(smb2.SMB2_SESSION_SETUP, session_setup)

    def guard(original):
        def checked(conn_id, smb_server, packet):
            if not smb_server.getConnectionData(conn_id, checkStatus=False).get("Authenticated"):
                LOG.info("SMB2 command 0x%02x refused: the session is not authenticated",
                         packet["Command"])
                return [smb2.SMB2Error()], None, STATUS_ACCESS_DENIED
            return original(conn_id, smb_server, packet)
        return checked

    for code, original in list(handlers.items()):
        if code not in (smb2.SMB2_NEGOTIATE, smb2.SMB2_SESSION_SETUP):
            server.hookSmb2Command(code, guard(original))


def no_security_info(server):
    """Answer STATUS_NOT_SUPPORTED to QUERY_INFO and SET_INFO of security descriptors.

    impacket 0.10 answers a query of a security descriptor with ACCESS_DENIED and a set with a
    SUCCESS that keeps nothing. A file server without security descriptors says it does not
    support them, and sumac then goes on without the run directory's private DACL and says so (a
    Windows server has them: docs/windows.md).
    """
    handlers = server._SMBSERVER__smb2Commands

    def wrap(code, parse):
        original = handlers[code]

        def answer(conn_id, smb_server, packet):
            if parse(packet["Data"])["InfoType"] == smb2.SMB2_0_INFO_SECURITY:
                return [smb2.SMB2Error()], None, STATUS_NOT_SUPPORTED
            return original(conn_id, smb_server, packet)
        server.hookSmb2Command(code, answer)

    wrap(smb2.SMB2_QUERY_INFO, smb2.SMB2QueryInfo)
    wrap(smb2.SMB2_SET_INFO, smb2.SMB2SetInfo)


def close_whatever_the_name(server):
    """Let CLOSE succeed when the file's name is gone by then.

    impacket 0.10's CLOSE closes the descriptor and then looks the file up by its name for the
    answer's attributes: a file renamed or deleted by another program while it was open (the
    agent deletes agent-cert.json as soon as it appears) makes it answer
    STATUS_OBJECT_NAME_NOT_FOUND and keep the handle. Windows' CLOSE of an open handle succeeds.
    """
    original = server._SMBSERVER__smb2Commands[smb2.SMB2_CLOSE]

    def close(conn_id, smb_server, packet):
        answer, packets, status = original(conn_id, smb_server, packet)
        if status in (STATUS_OBJECT_NAME_NOT_FOUND, STATUS_NO_SUCH_FILE):
            conn = smb_server.getConnectionData(conn_id, checkStatus=False)
            conn["OpenedFiles"].pop(smb2.SMB2Close(packet["Data"])["FileID"].getData(), None)
            smb_server.setConnectionData(conn_id, conn)
            status = STATUS_SUCCESS
        return answer, packets, status
    server.hookSmb2Command(smb2.SMB2_CLOSE, close)


def build_smb_server(args, creds):
    config = configparser.ConfigParser()
    config.add_section("global")
    config.set("global", "server_name", args.server_name)
    config.set("global", "server_os", "Windows")
    config.set("global", "server_domain", creds["domain"])
    config.set("global", "log_file", "None")
    config.set("global", "credentials_file", "")
    # A fresh server challenge per run instead of impacket's fixed default.
    config.set("global", "challenge", secrets.token_hex(8))
    config.set("global", "SMB2Support", "True")
    config.set("global", "anonymous_logon", "False")
    for name, path, stype, comment in (("IPC$", "", "3", "Remote IPC"),
                                       ("ADMIN$", args.admin_dir, "0", "Remote Admin")):
        config.add_section(name)
        config.set(name, "comment", comment)
        config.set(name, "read only", "no")
        config.set(name, "share type", stype)
        config.set(name, "path", path)
    server = smbserver.SMBSERVER(("0.0.0.0", args.port), config_parser=config)
    server.processConfigFile()
    nthash = ntlm.compute_nthash(creds["password"]).hex()
    server.addCredential(creds["user"], 500, "aad3b435b51404eeaad3b435b51404ee", nthash)
    no_security_info(server)
    close_whatever_the_name(server)
    require_authentication(server)
    # MS-SRVS and MS-WKST answer share and workstation queries that clients send on their own.
    srvs, wkst = smbserver.SRVSServer(), smbserver.WKSTServer()
    srvs.setServerConfig(config)
    srvs.processConfigFile()
    for helper, pipe in ((srvs, "srvsvc"), (wkst, "wkssvc")):
        helper.daemon = True
        helper.start()
        server.registerNamedPipe(pipe, ("127.0.0.1", helper.getListenPort()))
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=445)
    parser.add_argument("--admin-dir", default="/windows")
    parser.add_argument("--log-dir", default="/var/log/scm-peer")
    parser.add_argument("--credentials", default="/run/scm-peer/credentials.json")
    parser.add_argument("--server-name", default="SCMPEER")
    args = parser.parse_args()

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    handler.addFilter(HideNtlmResponses())
    logging.basicConfig(level=logging.INFO, handlers=[handler])

    creds = read_credentials(args.credentials)
    os.makedirs(args.log_dir, exist_ok=True)
    db = ServiceDatabase(args.admin_dir, args.log_dir)
    pipe = rpc_pipe.PipeServer(Svcctl(db))
    pipe.serve_in_background()
    smb = build_smb_server(args, creds)
    smb.registerNamedPipe("svcctl", ("127.0.0.1", pipe.port))

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    threading.Thread(target=smb.serve_forever, name="smb", daemon=True).start()
    LOG.info("scm-peer: ready on port %d, ADMIN$=%s, user %s\\%s", args.port, args.admin_dir,
             creds["domain"], creds["user"])
    while not done.wait(1.0):
        pass
    LOG.info("scm-peer: stopping services and exiting")
    db.stop_all()
    smb.shutdown()
    pipe.shutdown()


if __name__ == "__main__":
    main()
