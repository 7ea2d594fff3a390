"""The service database behind svcctl: services, their states and their real processes.

A service's binary path names a file under C:\\Windows, which is the ADMIN$ share's directory
here; starting the service runs that file (a script with a shebang or an ELF) in a session and
process group of its own, stopping it signals the whole group, and a program that exits by itself
leaves the service STOPPED with its exit code, as a Windows service process that dies would.
Deletion follows MS-SCMR 3.1.4.3: the service is marked, and goes once it is stopped and its
last handle is closed.
"""

import errno
import logging
import os
import re
import signal
import subprocess
import threading

LOG = logging.getLogger("scm-peer.services")

# Win32 error codes (MS-ERREF 2.2) that MS-SCMR's methods return.
ERROR_SUCCESS = 0
ERROR_FILE_NOT_FOUND = 2
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_HANDLE = 6
ERROR_INVALID_PARAMETER = 87
ERROR_INVALID_NAME = 123
ERROR_BAD_EXE_FORMAT = 193
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
WINDOWS_ROOT = "c:\\windows\\"


class Win32Error(Exception):
    def __init__(self, code, detail=""):
        super().__init__("%s (%d)%s" % (ERROR_NAMES.get(code, "ERROR"), code,
                                        ": " + detail if detail else ""))
        self.code = code


class Service:
    def __init__(self, name, display_name, service_type, start_type, error_control, binary_path):
        self.name = name
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


def split_command_line(s):
    """Arguments as CommandLineToArgvW splits them: quotes group, backslashes escape quotes."""
    args, cur, in_arg, quoted, i = [], "", False, False, 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            n = len(s[i:]) - len(s[i:].lstrip("\\"))
            if i + n < len(s) and s[i + n] == '"':
                cur += "\\" * (n // 2)
                if n % 2:
                    cur += '"'
                    i += 1
                i += n
            else:
                cur += "\\" * n
                i += n
            in_arg = True
            continue
        if c == '"':
            quoted, in_arg = not quoted, True
        elif c in " \t" and not quoted:
            if in_arg:
                args.append(cur)
            cur, in_arg = "", False
        else:
            cur, in_arg = cur + c, True
        i += 1
    if in_arg:
        args.append(cur)
    return args


class ServiceDatabase:
    def __init__(self, admin_dir, log_dir):
        self.admin_dir = admin_dir
        self.log_dir = log_dir
        self.lock = threading.RLock()
        self.services = {}  # lower-case name -> Service

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
            svc = Service(name, display_name, service_type, start_type, error_control, binary_path)
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

    # --- the program behind a service ----------------------------------------------------------

    def to_local(self, windows_path):
        """The file under ADMIN$ that a C:\\Windows\\... path names, matching names without case."""
        p = windows_path.replace("/", "\\")
        if p.startswith("\\\\?\\"):
            p = p[4:]
        if not p.lower().startswith(WINDOWS_ROOT):
            return None
        local = self.admin_dir
        for part in p[len(WINDOWS_ROOT):].split("\\"):
            if part in ("", ".", ".."):
                return None
            try:
                entries = os.listdir(local)
            except OSError:
                return None
            match = part if part in entries else next(
                (e for e in entries if e.lower() == part.lower()), None)
            if match is None:
                return None
            local = os.path.join(local, match)
        return local if os.path.isfile(local) else None

    def resolve(self, binary_path):
        """(file, argv) for a binary path, searched as CreateProcess does for unquoted paths."""
        env = {"SYSTEMROOT": "C:\\Windows", "WINDIR": "C:\\Windows", "SYSTEMDRIVE": "C:"}
        cmd = re.sub(r"%([^%]+)%", lambda m: env.get(m.group(1).upper(), m.group(0)),
                     binary_path.strip())
        if cmd.lower().startswith("\\systemroot\\"):
            cmd = "C:\\Windows" + cmd[len("\\systemroot"):]
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
                    return local, split_command_line(rest)
        raise Win32Error(ERROR_FILE_NOT_FOUND, "no file under ADMIN$ for %r" % binary_path)

    def start(self, svc, args):
        with self.lock:
            if svc.marked_for_delete:
                raise Win32Error(ERROR_SERVICE_MARKED_FOR_DELETE, svc.name)
            if svc.start_type == SERVICE_DISABLED:
                raise Win32Error(ERROR_SERVICE_DISABLED, svc.name)
            if svc.state != SERVICE_STOPPED:
                raise Win32Error(ERROR_SERVICE_ALREADY_RUNNING, svc.name)
            image, argv = self.resolve(svc.binary_path)
            os.chmod(image, os.stat(image).st_mode | 0o111)
            svc.state = SERVICE_START_PENDING
            log_path = os.path.join(self.log_dir, svc.name + ".log")
            cwd = os.path.join(self.admin_dir, "System32")
            try:
                with open(log_path, "ab") as out:
                    proc = subprocess.Popen(
                        [image] + argv, cwd=cwd if os.path.isdir(cwd) else self.admin_dir,
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
                     image, argv, args)
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
