#!/usr/bin/python3
"""taskkill.exe of the scm-peer test bed: `taskkill [/F] [/T] [/FI "IMAGENAME eq X"] /PID n ...`.

/FI "IMAGENAME eq X" keeps only the processes whose image is X (case-insensitive); a `node.exe`
run by the program loader is the Linux `node` here, so X `node.exe` also matches an image `node`.
A pid the filter leaves out is reported as taskkill reports no match:
    INFO: No tasks running with the specified criteria.

/F kills (SIGKILL), without it the process is asked to end (SIGTERM). /T takes the tree: the
process, its descendants, and, when it leads a process group (as a program cmd `start`ed does),
every member of that group. Output as taskkill's, CRLF line ends:
    SUCCESS: The process with PID 812 (child process of PID 1) has been terminated.
    ERROR: The process "812" not found.            (exit 128)
"""

import os
import signal
import sys


def processes():
    """{pid: (ppid, pgid)} of the live processes (zombies are gone for taskkill)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] in ("Z", "X"):
            continue
        table[int(entry)] = (int(fields[1]), int(fields[2]))
    return table


def tree(root, table):
    """root first, then its descendants and its group's members, breadth first."""
    chosen, queue = [], [root]
    while queue:
        pid = queue.pop(0)
        if pid in chosen:
            continue
        chosen.append(pid)
        queue += [p for p, (ppid, pgid) in table.items()
                  if ppid == pid or (pgid == pid and p != pid)]
    return chosen


def image_matches(pid, image):
    """Whether the process's image is `image` (node.exe: the loader's Linux node too)."""
    try:
        name = os.path.basename(os.readlink("/proc/%d/exe" % pid)).lower()
    except OSError:
        return False
    return name == image or (image.endswith(".exe") and name == image[:-4])


def out(line):
    sys.stdout.write(line + "\r\n")


def main(argv):
    force = whole_tree = False
    image = None
    pids, rest = [], list(argv)
    while rest:
        arg = rest.pop(0).lower()
        if arg in ("/f", "-f"):
            force = True
        elif arg in ("/t", "-t"):
            whole_tree = True
        elif arg in ("/pid", "-pid") and rest:
            pids.append(rest.pop(0))
        elif arg in ("/fi", "-fi") and rest:
            words = rest.pop(0).split()
            if len(words) != 3 or words[0].lower() != "imagename" or words[1].lower() != "eq":
                out("ERROR: The search filter cannot be recognized (only IMAGENAME eq is emulated).")
                return 1
            image = words[2].lower()
        else:
            out("ERROR: Invalid argument/option - '%s'." % arg)
            out('Type "TASKKILL /?" for usage.')
            return 1
    if not pids:
        out("ERROR: Invalid syntax. /PID or /IM is required (only /PID is emulated).")
        return 1
    table = processes()
    spared = {1, os.getpid(), os.getppid()}
    code = 0
    for text in pids:
        pid = int(text) if text.isdigit() else -1
        if pid not in table:
            out('ERROR: The process "%s" not found.' % text)
            code = 128
            continue
        if image is not None and not image_matches(pid, image):
            out("INFO: No tasks running with the specified criteria.")
            continue
        if pid in spared:
            out("ERROR: The process with PID %d could not be terminated." % pid)
            out("Reason: This is critical system process. Taskkill cannot end this process.")
            code = 1
            continue
        victims = [p for p in (tree(pid, table) if whole_tree else [pid]) if p not in spared]
        if force:
            # Stopped first, so that no member of the tree starts another while we kill.
            for victim in victims:
                try:
                    os.kill(victim, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
        # Children first, as taskkill /T reports them.
        for victim in reversed(victims):
            try:
                os.kill(victim, signal.SIGKILL if force else signal.SIGTERM)
            except ProcessLookupError:
                continue
            if whole_tree:
                out("SUCCESS: The process with PID %d (child process of PID %d) has been "
                    "terminated." % (victim, table[victim][0]))
            else:
                out("SUCCESS: The process with PID %d has been terminated." % victim)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
