#!/usr/bin/env python3
"""No file cycle inside a crate (`make lint`): ARCHITECTURE.md's rule that
modules form a tree of dependencies, checked from the sources.

A module is a file under `src/` (`src/rules/set.rs` is `rules::set`). A
module depends on another when it names it: `crate::a::b`, `super::b`, or
a `use` of either. References between a module and its own ancestors or
descendants (a folder and its files) do not count; the crate root
(`lib.rs`, `main.rs`) is left out, since everything hangs from it.

Usage: check_cycles.py [--self-test] [CRATE_DIR...]
"""
import pathlib
import re
import sys

REFERENCE = re.compile(r"\b(crate|super)((?:::\w+)+)")


def modules_of(src):
    """Module path (tuple) -> file text, for every file under `src`."""
    modules = {}
    for path in sorted(src.rglob("*.rs")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "mod":
            parts.pop()
        if parts in (["lib"], ["main"]) or not parts:
            continue
        modules[tuple(parts)] = path.read_text()
    return modules


def edges_of(modules):
    names = set(modules)
    edges = {m: set() for m in modules}
    for module, text in modules.items():
        # A file that is not a folder's mod.rs sits in its parent's scope.
        for kind, tail in REFERENCE.findall(text):
            segments = tail.strip(":").split("::")
            base = [] if kind == "crate" else list(module[:-1])
            target = None
            for n in range(len(segments), 0, -1):
                candidate = tuple(base + segments[:n])
                if candidate in names:
                    target = candidate
                    break
            if target is None or target == module:
                continue
            related = target[: len(module)] == module or module[: len(target)] == target
            if not related:
                edges[module].add(target)
    return edges


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def self_test():
    modules = {
        ("a",): "use crate::b::Thing;",
        ("b",): "use crate::a::Other;",
        ("c",): "use crate::a::X;",
        ("rules",): "mod set;",
        ("rules", "set"): "use super::index::Index;",
        ("rules", "index"): "use super::set::Rule; use crate::rules::Thing;",
    }
    found = cycles(edges_of(modules))
    expected = [[("a",), ("b",)], [("rules", "index"), ("rules", "set")]]
    assert found == expected, found
    assert cycles(edges_of({("a",): "use crate::b::X;", ("b",): ""})) == []
    print("check_cycles self-test: ok")


def main(argv):
    if argv[:1] == ["--self-test"]:
        self_test()
        return 0
    roots = [pathlib.Path(p) for p in argv] or sorted(pathlib.Path("crates").iterdir())
    problems = []
    for crate in roots:
        src = crate / "src"
        if not src.is_dir():
            continue
        for component in cycles(edges_of(modules_of(src))):
            names = " -> ".join("::".join(m) for m in component)
            problems.append(f"{crate.name}: file cycle between {names}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"no file cycle in {', '.join(r.name for r in roots)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
