#!/usr/bin/env python3
"""Keeps the layering of Sources/UserThreads true (DEVELOPERS.md "Layers", the one numbering).

1. Every Swift file's first line is "// Layer N: …" with N its folder's layer (LAYERS below).
2. No file names a type defined in a higher layer (comments and strings aside), except the
   deliberate references listed in ALLOWED, each with its reason.
3. No issue-number tags in sources, tests, scripts or docs: code says what it does and why;
   history belongs in git.

Run from the repository root: python3 scripts/check-layers.py (exit status 1 on a violation).
"""
import os, re, subprocess, sys

# One numbering, in the order of DEVELOPERS.md "Layers"; C (layer 0) is Sources/CUThreads.
LAYERS = {'Base': 1, 'Context': 2, 'Stacks': 3, 'ThreadTable': 4, 'Timers': 5, 'Scheduler': 6,
          'Reactor': 7, 'Sync': 8, 'IO': 9, 'Runtime': 10, 'MN': 11, 'Bridge': 12}
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
    for p, n in files.items():
        code = strip(open(p, encoding='utf-8').read())
        for name, (m, where) in defined.items():
            if m > n and (p, name) not in ALLOWED and re.search(r'\b' + name + r'\b', code):
                bad.append(f'{p}: layer {n} names {name} (layer {m}, {where})')
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
