"""Windows names on the Linux test bed: C:\\Windows is the ADMIN$ directory, /windows.

Shared by the service database and the Windows userland under /windows/System32. A Windows path
is mapped by matching each component without case against what is on disk (NTFS is
case-insensitive); components that do not exist yet keep the case they were given. Nothing
outside C:\\Windows exists on this "machine": such paths map to None.
"""

import os
import re

ADMIN_DIR = "/windows"
WINDOWS_ROOT = "C:\\Windows"

# The environment a Windows service sees, as cmd.exe expands it (names match without case).
WINDOWS_VARIABLES = {
    "SYSTEMROOT": WINDOWS_ROOT,
    "WINDIR": WINDOWS_ROOT,
    "SYSTEMDRIVE": "C:",
    "COMSPEC": WINDOWS_ROOT + "\\System32\\cmd.exe",
    "TEMP": WINDOWS_ROOT + "\\Temp",
    "TMP": WINDOWS_ROOT + "\\Temp",
    "OS": "Windows_NT",
    "PATHEXT": ".COM;.EXE;.BAT;.CMD",
}


def expand_variables(text, variables):
    """%NAME% replaced by its value (names without case); an undefined one stays as written, as
    cmd leaves it on a command line (a batch file would make it empty)."""
    return re.sub(r"%([^%\s]+)%", lambda m: variables.get(m.group(1).upper(), m.group(0)), text)


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


def _components(windows_path):
    """The components below C:\\Windows of an absolute path, or None when it is elsewhere."""
    p = windows_path.replace("/", "\\")
    if p.startswith("\\\\?\\"):
        p = p[4:]
    root = WINDOWS_ROOT.lower()
    low = p.lower()
    if low == root or low == root + "\\":
        return []
    if not low.startswith(root + "\\"):
        return None
    return p[len(root) + 1:].split("\\")


def _walk(parts, strict=False, base=None):
    """base joined with parts, each matched without case. strict: every part must exist and
    none may be '..' (a program or file being opened); otherwise '.' and '..' are resolved
    without leaving C:\\Windows, and missing parts keep their spelling."""
    local = ADMIN_DIR if base is None else base
    depth = 0
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if strict or depth == 0:
                return None
            local, depth = os.path.dirname(local), depth - 1
            continue
        try:
            entries = os.listdir(local)
        except OSError:
            entries = []
        match = part if part in entries else next(
            (e for e in entries if e.lower() == part.lower()), None)
        if match is None:
            if strict:
                return None
            match = part
        local, depth = os.path.join(local, match), depth + 1
    return local


def to_local(windows_path, strict=True):
    """The path under ADMIN$ that an absolute C:\\Windows\\... path names, or None.

    strict (the default) requires every component to exist and refuses '..'; otherwise the
    path is mapped as far as it exists and the rest is kept as written."""
    parts = _components(windows_path)
    if parts is None:
        return None
    return _walk(parts, strict)


def to_windows(local_path):
    """The Windows name of a path under ADMIN$ (the reverse of to_local), or None."""
    local = os.path.normpath(local_path)
    if local == ADMIN_DIR:
        return WINDOWS_ROOT
    if not local.startswith(ADMIN_DIR + "/"):
        return None
    return WINDOWS_ROOT + "\\" + local[len(ADMIN_DIR) + 1:].replace("/", "\\")


def resolve(path, cwd, strict=False):
    """The local path a program's file argument names, relative to the local directory cwd.

    As Windows reads it: a drive path (C: only), a root-relative path (\\x or /x is C:\\x, so
    /windows/... names itself), or a path relative to cwd; / and \\ both separate."""
    p = path.replace("/", "\\")
    if re.match(r"^[A-Za-z]:\\", p) or p.startswith("\\\\?\\"):
        return to_local(p, strict)
    if re.match(r"^[A-Za-z]:", p):  # drive-relative (C:x): the drive's current directory is cwd
        if p[0].lower() != "c":
            return None
        p = p[2:]
    elif p.startswith("\\"):
        return to_local("C:" + p, strict)
    here = to_windows(cwd)
    if here is not None:
        return to_local(here + "\\" + p, strict)
    return _walk(p.split("\\"), strict, base=cwd)  # a directory outside C:\\Windows (tests)


def translate_argument(arg):
    """An argument that is a C:\\Windows path (any case, %SystemRoot% expanded) as its local
    path; any other argument unchanged."""
    expanded = expand_variables(arg, WINDOWS_VARIABLES)
    if expanded.lower().startswith("\\systemroot\\"):
        expanded = WINDOWS_ROOT + expanded[len("\\systemroot"):]
    local = to_local(expanded, strict=False)
    return arg if local is None else local
