"""What the structure checks of `make lint` (import-cycles.py, long-files.py)
agree on about a Rust source file."""
import re

TESTS_MODULE = re.compile(r"^#\[cfg\(test\)\]\s*\n\s*mod \w+", re.M)


def without_tests(text):
    """The file's text before its `#[cfg(test)] mod …` at the end, if any."""
    m = TESTS_MODULE.search(text)
    return text[: m.start()] if m else text
