#!/usr/bin/python3
"""netsh.exe of the scm-peer test bed: `netsh advfirewall firewall add|delete|show rule ...`.

Rules are kept in /var/lib/scm-peer/firewall.json (nothing filters packets here), read and
written under an exclusive flock of firewall.lock, because several agents may call at once.
Parameters are key=value arguments (keys without case; a value may hold blanks when it arrives
as one argument, "name=sumac run=x target=y port=1" as cmd passes a quoted one). Output is
netsh's, CRLF line ends:
  add rule name=N dir=in|out action=allow|block|bypass [protocol=] [localport=] [remoteport=]
           [localip=] [remoteip=] [profile=] [enable=] [description=]     -> "Ok."
  delete rule name=N|all [dir=] [protocol=] [localport=] [remoteport=] [localip=] [remoteip=]
      -> "Deleted N rule(s)." "Ok.", or "No rules match the specified criteria." and exit 1
  show rule name=N|all [dir=] [profile=] [type=] [verbose]
      -> per rule "Rule Name:" padded to column 38, 70 dashes, Enabled, Direction, Profiles,
         Grouping, LocalIP, RemoteIP, Protocol, LocalPort, RemotePort (TCP and UDP rules),
         Edge traversal, Action; a blank line between rules; then "Ok."
"""

import fcntl
import ipaddress
import json
import os
import sys

STATE_DIR = "/var/lib/scm-peer"
RULES_FILE = os.path.join(STATE_DIR, "firewall.json")
LOCK_FILE = os.path.join(STATE_DIR, "firewall.lock")
NO_MATCH = "No rules match the specified criteria."
ADDRESS_KEYWORDS = {"localsubnet": "LocalSubnet", "dns": "DNS", "dhcp": "DHCP", "wins": "WINS",
                    "defaultgateway": "DefaultGateway"}
PROFILES = ("Domain", "Private", "Public")
PORT_PROTOCOLS = ("TCP", "UDP")


class Invalid(Exception):
    """A parameter netsh refuses: the message it prints."""


def out(text=""):
    sys.stdout.write(text.replace("\n", "\r\n") + "\r\n")


def normal_protocol(value):
    v = value.lower()
    named = {"tcp": "TCP", "udp": "UDP", "any": "Any", "icmpv4": "ICMPv4", "icmpv6": "ICMPv6"}
    if v in named:
        return named[v]
    if v.isdigit() and int(v) <= 255:
        return {"6": "TCP", "17": "UDP"}.get(str(int(v)), str(int(v)))
    raise Invalid("A specified protocol value is not valid.")


def normal_ports(value):
    if value.lower() == "any":
        return "Any"
    parts = []
    for part in value.split(","):
        bounds = part.strip().split("-")
        if not 1 <= len(bounds) <= 2 or not all(b.isdigit() and int(b) <= 65535 for b in bounds):
            raise Invalid("A specified port value is not valid.")
        parts.append("-".join(str(int(b)) for b in bounds))
    return ",".join(parts)


def normal_addresses(value):
    if value.lower() == "any":
        return "Any"
    parts = []
    for part in value.split(","):
        part = part.strip()
        if part.lower() in ADDRESS_KEYWORDS:
            parts.append(ADDRESS_KEYWORDS[part.lower()])
            continue
        try:
            if "-" in part:
                low, high = (ipaddress.ip_address(p) for p in part.split("-", 1))
                parts.append("%s-%s" % (low, high))
            else:
                parts.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise Invalid("A specified IP address or address keyword is not valid.") from None
    return ",".join(parts)


def normal_profiles(value):
    chosen = set()
    for part in value.lower().split(","):
        part = part.strip()
        if part == "any":
            chosen.update(PROFILES)
        elif part.capitalize() in PROFILES:
            chosen.add(part.capitalize())
        else:
            raise Invalid("A specified value is not valid.")
    return ",".join(p for p in PROFILES if p in chosen)


def one_of(choices, message):
    def check(value):
        for choice in choices:
            if value.lower() == choice.lower():
                return choice
        raise Invalid(message)
    return check


NORMALISE = {
    "name": lambda v: v,
    "dir": one_of(("In", "Out"), "A specified value is not valid."),
    "action": one_of(("Allow", "Block", "Bypass"), "A specified action value is not valid."),
    "protocol": normal_protocol,
    "localport": normal_ports,
    "remoteport": normal_ports,
    "localip": normal_addresses,
    "remoteip": normal_addresses,
    "profile": normal_profiles,
    "enable": one_of(("Yes", "No"), "A specified value is not valid."),
    "description": lambda v: v,
    "type": one_of(("static", "dynamic"), "A specified value is not valid."),
}


def parameters(args, allowed, required):
    params, flags = {}, set()
    for arg in args:
        key, eq, value = arg.partition("=")
        key = key.strip().lower()
        if not eq:
            if key in allowed and key == "verbose":
                flags.add(key)
                continue
            raise Invalid("A specified value is not valid. ('%s' is not key=value)" % arg)
        if key not in allowed:
            raise Invalid("'%s' is not a valid argument for this command." % key)
        if not value:
            raise Invalid("A specified value is not valid. (%s= is empty)" % key)
        params[key] = NORMALISE[key](value)
    for key in required:
        if key not in params:
            raise Invalid("A required parameter is missing: %s=." % key)
    return params, flags


class Rules:
    """firewall.json under the lock, for one command."""

    def __enter__(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        self.lock = open(LOCK_FILE, "a")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            with open(RULES_FILE, encoding="utf-8") as f:
                self.rules = json.load(f)
        except FileNotFoundError:
            self.rules = []
        return self

    def save(self):
        part = RULES_FILE + ".part"
        with open(part, "w", encoding="utf-8") as f:
            json.dump(self.rules, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, RULES_FILE)

    def __exit__(self, *_):
        fcntl.flock(self.lock, fcntl.LOCK_UN)
        self.lock.close()


def matches(rule, params):
    for key, value in params.items():
        if key == "name":
            if value.lower() != "all" and rule["name"].lower() != value.lower():
                return False
        elif key in ("profile", "type"):
            continue
        elif rule.get(key) != value:
            return False
    return True


def add(args):
    allowed = ("name", "dir", "action", "protocol", "localport", "remoteport", "localip",
               "remoteip", "profile", "enable", "description")
    params, _ = parameters(args, allowed, ("name", "dir", "action"))
    if params["name"].lower() == "all":
        raise Invalid("The rule name cannot be 'all'.")
    protocol = params.get("protocol", "Any")
    if protocol not in PORT_PROTOCOLS and ("localport" in params or "remoteport" in params):
        raise Invalid("The protocol must be TCP or UDP when ports are given.")
    rule = {"name": params["name"], "enable": params.get("enable", "Yes"), "dir": params["dir"],
            "profile": params.get("profile", ",".join(PROFILES)),
            "localip": params.get("localip", "Any"), "remoteip": params.get("remoteip", "Any"),
            "protocol": protocol, "action": params["action"]}
    if protocol in PORT_PROTOCOLS:
        rule["localport"] = params.get("localport", "Any")
        rule["remoteport"] = params.get("remoteport", "Any")
    with Rules() as rules:
        rules.rules.append(rule)
        rules.save()
    out("Ok.")
    out()
    return 0


def delete(args):
    allowed = ("name", "dir", "protocol", "localport", "remoteport", "localip", "remoteip",
               "profile")
    params, _ = parameters(args, allowed, ("name",))
    with Rules() as rules:
        kept = [r for r in rules.rules if not matches(r, params)]
        gone = len(rules.rules) - len(kept)
        if gone:
            rules.rules = kept
            rules.save()
    out()
    if not gone:
        out(NO_MATCH)
        out()
        return 1
    out("Deleted %d rule(s)." % gone)
    out("Ok.")
    out()
    return 0


def show(args):
    params, _ = parameters(args, ("name", "dir", "profile", "type", "verbose"), ("name",))
    with Rules() as rules:
        chosen = [r for r in rules.rules if matches(r, params)]
    out()
    if not chosen:
        out(NO_MATCH)
        return 1
    blocks = []
    for r in chosen:
        rows = [("Rule Name:", r["name"]), None, ("Enabled:", r["enable"]),
                ("Direction:", r["dir"]), ("Profiles:", r["profile"]), ("Grouping:", ""),
                ("LocalIP:", r["localip"]), ("RemoteIP:", r["remoteip"]),
                ("Protocol:", r["protocol"])]
        if "localport" in r:
            rows += [("LocalPort:", r["localport"]), ("RemotePort:", r["remoteport"])]
        rows += [("Edge traversal:", "No"), ("Action:", r["action"])]
        blocks.append("\n".join("-" * 70 if row is None else row[0].ljust(38) + row[1]
                                for row in rows))
    out("\n\n".join(blocks))
    out("Ok.")
    out()
    return 0


def main(argv):
    words = [a.lower() for a in argv[:4]]
    if words[:2] != ["advfirewall", "firewall"] or len(words) < 4 or words[3] != "rule":
        out("The following command was not found: %s." % " ".join(argv))
        out("(this test bed emulates only: netsh advfirewall firewall add|delete|show rule)")
        return 1
    verb = {"add": add, "delete": delete, "show": show}.get(words[2])
    if verb is None:
        out("The following command was not found: %s." % " ".join(argv))
        return 1
    try:
        return verb(argv[4:])
    except Invalid as e:
        out(str(e))
        out()
        return 1
    except (OSError, ValueError) as e:
        out("An error occurred while reading or writing the rules: %s" % e)
        return 1


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.exit(code)
