#!/usr/bin/python3
"""findstr.exe of the scm-peer test bed: literal search of stdin (or files), as findstr does it.

Options (/ or -, case-insensitive, several after one slash as in /xi): /X whole line, /B at the
start, /E at the end, /I without case, /V lines that do not match, /N line numbers, /L literal,
/C:string (one string with blanks). Without /C: the blank-separated words of the first operand
are alternatives. A line matches without its CR LF. Exit 0 when a line was printed, 1 when
none, 2 for a command line it does not take. Regular expressions (/R, or a default search
string with a regular expression character, which findstr would read as one) are not emulated.
"""

import os
import sys

sys.path[:0] = ["/opt/scm-peer", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]

import winpath  # noqa: E402

REGEX_CHARACTERS = set(".*^$[]\\")


def bad(message):
    sys.stderr.write("FINDSTR: %s\r\n" % message)
    return 2


def main(argv):
    flags, strings, files = set(), [], []
    for arg in argv:
        if arg[:1] in ("/", "-") and len(arg) > 1 and not strings:
            body = arg[1:]
            while body:
                letter = body[0].lower()
                if letter == "c" and body[1:2] == ":":
                    strings.append(body[2:])
                    flags.add("c")
                    break
                if letter not in "xbeivnl":
                    return bad("/%s is not emulated on this test bed" % body[0])
                flags.add(letter)
                body = body[1:]
            continue
        if not strings:
            strings = arg.split()
            if not strings:
                return bad("Bad command line")
        else:
            files.append(arg)
    if not strings:
        return bad("Bad command line")
    if "l" not in flags and "c" not in flags and REGEX_CHARACTERS & set(strings[0]):
        return bad("regular expressions are not emulated here; use /L")

    def fold(s):
        return s.lower() if "i" in flags else s

    needles = [fold(s) for s in strings]

    def matches(line):
        text = fold(line)
        if "x" in flags:
            hit = any(text == n for n in needles)
        elif "b" in flags and "e" in flags:
            hit = any(text.startswith(n) and text.endswith(n) for n in needles)
        elif "b" in flags:
            hit = any(text.startswith(n) for n in needles)
        elif "e" in flags:
            hit = any(text.endswith(n) for n in needles)
        else:
            hit = any(n in text for n in needles)
        return hit != ("v" in flags)

    sources = []
    for name in files:
        local = winpath.resolve(name, os.getcwd())
        try:
            sources.append((name, open(local or name, "rb").read()))
        except OSError:
            sys.stderr.write("FINDSTR: Cannot open %s\r\n" % name)
    if not files:
        sources.append((None, sys.stdin.buffer.read()))
    found = False
    for name, data in sources:
        for number, raw in enumerate(data.splitlines(keepends=True), 1):
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if not matches(line):
                continue
            found = True
            prefix = (name + ":" if len(files) > 1 else "") + ("%d:" % number if "n" in flags else "")
            sys.stdout.buffer.write(prefix.encode() + raw.rstrip(b"\r\n") + b"\r\n")
    sys.stdout.flush()
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
