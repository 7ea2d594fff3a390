#!/usr/bin/python3
"""A scripted SMB + MS-SCMR client for the scm-peer tests, on Debian's python3-impacket.

Run with /usr/bin/python3 (where Debian installs impacket). It reads one JSON document on stdin,
so that the password never appears in argv:

  {"host": "127.0.0.1", "port": 445, "user": "u", "password": "p", "domain": "D",
   "timeout_s": 10, "steps": [{"op": "upload", ...}, {"op": "open_scm", "as": "scm"}, ...]}

and prints one JSON document on stdout: {"login": {...}, "steps": [{...}, ...]}. All steps run in
one SMB session over one svcctl binding. A step that the server refuses records its Win32 error
code (or the RPC fault code) and the script goes on; a failed login or a broken connection ends
the script with that recorded ("share_after_failed_login": true then also tries ADMIN$ on the
refused session and records the answer). Steps:

  upload     path (under ADMIN$, backslashes), content_b64: creates parent directories
  open_scm   as, [access]                          ROpenSCManagerW
  create     scm, name, binary_path, as, [display_name, start_type, access]   RCreateServiceW
  open       scm, name, as, [access]                ROpenServiceW
  start      handle                                 RStartServiceW
  query      handle                                 RQueryServiceStatus
  stop       handle                                 RControlService(SERVICE_CONTROL_STOP)
  delete     handle                                 RDeleteService
  close      handle                                 RCloseServiceHandle
  wait       handle, state, [timeout_ms]            RQueryServiceStatus until state
  handle     as, hex                                names a raw 20-byte handle (for bad handles)
  enum       scm, [service_type, service_state]     REnumServicesStatusW through impacket's own
                                                    hREnumServicesStatusW (sizes, then reads):
                                                    services [{name, display_name, status}]
  enum       scm, buf_size, [resume_index, ...]     one REnumServicesStatusW with that cbBufSize
                                                    (resume_index null or absent: NULL): the
                                                    answer's counts, and the buffer read here
                                                    by MS-SCMR 2.2.11's layout
  query_config  handle, [buf_size]                  RQueryServiceConfigW through impacket's
                                                    hRQueryServiceConfigW, or one call with
                                                    that cbBufSize: config, bytes_needed

A handle is named by "as" and used by that name; a closed handle keeps its bytes under its name.
"""

import base64
import json
import signal
import struct
import sys
import time

from impacket import nt_errors
from impacket.dcerpc.v5 import scmr, transport
from impacket.dcerpc.v5.dtypes import NULL
from impacket.dcerpc.v5.rpcrt import DCERPCException
from impacket.nmb import NetBIOSError
from impacket.smbconnection import SessionError, SMBConnection

ACCESS_ALL_SCM, ACCESS_ALL_SERVICE = 0xF003F, 0xF01FF
# The Win32 service types and every state: what `sc query type= service state= all` lists.
SERVICE_WIN32, SERVICE_STATE_ALL = 0x30, 0x3
ENUM_ENTRY = struct.Struct("<II7I")  # ENUM_SERVICE_STATUSW in a buffer (MS-SCMR 2.2.11)


def status_of(resp, field):
    s = resp[field]
    return {"type": s["dwServiceType"], "state": s["dwCurrentState"],
            "controls_accepted": s["dwControlsAccepted"], "win32_exit_code": s["dwWin32ExitCode"],
            "service_exit_code": s["dwServiceSpecificExitCode"]}


def _wide(value):
    return value.rstrip("\0") if isinstance(value, str) else ""


def config_of(resp):
    c = resp["lpServiceConfig"]
    return {"service_type": c["dwServiceType"], "start_type": c["dwStartType"],
            "error_control": c["dwErrorControl"], "binary_path": _wide(c["lpBinaryPathName"]),
            "load_order_group": _wide(c["lpLoadOrderGroup"]), "tag_id": c["dwTagId"],
            "dependencies": _wide(c["lpDependencies"]),
            "start_name": _wide(c["lpServiceStartName"]),
            "display_name": _wide(c["lpDisplayName"])}


def read_enum_buffer(buf, count):
    """The entries of an REnumServicesStatusW buffer, read by the spec's layout (not impacket's):
    offsets from the buffer's start to NUL-terminated UTF-16LE names."""
    def string_at(offset):
        end = offset
        while buf[end:end + 2] != b"\0\0":
            end += 2
            if end >= len(buf):
                raise ValueError("a name at offset %d runs past the buffer" % offset)
        return buf[offset:end].decode("utf-16-le")

    entries = []
    for i in range(count):
        name_at, display_at, *status = ENUM_ENTRY.unpack_from(buf, i * ENUM_ENTRY.size)
        keys = ("type", "state", "controls_accepted", "win32_exit_code", "service_exit_code")
        entries.append({"name": string_at(name_at), "display_name": string_at(display_at),
                        "status": dict(zip(keys, status))})
    return entries


class Runner:
    def __init__(self, req):
        self.req = req
        self.conn = None
        self.dce = None
        self.handles = {}

    def login(self):
        r = self.req
        self.conn = SMBConnection(r["host"], r["host"], sess_port=int(r["port"]),
                                  timeout=float(r.get("timeout_s", 10)))
        self.conn.login(r["user"], r["password"], r.get("domain", ""))
        return {"ok": True, "dialect": self.conn.getDialect()}

    def rpc(self):
        if self.dce is None:
            pipe = transport.SMBTransport(self.req["host"], int(self.req["port"]), filename=r"\svcctl",
                                          smb_connection=self.conn)
            dce = pipe.get_dce_rpc()
            dce.connect()
            dce.bind(scmr.MSRPC_UUID_SCMR)
            self.dce = dce
        return self.dce

    def call(self, request):
        """ErrorCode and response; an RPC fault is reported as {"fault": status}."""
        resp = self.rpc().request(request, checkError=False)
        return resp["ErrorCode"], resp

    def handle(self, step):
        name = step["handle"]
        if name not in self.handles:
            raise KeyError("no handle named %r" % name)
        return self.handles[name]

    def step(self, step):
        op = step["op"]
        out = {"op": op}
        if op == "upload":
            data = base64.b64decode(step["content_b64"])
            parts = step["path"].strip("\\").split("\\")
            for i in range(1, len(parts)):
                try:
                    self.conn.createDirectory("ADMIN$", "\\".join(parts[:i]))
                except SessionError as err:
                    if err.getErrorCode() != nt_errors.STATUS_OBJECT_NAME_COLLISION:
                        raise
            chunks = [data]
            self.conn.putFile("ADMIN$", "\\".join(parts), lambda n: chunks.pop() if chunks else b"")
            out.update(error_code=0, bytes=len(data))
            return out
        if op == "handle":
            self.handles[step["as"]] = bytes.fromhex(step["hex"])
            out.update(error_code=0)
            return out
        if op == "open_scm":
            r = scmr.ROpenSCManagerW()
            r["lpMachineName"] = "DUMMY\0"
            r["lpDatabaseName"] = "ServicesActive\0"
            r["dwDesiredAccess"] = step.get("access", ACCESS_ALL_SCM)
            code, resp = self.call(r)
            self.handles[step["as"]] = resp["lpScHandle"]
        elif op == "create":
            r = scmr.RCreateServiceW()
            r["hSCManager"] = self.handles[step["scm"]]
            r["lpServiceName"] = step["name"] + "\0"
            r["lpDisplayName"] = step.get("display_name", step["name"]) + "\0"
            r["dwDesiredAccess"] = step.get("access", ACCESS_ALL_SERVICE)
            r["dwServiceType"] = scmr.SERVICE_WIN32_OWN_PROCESS
            r["dwStartType"] = step.get("start_type", scmr.SERVICE_DEMAND_START)
            r["dwErrorControl"] = scmr.SERVICE_ERROR_IGNORE
            r["lpBinaryPathName"] = step["binary_path"] + "\0"
            for field in ("lpLoadOrderGroup", "lpdwTagId", "lpDependencies", "lpServiceStartName",
                          "lpPassword"):
                r[field] = NULL
            code, resp = self.call(r)
            self.handles[step["as"]] = resp["lpServiceHandle"]
        elif op == "open":
            r = scmr.ROpenServiceW()
            r["hSCManager"] = self.handles[step["scm"]]
            r["lpServiceName"] = step["name"] + "\0"
            r["dwDesiredAccess"] = step.get("access", ACCESS_ALL_SERVICE)
            code, resp = self.call(r)
            self.handles[step["as"]] = resp["lpServiceHandle"]
        elif op == "start":
            r = scmr.RStartServiceW()
            r["hService"], r["argc"], r["argv"] = self.handle(step), 0, NULL
            code, _ = self.call(r)
        elif op in ("query", "wait"):
            deadline = time.monotonic() + step.get("timeout_ms", 0) / 1000
            while True:
                r = scmr.RQueryServiceStatus()
                r["hService"] = self.handle(step)
                code, resp = self.call(r)
                out["status"] = status_of(resp, "lpServiceStatus")
                if op == "query" or code or out["status"]["state"] == step["state"]:
                    break
                if time.monotonic() > deadline:
                    out["timed_out"] = True
                    break
                time.sleep(0.05)
        elif op == "stop":
            r = scmr.RControlService()
            r["hService"], r["dwControl"] = self.handle(step), scmr.SERVICE_CONTROL_STOP
            code, resp = self.call(r)
            out["status"] = status_of(resp, "lpServiceStatus")
        elif op == "delete":
            r = scmr.RDeleteService()
            r["hService"] = self.handle(step)
            code, _ = self.call(r)
        elif op == "close":
            r = scmr.RCloseServiceHandle()
            r["hSCObject"] = self.handle(step)
            code, _ = self.call(r)
        elif op == "enum":
            code = self.enum(step, out)
        elif op == "query_config":
            code = self.query_config(step, out)
        else:
            raise ValueError("unknown op %r" % op)
        out["error_code"] = code
        return out

    def enum(self, step, out):
        scm = self.handles[step["scm"]]
        kind = step.get("service_type", SERVICE_WIN32)
        state = step.get("service_state", SERVICE_STATE_ALL)
        if "buf_size" not in step:
            try:
                entries = scmr.hREnumServicesStatusW(self.rpc(), scm, kind, state)
            except scmr.DCERPCSessionError as err:
                return err.get_error_code()
            out["services"] = [{"name": _wide(e["lpServiceName"]),
                                "display_name": _wide(e["lpDisplayName"]),
                                "status": status_of(e, "ServiceStatus")} for e in entries]
            return 0
        r = scmr.REnumServicesStatusW()
        r["hSCManager"], r["dwServiceType"], r["dwServiceState"] = scm, kind, state
        r["cbBufSize"] = step["buf_size"]
        r["lpResumeIndex"] = NULL if step.get("resume_index") is None else step["resume_index"]
        code, resp = self.call(r)
        buf = b"".join(resp["lpBuffer"])
        given = resp.fields["lpResumeIndex"].fields["ReferentID"] != 0
        out.update(bytes_needed=resp["pcbBytesNeeded"], services_returned=resp["lpServicesReturned"],
                   resume_index=resp["lpResumeIndex"] if given else None, bytes=len(buf),
                   services=read_enum_buffer(buf, resp["lpServicesReturned"]))
        return code

    def query_config(self, step, out):
        if "buf_size" not in step:
            try:
                resp = scmr.hRQueryServiceConfigW(self.rpc(), self.handle(step))
            except scmr.DCERPCSessionError as err:
                return err.get_error_code()
            out.update(config=config_of(resp), bytes_needed=resp["pcbBytesNeeded"])
            return 0
        r = scmr.RQueryServiceConfigW()
        r["hService"], r["cbBufSize"] = self.handle(step), step["buf_size"]
        code, resp = self.call(r)
        out["bytes_needed"] = resp["pcbBytesNeeded"]
        if code == 0:
            out["config"] = config_of(resp)
        return code

    def run(self):
        result = {"steps": []}
        try:
            result["login"] = self.login()
        except (OSError, NetBIOSError) as err:  # no SMB server answered
            sys.exit("scm-client: cannot reach the SMB server at %s:%s: %s"
                     % (self.req["host"], self.req["port"], err))
        except SessionError as err:
            code = err.getErrorCode()
            result["login"] = {"ok": False, "status": code,
                               "status_name": nt_errors.ERROR_MESSAGES.get(code, ("?",))[0]}
            if self.req.get("share_after_failed_login"):
                # A server must keep a client whose login failed out of its shares.
                try:
                    self.conn.connectTree("ADMIN$")
                    result["share_after_failed_login"] = {"ok": True}
                except SessionError as tree_err:
                    result["share_after_failed_login"] = {"ok": False,
                                                          "status": tree_err.getErrorCode()}
            return result
        try:
            for step in self.req.get("steps", []):
                try:
                    result["steps"].append(self.step(step))
                except DCERPCException as err:
                    if isinstance(err, scmr.DCERPCSessionError) or err.error_code is None:
                        raise
                    result["steps"].append({"op": step["op"], "fault": err.error_code})
        except Exception as err:  # recorded, so the test shows what broke and where
            result["error"] = "%s: %s" % (type(err).__name__, err)
        finally:
            try:
                if self.dce is not None:
                    self.dce.disconnect()
                self.conn.logoff()
                self.conn.close()
            except Exception:
                pass
        return result


def main():
    req = json.load(sys.stdin)
    # A whole-run deadline on top of the socket timeouts: no step may hang the test.
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("scm-client: deadline exceeded"))
    signal.alarm(int(req.get("deadline_s", 60)))
    json.dump(Runner(req).run(), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
