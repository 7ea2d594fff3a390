#!/usr/bin/python3
"""certutil.exe of the scm-peer test bed: only `-hashfile <file> [algorithm]`.

As Windows 10 and later print it (CRLF line ends, the file named as given):
    SHA256 hash of node.exe:
    <lowercase hex, no blanks>
    CertUtil: -hashfile command completed successfully.
A file that cannot be read gives certutil's two FAILED lines on stdout and a nonzero exit (the
low byte of the HRESULT Windows returns: 2 for a missing file, 5 for access denied).
"""

import hashlib
import os
import sys

sys.path[:0] = ["/opt/scm-peer", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]

import winpath  # noqa: E402

ALGORITHMS = {"MD2": None, "MD4": None, "MD5": "md5", "SHA1": "sha1", "SHA256": "sha256",
              "SHA384": "sha384", "SHA512": "sha512"}
FAILURES = {
    2: ("0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)", "The system cannot find the file specified."),
    3: ("0x80070003 (WIN32: 3 ERROR_PATH_NOT_FOUND)", "The system cannot find the path specified."),
    5: ("0x80070005 (WIN32: 5 ERROR_ACCESS_DENIED)", "Access is denied."),
}


def out(text):
    sys.stdout.buffer.write(text.encode("utf-8") + b"\r\n")


def failed(verb, code):
    hresult, message = FAILURES[code]
    out("CertUtil: %s command FAILED: %s" % (verb, hresult))
    out("CertUtil: %s" % message)
    return code


def hashfile(args):
    if not 1 <= len(args) <= 2:
        out("CertUtil: -hashfile expects a file name and an optional algorithm")
        out("CertUtil: The parameter is incorrect.")
        return 87
    name = args[0]
    algorithm = (args[1] if len(args) == 2 else "SHA1").upper()
    if ALGORITHMS.get(algorithm) is None:
        out("CertUtil: -hashfile command FAILED: 0x80090008 (-2146893816 NTE_BAD_ALGID)")
        out("CertUtil: Invalid algorithm specified.")
        return 8
    local = winpath.resolve(name, os.getcwd())
    if local is None:
        return failed("-hashfile", 3)
    digest = hashlib.new(ALGORITHMS[algorithm])
    try:
        with open(local, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except FileNotFoundError:
        return failed("-hashfile", 2)
    except (IsADirectoryError, PermissionError):
        return failed("-hashfile", 5)
    out("%s hash of %s:" % (algorithm, name))
    out(digest.hexdigest())
    out("CertUtil: -hashfile command completed successfully.")
    return 0


def main(argv):
    if argv and argv[0].lower() in ("-hashfile", "/hashfile"):
        return hashfile(argv[1:])
    out("CertUtil: Unknown arg: %s" % (argv[0] if argv else "(none)"))
    out("CertUtil: only -hashfile is emulated on this test bed")
    return 1


if __name__ == "__main__":
    sys.stdout.flush()
    sys.exit(main(sys.argv[1:]))
