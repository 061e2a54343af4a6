#!/usr/bin/env python3
"""Keeps the layering of Sources/UserThreads true (DEVELOPERS.md "Layers", the one numbering).

1. Every Swift file's first line is "// Layer N: …" with N its folder's layer (LAYERS below).
2. No file names a type defined in a higher layer (comments and strings aside), except the
   deliberate references listed in ALLOWED, each with its reason.
3. No file uses a member declared only in higher layers: the functions, properties and enum
   cases each layer declares at file level or in an extension of a lower layer's (or the
   standard library's) type are collected, and a call `name(` / `.name(` of such a function, or
   a `.name` of such a property or case, in a lower layer is reported when no file of that layer
   or below declares the name too, in any body (so common names, and the standard library's,
   pass). This catches what the type check cannot: a member that a higher layer adds to a lower
   type in an extension (`extension UThread { static func spawnOnWorkers … }` in a layer above
   UThread's) and that the lower layer calls. Members of a higher layer's own types are left
   out: they cannot be reached without naming the type, which check 2 reports.
4. No issue-number tags in sources, tests, scripts or docs: code says what it does and why;
   history belongs in git.

Run from the repository root: python3 scripts/check-layers.py (exit status 1 on a violation).
"""
import os, re, subprocess, sys

# One numbering, in the order of DEVELOPERS.md "Layers"; C (layer 0) is Sources/CUThreads.
LAYERS = {'Base': 1, 'Context': 2, 'Stacks': 3, 'ThreadTable': 4, 'Timers': 5, 'Scheduler': 6,
          'Reactor': 7, 'Sync': 8, 'IO': 9, 'MN': 10, 'Runtime': 11, 'Bridge': 12}
# Targets of their own above the core library, one layer each.
TARGETS = {'Sources/UserThreadsBackends': 13, 'Sources/UserThreadsHTTP': 14}
# Folders of the core library that hold no layer's code.
SKIP = {'UserThreads.docc'}
ROOT = 'Sources/UserThreads'

# (file, name): why a lower layer names a higher one on purpose.
ALLOWED = {
    ('Sources/UserThreads/IO/Blocking.swift', 'UThreadRuntime'):
        # The offload pool's size is a public setting, and UThreadRuntime is where public
        # settings live; the extension adds to the API, the I/O code does not call up.
        'blockingPoolSize is declared on the public namespace',
    ('Sources/UserThreads/IO/JacketHooks.swift', 'UThread'):
        # The jacket's nanosleep/poll(NULL) are the public UThread.sleep, whose timeout,
        # deadline and cancellation rules they must match exactly.
        'the jacket sleeps as UThread.sleep does',
}

def strip(src):
    src = re.sub(r'"""(.|\n)*?"""', '""', src)
    src = re.sub(r'"(\\.|[^"\\\n])*"', '""', src)
    src = re.sub(r'/\*(.|\n)*?\*/', '', src)
    return re.sub(r'//[^\n]*', '', src)

TYPE_HEAD = r'\b(class|struct|enum|extension|protocol|actor)\s+(?!func\b|var\b|let\b)([A-Za-z_][\w.]*)'
TOKENS = re.compile(r'(\{)|(\})|\b(func|var|let|case)\s+(\w+)|' + TYPE_HEAD)

def members(code):
    """(name, kind, extended) of the functions ('func') and properties or enum cases ('var')
    that `code` (stripped) declares at file level or in a type or extension body (never a
    function's or closure's locals). `extended` is the type named by the outermost `extension`
    around the declaration, '' at file level, None inside a type's own body."""
    found, braces, pending = [], [], None  # a brace: ('ext', X), ('type', None) or None (code)
    for m in TOKENS.finditer(code):
        if m.group(1):
            braces.append(pending)
            pending = None
        elif m.group(2):
            if braces:
                braces.pop()
        elif m.group(3):
            if all(braces):
                extended = braces[0][1] if braces else ''
                kind = 'func' if m.group(3) == 'func' else 'var'
                found.append((m.group(4), kind, extended))
                if kind == 'var':  # `let a = 1, b = 2`: the names after the first, on its line
                    end = code.find('\n', m.end())
                    rest = code[m.end():end if end >= 0 else len(code)]
                    while re.search(r'\([^()]*\)|\[[^\[\]]*\]', rest):
                        rest = re.sub(r'\([^()]*\)|\[[^\[\]]*\]', '', rest)
                    found += [(n, kind, extended) for n in re.findall(r',\s*(\w+)\s*[=:]', rest)]
        else:
            pending = ('ext', m.group(6)) if m.group(5) == 'extension' else ('type', None)
    return found

def uses(code):
    """The names `code` calls (`name(`, `.name(`) and reads as members (`.name`)."""
    calls = set(re.findall(r'\b(\w+)\s*\(', code))
    dotted = set(re.findall(r'\.(\w+)\b(?!\s*\()', code))
    return calls, dotted

def main():
    bad = []
    files = {}
    for top in sorted(os.listdir(ROOT)):
        path = os.path.join(ROOT, top)
        if not os.path.isdir(path) or top in SKIP:
            continue
        if top not in LAYERS:
            bad.append(f'{path}: folder has no layer (add it to LAYERS and to DEVELOPERS.md "Layers")')
            continue
        for dp, _, fs in os.walk(path):
            for f in sorted(fs):
                if f.endswith('.swift'):
                    files[os.path.join(dp, f)] = LAYERS[top]
    for path, n in TARGETS.items():
        for dp, _, fs in os.walk(path):
            for f in sorted(fs):
                if f.endswith('.swift'):
                    files[os.path.join(dp, f)] = n
    defined = {}  # type name -> (layer, file)
    for p, n in files.items():
        src = open(p, encoding='utf-8').read()
        first = src.split('\n', 1)[0]
        m = re.match(r'// Layer (\d+)( \([^)]*\))?: ', first)
        if not m or int(m.group(1)) != n:
            bad.append(f'{p}:1: first line must be "// Layer {n}: …" (its folder\'s layer)')
        for t in re.findall(r'^(?:@\w+(?:\([^)]*\))?\s+)*(?:public |internal |package |final |@usableFromInline )*'
                            r'(?:class|struct|enum|protocol|actor|typealias)\s+(\w+)', strip(src), re.M):
            defined.setdefault(t, (n, p))
    lowest = {}  # member name -> the lowest layer that declares it
    declared = {}  # (member name, kind) -> [(layer, file)]
    for p, n in files.items():
        for name, kind, extended in members(strip(open(p, encoding='utf-8').read())):
            lowest[name] = min(lowest.get(name, n), n)
            # Members of a type of this layer or above are reached only by naming that type
            # (the check above); those at file level or in an extension of a lower (or the
            # standard library's) type can be reached from below without naming anything.
            if extended is not None and defined.get(extended.split('.')[0], (0,))[0] < n:
                declared.setdefault((name, kind), []).append((n, p))
    for p, n in files.items():
        code = strip(open(p, encoding='utf-8').read())
        for name, (m, where) in defined.items():
            if m > n and (p, name) not in ALLOWED and re.search(r'\b' + name + r'\b', code):
                bad.append(f'{p}: layer {n} names {name} (layer {m}, {where})')
        calls, dotted = uses(code)
        for (name, kind), places in sorted(declared.items()):
            if lowest[name] <= n or (p, name) in ALLOWED:
                continue
            if name in calls if kind == 'func' else name in dotted:
                m, where = min(places)
                bad.append(f'{p}: layer {n} uses {name} (declared only above it: layer {m}, {where})')
    tags = subprocess.run(['grep', '-rnIE', '[Ii]ssue[- ]?#?[0-9]+', 'Sources', 'Tests', 'README.md', 'peers', 'bench',
                           'DEVELOPERS.md', 'docs', 'scripts', 'tools', '.ci',
                           '--exclude=check-layers.py'], capture_output=True, text=True).stdout
    bad += [f'{line}: an issue-number tag (say what the code does; history is in git)'
            for line in tags.splitlines()]
    for b in bad:
        print(b)
    return 1 if bad else 0

if __name__ == '__main__':
    sys.exit(main())
