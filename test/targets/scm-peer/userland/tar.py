#!/usr/bin/python3
"""tar.exe (bsdtar) of the scm-peer test bed: extraction only.

    tar -xzf archive.tgz [-C dir]      (also -xf, -x -z -f archive, xzf archive, -v)

gzip or plain tar, into the current directory (or -C's). Names are matched without case against
what is on disk, as NTFS would. The archive is checked whole before anything is written: a
member with an absolute name (/x, \\x, C:x), a '..' component, or a type other than a regular
file or directory (links, devices) is refused with a message and exit 1, and nothing is
extracted (bsdtar would skip such members and extract the rest; nothing sumac sends has one).
"""

import os
import re
import sys
import tarfile

sys.path[:0] = ["/opt/scm-peer", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]

import winpath  # noqa: E402


def fail(message):
    sys.stderr.write("tar.exe: %s\r\n" % message)
    return 1


def parse(argv):
    """(mode letters, archive, directory); raises ValueError for what is not emulated."""
    letters, archive, directory, rest = set(), None, None, list(argv)
    first = True
    while rest:
        arg = rest.pop(0)
        if arg.startswith("--"):
            if arg.startswith("--directory="):
                directory = arg[len("--directory="):]
                continue
            if arg.startswith("--file="):
                archive = arg[len("--file="):]
                continue
            raise ValueError("option %s is not emulated" % arg)
        if arg.startswith("-") or first:
            body = arg[1:] if arg.startswith("-") else arg
            for i, letter in enumerate(body):
                if letter in "fC":
                    value = body[i + 1:] or (rest.pop(0) if rest else None)
                    if value is None:
                        raise ValueError("option -%s needs a value" % letter)
                    if letter == "f":
                        archive = value
                    else:
                        directory = value
                    break
                if letter not in "xzv":
                    raise ValueError("option -%s is not emulated (only -x, -z, -v, -f, -C)" % letter)
                letters.add(letter)
            first = False
            continue
        raise ValueError("member names to extract are not emulated: %s" % arg)
    if "x" not in letters:
        raise ValueError("only extraction (-x) is emulated")
    if archive is None:
        raise ValueError("no archive given (-f)")
    return letters, archive, directory


def refusal(member):
    name = member.name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in name.split("/"):
        return "path contains '..'"
    if not (member.isfile() or member.isdir()):
        return "not a regular file or directory"
    return None


def main(argv):
    try:
        letters, archive, directory = parse(argv)
    except ValueError as e:
        return fail(str(e))
    cwd = os.getcwd()
    local_archive = winpath.resolve(archive, cwd)
    if directory is not None:
        target = winpath.resolve(directory, cwd)
        if target is None or not os.path.isdir(target):
            return fail("could not chdir to '%s'" % directory)
    else:
        target = cwd
    try:
        with tarfile.open(local_archive or archive, "r:gz" if "z" in letters else "r:*") as tar:
            members = tar.getmembers()
            bad = [(m.name, refusal(m)) for m in members if refusal(m)]
            for name, why in bad:
                fail("%s: %s: refused" % (name, why))
            if bad:
                return fail("Error exit delayed from previous errors; nothing was extracted.")
            for member in members:
                parts = [p for p in member.name.replace("\\", "/").split("/") if p not in ("", ".")]
                if not parts:
                    continue
                local = winpath.resolve("\\".join(parts), target)
                if member.isdir():
                    os.makedirs(local, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(local), exist_ok=True)
                source = tar.extractfile(member)
                with open(local, "wb") as out:
                    while True:
                        chunk = source.read(1 << 20)
                        if not chunk:
                            break
                        out.write(chunk)
                os.chmod(local, (member.mode & 0o777) | 0o600)
                os.utime(local, (member.mtime, member.mtime))
                if "v" in letters:
                    sys.stderr.write("x %s\r\n" % member.name)
    except FileNotFoundError:
        return fail("Error opening archive: Failed to open '%s'" % archive)
    except (tarfile.TarError, OSError, EOFError) as e:
        return fail("Error reading '%s': %s" % (archive, e))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
