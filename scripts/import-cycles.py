#!/usr/bin/env python3
"""Fails when files of one crate import each other in a circle.

Reads every `crate::…` and `super::…` path in each crate's `src/` (tests
modules at the end of a file left out), maps it to the file that defines
the module it names, and reports every strongly connected group of two or
more files. A module's own file (`lib.rs`, `main.rs`, `mod.rs`) naming its
submodules is not counted: declaring and re-exporting children, or holding
a child's type, is how one type's `impl` is split into files per concept,
while the children name their parent (`super::`) for the type they extend.

Usage: scripts/import-cycles.py [CRATE_DIR…]   (default: every crate)
"""
import pathlib
import re
import sys

from rust_source import without_tests

ROOT = pathlib.Path(__file__).resolve().parent.parent
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PATH = re.compile(rf"\b(crate|super(?:::super)*)::((?:{IDENT}::)*{IDENT}|\{{[^;]*?\}})", re.S)


def module_files(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    mods = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = rel.parts
        if parts[-1] in ("lib", "main", "mod"):
            parts = parts[:-1]
        if "bin" in rel.parts[:1]:
            continue
        mods.setdefault(tuple(parts), f)
    return mods


def module_of(f, src):
    parts = f.relative_to(src).with_suffix("").parts
    return tuple(parts[:-1]) if parts[-1] in ("lib", "main", "mod") else tuple(parts)


def code_only(text):
    """The text with comments and string literals blanked (a path named in a
    doc comment is not an import)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "'" and i + 2 < n and text[i + 2] == "'":
            i += 3  # a char literal such as '"'
        elif c == "'" and text.startswith("\\", i + 1):
            j = text.find("'", i + 3)
            i = n if j < 0 else j + 1
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        else:
            out.append(c)
            i += 1
    return "".join(out)


def targets(base, rest, mods):
    """Files named by the path `rest` relative to module `base`."""
    if rest.startswith("{"):
        out = []
        for item in split_top(rest[1:-1]):
            item = item.strip()
            if item and item != "self":
                out += targets(base, item, mods)
        if not out and base in mods:
            out.append(mods[base])
        return out
    segs = []
    for s in rest.split("::"):
        if s.startswith("{"):
            return targets(base + tuple(segs), "::".join(rest.split("::")[len(segs):]), mods)
        segs.append(s.split(" as ")[0].strip())
    for n in range(len(segs), -1, -1):
        key = base + tuple(segs[:n])
        if key in mods:
            return [mods[key]]
    return []


def split_top(s):
    depth, cur, out = 0, "", []
    for ch in s:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def edges_of(src):
    mods = module_files(src)
    edges = {f: set() for f in mods.values()}
    for f in mods.values():
        me = module_of(f, src)
        text = code_only(without_tests(f.read_text()))
        for kind, rest in PATH.findall(text):
            if kind == "crate":
                base = ()
            else:
                ups = kind.count("super")
                base = me[: max(0, len(me) - ups)]
            for t in targets(base, rest, mods):
                tm = module_of(t, src)
                # A module's own file naming its descendants is not a dependency.
                if f.stem in ("lib", "main", "mod") and tm[: len(me)] == me and t != f:
                    continue
                if t != f:
                    edges[f].add(t)
    return edges


def cycles(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            strong(v)
    return out


def shown(f):
    try:
        return f.relative_to(ROOT)
    except ValueError:
        return f


def main():
    dirs = [pathlib.Path(a) for a in sys.argv[1:]] or sorted(p.parent for p in ROOT.glob("**/Cargo.toml"))
    found = 0
    for d in dirs:
        src = (d / "src").resolve()
        if not src.is_dir() or {"target", "fuzz", "vendor"} & set(src.parts):
            continue
        edges = edges_of(src)
        for group in cycles(edges):
            found += 1
            print(f"import cycle in {shown(d)}: " + " -> ".join(str(shown(f)) for f in group))
            for f in group:
                for t in sorted(edges[f] & set(group)):
                    print(f"    {shown(f)} uses {shown(t)}")
    if found:
        sys.exit(f"{found} import cycle(s) between files of a crate")
    print(f"no import cycles between files of a crate ({len(dirs)} crates checked)")


if __name__ == "__main__":
    main()
