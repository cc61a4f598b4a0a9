#!/usr/bin/env python3
"""Fails when a source file of the storage, broker or sentinel crate is
longer than LIMIT lines (its tests module at the end not counted), unless
its module documentation says why, in a line starting `//! Long file:`.

One concept per file keeps every behaviour findable by file name; a long
file usually holds two.

Usage: scripts/long-files.py [LIMIT]   (default 600)
"""
import pathlib
import sys

from rust_source import without_tests

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDERS = ["storage/src", "storage/batch/src", "broker/src", "sentinel/src", "sentinel/metadata/src"]


def main():
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    long = []
    for folder in FOLDERS:
        for f in sorted((ROOT / folder).rglob("*.rs")):
            text = f.read_text()
            lines = without_tests(text).count("\n")
            if lines > limit and "//! Long file:" not in text:
                long.append((lines, f.relative_to(ROOT)))
    for lines, f in long:
        print(f"{f}: {lines} lines (limit {limit}; split it by concept, or say why in a `//! Long file:` line)")
    if long:
        sys.exit(f"{len(long)} file(s) over {limit} lines")
    print(f"no file over {limit} lines in {', '.join(FOLDERS)}")


if __name__ == "__main__":
    main()
