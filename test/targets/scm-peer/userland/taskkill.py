#!/usr/bin/python3
"""taskkill.exe of the scm-peer test bed: `taskkill [/F] [/T] /PID n [/PID m ...]`.

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


def out(line):
    sys.stdout.write(line + "\r\n")


def main(argv):
    force = whole_tree = False
    pids, rest = [], list(argv)
    while rest:
        arg = rest.pop(0).lower()
        if arg in ("/f", "-f"):
            force = True
        elif arg in ("/t", "-t"):
            whole_tree = True
        elif arg in ("/pid", "-pid") and rest:
            pids.append(rest.pop(0))
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
