"""The command-line grammar of the test bed's cmd.exe: one line, parsed whole before it runs.

What cmd does in its parsing phase (after %VAR% expansion, which works on the raw text):
- "..." quotes: inside, nothing is special; the quotes stay in the text (programs split their
  own command lines). An unclosed quote runs to the end of the line.
- ^ outside quotes makes the next character ordinary and is removed.
- Operators, loosest first: `&` (then), `&&` / `||` (on success / on failure, left to right),
  `|` (pipe). `( ... )` groups where a command starts; `)` closes a group only inside one.
- Redirections anywhere in a command (or after a group's `)`): `>`, `>>`, `<`, with a handle
  digit that stands alone before `>` (`2>nul`) and `>&n` duplication; the target is one word.
A line that does not parse raises CmdSyntaxError naming what was unexpected, and nothing runs.
"""

from dataclasses import dataclass, field


class CmdSyntaxError(Exception):
    """cmd says "<token> was unexpected at this time." or "The syntax of the command is
    incorrect." and runs nothing."""


@dataclass
class Redirect:
    handle: int  # 0 stdin, 1 stdout, 2 stderr
    mode: str  # "<", ">", ">>", ">&"
    target: str  # a file name (quotes removed), "nul", or a handle digit for ">&"


@dataclass
class Simple:
    text: str  # the command as written, quotes kept, redirections removed
    redirects: list = field(default_factory=list)


@dataclass
class Group:
    body: object
    redirects: list = field(default_factory=list)


@dataclass
class Pipe:
    left: object
    right: object


@dataclass
class Sequence:
    left: object
    op: str  # "&", "&&", "||"
    right: object


BLANKS = " \t"


class _Parser:
    def __init__(self, text):
        self.s = text
        self.i = 0
        self.depth = 0

    def peek(self, n=1):
        return self.s[self.i:self.i + n]

    def skip_blanks(self):
        while self.i < len(self.s) and self.s[self.i] in BLANKS:
            self.i += 1

    def operator(self):
        """The operator at the cursor (after blanks), without consuming it."""
        self.skip_blanks()
        two = self.peek(2)
        if two in ("&&", "||"):
            return two
        one = self.peek()
        if one in ("&", "|") or (one == ")" and self.depth > 0):
            return one
        return None

    def unexpected(self, what=None):
        what = what or self.operator() or self.peek()
        if not what:
            return CmdSyntaxError("The syntax of the command is incorrect.")
        return CmdSyntaxError("%s was unexpected at this time." % what)

    def sequence(self):
        left = self.and_or()
        while self.operator() == "&":
            self.i += 1
            if self.operator() == ")" or self.i >= len(self.s):
                break  # a trailing & is allowed, as in cmd
            left = Sequence(left, "&", self.and_or())
        return left

    def and_or(self):
        left = self.pipeline()
        while self.operator() in ("&&", "||"):
            op = self.operator()
            self.i += 2
            left = Sequence(left, op, self.pipeline())
        return left

    def pipeline(self):
        left = self.command()
        while self.operator() == "|":
            self.i += 1
            left = Pipe(left, self.command())
        return left

    def command(self):
        self.skip_blanks()
        if self.peek() == "(":
            self.i += 1
            self.depth += 1
            body = self.sequence()
            self.skip_blanks()
            if self.peek() != ")":
                raise CmdSyntaxError("The syntax of the command is incorrect. (missing ')')")
            self.i += 1
            self.depth -= 1
            group = Group(body)
            while True:
                self.skip_blanks()
                c = self.peek()
                if c.isdigit() and self.peek(2)[1:] == ">":
                    self.i += 1
                    group.redirects.append(self.redirect(int(c)))
                elif c in ("<", ">"):
                    group.redirects.append(self.redirect(None))
                elif self.operator() is not None or self.i >= len(self.s):
                    return group
                else:
                    word = self.s[self.i:].split(None, 1)[0]
                    raise self.unexpected(word)
        return self.simple()

    def simple(self):
        text, word, quoted = [], "", False
        redirects = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if quoted:
                text.append(c)
                word += c
                quoted = c != '"'
                self.i += 1
                continue
            if c == '"':
                quoted = True
            elif c == "^":
                self.i += 1
                if self.i < len(self.s):
                    text.append(self.s[self.i])
                    word += self.s[self.i]
                self.i += 1
                continue
            elif c in BLANKS:
                word = ""
            elif c in "&|" or (c == ")" and self.depth > 0):
                break
            elif c in "<>":
                handle = None
                if len(word) == 1 and word.isdigit() and c == ">":
                    handle = int(word)
                    text.pop()
                redirects.append(self.redirect(handle))
                word = ""
                continue
            else:
                word += c
            text.append(c)
            self.i += 1
        line = "".join(text)
        if not line.strip(BLANKS) and not redirects:
            raise self.unexpected()
        return Simple(line, redirects)

    def redirect(self, handle):
        c = self.s[self.i]
        self.i += 1
        if c == "<":
            mode, default = "<", 0
        elif self.peek() == ">":
            self.i += 1
            mode, default = ">>", 1
        else:
            mode, default = ">", 1
        if mode != "<" and self.peek() == "&":
            self.i += 1
            mode = ">&"
        self.skip_blanks()
        target, quoted = "", False
        while self.i < len(self.s):
            c = self.s[self.i]
            if not quoted and (c in BLANKS or c in "&|<>" or (c == ")" and self.depth > 0)):
                break
            if c == '"':
                quoted = not quoted
            else:
                target += c
            self.i += 1
        if not target or (mode == ">&" and target not in ("0", "1", "2")):
            raise CmdSyntaxError("The syntax of the command is incorrect.")
        return Redirect(default if handle is None else handle, mode, target)


def parse(line):
    """The tree of a command line (Simple, Group, Pipe, Sequence); raises CmdSyntaxError."""
    p = _Parser(line)
    tree = p.sequence()
    p.skip_blanks()
    if p.i < len(p.s):
        raise p.unexpected()
    return tree


def split_command_switches(rest):
    """cmd's own switches before /C (or /K): (switches, command text after /C or None).

    /D /Q /S /A /U and /E: /F: /V: with on|off are taken; anything else is not emulated."""
    switches, i = [], 0
    while True:
        while i < len(rest) and rest[i] in BLANKS:
            i += 1
        if i >= len(rest) or rest[i] != "/":
            return switches, None
        j = i + 1
        while j < len(rest) and rest[j] not in BLANKS and rest[j] != "/":
            j += 1
        switch = rest[i + 1:j].lower()
        if switch[:1] in ("c", "k"):
            return switches + [switch[:1]], rest[i + 2:]
        if switch not in ("d", "q", "s", "a", "u", "e:on", "e:off", "f:off", "v:off"):
            raise CmdSyntaxError("cmd.exe switch /%s is not emulated on this test bed" % switch)
        switches.append(switch)
        i = j


def strip_c_quotes(command, keep_if=None):
    """The command after /C as cmd /? describes it: with /S, or unless the line is exactly
    one quoted executable name (keep_if tells), a leading quote and the last quote are removed
    and everything else is kept verbatim."""
    stripped = command.lstrip(BLANKS)
    if not stripped.startswith('"'):
        return command
    if keep_if is not None and stripped.count('"') == 2:
        inside = stripped[1:stripped.index('"', 1)]
        if (not any(c in inside for c in "&<>()@^|") and any(c in inside for c in BLANKS)
                and keep_if(inside)):
            return command
    last = stripped.rindex('"')
    if last == 0:
        return stripped[1:]
    return stripped[1:last] + stripped[last + 1:]
