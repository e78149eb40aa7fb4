#!/usr/bin/env python3
"""check-layers.py — bn's floors hold: no file uses a floor above its own,
and no two files use each other, directly or around a loop.

Floors, lowest first (README.md §Layout):
  lib/core < formats < lib/kernels < lib/tokenizer < lib/model   (libbn)
  < cmd/cli < cmd/bench, cmd/serve < cmd                          (programs)
lib/bn.h, the public header, belongs to the lowest floor.

Two checks, both needed: an #include can only say what a file may see, the
symbols say what it really calls.
  1. Every `#include "x.h"` in a source or header resolves (as the compiler
     would: the file's own folder, then the -I folders in floor order) to a
     header on the same floor or a lower one.
  2. In the built objects (BUILD, default build/), every undefined symbol
     that another object defines is defined on the same floor or a lower
     one, and the graph "object A calls into object B" has no cycle.

Usage: tools/check-layers.py [BUILD]. Prints one line per finding and exits
1 when there is any; 0 and a one-line summary otherwise.
"""
import os
import re
import subprocess
import sys

FLOORS = ["lib/core", "formats", "lib/kernels", "lib/tokenizer", "lib/model", "cmd/cli", "cmd/bench", "cmd/serve", "cmd"]
INCDIRS = ["lib"] + FLOORS  # the Makefile's -I order (lib/ holds only bn.h)
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def floor_of(path):
    """The floor index of a repository path, or None outside the floors."""
    if path == "lib/bn.h":
        return 0
    d = os.path.dirname(path)
    return FLOORS.index(d) if d in FLOORS else None


def sources():
    for d in FLOORS:
        for n in sorted(os.listdir(d)):
            if n.endswith((".c", ".h")):
                yield os.path.join(d, n)
    yield "lib/bn.h"


def resolve(src, name):
    for d in [os.path.dirname(src)] + INCDIRS:
        p = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(p):
            return p
    return None


def check_includes(problems):
    n = 0
    for src in sources():
        me = floor_of(src)
        with open(src, encoding="utf-8") as f:
            text = f.read()
        for name in INCLUDE.findall(text):
            n += 1
            hdr = resolve(src, name)
            if hdr is None:
                problems.append(f"{src}: includes \"{name}\", which is in no floor")
                continue
            fl = floor_of(hdr)
            if fl is None or fl > me:
                where = os.path.dirname(hdr) if fl is not None else "outside the floors"
                problems.append(f"{src}: includes {hdr} ({where}), a floor above {FLOORS[me]}")
    return n


def nm(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRCVW":
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
    return defined, undefined


def check_symbols(build, problems):
    objs = {}
    for d in FLOORS:
        od = os.path.join(build, d)
        if not os.path.isdir(od):
            continue
        for n in sorted(os.listdir(od)):
            if n.endswith(".o"):
                objs[os.path.join(d, n[:-2] + ".c")] = os.path.join(od, n)
    if not objs:
        problems.append(f"{build}: no objects to check (build first)")
        return 0, 0
    definer = {}
    uses = {}
    for src, obj in objs.items():
        defined, undefined = nm(obj)
        for s in defined:
            definer.setdefault(s, src)
        uses[src] = undefined
    edges = {src: {} for src in objs}
    for src, undefined in uses.items():
        for s in undefined:
            d = definer.get(s)
            if d and d != src:
                edges[src].setdefault(d, s)
    n_edges = 0
    for src, deps in edges.items():
        for d, sym in sorted(deps.items()):
            n_edges += 1
            if floor_of(d) > floor_of(src):
                problems.append(f"{src}: calls {sym} in {d}, a floor above {FLOORS[floor_of(src)]}")
    # cycles: Tarjan's strongly connected components
    index, low, stack, on, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    for comp in comps:
        loop = ", ".join(f"{a} -> {b} ({edges[a][b]})" for a in comp for b in comp if b in edges[a])
        problems.append(f"cycle between {' '.join(comp)}: {loop}")
    return len(objs), n_edges


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    problems = []
    n_inc = check_includes(problems)
    n_obj, n_edges = check_symbols(build, problems)
    for p in problems:
        print("check-layers: " + p)
    if problems:
        return 1
    print(f"check-layers: {n_inc} includes, {n_obj} objects, {n_edges} calls between files: "
          f"every one goes to the same floor or below, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
