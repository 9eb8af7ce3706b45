"""The catalogue of Janus's known lock bugs (``known_hangs.json`` beside this file).

Each entry describes one real bug: its janus-gateway issue or pull request,
the kind of hang it causes (cycle, leak, stall), the lock classes and the
functions involved, the releases it affects and the one that fixed it, and
what a user should do.  docs/known-hangs.md lists them and says how to add
one.  ``load()`` reads and checks the file once; an entry that breaks the
rules of ``problems()`` is left out (the catalogue ships with the package,
so that is a packaging bug, which tests/test_known_hangs.py catches).
"""

import json
import os
import re

from . import version

SCHEMA = "janus-gdb-known-hangs/1"
KINDS = ("cycle", "leak", "stall")
MAX_BYTES = 4 << 20
CLASS_RE = re.compile(r"^(?:[A-Za-z_]\w*\.[A-Za-z_]\w*|[\w.+-]+\.c: [A-Za-z_]\w*)$")

_CACHE = {}


def path():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "known_hangs.json")


def version_tuple(text):
    """``1.3.0`` -> (1, 3, 0); anything else (also ``v1.3.0``) -> None."""
    return version.parse(text) if isinstance(text, str) and text[:1].isdigit() else None


def problems(entry):
    """What is wrong with one catalogue ENTRY (a list of phrases; empty when fine)."""
    out = []
    if not isinstance(entry, dict):
        return ["not an object"]
    for key in ("id", "ref", "title", "kind", "advice"):
        if not isinstance(entry.get(key), str) or not entry.get(key):
            out.append("%s missing" % key)
    if entry.get("kind") not in KINDS:
        out.append("kind %r not one of %s" % (entry.get("kind"), ", ".join(KINDS)))
    locks = entry.get("locks")
    if not isinstance(locks, list) or not locks or \
            not all(isinstance(c, str) and CLASS_RE.match(c) for c in locks):
        out.append("locks must be lock classes (TYPE.FIELD or FILE.c: NAME)")
        locks = []
    for key in ("taken_in", "waited_in"):
        m = entry.get(key, {})
        if not isinstance(m, dict) or not all(
                c in locks and isinstance(v, list) and all(isinstance(f, str) for f in v)
                for c, v in m.items()):
            out.append("%s must map classes of locks to lists of functions" % key)
    hw = entry.get("holder_waits_in", [])
    if not isinstance(hw, list) or not all(isinstance(f, str) for f in hw):
        out.append("holder_waits_in must be a list of functions")
    aff = entry.get("affects")
    if not isinstance(aff, dict):
        out.append("affects missing")
    else:
        lo, hi = aff.get("from"), aff.get("to")
        if lo is not None and version_tuple(lo) is None:
            out.append("affects.from %r is not X.Y.Z" % (lo,))
        if version_tuple(hi) is None:
            out.append("affects.to %r is not X.Y.Z" % (hi,))
        elif lo is not None and version_tuple(lo) is not None and \
                version_tuple(lo) > version_tuple(hi):
            out.append("affects.from is after affects.to")
        fix = entry.get("fixed_in")
        if fix is not None and (version_tuple(fix) is None or (
                version_tuple(hi) is not None and version_tuple(fix) <= version_tuple(hi))):
            out.append("fixed_in %r must be X.Y.Z after affects.to" % (fix,))
    return out


def check(doc):
    """(entries, problems) of a parsed catalogue document: the entries that
    pass ``problems()`` and a phrase for every one that does not (and for
    duplicated ids)."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or \
            not isinstance(doc.get("entries"), list):
        return [], ["not a %s document" % SCHEMA]
    good, bad, ids = [], [], set()
    for i, e in enumerate(doc["entries"]):
        p = problems(e)
        ident = e.get("id") if isinstance(e, dict) else None
        if ident in ids:
            p.append("duplicate id")
        if p:
            bad.append("entry %d (%s): %s" % (i, ident, "; ".join(p)))
            continue
        ids.add(ident)
        good.append(e)
    return good, bad


def load(filename=None):
    """The catalogue's valid entries (cached per file), and its problems."""
    filename = filename or path()
    got = _CACHE.get(filename)
    if got is not None:
        return got
    try:
        with open(filename, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            got = ([], ["%s is larger than %d bytes" % (filename, MAX_BYTES)])
        else:
            got = check(json.loads(raw.decode("utf-8")))
    except (OSError, ValueError) as exc:
        got = ([], ["the known-hang catalogue could not be read: %s" % exc])
    _CACHE[filename] = got
    return got
