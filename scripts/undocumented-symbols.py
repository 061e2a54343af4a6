#!/usr/bin/env python3
"""Lists the public symbols of a symbol graph (from `swift package generate-documentation`)
that have no doc comment of their own. Protocol-conformance witnesses that inherit the
protocol's documentation (==, hash(into:), init(from:), encode(to:), description, id, …)
and enum cases of well-known shapes are listed too: the caller decides. Exit 1 if any."""
import json
import sys

graph = json.load(open(sys.argv[1]))
inherited_ok = {"==(_:_:)", "hash(into:)", "init(from:)", "encode(to:)", "description", "id",
                "init(rawValue:)", "rawValue", "allCases", "hashValue", "!=(_:_:)"}
missing = []
for s in graph["symbols"]:
    if s.get("accessLevel") not in ("public", "open"):
        continue
    title = s["names"]["title"]
    path = ".".join(s["pathComponents"])
    if s.get("docComment"):
        continue
    # Members synthesised or inherited from a protocol (no location in this module's source).
    if "location" not in s or title in inherited_ok:
        continue
    loc = s["location"]
    missing.append("%s:%d %s (%s)" % (loc["uri"].split("/Sources/")[-1], loc["position"]["line"] + 1, path, s["kind"]["displayName"]))
for m in sorted(missing):
    print(m)
sys.exit(1 if missing else 0)
