"""The C sources the loaded program's debug info names (gdb's ``info
sources``: the symbol files only, never the target's memory) that exist
on this machine, system headers excluded."""

import os
import re

import gdb  # pylint: disable=import-error

SYSTEM_DIRS = ("/usr/include/", "/usr/lib/", "/usr/local/include/")
_SOURCE_RE = re.compile(r"[^\s,]+\.[ch]\b")


class NoSources(Exception):
    """gdb could not list the program's sources."""


def debug_info_sources():
    """Existing .c/.h files the loaded program's debug info names (sorted);
    NoSources when gdb cannot list them."""
    try:
        text = gdb.execute("info sources", to_string=True)
    except gdb.error as exc:
        raise NoSources(str(exc))
    out = set()
    for m in _SOURCE_RE.finditer(text):
        path = m.group(0)
        if path.startswith(SYSTEM_DIRS) or not path.startswith("/"):
            continue
        if os.path.isfile(path):
            out.add(path)
    return sorted(out)
