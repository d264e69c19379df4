#!/usr/bin/env python3
"""prom_check.py: a strict parser of the Prometheus text exposition format
(version 0.0.4) for the tests. Reads stdin; exits 1 naming the first bad line.
With NAME... arguments, the set of metric families must be exactly those.
Prints "name{labels} value" lines, normalized, for the test to grep."""
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r'"(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL}={VALUE})(?:,{LABEL}={VALUE})*)?\}})? (\S+)(?: (-?\d+))?$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def fail(n, line, why):
    sys.stderr.write(f"line {n}: {why}: {line!r}\n")
    sys.exit(1)


def main():
    helps, types, seen, families = {}, {}, set(), []
    text = sys.stdin.read()
    if text and not text.endswith("\n"):
        fail(0, text[-40:], "no newline at the end")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            m = re.match(rf"^# (HELP|TYPE) ({NAME}) (.*)$", line)
            if not m:
                if line.startswith("# HELP") or line.startswith("# TYPE"):
                    fail(n, line, "malformed HELP/TYPE")
                continue
            kind, name, rest = m.groups()
            table = helps if kind == "HELP" else types
            if name in table:
                fail(n, line, f"second {kind} for {name}")
            if name in {s[0] for s in seen}:
                fail(n, line, f"{kind} after samples of {name}")
            if kind == "TYPE" and rest not in TYPES:
                fail(n, line, "unknown type")
            table[name] = rest
            if name not in families:
                families.append(name)
            continue
        if not line.strip():
            fail(n, line, "empty line")
        m = SAMPLE.match(line)
        if not m:
            fail(n, line, "not a sample")
        name, labels, value, _ = m.groups()
        base = re.sub(r"_(total|sum|count|bucket)$", "", name)
        if name not in types and base not in types:
            fail(n, line, "sample without a TYPE line before it")
        if name not in helps and base not in helps:
            fail(n, line, "sample without a HELP line")
        if types.get(name, types.get(base)) == "counter" and not name.endswith("_total"):
            fail(n, line, "counter not named *_total")
        try:
            v = float(value)
        except ValueError:
            fail(n, line, "value is not a number")
        if types.get(name) == "counter" and (v < 0 or math.isnan(v)):
            fail(n, line, "negative counter")
        key = (name, labels or "")
        if key in seen:
            fail(n, line, "duplicate series")
        names = re.findall(rf"({LABEL})=", labels or "")
        if len(names) != len(set(names)):
            fail(n, line, "duplicate label")
        seen.add(key)
        print(f"{name}{{{labels or ''}}} {value}")
    want = sys.argv[1:]
    if want and sorted(want) != sorted(families):
        sys.stderr.write(f"metric families {sorted(families)} != wanted {sorted(want)}\n")
        sys.exit(1)


main()
