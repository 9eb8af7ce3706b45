"""Graphviz (DOT) output: the wait-for graph as a picture.

Nodes are threads (ellipses), locks (boxes) and groups of threads that wait
for the same thing from the same call site (3-D boxes with a count).  Edges:

- ``thread -> lock``: the thread waits for the lock ("waits");
- ``lock -> thread``: the lock is held by the thread, labelled with the
  evidence (``exact``, or ``inferred`` and how): solid when exact, dashed
  when inferred; dotted ``lock -> thread`` edges to the candidates of a lock
  whose owner is undecided;
- ``thread -> thread``: a join.

Every deadlock's threads, locks and edges are red, inside a red cluster
"Deadlock #N".  Idle and other uninvolved threads are not drawn; the graph's
title (the verdict line) counts them.

Every string read from the target (thread, lock and Janus object names,
function names) is escaped with ``textsafe.escape`` (control characters as
``\\xNN``, cut to a length), then made safe for DOT and for the SVG graphviz
writes from it: Unicode format characters (bidi overrides), surrogates and
unassigned code points are escaped too, backslashes and quotes are quoted,
``&`` becomes ``&amp;`` (graphviz reads HTML entities in labels).  The output
is deterministic: the same report gives the same text.
"""

import unicodedata

from ..analysis import graph
from . import text as render_text
from ..model import EXACT
from .textsafe import escape

GROUP_MIN = 3         # this many threads waiting alike become one node
GROUP_LISTED = 6      # thread numbers listed in a group node
POSSIBLE_DRAWN = 3    # threads that could hold a lock of unknown owner, drawn
RED = "red"
NAME_LEN = 60         # cut for names read from the target, per label line
WRAP = 48             # longer lock names are wrapped at spaces
UNSAFE_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def safe(text, limit=NAME_LEN):
    """TEXT from the target as one printable line (not yet DOT-quoted)."""
    out = []
    for ch in escape(text, limit):
        if ch != " " and unicodedata.category(ch) in UNSAFE_CATEGORIES + ("Zs",):
            code = ord(ch)
            out.append("\\x%02x" % code if code < 0x100 else
                       "\\u%04x" % code if code < 0x10000 else "\\U%08x" % code)
        else:
            out.append(ch)
    return "".join(out)


def wrap(text, width=WRAP, limit=NAME_LEN * 2):
    """TEXT from the target made safe, cut at LIMIT, split at spaces into lines of about WIDTH."""
    lines = []
    for word in safe(text, limit).split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def quote(text):
    """A DOT double-quoted string whose label shows TEXT literally."""
    return '"%s"' % (text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
                     .replace("\n", "\\n"))


def label(lines, left=False):
    """A DOT label of several lines (each already made safe), centred or LEFT-aligned."""
    sep = "\\l" if left else "\\n"
    return '"%s%s"' % (sep.join(quote(l)[1:-1] for l in lines if l), sep if left else "")


def attrs(pairs):
    """``[k=v, ...]`` from (key, raw DOT value) pairs, in the given order."""
    return "[%s]" % ", ".join("%s=%s" % (k, v) for k, v in pairs if v is not None)


def _site_function(t):
    sig = graph.stack_signature(t, 1)
    return safe(sig[0]) if sig else None


def _thread_lines(t):
    lines = ["T%d (LWP %d)" % (t.num, t.lwp)]
    if t.role:
        role = safe(t.role, 30)
        if t.role_detail:
            role += " (%s)" % safe(t.role_detail, 40)
        lines.append(role)
    if t.name:
        lines.append('"%s"' % safe(t.name, 40))
    if t.entry and t.entry != t.role:
        lines.append(safe(t.entry))
    w = t.wait
    if w is not None and (w.is_lock or w.kind == "join"):
        fn = _site_function(t)
        if fn:
            lines.append("%s at %s" % ("waits" if w.is_lock else "joins", fn))
    else:
        lines.append(safe(t.detail or t.state, NAME_LEN))
        q = w.queue if w is not None else None
        if q is not None:
            # the queue it waits on: whose (wrapped) or its address
            lines.extend(wrap(q.label()))
    return lines


def _lock_lines(lock):
    lines = [lock.id]
    name = lock.name_text or lock.symbol
    if name:
        lines.extend(wrap(name))
    if lock.obj is not None and lock.obj.label and lock.name_text is None:
        lines.extend(wrap(lock.obj.label))
    lines.append(lock.kind_text())
    lines.append(render_text.state_text(lock))
    if lock.readers:
        shown = len(lock.reader_infs)
        lines.append("read-held by %s (%s shown by the source)" % (
            render_text.count(lock.readers), "all" if shown == lock.readers else
            render_text.count(shown)))
    if lock.leaked:
        lines.append("probably leaked")
    lines.append("0x%x" % lock.addr)
    return lines


def _evidence(lock):
    if lock.evidence == EXACT:
        return "held by (exact)"
    if lock.owner_source:
        return "held by (%s: %s)" % (lock.evidence, lock.owner_source)
    return "held by (%s)" % lock.evidence


def _nums(nums):
    shown = ", ".join("T%d" % n for n in nums[:GROUP_LISTED])
    if len(nums) > GROUP_LISTED:
        shown += " ... (+%s)" % render_text.count(len(nums) - GROUP_LISTED)
    return shown


class _Plan(object):
    """Which nodes and edges the picture has, decided once."""

    def __init__(self, report):
        self.report = report
        self.cycle_of_thread = {}
        self.cycle_of_lock = {}
        self.red_edges = set()
        for i, cyc in enumerate(report.cycles):
            for e in cyc:
                self.cycle_of_thread[e.src] = i
                if e.kind == "lock" and e.lock is not None:
                    self.cycle_of_lock.setdefault(e.lock.id, i)
                    self.red_edges.add(("wait", "T%d" % e.src, e.lock.id))
                    self.red_edges.add(("hold", e.lock.id, "T%d" % e.dst))
                else:
                    self.red_edges.add(("join", "T%d" % e.src, "T%d" % e.dst))
        # threads drawn on their own: in a cycle, owners, candidates, join targets
        pinned = set(self.cycle_of_thread)
        for lock in report.locks:
            if lock.owner_num is not None:
                pinned.add(lock.owner_num)
            pinned.update(lock.candidates)
            pinned.update(i.num for i in lock.reader_infs)
            pinned.update(lock.pending)
            if lock.waiters:
                pinned.update(lock.possible[:POSSIBLE_DRAWN])
        waiting = []
        for t in report.threads:
            w = t.wait
            if w is None:
                continue
            if w.is_lock and w.lock_addr in report.lock_by_addr:
                waiting.append(t)
            elif w.kind == "join":
                waiting.append(t)
                target = report.thread_by_lwp(w.target_lwp)
                if target is not None:
                    pinned.add(target.num)
        self.groups = []          # (node id, members)
        self.group_of = {}        # thread num -> group node id
        loose = [t for t in waiting if t.num not in pinned]
        for _key, members in graph.group_threads(loose, render_text.group_key):
            if len(members) >= GROUP_MIN:
                gid = "G%d" % members[0].num
                self.groups.append((gid, members))
                for m in members:
                    self.group_of[m.num] = gid
        shown = pinned | set(t.num for t in waiting)
        self.threads = [t for t in report.threads
                        if t.num in shown and t.num not in self.group_of]
        self.hidden = [t for t in report.threads if t.num not in shown]
        self.hidden_nums = set(t.num for t in self.hidden)
        self.group_size = dict((gid, len(members)) for gid, members in self.groups)

    def node_of(self, t):
        return self.group_of.get(t.num, "T%d" % t.num)


def _title(report, plan):
    lines = [render_text.verdict(report), render_text.target_line(report)]
    if plan.hidden:
        counts = {}
        for t in plan.hidden:
            counts[t.state] = counts.get(t.state, 0) + 1
        states = sorted(counts, key=lambda s: (render_text.STATE_ORDER.index(s)
                                               if s in render_text.STATE_ORDER else 99, s))
        lines.append("Not drawn: %s (%s)" % (
            render_text.plural(len(plan.hidden), "other thread"),
            ", ".join("%s %s" % (render_text.count(counts[s]), safe(s, 20)) for s in states)))
    lines.append("red: deadlock;  thread -> lock: waits for;  lock -> thread: held by "
                 "(dashed: owner inferred)")
    return lines


def render(report, prog):
    """The report as a DOT digraph (a str ending in a newline)."""
    plan = _Plan(report)
    title = _title(report, plan)
    out = ["digraph %s {" % quote(prog),
           "  graph %s;" % attrs([
               ("comment", quote(title[0])), ("label", label(title, left=True)),
               ("labelloc", "t"), ("labeljust", "l"), ("rankdir", "LR"),
               ("fontname", "Helvetica"), ("fontsize", "12"), ("nodesep", "0.3")]),
           "  node [fontname=Helvetica, fontsize=10];",
           "  edge [fontname=Helvetica, fontsize=9];"]

    def thread_node(t, ind):
        red = t.num in plan.cycle_of_thread
        return "%s%s %s;" % (ind, quote("T%d" % t.num), attrs([
            ("id", quote("T%d" % t.num)), ("shape", "ellipse"), ("label", label(_thread_lines(t))),
            ("color", RED if red else None), ("fontcolor", RED if red else None),
            ("penwidth", "2" if red else None)]))

    def lock_node(lock, ind):
        red = lock.id in plan.cycle_of_lock
        fill = "mistyrose" if red else ("lightgrey" if lock.leaked else "lightyellow")
        return "%s%s %s;" % (ind, quote(lock.id), attrs([
            ("id", quote(lock.id)), ("shape", "box"), ("style", "filled"),
            ("fillcolor", fill), ("label", label(_lock_lines(lock))),
            ("color", RED if red else None), ("fontcolor", RED if red else None),
            ("penwidth", "2" if red else None)]))

    for i in range(len(report.cycles)):
        out.append("  subgraph %s {" % quote("cluster_deadlock%d" % (i + 1)))
        out.append("    graph %s;" % attrs([
            ("label", quote("Deadlock #%d" % (i + 1))), ("color", RED), ("fontcolor", RED),
            ("style", "dashed")]))
        for lock in report.locks:
            if plan.cycle_of_lock.get(lock.id) == i:
                out.append(lock_node(lock, "    "))
        for t in plan.threads:
            if plan.cycle_of_thread.get(t.num) == i:
                out.append(thread_node(t, "    "))
        out.append("  }")
    for lock in report.locks:
        if lock.id not in plan.cycle_of_lock:
            out.append(lock_node(lock, "  "))
    for t in plan.threads:
        if t.num not in plan.cycle_of_thread:
            out.append(thread_node(t, "  "))
    for gid, members in plan.groups:
        first = members[0]
        fn = _site_function(first)
        verb = "wait" if first.wait.is_lock else "join"
        out.append("  %s %s;" % (quote(gid), attrs([
            ("id", quote(gid)), ("shape", "box3d"), ("label", label([
                "%s threads" % render_text.count(len(members)),
                "%s at %s" % (verb, fn) if fn else verb,
                _nums([m.num for m in members])]))])))
    gone = set()
    for lock in report.locks:
        if lock.owner_lwp and lock.owner_num is None:
            gone.add(lock.owner_lwp)
    for t in report.threads:
        w = t.wait
        if (w is not None and w.kind == "join" and t.num not in plan.hidden_nums
                and report.thread_by_lwp(w.target_lwp) is None and w.target_lwp):
            gone.add(w.target_lwp)
    for lwp in sorted(gone):
        out.append("  %s %s;" % (quote("LWP%d" % lwp), attrs([
            ("id", quote("LWP%d" % lwp)), ("shape", "octagon"), ("style", "dashed"),
            ("label", label(["LWP %d" % lwp, "not a thread of the process (ended)"]))])))

    def edge(kind, src, dst, text, style=None):
        red = (kind, src, dst) in plan.red_edges or (
            kind in ("read", "pending") and ("hold", src, dst) in plan.red_edges)
        return "  %s -> %s %s;" % (quote(src), quote(dst), attrs([
            ("id", quote("%s-%s-%s" % (kind, src, dst))), ("label", quote(text)),
            ("style", style), ("color", RED if red else None),
            ("fontcolor", RED if red else None), ("penwidth", "2" if red else None)]))

    done = set()
    for t in report.threads:
        w = t.wait
        if w is None or t.num in plan.hidden_nums:
            continue
        src = plan.node_of(t)
        if w.is_lock:
            lock = report.lock_by_addr.get(w.lock_addr)
            if lock is None:
                continue
            key = ("wait", src, lock.id)
            text = {"rwlock-read": "waits (read)", "rwlock-write": "waits (write)"}.get(
                w.kind, "waits")
        elif w.kind == "join" and w.target_lwp:
            target = report.thread_by_lwp(w.target_lwp)
            dst = "T%d" % target.num if target is not None else "LWP%d" % w.target_lwp
            key = ("join", src, dst)
            text = "joins"
        else:
            continue
        if key in done:
            continue
        done.add(key)
        if src in plan.group_size:
            text = "%s %s" % (render_text.count(plan.group_size[src]),
                              "wait" if w.is_lock else "join")
        out.append(edge(key[0], key[1], key[2], text))
    for lock in report.locks:
        if lock.owner_lwp and lock.state != "free":
            dst = "T%d" % lock.owner_num if lock.owner_num is not None else "LWP%d" % lock.owner_lwp
            out.append(edge("hold", lock.id, dst, _evidence(lock),
                            None if lock.evidence == EXACT else "dashed"))
        elif lock.reader_infs or lock.pending:
            # rwlocks: its readers (inferred), and the writer the others queue behind
            for inf in lock.reader_infs:
                out.append(edge("read", lock.id, "T%d" % inf.num,
                                "read-held by (inferred: %s)" % inf.source, "dashed"))
            for num in lock.pending:
                if any(n not in lock.pending for n in lock.waiters):
                    out.append(edge("pending", lock.id, "T%d" % num,
                                    "next writer (waits for the readers)", "dotted"))
        if lock.state != "free" and not lock.owner_lwp:
            for num in sorted(lock.candidates):
                out.append(edge("candidate", lock.id, "T%d" % num, "claims it (undecided)",
                                "dotted"))
            if lock.waiters and not lock.candidates:
                for num in lock.possible[:POSSIBLE_DRAWN]:
                    out.append(edge("possible", lock.id, "T%d" % num,
                                    "could hold it (not analysed)", "dotted"))
    out.append("}")
    return "\n".join(out) + "\n"
