"""The service database behind svcctl: services, their states and their real processes.

A service's binary path names a file under C:\\Windows, which is the ADMIN$ share's directory
here; starting the service runs that file through the test bed's loader (winexec.py: a script
with a shebang, an ELF, or node.exe as Linux Node) in a session and process group of its own,
stopping it signals the whole group, and a program that exits by itself leaves the service
STOPPED with its exit code, as a Windows service process that dies would. A program it started
in a session of its own (cmd's `start`) is not the service's process: it outlives both.
Deletion follows MS-SCMR 3.1.4.3: the service is marked, and goes once it is stopped and its
last handle is closed.
"""

import errno
import itertools
import logging
import os
import signal
import subprocess
import threading

import winexec
import winpath
from winpath import split_command_line  # noqa: F401 (kept importable from here)

LOG = logging.getLogger("scm-peer.services")

# Win32 error codes (MS-ERREF 2.2) that MS-SCMR's methods return.
ERROR_SUCCESS = 0
ERROR_FILE_NOT_FOUND = 2
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_HANDLE = 6
ERROR_INVALID_PARAMETER = 87
ERROR_INSUFFICIENT_BUFFER = 122
ERROR_INVALID_NAME = 123
ERROR_BAD_EXE_FORMAT = 193
ERROR_MORE_DATA = 234
ERROR_INVALID_SERVICE_CONTROL = 1052
ERROR_SERVICE_ALREADY_RUNNING = 1056
ERROR_SERVICE_DISABLED = 1058
ERROR_SERVICE_DOES_NOT_EXIST = 1060
ERROR_SERVICE_CANNOT_ACCEPT_CTRL = 1061
ERROR_SERVICE_NOT_ACTIVE = 1062
ERROR_DATABASE_DOES_NOT_EXIST = 1065
ERROR_SERVICE_SPECIFIC_ERROR = 1066
ERROR_SERVICE_MARKED_FOR_DELETE = 1072
ERROR_SERVICE_EXISTS = 1073
ERROR_SERVICE_NEVER_STARTED = 1077
ERROR_DUPLICATE_SERVICE_NAME = 1078
ERROR_NAMES = {v: k for k, v in list(globals().items()) if k.startswith("ERROR_")}

# MS-SCMR 2.2.47 (SERVICE_STATUS) values.
SERVICE_STOPPED, SERVICE_START_PENDING, SERVICE_STOP_PENDING, SERVICE_RUNNING = 1, 2, 3, 4
SERVICE_ACCEPT_STOP = 0x1
SERVICE_WIN32_OWN_PROCESS, SERVICE_WIN32_SHARE_PROCESS = 0x10, 0x20
SERVICE_INTERACTIVE_PROCESS = 0x100
SERVICE_AUTO_START, SERVICE_DEMAND_START, SERVICE_DISABLED = 2, 3, 4

STOP_GRACE_S = 3.0  # SIGTERM to the group, then SIGKILL


class Win32Error(Exception):
    def __init__(self, code, detail=""):
        super().__init__("%s (%d)%s" % (ERROR_NAMES.get(code, "ERROR"), code,
                                        ": " + detail if detail else ""))
        self.code = code


class Service:
    def __init__(self, name, display_name, service_type, start_type, error_control, binary_path,
                 resume_index=0):
        self.name = name
        # The key enumeration resumes after (MS-SCMR 3.1.4.11): increasing, never reused, so a
        # service created or deleted between two calls does not shift the others.
        self.resume_index = resume_index
        self.start_name = "LocalSystem"
        self.display_name = display_name
        self.service_type = service_type
        self.start_type = start_type
        self.error_control = error_control
        self.binary_path = binary_path
        self.state = SERVICE_STOPPED
        self.win32_exit_code = ERROR_SERVICE_NEVER_STARTED
        self.specific_exit_code = 0
        self.proc = None
        self.exited = threading.Event()
        self.stop_requested = False
        self.marked_for_delete = False
        self.open_handles = 0

    def status(self):
        """SERVICE_STATUS (MS-SCMR 2.2.47) as a tuple in field order."""
        accepted = SERVICE_ACCEPT_STOP if self.state == SERVICE_RUNNING else 0
        return (self.service_type, self.state, accepted, self.win32_exit_code,
                self.specific_exit_code, 0, 0)


class ServiceDatabase:
    def __init__(self, admin_dir, log_dir):
        self.admin_dir = admin_dir
        # The userland under System32 knows C:\\Windows as /windows only; another directory
        # serves services but not cmd.exe and its programs.
        winpath.ADMIN_DIR = admin_dir
        self.log_dir = log_dir
        self.lock = threading.RLock()
        self.services = {}  # lower-case name -> Service
        self._resume = itertools.count(1)

    # --- lookup and creation -------------------------------------------------------------------

    def lookup(self, name):
        svc = self.services.get(name.lower())
        if svc is None:
            raise Win32Error(ERROR_SERVICE_DOES_NOT_EXIST, name)
        return svc

    def create(self, name, display_name, service_type, start_type, error_control, binary_path):
        if not name or len(name) > 256 or "/" in name or "\\" in name:
            raise Win32Error(ERROR_INVALID_NAME, repr(name))
        if service_type & ~SERVICE_INTERACTIVE_PROCESS not in (SERVICE_WIN32_OWN_PROCESS,
                                                               SERVICE_WIN32_SHARE_PROCESS):
            raise Win32Error(ERROR_INVALID_PARAMETER, "service type 0x%x" % service_type)
        if start_type not in (SERVICE_AUTO_START, SERVICE_DEMAND_START, SERVICE_DISABLED):
            raise Win32Error(ERROR_INVALID_PARAMETER, "start type %d" % start_type)
        if error_control > 3 or not binary_path:
            raise Win32Error(ERROR_INVALID_PARAMETER, "error control or binary path")
        display_name = display_name or name
        with self.lock:
            existing = self.services.get(name.lower())
            if existing is not None:
                raise Win32Error(ERROR_SERVICE_MARKED_FOR_DELETE if existing.marked_for_delete
                                 else ERROR_SERVICE_EXISTS, name)
            for other in self.services.values():
                if display_name.lower() in (other.name.lower(), other.display_name.lower()):
                    raise Win32Error(ERROR_DUPLICATE_SERVICE_NAME, display_name)
            svc = Service(name, display_name, service_type, start_type, error_control, binary_path,
                          next(self._resume))
            self.services[name.lower()] = svc
            return svc

    def handle_opened(self, svc):
        with self.lock:
            svc.open_handles += 1

    def handle_closed(self, svc):
        with self.lock:
            svc.open_handles -= 1
            self._remove_if_done(svc)

    def delete(self, svc):
        with self.lock:
            if svc.marked_for_delete:
                raise Win32Error(ERROR_SERVICE_MARKED_FOR_DELETE, svc.name)
            svc.marked_for_delete = True
            self._remove_if_done(svc)

    def _remove_if_done(self, svc):
        if svc.marked_for_delete and svc.open_handles <= 0 and svc.proc is None:
            if self.services.get(svc.name.lower()) is svc:
                del self.services[svc.name.lower()]
                LOG.info("service %s deleted", svc.name)

    def enumerate(self):
        """The services in enumeration order (creation order, by resume index)."""
        with self.lock:
            return sorted(self.services.values(), key=lambda svc: svc.resume_index)

    # --- the program behind a service ----------------------------------------------------------

    def to_local(self, windows_path):
        """The file under ADMIN$ that a C:\\Windows\\... path names, matching names without case."""
        local = winpath.to_local(windows_path)
        return local if local is not None and os.path.isfile(local) else None

    def resolve(self, binary_path):
        """(file, command line tail) for a binary path, searched as CreateProcess does for
        unquoted paths. The SCM expands the path's variables first (it is REG_EXPAND_SZ)."""
        cmd = winpath.expand_variables(binary_path.strip(), winpath.WINDOWS_VARIABLES)
        if cmd.lower().startswith("\\systemroot\\"):
            cmd = winpath.WINDOWS_ROOT + cmd[len("\\systemroot"):]
        if cmd.startswith('"'):
            end = cmd.find('"', 1)
            end = len(cmd) if end < 0 else end
            candidates = [(cmd[1:end], cmd[end + 1:])]
        else:
            cuts = [i for i, c in enumerate(cmd) if c in " \t"] + [len(cmd)]
            candidates = [(cmd[:i], cmd[i:]) for i in cuts]
        for path, rest in candidates:
            for p in (path, path + ".exe"):
                local = self.to_local(p)
                if local:
                    return local, rest
        raise Win32Error(ERROR_FILE_NOT_FOUND, "no file under ADMIN$ for %r" % binary_path)

    def start(self, svc, args):
        with self.lock:
            if svc.marked_for_delete:
                raise Win32Error(ERROR_SERVICE_MARKED_FOR_DELETE, svc.name)
            if svc.start_type == SERVICE_DISABLED:
                raise Win32Error(ERROR_SERVICE_DISABLED, svc.name)
            if svc.state != SERVICE_STOPPED:
                raise Win32Error(ERROR_SERVICE_ALREADY_RUNNING, svc.name)
            image, rest = self.resolve(svc.binary_path)
            try:
                argv, env = winexec.command(image, rest)
            except winexec.BadExeFormat as err:
                raise Win32Error(ERROR_BAD_EXE_FORMAT, str(err)) from err
            svc.state = SERVICE_START_PENDING
            log_path = os.path.join(self.log_dir, svc.name + ".log")
            cwd = os.path.join(self.admin_dir, "System32")
            try:
                with open(log_path, "ab") as out:
                    # Its own session and process group: a stop signals the group, which the
                    # programs it `start`s (in sessions of their own) have left.
                    proc = subprocess.Popen(
                        argv, cwd=cwd if os.path.isdir(cwd) else self.admin_dir, env=env,
                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                        start_new_session=True, close_fds=True)
            except OSError as err:
                svc.state = SERVICE_STOPPED
                code = {errno.ENOEXEC: ERROR_BAD_EXE_FORMAT, errno.EACCES: ERROR_ACCESS_DENIED,
                        errno.EPERM: ERROR_ACCESS_DENIED}.get(err.errno, ERROR_FILE_NOT_FOUND)
                raise Win32Error(code, "%s: %s" % (image, err.strerror)) from err
            svc.proc, svc.exited, svc.stop_requested = proc, threading.Event(), False
            svc.state, svc.win32_exit_code, svc.specific_exit_code = SERVICE_RUNNING, 0, 0
            LOG.info("service %s started: pid %d runs %s %s (args %r)", svc.name, proc.pid,
                     argv[0], argv[1:], args)
            threading.Thread(target=self._watch, args=(svc, proc), daemon=True,
                             name="watch-" + svc.name).start()

    def _watch(self, svc, proc):
        rc = proc.wait()
        with self.lock:
            if svc.proc is proc:
                svc.proc, svc.state = None, SERVICE_STOPPED
                if svc.stop_requested or rc == 0:
                    svc.win32_exit_code, svc.specific_exit_code = ERROR_SUCCESS, 0
                else:
                    svc.win32_exit_code = ERROR_SERVICE_SPECIFIC_ERROR
                    svc.specific_exit_code = rc if rc >= 0 else 128 - rc
                LOG.info("service %s stopped: pid %d exited with %d%s", svc.name, proc.pid, rc,
                         " (stop requested)" if svc.stop_requested else "")
                self._remove_if_done(svc)
            svc.exited.set()

    def stop(self, svc):
        with self.lock:
            if svc.state == SERVICE_STOPPED:
                raise Win32Error(ERROR_SERVICE_NOT_ACTIVE, svc.name)
            if svc.state != SERVICE_RUNNING:
                raise Win32Error(ERROR_SERVICE_CANNOT_ACCEPT_CTRL, svc.name)
            svc.state, svc.stop_requested = SERVICE_STOP_PENDING, True
            pid, exited = svc.proc.pid, svc.exited
        _kill_group(pid, signal.SIGTERM)
        exited.wait(STOP_GRACE_S)
        # Members of the group that outlive its leader, or a leader ignoring SIGTERM, go now.
        _kill_group(pid, signal.SIGKILL)
        exited.wait(5.0)

    def stop_all(self):
        with self.lock:
            running = [s for s in self.services.values() if s.state == SERVICE_RUNNING]
        for svc in running:
            try:
                self.stop(svc)
            except Win32Error:
                pass


def _kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
