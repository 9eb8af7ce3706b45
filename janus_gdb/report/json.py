"""JSON reports: every thread, lock, edge, cycle and group, for scripts.

The document follows docs/janus-gdb.schema.json (``"schema": "janus-gdb/1"``),
every field described in docs/json.md.  Strings from the target are kept as
read (JSON escaping makes control characters harmless) but cut to MAX_STR
characters.  Keys are only ever added within one schema version.
"""

import json

from ..analysis import advice
from ..analysis import graph
from ..analysis import knownbugs
from ..analysis.analyze import SCHEMA
from . import text as render_text
from ..analysis import verdict as verdicts
from .text import verdict

MAX_STR = 4096


def _s(text):
    """TEXT cut to MAX_STR characters (``...`` appended), None kept."""
    if text is None:
        return None
    if not isinstance(text, str):
        text = str(text)
    return text if len(text) <= MAX_STR else text[:MAX_STR] + "..."


def _frame(fr):
    d = fr.to_dict()
    d["function"] = _s(d["function"])
    d["file"] = _s(d["file"])
    d["lib"] = _s(d["lib"])
    return d


def _claim(c, lock_by_addr):
    lock = lock_by_addr.get(c.addr) if c.addr is not None else None
    return {"frame": c.level, "function": _s(c.function), "file": _s(c.file), "line": c.line,
            "expr": _s(c.expr), "address": c.addr, "lock": lock.id if lock is not None else None,
            "kind": c.kind, "conditional": bool(c.conditional), "trylock": bool(c.trylock),
            "mode": c.mode}


def _thread(t, lock_by_addr):
    w = t.wait
    return {
        "num": t.num, "global_num": t.global_num, "lwp": t.lwp, "name": _s(t.name),
        "entry": _s(t.entry), "role": _s(t.role), "role_detail": _s(t.role_detail),
        "state": t.state, "detail": _s(t.detail), "syscall": _s(t.syscall),
        "wait": None if w is None else {
            "kind": w.kind, "futex": w.futex, "lock": w.lock_addr, "target_lwp": w.target_lwp,
            "how": _s(w.how), "frame": w.frame, "rwlock": w.rwlock,
            "queue": _queue(w.queue)},
        "holds": [l.id for l in t.holds],
        "claims": [_claim(c, lock_by_addr) for c in t.held_claims],
        "site_frame": t.site,
        "frames": [_frame(f) for f in t.frames],
        "frames_truncated": t.frames_truncated,
        "stack_calls": [_stack_call(c) for c in t.stack_calls],
    }


def _queue(q):
    """The GAsyncQueue a queue wait is on (model.QueueRef), or None."""
    if q is None:
        return None
    d = q.to_dict()
    for k in ("name", "how", "expr", "variable"):
        d[k] = _s(d[k])
    if d["object"] is not None:
        d["object"] = dict((k, _field(v)) for k, v in d["object"].items())
    return d


def _stack_call(c):
    d = c.to_dict()
    for k in ("function", "callee", "file", "lib"):
        d[k] = _s(d[k])
    return d


def _field(v):
    return _s(v) if isinstance(v, str) else v


def _lock(l):
    c = l.owner_claim
    obj = l.obj.to_dict() if l.obj is not None else None
    if obj is not None:
        obj = dict((k, _field(v)) for k, v in obj.items())
    inference = l.inference.to_dict() if l.inference is not None else None
    if inference is not None:
        inference = dict((k, _field(v)) for k, v in inference.items())
    return {
        "id": l.id, "address": l.addr, "symbol": _s(l.symbol), "name": _s(l.name_text),
        "object": obj, "kind": l.kind,
        "subkind": l.subkind, "state": l.state, "word": l.word,
        "owner": {"lwp": l.owner_lwp, "thread": l.owner_num, "alive": l.owner_alive,
                  "evidence": l.evidence, "detail": _s(l.evidence_detail),
                  "source": l.owner_source,
                  "frame": c.level if c else None, "file": _s(c.file) if c else None,
                  "line": c.line if c else None, "function": _s(c.function) if c else None},
        "inference": inference,
        "candidates": list(l.candidates),
        "possible_owners": list(l.possible), "possible_owner_count": l.possible_count,
        "leaked": l.leaked, "leak_site": _s(l.leak_site), "leaked_by": l.leaked_by,
        "possible_missing_unlocks": list(getattr(l, "missing_unlocks", None) or []),
        "readers": l.readers, "waiters": list(l.waiters), "rwlock": _rwlock(l),
        "fields": dict((k, _field(v)) for k, v in l.details.items() if k != "state"),
    }


def _rwlock(l):
    """Reader/writer state of a rwlock (null for other kinds)."""
    from ..model import RWLOCK_KINDS
    if l.kind not in RWLOCK_KINDS:
        return None
    d = l.details
    readers = []
    for inf in l.reader_infs:
        r = dict((k, _field(v)) for k, v in inf.to_dict().items())
        readers.append(r)
    return {"phase": d.get("phase"), "write_locked": d.get("write_locked"),
            "writer_pending": d.get("writer_pending"),
            "readers_waiting": d.get("readers_waiting"),
            "readers_blocked": d.get("readers_blocked"), "prefer": _s(d.get("prefer")),
            "impl": d.get("impl"), "reader_threads": readers,
            "readers_unknown": l.readers_unknown,
            "pending_writers": list(l.pending)}


def _root(root):
    if root is None:
        return None
    return {"kind": root.kind, "thread": root.thread,
            "lock": root.lock.id if root.lock is not None else None,
            "cycle": root.cycle + 1 if root.cycle is not None else None}


def _s_cause(cause):
    d = cause.to_dict()
    d["why"] = _s(d["why"])
    return d


def _common(members, attr):
    """The value of ATTR shared by all MEMBERS, else None."""
    values = set(getattr(m, attr) for m in members)
    return values.pop() if len(values) == 1 else None


def _group(report, section, members, sig, root=None, cycle=None):
    t = members[0]
    w = t.wait
    waits_for = joins = None
    if w is not None and w.is_lock:
        lock = report.lock_by_addr.get(w.lock_addr)
        waits_for = lock.id if lock is not None else None
    elif w is not None and w.kind == "join":
        target = report.thread_by_lwp(w.target_lwp)
        joins = target.num if target is not None else None
    return {"section": section, "state": _common(members, "state"),
            "role": _s(_common(members, "role")), "blocked_behind": _root(root),
            "cycle": cycle, "waits_for": waits_for, "joins": joins,
            "signature": [_s(name) for name in sig], "count": len(members),
            "threads": [m.num for m in members]}


def groups(report):
    """Every thread in exactly one group, as the text report groups them.

    ``blocked``: behind the same root, waiting for the same lock (or join)
    from the same call site (render_text.group_key); ``cycle``: the threads
    of one deadlock, by what they wait for and call site; ``holder`` (a
    thread others are blocked behind) and ``other``: same state, role and
    call site."""
    out = []
    for (_root_key, _target, sig), members in graph.group_threads(
            [t for t in report.threads if t.num in report.roots],
            lambda t: (report.roots[t.num].key(),) + render_text.group_key(t)):
        out.append(_group(report, "blocked", members, sig, root=report.roots[members[0].num]))
    in_cycle = {}
    for i, cyc in enumerate(report.cycles):
        for e in cyc:
            in_cycle.setdefault(e.src, i)
    for (cyc, _target, sig), members in graph.group_threads(
            [t for t in report.threads if t.num in in_cycle],
            lambda t: (in_cycle[t.num],) + render_text.group_key(t)):
        out.append(_group(report, "cycle", members, sig, cycle=cyc + 1))
    holders = set(r.thread for r in report.roots.values() if r.kind == "thread")
    rest = [t for t in report.threads if t.num not in report.roots and t.num not in in_cycle]
    for (section, _state, _role, sig), members in graph.group_threads(
            rest, lambda t: ("holder" if t.num in holders else "other", t.state, t.role,
                             graph.stack_signature(t))):
        out.append(_group(report, section, members, sig))
    return out


def _finding(f):
    d = f.to_dict()
    d["where"] = _s(d["where"])
    d["parts"] = [_s(p) for p in d["parts"]]
    d["classes"] = [_s(c) for c in d["classes"]]
    return d


def to_dict(report, command):
    target = dict(report.target)
    target["executable"] = _s(target.get("executable"))
    version = target.get("janus_version")
    target["janus_version"] = None if not version else {
        "text": _s(version.get("text")), "number": version.get("number"),
        "how": _s(version.get("how"))}
    found = verdicts.causes(report)
    return {
        "schema": SCHEMA,
        "command": command,
        "verdict": verdict(report),
        "verdict_kind": verdicts.kind(report, found),
        "deadlocks": len(report.cycles),
        "roots": [_s_cause(c) for c in found],
        "findings": [_finding(f) for f in knownbugs.of_report(report, found)],
        "next_steps": [_s(line) for line in advice.next_steps(report, found,
                                                               report.used_locklog)],
        "target": target,
        "threads": [_thread(t, report.lock_by_addr) for t in report.threads],
        "locks": [_lock(l) for l in report.locks],
        "edges": [e.to_dict() for e in report.edges],
        "cycles": [{"id": i + 1, "threads": [e.src for e in cyc],
                    "edges": [e.to_dict() for e in cyc],
                    "source_orders": list(getattr(report, "source_orders", {}).get(i, ()))}
                   for i, cyc in enumerate(report.cycles)],
        "blocked": [{"thread": num, "behind": _root(root)}
                    for num, root in sorted(report.roots.items())],
        "groups": groups(report),
        "warnings": [_s(w) for w in report.warnings],
    }


def render(report, command):
    return json.dumps(to_dict(report, command), indent=1, sort_keys=False) + "\n"
