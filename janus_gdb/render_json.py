"""JSON reports: every thread, lock, edge and cycle, for scripts.

Strings from the target are kept as read (JSON escaping makes control
characters harmless) but cut to a sane length.
"""

import json

from . import graph
from .analyze import SCHEMA
from . import render_text
from .render_text import verdict

MAX_STR = 4096


def _s(text):
    if text is None:
        return None
    return text if len(text) <= MAX_STR else text[:MAX_STR] + "..."


def _frame(fr):
    d = fr.to_dict()
    d["function"] = _s(d["function"])
    d["file"] = _s(d["file"])
    return d


def _thread(t):
    w = t.wait
    return {
        "num": t.num, "global_num": t.global_num, "lwp": t.lwp, "name": _s(t.name),
        "entry": _s(t.entry), "role": t.role, "role_detail": _s(t.role_detail),
        "state": t.state, "detail": t.detail, "syscall": t.syscall,
        "wait": None if w is None else {
            "kind": w.kind, "futex": w.futex, "lock": w.lock_addr, "target_lwp": w.target_lwp,
            "how": _s(w.how), "frame": w.frame},
        "holds": [l.id for l in t.holds],
        "site_frame": t.site,
        "frames": [_frame(f) for f in t.frames],
        "frames_truncated": t.frames_truncated,
    }


def _lock(l):
    c = l.owner_claim
    obj = l.obj.to_dict() if l.obj is not None else None
    if obj is not None:
        obj["label"] = _s(obj["label"])
    return {
        "id": l.id, "address": l.addr, "symbol": _s(l.symbol), "name": _s(l.name_text),
        "object": obj, "kind": l.kind,
        "subkind": l.subkind, "state": l.state, "word": l.word,
        "owner": {"lwp": l.owner_lwp, "thread": l.owner_num, "alive": l.owner_alive,
                  "evidence": l.evidence, "detail": _s(l.evidence_detail),
                  "source": l.owner_source,
                  "frame": c.level if c else None, "file": c.file if c else None,
                  "line": c.line if c else None, "function": c.function if c else None},
        "inference": l.inference.to_dict() if l.inference is not None else None,
        "candidates": list(l.candidates),
        "leaked": l.leaked, "leak_site": _s(l.leak_site), "leaked_by": l.leaked_by,
        "readers": l.readers, "waiters": list(l.waiters),
        "fields": dict((k, v) for k, v in l.details.items() if k != "state"),
    }


def _root(root):
    if root is None:
        return None
    return {"kind": root.kind, "thread": root.thread,
            "lock": root.lock.id if root.lock is not None else None,
            "cycle": root.cycle + 1 if root.cycle is not None else None}


def to_dict(report, command):
    groups = []
    for (_root_key, target, sig), members in graph.group_threads(
            [t for t in report.threads if t.num in report.roots],
            lambda t: (report.roots[t.num].key(),) + render_text.group_key(t)):
        lock = report.lock_by_addr.get(target) if not isinstance(target, tuple) else None
        groups.append({"blocked_behind": _root(report.roots[members[0].num]),
                       "waits_for": lock.id if lock is not None else None,
                       "signature": list(sig), "count": len(members),
                       "threads": [m.num for m in members]})
    return {
        "schema": SCHEMA,
        "command": command,
        "verdict": verdict(report),
        "deadlocks": len(report.cycles),
        "target": report.target,
        "threads": [_thread(t) for t in report.threads],
        "locks": [_lock(l) for l in report.locks],
        "edges": [e.to_dict() for e in report.edges],
        "cycles": [{"id": i + 1, "threads": [e.src for e in cyc],
                    "edges": [e.to_dict() for e in cyc]}
                   for i, cyc in enumerate(report.cycles)],
        "blocked": [{"thread": num, "behind": _root(root)}
                    for num, root in sorted(report.roots.items())],
        "groups": groups,
        "warnings": list(report.warnings),
    }


def render(report, command):
    return json.dumps(to_dict(report, command), indent=1, sort_keys=False) + "\n"
