"""Text reports for people: the verdict first, then the evidence.

Every string read from the target goes through ``textsafe.escape``.
"""

from ..analysis import advice
from ..analysis import graph
from ..analysis import knownbugs
from ..analysis import sourcecite
from ..analysis import verdict as verdicts
from ..model import INFERRED, UNKNOWN
from .textsafe import escape

ARROW = " <- "
MAX_LISTED = 12       # thread numbers listed per group unless --all
CANDIDATE_LINES = 3   # threads that could hold a lock of unknown owner, one line each
STACK_LINES = 8       # frames shown per cycle thread


def count(n):
    """``1,998``: large counts are read at a glance."""
    return "{:,}".format(n)


def plural(n, word, words=None):
    return "%s %s" % (count(n), word if n == 1 else (words or word + "s"))


def thread_ref(t):
    """``T3 (LWP 1234) hloop (handle 42) "name" entry``, escaped."""
    text = "T%d (LWP %d)" % (t.num, t.lwp)
    if t.role:
        text += " " + t.role
        if t.role_detail:
            text += " (%s)" % escape(t.role_detail, 60)
    if t.name:
        text += ' "%s"' % escape(t.name, 40)
    if t.entry:
        text += " " + escape(t.entry, 80)
    return text


def lock_ref(lock):
    """``M1 janus_videoroom.c: rooms_mutex (0x55d0...) pthread mutex (normal)``."""
    name = lock.name_text or lock.symbol
    if name:
        head = "%s %s (0x%x)" % (lock.id, escape(name, 160), lock.addr)
    else:
        head = "%s 0x%x" % (lock.id, lock.addr)
    text = "%s %s" % (head, lock.kind_text())
    impl = lock.details.get("impl") if lock.kind == "grwlock" else None
    if impl:
        text += " (its pthread_rwlock_t at 0x%x)" % impl
    return text


def hold_evidence(lock, t):
    """(evidence, detail) of thread T holding LOCK: a reader's own inference
    for a read-locked rwlock, else the lock's owner evidence."""
    for inf in lock.reader_infs:
        if inf.num == t.num:
            return "inferred", "for reading: " + inf.detail
    return lock.evidence, lock.evidence_detail


def rwlock_lines(lock, report, t=None):
    """Who holds a read-locked rwlock (readers shown by the source, with
    their evidence; how many are not shown) and who waits for its readers;
    T: the thread whose wait is being described."""
    out = []
    for inf in lock.reader_infs:
        r = report.thread(inf.num)
        who = thread_ref(r) if r is not None else "LWP %d" % inf.lwp
        if t is not None and inf.num == t.num:
            who += " (itself)"
        out.append("read-locked by %s  [inferred: %s]" % (who, escape(inf.detail, 300)))
    missing = lock.readers_unknown
    if missing > 0:
        text = "%s not shown by any frame's source" % plural(missing, "reader")
        if lock.candidates:
            text += " (candidates: %s)" % ", ".join("T%d" % n for n in lock.candidates)
        out.append("%s  [%s: %s records no readers]" % (text, UNKNOWN, _libc_of(lock)))
    for num in lock.pending:
        if t is not None and num == t.num and t.wait.rwlock == "write-for-readers":
            continue
        w = report.thread(num)
        if w is not None:
            out.append("a writer waits for the readers to leave: %s" % thread_ref(w))
    return out


def lock_name(lock):
    name = lock.name_text or lock.symbol
    return "%s %s" % (lock.id, escape(name, 160)) if name else lock.id


def site(t, depth=3):
    """``f (a.c:12) <- g (a.c:40)``: where the thread called into the library.

    Application frames only, from the first one; all frames when the stack
    has none (a stripped or library-only stack).
    """
    frames = t.frames
    if not frames:
        return "(no frames)"
    if t.site is None:
        picked = frames[:depth]
    else:
        picked = [fr for fr in frames[t.site:] if not fr.system][:depth]
    # a name from log strings keeps its mark (docs/evidence.md)
    text = ARROW.join(escape(fr.where(), 140 if fr.log_name else 100) for fr in picked)
    caller = next((c for c in t.stack_calls[:10] if c.file and c.line), None)
    if caller is not None and all(fr.line is None for fr in picked):
        text += "  [on the stack: a return address in %s, not an unwound frame]" % escape(
            caller.where(), 100)
    return text


def owner_text(lock, report):
    """``held by T3 (LWP 12) entry  [exact: __data.__owner = 12]``."""
    if lock.state == "free":
        return "free now (the waiters are being woken)"
    if lock.owner_lwp:
        owner = report.thread(lock.owner_num) if lock.owner_num is not None else None
        if owner is not None:
            who = thread_ref(owner)
        else:
            who = "LWP %d, which is not a thread of this process" % lock.owner_lwp
        return "held by %s  [%s: %s]" % (who, lock.evidence, escape(lock.evidence_detail, 400))
    if lock.leaked:
        return "held by no live thread: probably leaked  [%s: %s]" % (
            UNKNOWN, escape(lock.evidence_detail, 400))
    return "owner %s  [%s]" % (UNKNOWN, escape(lock.evidence_detail, 400))


def state_text(lock):
    word = "" if lock.word is None else " (lock word %d)" % lock.word
    return "%s%s" % (lock.state, word)


def _blocked_count(n):
    return "%s %s blocked behind it" % (plural(n, "thread"), "is" if n == 1 else "are")


def cause_sentence(cause):
    """One root of a hang with its crowd, e.g. ``T7 holds 3 locks while
    waiting on a queue (g_async_queue_pop in clear_outbuf); 212 threads are
    blocked behind it``; escaped."""
    n = len(cause.blocked)
    if cause.kind == "unknown-owner":
        return "%s blocked behind %s" % (plural(n, "thread"), escape(cause.why, 300))
    return "%s; %s" % (escape(cause.why, 300), _blocked_count(n))


def verdict(report, found=None):
    """The first line: stable, greppable.  ``Found N deadlock`` or ``No
    deadlock found``; without a cycle, the root that blocks the most
    threads follows (verdict.causes)."""
    n = len(report.cycles)
    cyc_threads = report.cycle_threads()
    behind = sum(1 for r in report.roots.values() if r.kind == "cycle")
    found = verdicts.causes(report) if found is None else found
    first = None
    if n:
        head = "Found %s (%s)" % (plural(n, "deadlock"), plural(len(cyc_threads), "thread"))
        head += ", %s blocked behind %s." % (plural(behind, "thread"), "it" if n == 1 else "them")
        others = [c for c in found if c.stuck and c.kind != "cycle"]
        if others:
            first = others[0]
            head += " Also: %s." % cause_sentence(first)
    else:
        shown = [c for c in found if c.kind not in ("free", "join")]
        if shown:
            first = shown[0]
            head = "No deadlock found: " + cause_sentence(first)
            if len(shown) > 1:
                head += "; %s below" % plural(len(shown) - 1, "more root")
            head += "."
        else:
            stalled = [t for t in report.threads if t.state in ("lock-wait", "join")]
            head = "No deadlock found"
            head += ("; %s waiting for locks or joins (see below)." % plural(
                len(stalled), "thread") if stalled else ".")
        unread = verdicts.unread_threads(report)
        if unread and not any(c.stuck or c.kind == "unknown-owner" for c in found):
            # never "No deadlock found" when threads could not be read
            head = "Undetermined: %s" % escape(verdicts.unread_sentence(report, unread), 400)
            head += (". Also: %s." % cause_sentence(first)) if first is not None else "."
    first_lock = first.root.lock if first is not None else None
    leaked = [l for l in report.locks if l.leaked and l is not first_lock and not (
        first is not None and first.kind == "holder-leaked" and l in
        report.thread(first.root.thread).holds)]
    if leaked:
        head += " %s probably leaked (held, never unlocked)." % plural(len(leaked), "lock")
    return head


def target_line(report):
    tgt = report.target
    if tgt.get("kind") == "core":
        what = "core file of pid %s" % tgt.get("pid")
    else:
        what = "live process %s" % tgt.get("pid")
    parts = [what]
    version = tgt.get("janus_version")
    if version and version.get("text"):
        parts.append("Janus %s" % escape(version["text"], 32))
    parts.append(plural(tgt.get("threads", 0), "thread"))
    impl = tgt.get("mutex_impl")
    # "inferred" only when some owner was: GMutex records none
    gmutex = ("GMutex: owners inferred" if any(l.evidence == INFERRED for l in report.locks)
              else "GMutex: no owner recorded")
    if impl == "gmutex":
        parts.append(gmutex)
    elif impl == "pthread" and tgt.get("libc") == "musl":
        parts.append("musl pthread mutexes: exact owners except normal mutexes "
                     "(no owner recorded)")
        if tgt.get("also_gmutex"):
            parts.append(gmutex)
    elif impl == "pthread":
        parts.append("pthread mutexes: exact owners")
        if tgt.get("also_gmutex"):
            parts.append(gmutex)
    if tgt.get("libc") == "musl" and any(l.kind == "pthread_rwlock" for l in report.locks):
        parts.append("musl rwlocks: no writer or readers recorded")
    elif tgt.get("libc") == "musl" and not (impl == "pthread"):
        parts.append("musl")
    return "[%s]" % ", ".join(parts)


def _libc_of(lock):
    """The C library whose layout decoded LOCK (what records what)."""
    return "musl" if (lock.details or {}).get("libc") == "musl" else "glibc"


def known_lines(report, causes=None):
    """The catalogue's word on each finding (``This is janus-gateway #3510
    ...`` with its evidence), then the findings' fingerprints on one line
    (CAUSES: the report's ``verdict.causes``, when already made)."""
    found = knownbugs.of_report(report, causes)
    out = []
    for f in found:
        m = f.known
        if m is None:
            continue
        out.append(escape(m.sentence(), 1000))     # the catalogue's advice may be long
        out.append("  [match %s: %s]" % (f.fingerprint, escape(m.evidence(), 1000)))
    if found:
        out.append("Fingerprint%s: %s" % ("" if len(found) == 1 else "s", ", ".join(
            "%s (%s)" % (f.fingerprint, escape(f.where, 40)) for f in found)))
    return out


TIP_GMUTEX = ("Tip: GMutex records no owner, so owners are inferred from the source and "
              "stacks; build Janus with --enable-pthread-mutex to get exact owners.")


def waitgraph(report, show_all=False):
    """The janus-waitgraph text report."""
    found = verdicts.causes(report)
    out = [verdict(report) + "   " + target_line(report)]
    out.extend(known_lines(report, found))
    through = set(e.lock.addr for e in report.edges if e.lock is not None)
    waited = [l for l in report.locks if l.waiters and l.state != "free"
              and l.owner_lwp is None and not l.leaked and l.addr not in through]
    ownerless = [l for l in waited if l.state not in ("corrupt", "unreadable")]
    broken = [l for l in waited if l.state in ("corrupt", "unreadable")]
    if ownerless:
        out.append("Note: %s with waiters record%s no owner (%s): a deadlock through %s "
                   "cannot be shown as a cycle." % (
                       plural(len(ownerless), "lock"), "s" if len(ownerless) == 1 else "",
                       ", ".join(sorted(set(l.kind_text() for l in ownerless))),
                       "it" if len(ownerless) == 1 else "them"))
    if broken:
        out.append("Note: %s with waiters could not be decoded (unreadable or corrupt "
                   "memory): a deadlock through %s cannot be shown as a cycle." % (
                       plural(len(broken), "lock"), "it" if len(broken) == 1 else "them"))
    if report.target.get("mutex_impl") == "gmutex":
        out.append(TIP_GMUTEX)
    out.append("")
    for i, cyc in enumerate(report.cycles):
        out.extend(_cycle(report, i, cyc))
    out.extend(_blocked(report, show_all, found))
    out.extend(_others(report, show_all))
    steps = advice.next_steps(report, found, report.used_locklog)
    if steps:
        if out[-1]:
            out.append("")
        out.append("Next steps:")
        for line in steps:
            out.append("  - " + escape(line, 400))
    if report.warnings:
        out.append("")
        for w in report.warnings:
            out.append("warning: " + escape(w, 300))
    return "\n".join(out).rstrip("\n") + "\n"


def unlock_lines(lock, ind):
    """``possible missing unlock: ...`` lines of a leaked lock (at most
    sourcecite.SHOWN, then ``+N more``)."""
    found = getattr(lock, "missing_unlocks", None) or []
    out = [ind + "possible missing unlock: " + escape(sourcecite.unlock_text(d), 300)
           for d in found[:sourcecite.SHOWN]]
    if len(found) > sourcecite.SHOWN:
        out.append(ind + "possible missing unlock: +%d more (--format json lists them)" % (
            len(found) - sourcecite.SHOWN))
    return out


def order_lines(report, i, ind):
    """Where the source takes the locks of deadlock #I+1 in each order."""
    return [ind + "source: " + escape(o["text"], 600)
            for o in getattr(report, "source_orders", {}).get(i, ())]


def _cycle(report, i, cyc):
    out = ["Deadlock #%d (%s)" % (i + 1, plural(len(cyc), "thread"))]
    for e in cyc:
        t = report.thread(e.src)
        out.append("  " + thread_ref(t))
        out.extend(_wait_lines(report, t, "      "))
        for lock in t.holds:
            out.append("      holds      %s, %s" % (lock_ref(lock), state_text(lock)))
            out.append("                 [%s: %s]" % tuple(
                escape(x, 400) for x in hold_evidence(lock, t)))
    out.extend(order_lines(report, i, "  "))
    out.append("  Stacks:")
    for e in cyc:
        t = report.thread(e.src)
        out.append("    T%d:" % t.num)
        for fr in t.frames[:STACK_LINES]:
            out.append("      #%-2d %s" % (fr.level, escape(fr.where(), 140)))
        if len(t.frames) > STACK_LINES:
            out.append("      ... %s more" % plural(len(t.frames) - STACK_LINES, "frame"))
        calls = [c for c in t.stack_calls[:STACK_LINES] if c.file and c.line]
        if calls:
            out.append("      return addresses found on the stack above (not unwound frames):")
            for c in calls[:4]:
                out.append("        0x%x %s" % (c.pc, escape(c.where(), 140)))
    out.append("")
    return out


def queue_lines(t, ind):
    """``queue  participant->outbuf of ... (0x...)  [frame: how]`` for a
    thread waiting on a GAsyncQueue that was identified, else []."""
    w = t.wait
    q = w.queue if w is not None else None
    if q is None:
        return []
    what = ("%s (0x%x)" % (escape(q.name, 200), q.addr) if q.name
            else "0x%x (no known object or variable points to it)" % q.addr)
    return [ind + "queue %s  [%s: %s]" % (what, q.evidence, escape(q.how, 400))]


def detail_text(t):
    """The thread's state phrase, with the queue it waits on when known."""
    w = t.wait
    if w is not None and w.queue is not None and w.queue.name:
        return "%s (%s)" % (t.detail, escape(w.queue.name, 200))
    if w is not None and w.queue is not None:
        return "%s (at 0x%x; nothing known points to it)" % (t.detail, w.queue.addr)
    return t.detail


def _wait_lines(report, t, ind):
    w = t.wait
    if w is None:
        return [ind + t.detail]
    if w.is_lock:
        lock = report.lock_by_addr.get(w.lock_addr)
        if lock is None:
            if w.lock_addr is None:     # a rwlock whose start is not known
                return [ind + "waits on the futex at 0x%x (%s)" % (w.futex or 0, t.detail),
                        ind + "           at " + site(t),
                        ind + "           " + escape(w.how, 300)]
            return [ind + "waits for  0x%x" % w.lock_addr]
        out = [ind + "waits for  %s, %s" % (lock_ref(lock), state_text(lock)),
               ind + "           at " + site(t)]
        if w.rwlock:
            out.append(ind + "           " + t.detail)
        if lock.owner_lwp or not lock.reader_infs and not lock.readers:
            out.append(ind + "           " + owner_text(lock, report))
        out.extend(ind + "           " + line for line in rwlock_lines(lock, report, t))
        return out
    if w.kind == "join":
        target = report.thread_by_lwp(w.target_lwp)
        who = thread_ref(target) if target is not None else "LWP %s (no such thread)" % w.target_lwp
        return [ind + "joins      %s" % who, ind + "           at " + site(t)]
    return [ind + detail_text(t)] + queue_lines(t, ind + "           ")


def group_key(t):
    """Threads waiting for the same thing from the same call site group together."""
    w = t.wait
    target = w.lock_addr if w.is_lock else ("join", w.target_lwp)
    return (target, graph.stack_signature(t))


def _group_lines(report, threads, show_all, ind="  "):
    out = []
    for (target, _sig), members in graph.group_threads(threads, group_key):
        t = members[0]
        w = t.wait
        if w.is_lock:
            lock = report.lock_by_addr.get(w.lock_addr)
            what = "wait%s for %s" % ("s" if len(members) == 1 else "", lock_name(lock)) \
                if lock else "wait for 0x%x" % (w.lock_addr or w.futex or 0)
            if lock is not None and lock.owner_num is not None:
                what += " (held by T%d)" % lock.owner_num
            elif lock is not None and w.rwlock == "write-for-readers" and lock.reader_infs:
                what += " (read-locked by %s)" % ", ".join(
                    "T%d" % i.num for i in lock.reader_infs)
            elif lock is not None and lock.pending and w.rwlock in (
                    "write-for-writer", "read-for-pending-writer"):
                what += " (behind %s, waiting for its readers)" % ", ".join(
                    "T%d" % n for n in lock.pending)
        else:
            target_t = report.thread_by_lwp(w.target_lwp)
            what = "join%s T%d" % ("s" if len(members) == 1 else "", target_t.num) \
                if target_t is not None else "join LWP %s" % w.target_lwp
        who = thread_ref(t) if len(members) == 1 else plural(len(members), "thread")
        out.append("%s%s %s" % (ind, who, what))
        out.append("%s    at %s" % (ind, site(t)))
        if len(members) > 1:
            nums = [m.num for m in members]
            shown = nums if show_all else nums[:MAX_LISTED]
            more = "" if len(shown) == len(nums) else " ... (+%s, --all lists them)" % (
                count(len(nums) - len(shown)))
            out.append("%s    threads: %s%s" % (ind, ", ".join("T%d" % n for n in shown), more))
    return out


def _blocked(report, show_all, found=None):
    """One section per root, in the order of verdict.causes (the root that
    blocks the most threads first, deadlocks before all)."""
    out = []
    found = verdicts.causes(report) if found is None else found
    for cause in found:
        root = cause.root
        threads = [report.thread(n) for n in cause.blocked]
        if root.kind == "cycle":
            out.append("Blocked behind deadlock #%d:" % (root.cycle + 1))
        elif root.kind == "thread":
            holder = report.thread(root.thread)
            out.append("Blocked behind %s, which %s:" % (thread_ref(holder),
                                                         escape(cause.what, 300)))
            out.append("    at %s" % site(holder))
            out.extend(queue_lines(holder, "    "))
            for l in holder.holds:
                ev, detail = hold_evidence(l, holder)
                out.append("    holds %s  [%s: %s]" % (lock_name(l), ev, escape(detail, 400)))
                out.extend(unlock_lines(l, "      "))
        elif root.kind == "dead-owner":
            lock = root.lock
            out.append("Lock whose owner no longer exists: %s, %s" % (lock_ref(lock), state_text(lock)))
            out.append("    owner LWP %d is not a thread of this process: it ended without "
                       "unlocking (lock leaked)  [%s: %s]" % (lock.owner_lwp, lock.evidence,
                                                              escape(lock.evidence_detail, 400)))
            out.extend(unlock_lines(lock, "    "))
        elif root.kind == "leaked":
            lock = root.lock
            out.append("Lock probably leaked (held, but no live thread holds it): %s, %s" % (
                lock_ref(lock), state_text(lock)))
            out.append("    [%s: %s]" % (UNKNOWN, escape(lock.evidence_detail, 400)))
            out.extend(unlock_lines(lock, "    "))
        elif root.kind == "unknown-owner":
            lock = root.lock
            out.append("Waiting for a lock whose owner is unknown: %s, %s" % (
                lock_ref(lock), state_text(lock)))
            out.append("    [%s: %s]" % (UNKNOWN, escape(lock.evidence_detail, 400)))
            for num in lock.possible[:CANDIDATE_LINES]:
                c = report.thread(num)
                out.append("    could be held by %s, %s" % (
                    thread_ref(c), escape(verdicts.waiting_on(c, report), 200)))
            if lock.possible_count > CANDIDATE_LINES:
                out.append("    ... and %s more that could hold it (listed above)" % count(
                    lock.possible_count - min(CANDIDATE_LINES, len(lock.possible))))
        else:
            lock = root.lock
            out.append("Briefly contended (lock is free now): %s" % lock_ref(lock))
        out.extend(_group_lines(report, threads, show_all))
        out.append("")
    return out


STATE_ORDER = ("lock-wait", "join", "waiting", "idle", "poll", "io", "sleep", "signal-wait", "child-wait",
               "futex-wait", "syscall", "running", "unknown")


def _others(report, show_all):
    """One line for the threads not involved: counts per state, then per
    role and state (``1,000 hloop: poll``); --all lists every thread."""
    involved = report.cycle_threads() | set(report.roots) | set(
        r.thread for r in report.roots.values() if r.thread is not None)
    for r in report.roots.values():
        if r.kind == "unknown-owner" and r.lock is not None:
            # could hold a lock others wait for: not summarised as idle
            involved.update(r.lock.possible)
    rest = [t for t in report.threads if t.num not in involved]
    if not rest:
        return []
    counts = {}
    roles = {}
    for t in rest:
        counts[t.state] = counts.get(t.state, 0) + 1
        key = (t.role or "other", t.state)
        roles[key] = roles.get(key, 0) + 1
    summary = ", ".join("%s %s" % (count(counts[s]), s) for s in STATE_ORDER if s in counts)
    out = ["Other threads (%s): %s" % (count(len(rest)), summary)]
    if any(t.role for t in rest):
        by_role = sorted(roles.items(), key=lambda kv: (-kv[1], kv[0]))
        out.append("  by role: " + ", ".join("%s %s: %s" % (count(n), escape(role, 40), state)
                                             for (role, state), n in by_role))
    holding = [t for t in rest if t.holds]
    if holding and not show_all:
        shown = holding[:MAX_LISTED]
        out.append("  holding locks nobody waits for: " + ", ".join(
            "T%d (%s; %s)" % (t.num, ", ".join(l.id for l in t.holds[:4]),
                              escape(detail_text(t), 160))
            for t in shown) + ("" if len(shown) == len(holding) else " ... (+%s)" % count(
                len(holding) - len(shown))))
    if show_all:
        for t in rest:
            out.append("  %s: %s" % (thread_ref(t), detail_text(t)))
            out.append("      at %s" % site(t))
    else:
        for t in rest:
            if t.state in ("unknown", "futex-wait"):
                out.append("  %s: %s (%s)" % (thread_ref(t), t.state, t.detail if t.wait is None
                                              else escape(t.wait.how, 120)))
    return out


def locks(report, show_all=False):
    """The janus-locks text report."""
    if not report.locks:
        return "No lock is held or waited for.   %s\n" % target_line(report)
    out = ["%s held or waited for.   %s" % (plural(len(report.locks), "lock"), target_line(report))]
    out.extend(known_lines(report))
    out.append("")
    for lock in report.locks:
        out.append(lock_ref(lock))
        out.append("    state    %s" % state_text(lock))
        if lock.readers:
            out.append("    readers  %d (%s records no readers)" % (lock.readers, _libc_of(lock)))
            out.extend("             " + line for line in rwlock_lines(lock, report))
        elif lock.pending:
            out.extend("    " + line for line in rwlock_lines(lock, report))
        if lock.state != "free" and not (lock.readers and not lock.owner_lwp):
            if lock.owner_lwp:
                owner = report.thread(lock.owner_num) if lock.owner_num is not None else None
                who = thread_ref(owner) if owner is not None else \
                    "LWP %d: no such thread, the owner ended without unlocking" % lock.owner_lwp
                out.append("    owner    %s" % who)
                out.append("             [%s: %s]" % (lock.evidence,
                                                      escape(lock.evidence_detail, 400)))
                inf = lock.inference
                if lock.evidence == "exact" and inf is not None and inf.num == lock.owner_num:
                    out.append("             [source agrees: %s]" % escape(inf.detail, 300))
                out.extend(unlock_lines(lock, "             "))
            elif lock.leaked:
                out.append("    owner    none alive: probably leaked  [%s: %s]" % (
                    UNKNOWN, escape(lock.evidence_detail, 400)))
                out.extend(unlock_lines(lock, "             "))
            else:
                out.append("    owner    %s  [%s]" % (UNKNOWN, escape(lock.evidence_detail, 400)))
        nums = lock.waiters if show_all else lock.waiters[:MAX_LISTED]
        more = "" if len(nums) == len(lock.waiters) else " ... (+%s)" % count(
            len(lock.waiters) - len(nums))
        out.append("    waiters  %s: %s%s" % (count(len(lock.waiters)),
                                              ", ".join("T%d" % n for n in nums), more))
        out.append("")
    if report.warnings:
        for w in report.warnings:
            out.append("warning: " + escape(w, 300))
    return "\n".join(out).rstrip("\n") + "\n"

