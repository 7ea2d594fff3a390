"""MS-SCMR (svcctl) over the pipe: the methods a PsExec-style deployment needs.

Requests are decoded and responses encoded with impacket's NDR structures (dcerpc/v5/scmr.py);
the behaviour is ours. Handles are context handles (MS-SCMR 2.2.4, SC_RPC_HANDLE): 20 bytes, valid
only on the association that opened them, closed by the rundown when the pipe closes. A handle
that is unknown, closed, of another association or of the wrong kind gives ERROR_INVALID_HANDLE,
and one without the access right a method needs gives ERROR_ACCESS_DENIED (MS-SCMR 3.1.4).
Every call is logged with its arguments and its result.
"""

import logging
import struct
import threading
import uuid

from impacket.dcerpc.v5 import scmr

import rpc_pipe
from services import (ERROR_ACCESS_DENIED, ERROR_DATABASE_DOES_NOT_EXIST,
                      ERROR_INSUFFICIENT_BUFFER, ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER,
                      ERROR_INVALID_SERVICE_CONTROL, ERROR_MORE_DATA, ERROR_NAMES,
                      ERROR_SUCCESS, SERVICE_STOPPED, Win32Error)

LOG = logging.getLogger("scm-peer.svcctl")

# Access rights (MS-SCMR 2.2.1, 3.1.4) and the generic mappings Windows applies to them.
DELETE = 0x00010000
GENERIC_READ, GENERIC_WRITE, GENERIC_EXECUTE, GENERIC_ALL = 0x80000000, 0x40000000, 0x20000000, 0x10000000
MAXIMUM_ALLOWED = 0x02000000
SCM_MAPPING = (0x00020014, 0x00020022, 0x00020009, 0x000F003F)  # read, write, execute, all
SERVICE_MAPPING = (0x0002008D, 0x00020002, 0x00020170, 0x000F01FF)
SC_MANAGER_CREATE_SERVICE, SC_MANAGER_ENUMERATE_SERVICE = 0x2, 0x4
SERVICE_QUERY_CONFIG = 0x1
SERVICE_QUERY_STATUS, SERVICE_START, SERVICE_STOP, SERVICE_INTERROGATE = 0x4, 0x10, 0x20, 0x80
SERVICE_CONTROL_STOP, SERVICE_CONTROL_INTERROGATE = 1, 4
NULL_HANDLE = b"\0" * 20
# REnumServicesStatusW filters (MS-SCMR 3.1.4.11): the type bits (drivers and Win32 services,
# SERVICE_INTERACTIVE_PROCESS allowed beside them) and the three state choices.
SERVICE_TYPE_BITS, SERVICE_INTERACTIVE = 0x3F, 0x100
SERVICE_ACTIVE, SERVICE_INACTIVE, SERVICE_STATE_ALL = 1, 2, 3
# The [range] bounds of cbBufSize (MS-SCMR 3.1.4.11: 256 KiB; 3.1.4.17: 8 KiB); the RPC runtime
# refuses a call outside them before the method runs.
ENUM_BUFFER_MAX, CONFIG_BUFFER_MAX = 256 * 1024, 8 * 1024
RPC_X_INVALID_BOUND = 0x000006C6
# ENUM_SERVICE_STATUSW in lpBuffer (MS-SCMR 2.2.11): the two string pointers become offsets from
# the start of the buffer, then SERVICE_STATUS (2.2.47), 36 bytes in all.
ENUM_ENTRY = struct.Struct("<II7I")
# QUERY_SERVICE_CONFIGW's fixed part (2.2.15) as pcbBytesNeeded counts it, strings beside.
CONFIG_FIXED_SIZE = 36


def map_access(desired, mapping):
    granted = desired & 0x0FFFFFFF & ~MAXIMUM_ALLOWED
    for bit, rights in zip((GENERIC_READ, GENERIC_WRITE, GENERIC_EXECUTE, GENERIC_ALL), mapping):
        if desired & bit:
            granted |= rights
    if desired & MAXIMUM_ALLOWED:
        granted |= mapping[3]
    return granted


class Handle:
    def __init__(self, assoc, access, service=None):
        self.assoc = assoc
        self.access = access
        self.service = service  # None for a handle to the SCM itself


def _short(text, limit=160):
    return text if len(text) <= limit else text[:limit] + "...(%d chars)" % len(text)


def _str(value):
    return value.rstrip("\0") if isinstance(value, str) else ""


class Svcctl(rpc_pipe.Interface):
    uuid = uuid.UUID("367abb81-9844-35f1-ad32-98f038001003").bytes_le
    version = (2, 0)
    secondary_address = "\\PIPE\\svcctl"

    def __init__(self, db):
        self.db = db
        self.handles = {}  # 20-byte handle -> Handle
        self.lock = threading.Lock()
        self.methods = {
            0: (scmr.RCloseServiceHandle, self.close_handle),
            1: (scmr.RControlService, self.control),
            2: (scmr.RDeleteService, self.delete),
            6: (scmr.RQueryServiceStatus, self.query_status),
            12: (scmr.RCreateServiceW, self.create),
            14: (scmr.REnumServicesStatusW, self.enum_services),
            15: (scmr.ROpenSCManagerW, self.open_scm),
            16: (scmr.ROpenServiceW, self.open_service),
            17: (scmr.RQueryServiceConfigW, self.query_config),
            19: (scmr.RStartServiceW, self.start),
        }

    # --- associations and handles --------------------------------------------------------------

    def open_association(self, assoc_id):
        LOG.info("assoc=%d opened \\PIPE\\svcctl", assoc_id)

    def close_association(self, assoc_id):
        with self.lock:
            mine = [h for h, v in self.handles.items() if v.assoc == assoc_id]
        for h in mine:
            self._release(h)
        LOG.info("assoc=%d closed; %d handle(s) run down", assoc_id, len(mine))

    def _new_handle(self, handle):
        raw = b"\0\0\0\0" + uuid.uuid4().bytes
        with self.lock:
            self.handles[raw] = handle
        if handle.service is not None:
            self.db.handle_opened(handle.service)
        return raw

    def _release(self, raw):
        with self.lock:
            handle = self.handles.pop(raw, None)
        if handle is not None and handle.service is not None:
            self.db.handle_closed(handle.service)
        return handle

    def _lookup(self, assoc_id, raw, service, right):
        with self.lock:
            handle = self.handles.get(raw)
        if handle is None or handle.assoc != assoc_id or (handle.service is not None) != service:
            raise Win32Error(ERROR_INVALID_HANDLE, "handle %s" % raw.hex())
        if right and not handle.access & right:
            raise Win32Error(ERROR_ACCESS_DENIED, "access 0x%x lacks 0x%x" % (handle.access, right))
        return handle

    # --- dispatch --------------------------------------------------------------------------------

    def call(self, assoc_id, opnum, stub):
        entry = self.methods.get(opnum)
        if entry is None:
            LOG.info("assoc=%d opnum %d is not implemented", assoc_id, opnum)
            raise rpc_pipe.RpcFault(rpc_pipe.NCA_S_OP_RNG_ERROR)
        request_type, method = entry
        try:
            request = request_type(stub)
        except Exception as err:  # impacket raises plain exceptions on short or bad stubs
            LOG.info("assoc=%d %s: bad stub data (%s)", assoc_id, request_type.__name__, err)
            raise rpc_pipe.RpcFault(rpc_pipe.RPC_X_BAD_STUB_DATA) from err
        response = request_type.__name__ + "Response"
        response = getattr(scmr, response)()
        summary = {}
        try:
            code = method(assoc_id, request, response, summary) or ERROR_SUCCESS
        except Win32Error as err:
            code = err.code
            summary["why"] = str(err)
        response["ErrorCode"] = code
        LOG.info("assoc=%d %s(%s) -> %d %s", assoc_id, request_type.__name__,
                 ", ".join("%s=%s" % (k, _short(repr(v))) for k, v in summary.items()), code,
                 ERROR_NAMES.get(code, ""))
        return response.getData()

    def _fill_status(self, response, field, svc):
        status = response[field]
        names = ("dwServiceType", "dwCurrentState", "dwControlsAccepted", "dwWin32ExitCode",
                 "dwServiceSpecificExitCode", "dwCheckPoint", "dwWaitHint")
        for name, value in zip(names, svc.status()):
            status[name] = value

    # --- the methods (MS-SCMR 3.1.4.x) ----------------------------------------------------------

    def open_scm(self, assoc_id, req, resp, summary):  # 3.1.4.15
        database = _str(req["lpDatabaseName"])
        summary.update(machine=_str(req["lpMachineName"]), database=database,
                       access="0x%x" % req["dwDesiredAccess"])
        resp["lpScHandle"] = NULL_HANDLE
        if database and database.lower() != "servicesactive":
            raise Win32Error(ERROR_DATABASE_DOES_NOT_EXIST, database)
        access = map_access(req["dwDesiredAccess"], SCM_MAPPING) | 0x1  # SC_MANAGER_CONNECT
        resp["lpScHandle"] = self._new_handle(Handle(assoc_id, access))

    def create(self, assoc_id, req, resp, summary):  # 3.1.4.12
        name, path = _str(req["lpServiceName"]), _str(req["lpBinaryPathName"])
        summary.update(name=name, binary_path=path, type="0x%x" % req["dwServiceType"],
                       start_type=req["dwStartType"], start_name=_str(req["lpServiceStartName"]),
                       password_given=bool(req["dwPwSize"]))
        resp["lpServiceHandle"] = NULL_HANDLE
        # lpdwTagId is [in, out, unique] LPDWORD (MS-SCMR 3.1.4.12): a NULL in stays NULL out, as
        # Windows answers. impacket's response types it as a string pointer, and left unset it
        # would be marshalled as an empty string (16 bytes) that a conforming client cannot read.
        resp["lpdwTagId"] = scmr.NULL
        self._lookup(assoc_id, req["hSCManager"], False, SC_MANAGER_CREATE_SERVICE)
        svc = self.db.create(name, _str(req["lpDisplayName"]), req["dwServiceType"],
                             req["dwStartType"], req["dwErrorControl"], path)
        access = map_access(req["dwDesiredAccess"], SERVICE_MAPPING)
        resp["lpServiceHandle"] = self._new_handle(Handle(assoc_id, access, svc))

    def open_service(self, assoc_id, req, resp, summary):  # 3.1.4.16
        name = _str(req["lpServiceName"])
        summary.update(name=name, access="0x%x" % req["dwDesiredAccess"])
        resp["lpServiceHandle"] = NULL_HANDLE
        self._lookup(assoc_id, req["hSCManager"], False, 0)
        with self.db.lock:
            svc = self.db.lookup(name)
            access = map_access(req["dwDesiredAccess"], SERVICE_MAPPING)
            resp["lpServiceHandle"] = self._new_handle(Handle(assoc_id, access, svc))

    def start(self, assoc_id, req, resp, summary):  # 3.1.4.19
        handle = self._lookup(assoc_id, req["hService"], True, SERVICE_START)
        summary.update(name=handle.service.name, argc=req["argc"])
        self.db.start(handle.service, [])

    def query_status(self, assoc_id, req, resp, summary):  # 3.1.4.6
        handle = self._lookup(assoc_id, req["hService"], True, SERVICE_QUERY_STATUS)
        self._fill_status(resp, "lpServiceStatus", handle.service)
        summary.update(name=handle.service.name, state=handle.service.state)

    def control(self, assoc_id, req, resp, summary):  # 3.1.4.2
        control = req["dwControl"]
        summary.update(control=control)
        right = {SERVICE_CONTROL_STOP: SERVICE_STOP,
                 SERVICE_CONTROL_INTERROGATE: SERVICE_INTERROGATE}.get(control)
        handle = self._lookup(assoc_id, req["hService"], True, right or 0)
        summary.update(name=handle.service.name)
        try:
            if right is None:
                raise Win32Error(ERROR_INVALID_SERVICE_CONTROL, "control %d" % control)
            if control == SERVICE_CONTROL_STOP:
                self.db.stop(handle.service)
        finally:
            # The status goes back with every answer, errors included.
            self._fill_status(resp, "lpServiceStatus", handle.service)
            summary.update(state=handle.service.state)

    def delete(self, assoc_id, req, resp, summary):  # 3.1.4.3
        handle = self._lookup(assoc_id, req["hService"], True, DELETE)
        summary.update(name=handle.service.name)
        self.db.delete(handle.service)

    def enum_services(self, assoc_id, req, resp, summary):  # 3.1.4.11
        kinds, states, size = req["dwServiceType"], req["dwServiceState"], req["cbBufSize"]
        given = req.fields["lpResumeIndex"].fields["ReferentID"] != 0
        resume = req["lpResumeIndex"] if given else 0
        summary.update(type="0x%x" % kinds, state=states, size=size,
                       resume=resume if given else None)
        if size > ENUM_BUFFER_MAX:
            raise rpc_pipe.RpcFault(RPC_X_INVALID_BOUND)
        # [out, size_is(cbBufSize)]: the buffer goes back whole, whatever the answer.
        resp["lpBuffer"] = b"\0" * size
        resp["pcbBytesNeeded"], resp["lpServicesReturned"] = 0, 0
        resp["lpResumeIndex"] = resume if given else scmr.NULL
        self._lookup(assoc_id, req["hSCManager"], False, SC_MANAGER_ENUMERATE_SERVICE)
        if not kinds & SERVICE_TYPE_BITS or kinds & ~(SERVICE_TYPE_BITS | SERVICE_INTERACTIVE):
            raise Win32Error(ERROR_INVALID_PARAMETER, "service type 0x%x" % kinds)
        if states not in (SERVICE_ACTIVE, SERVICE_INACTIVE, SERVICE_STATE_ALL):
            raise Win32Error(ERROR_INVALID_PARAMETER, "service state %d" % states)
        wanted = [svc for svc in self.db.enumerate()
                  if svc.resume_index > resume and svc.service_type & kinds & SERVICE_TYPE_BITS
                  and states & (SERVICE_INACTIVE if svc.state == SERVICE_STOPPED
                                else SERVICE_ACTIVE)]
        buffer, returned, needed = enum_buffer(wanted, size)
        resp["lpBuffer"] = buffer
        resp["lpServicesReturned"] = len(returned)
        summary.update(returned=len(returned), needed=needed)
        if needed:
            # The next call resumes after the last entry returned (MS-SCMR 3.1.4.11).
            resp["pcbBytesNeeded"] = needed
            if given and returned:
                resp["lpResumeIndex"] = returned[-1].resume_index
            return ERROR_MORE_DATA
        if given:
            resp["lpResumeIndex"] = 0
        return ERROR_SUCCESS

    def query_config(self, assoc_id, req, resp, summary):  # 3.1.4.17
        size = req["cbBufSize"]
        summary.update(size=size)
        if size > CONFIG_BUFFER_MAX:
            raise rpc_pipe.RpcFault(RPC_X_INVALID_BOUND)
        config = resp["lpServiceConfig"]
        resp["pcbBytesNeeded"] = 0
        names = ("lpBinaryPathName", "lpLoadOrderGroup", "lpDependencies", "lpServiceStartName",
                 "lpDisplayName")
        try:
            handle = self._lookup(assoc_id, req["hService"], True, SERVICE_QUERY_CONFIG)
        except Win32Error:
            for name in names:  # NULL pointers in the [out] structure of a failed call
                config[name] = scmr.NULL
            raise
        svc = handle.service
        strings = {"lpBinaryPathName": svc.binary_path, "lpLoadOrderGroup": "",
                   "lpDependencies": "", "lpServiceStartName": svc.start_name,
                   "lpDisplayName": svc.display_name}
        needed = CONFIG_FIXED_SIZE + sum(2 * (len(v) + 1) for v in strings.values())
        resp["pcbBytesNeeded"] = needed
        summary.update(name=svc.name, needed=needed)
        if needed > size:
            for name in names:
                config[name] = scmr.NULL
            return ERROR_INSUFFICIENT_BUFFER
        config["dwServiceType"] = svc.service_type
        config["dwStartType"] = svc.start_type
        config["dwErrorControl"] = svc.error_control
        config["dwTagId"] = 0
        for name, value in strings.items():
            config[name] = value + "\0"
        return ERROR_SUCCESS

    def close_handle(self, assoc_id, req, resp, summary):  # 3.1.4.1
        raw = req["hSCObject"]
        summary.update(handle=raw.hex()[8:16])
        resp["hSCObject"] = NULL_HANDLE
        handle = self._lookup(assoc_id, raw, False, 0) if self._is_scm(raw) else \
            self._lookup(assoc_id, raw, True, 0)
        self._release(raw)
        if handle.service is not None:
            summary.update(name=handle.service.name)

    def _is_scm(self, raw):
        with self.lock:
            handle = self.handles.get(raw)
        return handle is not None and handle.service is None


def enum_buffer(services, size):
    """(lpBuffer of `size` bytes, the services it holds, bytes needed for the rest).

    As many entries as fit, in order: the ENUM_SERVICE_STATUSW array first, then the names
    (UTF-16LE, NUL-terminated) that its offsets point to."""
    def strings(svc):
        return (svc.name + "\0").encode("utf-16-le"), (svc.display_name + "\0").encode("utf-16-le")

    cost = [ENUM_ENTRY.size + sum(len(s) for s in strings(svc)) for svc in services]
    fit, used = 0, 0
    while fit < len(services) and used + cost[fit] <= size:
        used, fit = used + cost[fit], fit + 1
    returned = services[:fit]
    entries, names = b"", b""
    base = ENUM_ENTRY.size * fit
    for svc in returned:
        name, display = strings(svc)
        entries += ENUM_ENTRY.pack(base + len(names), base + len(names) + len(name),
                                   *svc.status())
        names += name + display
    buffer = entries + names
    return buffer + b"\0" * (size - len(buffer)), returned, sum(cost[fit:])
