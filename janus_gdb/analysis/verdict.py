"""What the report concludes: the kind of verdict and the root causes of a hang.

Pure logic over an ``analyze.Report``; no gdb.  A *cause* is one root of
``graph.trace_roots`` with the threads blocked behind it, the reason in a
phrase, and whether the evidence shows it will not end by itself.  Causes
are ordered by how many threads they block (the one that unblocks the most
first).  The verdict kind, and the command-line tool's exit status:

    deadlock      1  a wait cycle
    hang          3  no cycle, but threads are blocked behind a root that the
                     evidence shows stuck: a leaked lock, an owner that no
                     longer exists, or a holder that waits for something else
                     (a queue, condition variable, join, sleep, poll, I/O)
                     while holding the locks they need
    undetermined  4  threads are blocked behind a lock whose owner cannot be
                     shown (it may be a hang or passing contention), or
                     nothing was found but some threads could not be read
                     (state unknown: an architecture whose system-call
                     registers are not decoded, a call interrupted by a
                     signal): nothing rules a deadlock out
    none          0  nothing blocked for long: no lock waits, or only behind
                     a running holder or a lock that is free now

docs/evidence.md says which evidence backs each word.
"""

from . import classify

DEADLOCK, HANG, UNDETERMINED, NONE = "deadlock", "hang", "undetermined", "none"
EXIT_STATUS = {NONE: 0, DEADLOCK: 1, HANG: 3, UNDETERMINED: 4}

# Candidates named in a cause (the lock's detail lists up to infer.MAX_CANDIDATES).
VERDICT_CANDIDATES = 4
# A holder in one of these states is blocked waiting for something else.
WAITING_STATES = ("waiting", "idle", "join", "sleep", "poll", "io", "signal-wait",
                  "child-wait", "futex-wait")

_WAITS_ON = {
    "queue": "waiting on a queue", "condvar": "waiting on a condition variable",
    "gcond": "waiting on a GCond", "semaphore": "waiting on a semaphore",
    "futex": "waiting on a futex", "join": "joining a thread",
}
_STATE_PHRASE = {
    "sleep": "sleeping", "poll": "polling", "io": "in I/O", "signal-wait": "waiting for a signal",
    "child-wait": "waiting for a child process", "futex-wait": "waiting on a futex",
    "running": "running", "syscall": "in a system call", "unknown": "in an unknown state",
}


class Cause(object):
    """One root of the hang, with the threads blocked behind it."""
    __slots__ = ("root", "blocked", "stuck", "why", "kind", "what")

    def __init__(self, root, blocked, stuck, why, kind, what=None):
        self.root = root          # graph.Root
        self.blocked = blocked    # thread numbers blocked behind it
        self.stuck = stuck        # the evidence shows it does not end by itself
        self.why = why            # a phrase for people (not escaped)
        self.what = what          # for a holder: WHY without "Tn " in front
        self.kind = kind          # holder-waits, holder-leaked, holder-running, leaked,
        #                           dead-owner, unknown-owner, free, cycle, join

    def to_dict(self):
        r = self.root
        lock = r.lock
        return {"kind": self.kind, "root": r.kind, "thread": r.thread,
                "lock": lock.id if lock is not None else None,
                "cycle": r.cycle + 1 if r.cycle is not None else None,
                "blocked": len(self.blocked), "stuck": self.stuck, "why": self.why,
                "candidates": list(lock.possible) if lock is not None else [],
                "candidate_count": lock.possible_count if lock is not None else 0}


def waiting_on(t, report=None):
    """``waiting on a queue (g_async_queue_pop in clear_outbuf)``: what T is
    blocked on, the library call and the application function that made it."""
    w = t.wait
    frames = t.frames
    with_call = True
    if w is not None and w.kind == "join" and report is not None:
        target = report.thread_by_lwp(w.target_lwp)
        what = "joining T%d" % target.num if target is not None else _WAITS_ON["join"]
    elif w is not None and w.kind == "queue" and w.queue is not None:
        what = queue_phrase(w.queue)
    elif w is not None and w.kind in _WAITS_ON:
        what = _WAITS_ON[w.kind]
    elif t.state in ("io", "syscall") and t.syscall:
        what = "blocked in %s()" % t.syscall
        with_call = False
    else:
        what = _STATE_PHRASE.get(t.state) or t.detail or t.state
    call = app = None
    if frames and with_call:
        idx = w.frame if w is not None and w.frame is not None and w.frame < len(frames) else 0
        if frames[idx].system:
            call = classify.normalize(frames[idx].function) or None
    if t.site is not None and t.site < len(frames):
        fr = frames[t.site]
        app = fr.function or ("0x%x in %s" % (fr.pc, fr.lib or "the executable"))
        if fr.pc == 0 and fr.function is None and t.stack_calls:
            # where gdb's unwinding gave up (musl): the caller on the stack
            chain = [c for c in classify.stack_chain(frames, t.stack_calls) if c.file]
            if chain:
                app = "%s, found on the stack" % chain[0].function
    if call and app:
        what += " (%s in %s)" % (call, app)
    elif app:
        what += " (in %s)" % app
    elif call:
        what += " (%s)" % call
    return what


def queue_phrase(queue):
    """``waiting on the queue participant->outbuf of ...`` (a field or
    variable points to it) or ``waiting on a queue at 0x...`` (``model.QueueRef``)."""
    if queue.name:
        return "waiting on the queue %s" % queue.name
    return "waiting on a queue at 0x%x" % queue.addr


def _lock_word(lock):
    name = lock.name_text or lock.symbol
    return "%s %s" % (lock.id, name) if name else lock.id


def causes(report):
    """Every root with its blocked threads, most blocked first."""
    groups = {}
    order = []
    for num in sorted(report.roots):
        root = report.roots[num]
        k = root.key()
        if k not in groups:
            groups[k] = (root, [])
            order.append(k)
        groups[k][1].append(num)
    out = []
    for k in order:
        root, blocked = groups[k]
        out.append(_cause(report, root, blocked))
    rank = {"cycle": 0}
    out.sort(key=lambda c: (rank.get(c.root.kind, 1), -len(c.blocked), 0 if c.stuck else 1,
                            c.root.thread or 0, c.root.lock.addr if c.root.lock else 0))
    return out


def _cause(report, root, blocked):
    if root.kind == "cycle":
        return Cause(root, blocked, True, "deadlock #%d" % (root.cycle + 1), "cycle")
    lock = root.lock
    if root.kind == "thread":
        t = report.thread(root.thread)
        waited = [l for l in t.holds if l.waiters]
        n = len(t.holds)
        holds = "holds %d lock%s" % (n, "" if n == 1 else "s")
        leaked = [l for l in waited if l.leaked]
        if not waited:
            # reached only through joins: waiting for a thread to end is not a hang by itself
            what, stuck, kind_ = "is %s" % waiting_on(t, report), False, "join"
        elif leaked:
            what = "%s (%s probably leaked: no frame of it takes %s) and is %s" % (
                holds, ", ".join(l.id for l in leaked), "it" if len(leaked) == 1 else "them",
                waiting_on(t, report))
            stuck, kind_ = True, "holder-leaked"
        elif t.state in WAITING_STATES:
            what = "%s while %s" % (holds, waiting_on(t, report))
            stuck, kind_ = True, "holder-waits"
        else:
            what, stuck = "%s and is %s" % (holds, waiting_on(t, report)), False
            kind_ = "holder-running" if t.state == "running" else "holder"
        return Cause(root, blocked, stuck, "T%d %s" % (t.num, what), kind_, what)
    if root.kind == "dead-owner":
        return Cause(root, blocked, True, "%s is held by LWP %d, which no longer exists "
                     "(it ended without unlocking)" % (_lock_word(lock), lock.owner_lwp),
                     "dead-owner")
    if root.kind == "leaked":
        return Cause(root, blocked, True, "%s is probably leaked (held, and no live thread "
                     "can hold it)" % _lock_word(lock), "leaked")
    if root.kind == "unknown-owner":
        why = "%s (owner unknown" % _lock_word(lock)
        if lock.state in ("corrupt", "unreadable"):
            why += ": its memory is %s" % lock.state
        if lock.candidates:
            why += "; undecided between %s" % ", ".join("T%d" % n for n in lock.candidates)
        elif lock.possible:
            shown = lock.possible[:VERDICT_CANDIDATES]
            why += "; candidates %s" % ", ".join("T%d" % n for n in shown)
            if lock.possible_count > len(shown):
                why += " (+%d)" % (lock.possible_count - len(shown))
        return Cause(root, blocked, False, why + ")", "unknown-owner")
    return Cause(root, blocked, False, "%s is free now (briefly contended)" % _lock_word(lock),
                 "free")


def kind(report, found=None):
    """deadlock, hang, undetermined or none (see the module's docstring)."""
    if report.cycles:
        return DEADLOCK
    found = causes(report) if found is None else found
    if any(c.stuck for c in found):
        return HANG
    if any(c.kind == "unknown-owner" or (c.kind == "holder" and
                                         report.thread(c.root.thread).state == "unknown")
           for c in found):
        return UNDETERMINED
    if unread_threads(report):
        return UNDETERMINED
    return NONE


def unread_threads(report):
    """Threads whose state could not be read: any of them may wait for a lock."""
    return [t for t in report.threads if t.state == "unknown"]


UNREAD_SHOWN = 4


def unread_sentence(report, unread):
    """``9 of 9 threads could not be read (T1: no system-call register on
    this architecture (arm))``: why the verdict cannot say "no deadlock"."""
    n, total = len(unread), len(report.threads)
    shown = ", ".join("T%d" % t.num for t in unread[:UNREAD_SHOWN])
    if n > UNREAD_SHOWN:
        shown += " (+%d)" % (n - UNREAD_SHOWN)
    if n == total:
        what = "no thread's state could be read (%s)" % (unread[0].detail or "unknown")
    else:
        what = "%d of %d threads could not be read (%s; %s: %s)" % (
            n, total, shown, "T%d" % unread[0].num, unread[0].detail or "unknown")
    return what + "; a deadlock or hang among them cannot be ruled out"


def exit_status(report):
    return EXIT_STATUS[kind(report)]
