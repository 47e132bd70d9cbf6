#!/usr/bin/env python3
"""The dependency rules of ARCHITECTURE.md, checked from `cargo metadata`
(`make lint`), so the boundaries cannot erode silently.

- closeloop-core and closeloop-gen are pure: no closeloop crate, and no I/O
  or async runtime crate among their dependencies.
- Each adapter uses its own I/O crate only, and the closeloop crates the
  architecture allows: dependencies point inwards, to the core.
- closeloop-telemetry (the service's metrics) depends on no closeloop crate
  and does no I/O: adapters may record into it.
- Only the binary (`closeloop`) knows every crate.

Usage: check_deps.py [--self-test]
"""
import json
import subprocess
import sys

IO_CRATES = {"tokio", "tokio-util", "sqlx", "rdkafka", "reqwest", "lettre", "axum",
             "hyper", "hyper-util", "tower", "tower-http", "mio", "socket2"}

# crate: (closeloop crates it may depend on, I/O crates it may use)
RULES = {
    "closeloop-core": (set(), set()),
    "closeloop-gen": (set(), set()),
    "closeloop-wire": ({"closeloop-core"}, set()),
    "closeloop-telemetry": (set(), set()),
    "closeloop-store": ({"closeloop-core", "closeloop-wire"}, {"sqlx", "tokio", "tokio-util"}),
    "closeloop-kafka": ({"closeloop-core"}, {"rdkafka", "tokio", "tokio-util"}),
    "closeloop-notify": ({"closeloop-core", "closeloop-store", "closeloop-wire", "closeloop-telemetry"},
                         {"lettre", "reqwest", "tokio", "tokio-util"}),
    "closeloop-api": ({"closeloop-core", "closeloop-store", "closeloop-wire", "closeloop-telemetry"},
                      {"axum", "hyper", "hyper-util", "tower", "tower-http", "tokio", "tokio-util"}),
}


def violations(packages):
    found = []
    names = {p["name"] for p in packages}
    for package in packages:
        rule = RULES.get(package["name"])
        if rule is None:
            continue
        allowed_crates, allowed_io = rule
        for dep in package["dependencies"]:
            if dep["kind"] is not None:  # dev and build dependencies are free
                continue
            name = dep["name"]
            if name.startswith("closeloop") and name in names and name not in allowed_crates:
                found.append(f"{package['name']} depends on {name}: dependencies point inwards "
                             f"(allowed: {', '.join(sorted(allowed_crates)) or 'none'})")
            if name in IO_CRATES and name not in allowed_io:
                found.append(f"{package['name']} depends on {name}: not its I/O crate "
                             f"(allowed: {', '.join(sorted(allowed_io)) or 'none, it is pure'})")
    return found


def self_test():
    """The check fails on a core that does I/O and on an adapter reaching sideways."""
    fake = [
        {"name": "closeloop-core", "dependencies": [{"name": "tokio", "kind": None}]},
        {"name": "closeloop-store", "dependencies": [{"name": "closeloop-kafka", "kind": None},
                                                     {"name": "reqwest", "kind": "dev"}]},
        {"name": "closeloop-kafka", "dependencies": [{"name": "closeloop-core", "kind": None}]},
    ]
    got = violations(fake)
    assert len(got) == 2, got
    assert "closeloop-core depends on tokio" in got[0], got
    assert "closeloop-store depends on closeloop-kafka" in got[1], got


def main():
    self_test()
    if "--self-test" in sys.argv:
        print("check_deps: self-test passed")
        return 0
    metadata = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        check=True, capture_output=True, text=True).stdout)
    found = violations(metadata["packages"])
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    if found:
        return 1
    checked = sorted(p["name"] for p in metadata["packages"] if p["name"] in RULES)
    print(f"dependency rules hold for {', '.join(checked)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
