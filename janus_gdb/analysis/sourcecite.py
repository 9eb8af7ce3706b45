"""Static evidence for a hang report: the exits of the program's C source
that can leak a leaked lock's class, and where the source takes the locks
of a deadlock cycle in each order (csource/lockorder.py).

A runtime lock has a static class only when it is named: a variable by
its C file and name (``janus.c: sessions_mutex``), a struct field by the
struct type and field (``janus_ice_handle.mutex``).  Without a class
nothing is cited.  What is cited is a path the source has, not proof
that this path ran (docs/evidence.md).  Pure module: no gdb.
"""

import os
import re
import time

from ..csource import lockorder

MAX_FILES = 400          # more sources than this: not analysed (a warning says so)
TIME_BUDGET = 20.0       # seconds; reading the files past it stops the check
SHOWN = 3                # possible missing unlocks shown per lock in text

_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_HOW = {"return": "returns", "goto": "jumps out (goto)", "break": "leaves its loop (break)",
        "continue": "starts the next iteration (continue)"}


def lock_class(lock):
    """The static class of runtime LOCK (``file.c: name`` or ``type.field``), or None."""
    obj = lock.obj
    if obj is not None:
        if obj.type_name and obj.field and _IDENT.match(obj.type_name) \
                and _IDENT.match(obj.field):
            return "%s.%s" % (obj.type_name, obj.field)
        return None
    sym = lock.symbol
    if lock.source_file and sym and _IDENT.match(sym):
        return "%s: %s" % (os.path.basename(lock.source_file), sym)
    return None


def leaked_locks(report):
    """Locks the report says were left locked: leaked, or their owner ended."""
    out = [l for l in report.locks if l.leaked or (l.owner_alive is False and l.owner_lwp)]
    for root in report.roots.values():
        if root.kind in ("leaked", "dead-owner") and root.lock is not None \
                and root.lock not in out:
            out.append(root.lock)
    return out


def needed(report):
    """Whether the report has something the source can explain."""
    return bool(report.cycles) or bool(leaked_locks(report))


def cycle_pairs(cyc):
    """[(held lock, taken lock, thread)] of a wait-for cycle: each thread
    holds the lock the previous one waits for and waits for the next."""
    out = []
    n = len(cyc)
    for i in range(n):
        prev, cur = cyc[i - 1], cyc[i]
        if prev.kind != "lock" or cur.kind != "lock" or prev.lock is None or cur.lock is None:
            continue
        out.append((prev.lock, cur.lock, cur.src))
    return out


def unlock_text(d):
    """One line for a missing-unlock finding dict."""
    base = os.path.basename(d.get("file") or "?")
    ex = d.get("exit") or {}
    lk = d.get("lock") or {}
    text = "%s:%s %s (in %s) while holding %s taken at %s:%s" % (
        base, ex.get("line"), _HOW.get(ex.get("how"), ex.get("how")), d.get("function"),
        _expr(lk.get("expr")), base, lk.get("line"))
    if ex.get("return_line") and ex.get("return_line") != ex.get("line"):
        text += "; it then returns at line %s" % ex.get("return_line")
    return text


def _expr(expr):
    """A lock expression without its leading ``&`` (``&handle->mutex``)."""
    expr = expr or "?"
    return expr[1:].strip() if expr.startswith("&") and len(expr) > 1 else expr


def order_text(o):
    """One line for a source_orders entry: where the source takes each pair."""
    parts = []
    for e in o["edges"]:
        chain = e.get("chain") or [e["function"]]
        where = "in %s" % e["function"]
        if len(chain) > 1:
            where += ", called from %s" % chain[0]
            if e.get("call_line"):
                where += " at %s:%d" % (os.path.basename(e.get("held_file") or e["file"]),
                                        e["call_line"])
        parts.append("%s then %s at %s:%d (%s)" % (
            e["held"], e["taken"], os.path.basename(e["file"]), e["line"], where))
    return "the source takes " + ", and ".join(parts)


_SITE_RE = re.compile(r"([\w.+-]+\.c):(\d+)")


def _plausible(lock, findings):
    """Findings whose lock line is where the evidence saw this lock taken
    (a frame's claim, the lock-debug log's last lock without an unlock)
    first, then in the analysis's order."""
    sites = set()
    c = lock.owner_claim
    if c is not None and c.file and c.line:
        sites.add((os.path.basename(c.file), c.line))
    m = _SITE_RE.match(lock.leak_site or "")
    if m:
        sites.add((os.path.basename(m.group(1)), int(m.group(2))))
    if not sites:
        return findings
    return sorted(findings, key=lambda f: (os.path.basename(f.file), f.lock["line"]) not in sites)


def _edge_for(static, held, taken):
    for f in lockorder.order_for(static, held, taken):
        for e in f.edges:
            if e["held"] == held and e["taken"] == taken:
                return e
    return None


def attach(report, static):
    """Put STATIC's (a lockorder.Report) findings on REPORT: each leaked
    lock's ``missing_unlocks`` and ``report.source_orders`` {cycle index:
    [{"classes", "edges", "text"}]}."""
    for lock in leaked_locks(report):
        cls = lock_class(lock)
        if cls is None:
            continue
        lock.missing_unlocks = [f.as_dict() for f in
                                _plausible(lock, lockorder.missing_unlocks_for(static, cls))]
    orders = {}
    for i, cyc in enumerate(report.cycles):
        pairs = cycle_pairs(cyc)
        classes = [(lock_class(h), lock_class(t)) for h, t, _src in pairs]
        if len(pairs) < 2 or any(h is None or t is None or h == t for h, t in classes):
            continue
        edges = [_edge_for(static, h, t) for h, t in classes]
        if any(e is None for e in edges):
            continue    # the source does not show every order of this cycle
        o = {"classes": [h for h, _t in classes], "edges": edges}
        o["text"] = order_text(o)
        orders[i] = [o]
    report.source_orders = orders


def check(report, sources, use_cache=True, max_files=MAX_FILES, budget=TIME_BUDGET):
    """Analyse SOURCES (C files the debug info names) when REPORT needs it and
    attach the findings; returns the warnings (a skipped or slow check)."""
    if not needed(report) or not sources:
        return []
    if len(sources) > max_files:
        return ["source check skipped: the debug info names %d C files (more than %d); "
                "run `janus-lockorder` on the relevant directory instead" % (
                    len(sources), max_files)]
    t0 = time.time()
    try:
        static = lockorder.analyze(sources, use_cache=use_cache, deadline=t0 + budget)
        attach(report, static)
    except lockorder.Timeout as exc:
        return ["source check stopped after %.0f s (%s; the files read are cached, so the "
                "next run goes further); --no-source-check turns it off" % (budget, exc)]
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            RecursionError) as exc:
        # the static analysis is an addition: its failure must not cost the hang report
        return ["source check failed (%s: %s); the report is without it (please report it)"
                % (type(exc).__name__, str(exc).split("\n")[0][:200])]
    report.source_check = {"files": static.stats.get("files"),
                           "seconds": round(time.time() - t0, 3),
                           "cached": static.stats.get("files_cached")}
    return []
