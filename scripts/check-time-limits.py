#!/usr/bin/env python3
"""check-time-limits.py — every test runs under a Swift Testing time limit (CI runs it).

    scripts/check-time-limits.py [directory ...]      default: Tests

A test without `.timeLimit` that deadlocks hangs the whole `swift test` run instead of failing
it. This check fails (exit 1, one line per offence) when
  * an `@Suite(...)` attribute has no `.timeLimit(...)` trait, or
  * a `@Test` is not inside a type marked `@Suite(... .timeLimit(...))` and has no
    `.timeLimit(...)` of its own (a bare test, or a test in a type Swift Testing makes a suite
    implicitly; a test in an extension counts as inside the extended type).

It reads the sources as text: comments and string literals are blanked, then braces are
counted to know which type encloses each `@Test`. That is enough for test files as this
repository writes them; a construct it cannot follow errs on the side of an offence.
"""
import re
import sys
from pathlib import Path

DECL = re.compile(r"\b(struct|class|enum|actor|extension)\s+([A-Za-z_][A-Za-z_0-9.]*)")


def blank(text: str) -> str:
    """Replaces comments and string literals by spaces, keeping line breaks and offsets."""
    out = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif text.startswith('"""', i):
            j = text.find('"""', i + 3)
            j = n if j < 0 else j + 3
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif text[i] == '"':
            # A one-line literal; interpolations may nest parentheses and quotes.
            j, depth = i + 1, 0
            while j < n and text[j] != "\n":
                if text[j] == "\\" and j + 1 < n and text[j + 1] == "(":
                    depth += 1; j += 2; continue
                if text[j] == "\\":
                    j += 2; continue
                if depth and text[j] == "(":
                    depth += 1
                elif depth and text[j] == ")":
                    depth -= 1
                elif text[j] == '"' and depth == 0:
                    j += 1; break
                j += 1
            out.append(" " * (j - i)); i = j
        else:
            out.append(text[i]); i += 1
    return "".join(out)


def attribute(text: str, start: int) -> str:
    """The attribute starting at `start` ('@Suite' or '@Test'), with its balanced arguments."""
    j = start + 1
    while j < len(text) and (text[j].isalnum() or text[j] == "_"):
        j += 1
    k = j
    while k < len(text) and text[k] in " \t":
        k += 1
    if k < len(text) and text[k] == "(":
        depth = 0
        while k < len(text):
            depth += {"(": 1, ")": -1}.get(text[k], 0)
            k += 1
            if depth == 0:
                break
        return text[start:k]
    return text[start:j]


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def scan(path: Path, raw: str):
    """Yields ('suite', line, ok) and ('test', line, enclosing type names, own limit) events,
    and ('type', name, limited) for every type declared with @Suite."""
    text = blank(raw)
    # The attributes written since the last declaration or statement, and the declaration
    # waiting for its opening brace.
    pending_attrs: list[str] = []
    pending_decl: str | None = None
    stack: list[str | None] = []  # per open brace: the type name it opens, or None
    i = 0
    while i < len(text):
        c = text[i]
        if c == "@" and text.startswith(("@Suite", "@Test"), i):
            attr = attribute(text, i)
            name = "@Suite" if attr.startswith("@Suite") else "@Test"
            limited = ".timeLimit(" in attr
            if name == "@Suite":
                yield ("suite", line_of(text, i), limited)
            else:
                types = [t for t in stack if t is not None]
                yield ("test", line_of(text, i), types, limited)
            pending_attrs.append(attr)
            i += len(attr); continue
        m = DECL.match(text, i) if (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")) else None
        if m:
            pending_decl = m.group(2).split(".")[-1] if m.group(1) != "extension" else "ext:" + m.group(2).split(".")[-1]
            if m.group(1) != "extension":
                yield ("type", pending_decl, any(a.startswith("@Suite") and ".timeLimit(" in a for a in pending_attrs))
            pending_attrs = []
            i = m.end(); continue
        if c == "{":
            stack.append(pending_decl)
            pending_decl = None
            pending_attrs = []
        elif c == "}":
            if stack:
                stack.pop()
        i += 1


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [Path(__file__).resolve().parent.parent / "Tests"]
    files = sorted(p for r in roots for p in ([r] if r.is_file() else r.rglob("*.swift")))
    limited_types: dict[str, bool] = {}
    tests = []
    offences = []
    for path in files:
        for event in scan(path, path.read_text(encoding="utf-8")):
            if event[0] == "suite" and not event[2]:
                offences.append(f"{path}:{event[1]}: @Suite without .timeLimit(...)")
            elif event[0] == "type":
                limited_types[event[1]] = limited_types.get(event[1], False) or event[2]
            elif event[0] == "test":
                tests.append((path, event[1], event[2], event[3]))
    for path, line, types, own in tests:
        if own:
            continue
        names = [t[4:] if t.startswith("ext:") else t for t in types]
        if not any(limited_types.get(n, False) for n in names):
            where = f"inside {'.'.join(names)}" if names else "at the top level"
            offences.append(f"{path}:{line}: @Test {where}, under no @Suite(... .timeLimit(...))")
    for o in offences:
        print(o)
    print(f"check-time-limits: {len(files)} files, {len(tests)} tests, {len(offences)} without a time limit")
    return 1 if offences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
