"""The test bed's program loader: how a "Windows program" file under ADMIN$ is run on Linux.

Both the service database (a service's image) and cmd.exe (every program it runs) go through
here. A Windows program gets its arguments as one command line, which it splits itself; here:
- a PE image (a file starting with "MZ") named node.exe is run as the image's own Linux Node,
  with every argument that is a C:\\Windows path (any case, %SystemRoot% expanded) translated
  to its /windows path, and SystemRoot=/windows in its environment. sumac's agent runs so.
- any other PE image cannot run here: BadExeFormat (ERROR_BAD_EXE_FORMAT for the SCM).
- anything else (the userland scripts under System32, a test's shell script, an ELF) is run
  natively with the arguments split as CommandLineToArgvW does, untranslated; the command
  line as written is in RAW_ARGS_VARIABLE, because cmd.exe parses its own line, not argv.
"""

import os
import shutil
import stat

import winpath

# The command line after the program's name, exactly as written (see cmd.exe's /s /c rules).
RAW_ARGS_VARIABLE = "SCM_PEER_RAW_ARGS"
NODE_FALLBACK = "/usr/bin/node"
USUAL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BadExeFormat(Exception):
    """A Windows program other than node.exe: the test bed has no way to run it."""


def _node():
    return shutil.which("node", path=USUAL_PATH) or NODE_FALLBACK


def linux_environment(base=None):
    """The environment of a program started on the test bed: the caller's, with SystemRoot and
    windir naming /windows and System32 first on PATH."""
    env = dict(os.environ if base is None else base)
    env.pop(RAW_ARGS_VARIABLE, None)
    for name in [k for k in env if k.upper() in ("SYSTEMROOT", "WINDIR")]:
        del env[name]
    env["SystemRoot"] = winpath.ADMIN_DIR
    env["windir"] = winpath.ADMIN_DIR
    system32 = os.path.join(winpath.ADMIN_DIR, "System32")
    rest = [p for p in env.get("PATH", USUAL_PATH).split(":") if p and p != system32]
    env["PATH"] = ":".join([system32] + rest)
    return env


def is_pe_image(path):
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"MZ"
    except OSError:
        return False


def command(image, raw_args, base_env=None):
    """(argv, env) that run the program file `image` (a local path) with the Windows command
    line tail `raw_args`. Raises BadExeFormat for a PE image this test bed cannot run."""
    env = linux_environment(base_env)
    args = winpath.split_command_line(raw_args)
    if is_pe_image(image):
        if os.path.basename(image).lower() != "node.exe":
            raise BadExeFormat("%s is a Windows program (MZ) and only node.exe is emulated: "
                               "cannot run a Windows program here" % image)
        return [_node()] + [winpath.translate_argument(a) for a in args], env
    # Files written over SMB carry no execute bit; Windows has none to give.
    mode = os.stat(image).st_mode
    if not mode & stat.S_IXUSR:
        os.chmod(image, mode | 0o111)
    env[RAW_ARGS_VARIABLE] = raw_args
    return [image] + args, env


def raw_args_of(argv):
    """A program's command line tail: the one its launcher recorded when it matches argv,
    otherwise argv joined by blanks (as spawnv builds a command line: a program started from
    a Linux shell passes the whole Windows line as one argument)."""
    raw = os.environ.get(RAW_ARGS_VARIABLE)
    if raw is not None and winpath.split_command_line(raw) == list(argv):
        return raw
    return " ".join(argv)
