"""Hang fingerprints: a short stable id for every hang finding (issue 15).

A *finding* is one thing that hangs the program, with the facts that do not
change from one occurrence of the same bug to the next:

    cycle  a deadlock (also one thread waiting for itself): for each member,
           ``hold CLASS in FUNCTION`` (the frame that took the lock) and
           ``wait CLASS in FUNCTION`` (the application frame that waits)
    leak   a lock left locked by no live thread, by an owner that ended, or
           by a thread none of whose frames takes it: ``leak CLASS in
           FUNCTION`` when the lock-debug log or the source check names the
           function whose exit leaks it, else ``leak CLASS``
    stall  a live holder that others wait behind, outside any cycle, and
           that the evidence shows stuck (it waits for something else):
           ``hold CLASS in FUNCTION`` per lock it holds, and ``block KIND in
           FUNCTION`` for what it is blocked in itself

CLASS is the lock's static class (``janus_ice_handle.mutex``,
``janus_videoroom.c: rooms_mutex``, see ``sourcecite.lock_class``).  Left
out on purpose: addresses, LWPs, thread numbers, ids, line numbers, how many
threads pile up and in which functions the piled-up threads wait (that
depends on the traffic, not on the bug).  FUNCTION loses GCC's clone
suffixes (``.constprop.0``, ``.isra.0``, ``.part.0``, ``.cold``) and a C++
parameter list, which differ between builds of the same source.

The fingerprint is ``KIND-`` and the first 10 hex digits of a SHA-256 of
the kind and the sorted parts.  Pure module: no gdb.
"""

import re

from ..model import sha256_hex
from . import sourcecite
from . import verdict as verdicts

VERSION = "janus-gdb-fingerprint/1"     # hashed in: a new scheme gives new ids
DIGITS = 10
MAX_PARTS = 64                           # a finding is a handful of locks and threads
MAX_NAME = 200                           # function and class names are cut to this

_CLONE_RE = re.compile(r"(\.(constprop|isra|part|cold|lto_priv|localalias)(\.\d+)?)+$")
_CLONE_BRACKET_RE = re.compile(r"\s*\[clone [^\]]*\]")
_IDENT_RE = re.compile(r"^[A-Za-z_]\w*$")


class Finding(object):
    """One hang finding: its kind, parts, fingerprint and what it is about."""
    __slots__ = ("kind", "parts", "fingerprint", "cause", "locks", "taken", "waited", "blocks",
                 "where", "known")

    def __init__(self, kind, cause, where):
        self.kind = kind            # cycle, leak, stall
        self.cause = cause          # verdict.Cause, or None (a leaked lock nobody waits for)
        self.where = where          # for people: "deadlock #1", "T7", "M3"
        self.locks = []             # Lock objects, in report order
        self.taken = {}             # class -> set of functions that took (or leaked) it
        self.waited = {}            # class -> set of functions that wait for it (cycles)
        self.blocks = []            # (kind, function) the stalled holder is blocked in
        self.parts = []
        self.fingerprint = None
        self.known = None           # knownbugs.Match of a catalogue entry, or None

    def classes(self):
        """The lock classes of the finding (unnamed locks included as written)."""
        return sorted(set(lock_key(l) for l in self.locks))

    def to_dict(self):
        return {"fingerprint": self.fingerprint, "kind": self.kind, "where": self.where,
                "parts": list(self.parts), "locks": [l.id for l in self.locks],
                "classes": self.classes(),
                "known": self.known.to_dict() if self.known is not None else None}


def function_name(name):
    """NAME without GCC clone suffixes and a C++ parameter list; None stays None."""
    if not name:
        return None
    name = _CLONE_BRACKET_RE.sub("", str(name))[:MAX_NAME * 2]
    if name.endswith(")") and "(" in name:
        depth = 0
        for i in range(len(name) - 1, -1, -1):
            c = name[i]
            if c == ")":
                depth += 1
            elif c == "(":
                depth -= 1
                if depth == 0:
                    if i > 0:       # "(anonymous namespace)" alone stays
                        name = name[:i]
                    break
    name = _CLONE_RE.sub("", name.strip())
    return name[:MAX_NAME] or None


def lock_key(lock):
    """The lock's class, or what names it without one: ``symbol NAME`` for a
    variable known only by its symbol, else ``unnamed KIND``."""
    cls = sourcecite.lock_class(lock)
    if cls:
        return cls[:MAX_NAME]
    sym = lock.symbol
    if sym and _IDENT_RE.match(sym):
        return ("symbol %s" % sym)[:MAX_NAME]
    return "unnamed %s" % (lock.kind or "lock")


def site_function(t):
    """The application frame where thread T waits (its first one above the library)."""
    if t is None or t.site is None or not (0 <= t.site < len(t.frames)):
        return None
    return function_name(t.frames[t.site].function)


def taken_function(lock, holder):
    """The function whose frame took LOCK in thread HOLDER (a Thread), or None."""
    for c in (lock.owner_claim, lock.inference.claim if lock.inference is not None else None):
        if c is not None and c.function and (holder is None or lock.owner_num in (None, holder.num)
                                             or lock.owner_lwp == holder.lwp):
            return function_name(c.function)
    if holder is not None:
        for c in holder.held_claims:
            if c.addr == lock.addr and c.function and not c.released:
                return function_name(c.function)
    return None


def leak_functions(lock):
    """Functions whose exits leak LOCK: the lock-debug log's lock site, else
    the source check's missing unlocks when they all lie in one function."""
    if lock.leak_function:
        return set([function_name(lock.leak_function)])
    funcs = set(function_name(d.get("function")) for d in (lock.missing_unlocks or [])
                if isinstance(d, dict) and d.get("function"))
    funcs.discard(None)
    return funcs if len(funcs) == 1 else set()


def _add(mapping, key, value):
    if value:
        mapping.setdefault(key, set()).add(value)
    else:
        mapping.setdefault(key, set())


def _finish(f):
    parts = set()
    verb = "leak" if f.kind == "leak" else "hold"
    for cls, funcs in f.taken.items():
        if funcs:
            for fn in funcs:
                parts.add("%s %s in %s" % (verb, cls, fn))
        else:
            parts.add("%s %s" % (verb, cls))
    for cls, funcs in f.waited.items():
        if funcs:
            for fn in funcs:
                parts.add("wait %s in %s" % (cls, fn))
        else:
            parts.add("wait %s" % cls)
    for kind, fn in f.blocks:
        parts.add("block %s in %s" % (kind, fn) if fn else "block %s" % kind)
    f.parts = sorted(parts)[:MAX_PARTS]
    f.fingerprint = compute(f.kind, f.parts)
    return f


def compute(kind, parts):
    """``KIND-`` and DIGITS hex digits of the hash of KIND and PARTS (sorted here)."""
    text = "\n".join([VERSION, kind] + sorted(parts))
    return "%s-%s" % (kind, sha256_hex(text.encode("utf-8", "replace"))[:DIGITS])


def _cycle(report, cause):
    i = cause.root.cycle
    f = Finding("cycle", cause, "deadlock #%d" % (i + 1))
    for e in report.cycles[i]:
        src = report.thread(e.src)
        if e.kind != "lock" or e.lock is None:
            _add(f.waited, "join", site_function(src))
            continue
        lock = e.lock
        key = lock_key(lock)
        if lock not in f.locks:
            f.locks.append(lock)
        _add(f.waited, key, site_function(src))
        _add(f.taken, key, taken_function(lock, report.thread(e.dst)))
    return _finish(f)


def _stall(report, cause):
    t = report.thread(cause.root.thread)
    f = Finding("stall", cause, "T%d" % t.num)
    for lock in t.holds:
        f.locks.append(lock)
        _add(f.taken, lock_key(lock), taken_function(lock, t))
    w = t.wait
    f.blocks.append((w.kind if w is not None else t.state, site_function(t)))
    return _finish(f)


def _leak(lock, cause):
    f = Finding("leak", cause, lock.id or "0x%x" % lock.addr)
    f.locks.append(lock)
    key = lock_key(lock)
    funcs = leak_functions(lock)
    f.taken[key] = set(funcs)
    return _finish(f)


def findings(report, found=None):
    """Every hang finding of REPORT (an ``analyze.Report``), fingerprinted:
    the causes the evidence shows stuck (``verdict.causes``), then leaked
    locks nobody waits for yet.  Deterministic order: the causes' order."""
    found = verdicts.causes(report) if found is None else found
    out = []
    seen_leaks = set()
    for c in found:
        if not c.stuck:
            continue            # a running holder, an unknown owner: no evidence of a hang
        if c.kind == "cycle":
            out.append(_cycle(report, c))
        elif c.kind in ("leaked", "dead-owner"):
            if c.root.lock is not None and c.root.lock.addr not in seen_leaks:
                seen_leaks.add(c.root.lock.addr)
                out.append(_leak(c.root.lock, c))
        elif c.kind == "holder-leaked":
            t = report.thread(c.root.thread)
            for lock in t.holds:
                if lock.leaked and lock.waiters and lock.addr not in seen_leaks:
                    seen_leaks.add(lock.addr)
                    out.append(_leak(lock, c))
        elif c.kind == "holder-waits":
            out.append(_stall(report, c))
    for lock in report.locks:
        if lock.leaked and lock.addr not in seen_leaks:
            seen_leaks.add(lock.addr)
            out.append(_leak(lock, None))
    return out
