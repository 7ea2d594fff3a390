#!/usr/bin/python3
"""cmd.exe of the scm-peer test bed: `cmd [/d] [/q] [/s] /c <line>`, as a service runs it.

The line is read from the command line as written (winexec.RAW_ARGS_VARIABLE), the /C quote
rule of `cmd /?` applied, %VAR% expanded with the variables a Windows service sees
(SystemRoot=C:\\Windows, ...), then parsed whole (cmd_syntax.py) and run:
- programs: an absolute Windows path, or a bare name looked up in the current directory then
  in System32 (".exe" added to a name without an extension), run through the loader
  (winexec.py) with the rest of the command text as their command line;
- builtins: `cd [/d] dir`, `start ["title"] [/b] [/d dir] [/wait] prog args`, `echo`, `exit`;
- `a | b` runs both sides at once, each in a child of its own (as cmd runs a new cmd per side).
The exit status is the errorlevel of the last command run (255 for a value that does not fit).
"""

import os
import re
import subprocess
import sys

sys.path[:0] = ["/opt/scm-peer", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]

import cmd_syntax  # noqa: E402
import winexec  # noqa: E402
import winpath  # noqa: E402

NOT_RECOGNIZED = 9009
CANNOT_FIND_FILE = 9059
SYNTAX_ERROR = 255
SYSTEM32 = os.path.join(winpath.ADMIN_DIR, "System32")
BLANKS = cmd_syntax.BLANKS
BUILTIN = re.compile(r"^(cd|chdir|start|echo|exit)(?=$|[\s/\\.,;=+(])", re.IGNORECASE)


class ExitCmd(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def say(fd, text):
    """cmd's messages, with Windows line ends."""
    try:
        os.write(fd, text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "replace"))
    except OSError:
        pass


def exit_status(level):
    return level if 0 <= level <= 255 else 255


def first_token(text):
    """(token with its quotes removed, the text after it) as cmd finds a command's name."""
    text = text.lstrip(BLANKS + "@")
    builtin = BUILTIN.match(text)
    if builtin:
        return builtin.group(1), text[builtin.end():]
    token, quoted, i = "", False, 0
    while i < len(text) and (quoted or text[i] not in BLANKS):
        if text[i] == '"':
            quoted = not quoted
        else:
            token += text[i]
        i += 1
    return token, text[i:]


class Shell:
    def __init__(self):
        self.cwd = os.getcwd()

    def variables(self):
        names = {k.upper(): v for k, v in os.environ.items()}
        names.update(winpath.WINDOWS_VARIABLES)
        names["CD"] = winpath.to_windows(self.cwd) or self.cwd
        names["ERRORLEVEL"] = "0"
        return names

    def find_program(self, name, cwd=None):
        """The local file a program name denotes, or None."""
        cwd = cwd or self.cwd
        last = re.split(r"[\\/]", name)[-1]
        candidate = name if "." in last else name + ".exe"
        if re.search(r"[\\/:]", name):
            places = [cwd]
        else:
            places = [cwd, SYSTEM32]
        for place in places:
            local = winpath.resolve(candidate, place, strict=True)
            if local is not None and os.path.isfile(local):
                return local
        return None

    # --- running a tree ---------------------------------------------------------------------

    def run(self, node, stdio):
        if isinstance(node, cmd_syntax.Sequence):
            level = self.run(node.left, stdio)
            if node.op == "&" or (node.op == "&&") == (level == 0):
                return self.run(node.right, stdio)
            return level
        if isinstance(node, cmd_syntax.Pipe):
            return self.run_pipe(node, stdio)
        opened = []
        try:
            stdio = self.redirect(node.redirects, stdio, opened)
            if stdio is None:
                return 1
            if isinstance(node, cmd_syntax.Group):
                return self.run(node.body, stdio)
            return self.run_simple(node.text, stdio)
        finally:
            for fd in opened:
                os.close(fd)

    def redirect(self, redirects, stdio, opened):
        stdio = list(stdio)
        for r in redirects:
            if r.mode == ">&":
                stdio[r.handle] = stdio[int(r.target)]
                continue
            if r.target.lower() in ("nul", "nul:", "\\\\.\\nul"):
                local = os.devnull
            else:
                local = winpath.resolve(r.target, self.cwd)
            flags = {"<": os.O_RDONLY, ">": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     ">>": os.O_WRONLY | os.O_CREAT | os.O_APPEND}[r.mode]
            try:
                if local is None:
                    raise FileNotFoundError
                fd = os.open(local, flags, 0o644)
            except OSError:
                say(stdio[2], "The system cannot find the %s specified.\n"
                    % ("file" if r.mode == "<" else "path"))
                return None
            opened.append(fd)
            while len(stdio) <= r.handle:
                stdio.append(stdio[-1])
            stdio[r.handle] = fd
        return tuple(stdio[:3])

    def run_pipe(self, node, stdio):
        read_end, write_end = os.pipe()
        left = self.fork(node.left, (stdio[0], write_end, stdio[2]), read_end)
        right = self.fork(node.right, (read_end, stdio[1], stdio[2]), write_end)
        os.close(read_end)
        os.close(write_end)
        os.waitpid(left, 0)
        return os.waitstatus_to_exitcode(os.waitpid(right, 0)[1])

    def fork(self, node, stdio, unused_fd):
        pid = os.fork()
        if pid:
            return pid
        code = SYNTAX_ERROR
        try:
            os.close(unused_fd)
            code = self.run(node, stdio)
        except ExitCmd as e:
            code = e.code
        except BaseException as e:  # the child must never return into the parent's code
            say(2, "cmd.exe: %s\n" % e)
        finally:
            os._exit(exit_status(code))

    def run_simple(self, text, stdio):
        name, rest = first_token(text)
        if not name:
            return 0
        builtin = getattr(self, "builtin_" + name.lower(), None)
        if builtin is not None and BUILTIN.match(name):
            return builtin(rest, stdio)
        local = self.find_program(name)
        if local is None:
            say(stdio[2], "'%s' is not recognized as an internal or external command,\n"
                "operable program or batch file.\n" % name)
            return NOT_RECOGNIZED
        proc = self.spawn(name, local, rest, self.cwd, stdio[2],
                          stdin=stdio[0], stdout=stdio[1], stderr=stdio[2])
        if isinstance(proc, int):
            return proc
        code = proc.wait()
        return code if code >= 0 else 1  # killed: TerminateProcess's exit code, as taskkill /F

    def spawn(self, name, local, raw_args, cwd, err_fd, **stdio):
        """A Popen of the program, or the errorlevel when it cannot start."""
        try:
            argv, env = winexec.command(local, raw_args)
            return subprocess.Popen(argv, cwd=cwd, env=env, close_fds=True, **stdio)
        except winexec.BadExeFormat as e:
            say(err_fd, "%s\n" % e)
            return 193
        except OSError as e:
            say(err_fd, "%s: %s\n" % (name, "Access is denied." if e.errno in (1, 13) else
                                      "is not a valid Win32 application." if e.errno == 8 else
                                      e.strerror))
            return 193 if e.errno == 8 else 5

    # --- builtins ---------------------------------------------------------------------------

    def builtin_cd(self, rest, stdio):
        arg = rest.strip(BLANKS)
        if re.match(r"^/d($|[\s\"])", arg, re.IGNORECASE):
            arg = arg[2:]
        arg = arg.replace('"', "").strip(BLANKS)
        if not arg:
            say(stdio[1], "%s\n" % (winpath.to_windows(self.cwd) or self.cwd))
            return 0
        local = winpath.resolve(arg, self.cwd)
        if local is None or not os.path.isdir(local):
            say(stdio[2], "The system cannot find the path specified.\n")
            return 1
        self.cwd = local
        os.chdir(local)
        return 0

    builtin_chdir = builtin_cd

    def builtin_echo(self, rest, stdio):
        say(stdio[1], (rest[1:] if rest else "ECHO is off.") + "\n")
        return 0

    def builtin_exit(self, rest, stdio):
        words = rest.split()
        if words and words[0].lower() == "/b":
            words = words[1:]
        raise ExitCmd(int(words[0]) if words and re.match(r"^-?\d+$", words[0]) else 0)

    def builtin_start(self, rest, stdio):
        """start ["title"] [/b] [/d dir] [/wait] [/min|/max|/i|...] program [args]: the
        program runs detached, in a session and process group of its own, stdio on NUL."""
        i, cwd, wait = 0, self.cwd, False

        def token():
            nonlocal i
            while i < len(rest) and rest[i] in BLANKS:
                i += 1
            start, quoted = i, False
            while i < len(rest) and (quoted or rest[i] not in BLANKS):
                quoted = quoted != (rest[i] == '"')
                i += 1
            return rest[start:i]

        word = token()
        if word.startswith('"'):
            word = token()  # the window title
        while word.startswith("/"):
            switch = word[1:].lower()
            if switch == "wait":
                wait = True
            elif switch[:1] == "d":
                where = switch[1:] and word[2:] or token()
                cwd = winpath.resolve(where.replace('"', ""), self.cwd)
                if cwd is None or not os.path.isdir(cwd):
                    say(stdio[2], "The system cannot find the path specified.\n")
                    return 1
            elif switch not in ("b", "i", "min", "max", "normal", "low", "high", "realtime",
                                "abovenormal", "belownormal", "separate", "shared"):
                say(stdio[2], "The system cannot accept the START command parameter %s.\n"
                    % word)
                return 1
            word = token()
        name = word.replace('"', "")
        if not name:
            say(stdio[2], "start: a new console window is not emulated; name a program\n")
            return 1
        local = self.find_program(name, cwd)
        if local is None:
            say(stdio[2], "The system cannot find the file %s.\n" % name)
            return CANNOT_FIND_FILE
        proc = self.spawn(name, local, rest[i:], cwd, stdio[2], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
        if isinstance(proc, int):
            return proc
        return proc.wait() if wait else 0


def main():
    raw = winexec.raw_args_of(sys.argv[1:])
    try:
        switches, command = cmd_syntax.split_command_switches(raw)
    except cmd_syntax.CmdSyntaxError as e:
        say(2, "%s\n" % e)
        return 1
    if command is None or "k" in switches:
        say(2, "cmd.exe here runs only /C <command line>: no interactive shell is emulated\n")
        return 1
    shell = Shell()
    keep_if = None if "s" in switches else shell.find_program
    line = cmd_syntax.strip_c_quotes(command, keep_if)
    line = winpath.expand_variables(line, shell.variables())
    if not line.strip(BLANKS):
        return 0
    try:
        tree = cmd_syntax.parse(line)
    except cmd_syntax.CmdSyntaxError as e:
        say(2, "%s\n" % e)
        return SYNTAX_ERROR
    try:
        return shell.run(tree, (0, 1, 2))
    except ExitCmd as e:
        return e.code


if __name__ == "__main__":
    sys.exit(exit_status(main()))
