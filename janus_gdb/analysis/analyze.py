"""Build a ``Report`` of the target: threads, locks, wait-for graph, cycles.

``collect()`` reads the target through ``gdbtarget``; ``build_report()`` is
pure and can be fed fake snapshots and memory in unit tests.
"""

from . import classify
from . import graph
from . import infer
from ..janus import janusdb
from ..target import layouts
from ..target import syscalls
from ..model import EXACT, INFERRED, RWLOCK_KINDS, UNKNOWN, Lock, Thread

SCHEMA = "janus-gdb/1"

LOCK_KIND_OF_WAIT = {
    "mutex": "pthread_mutex", "gmutex": "gmutex", "rwlock-read": "pthread_rwlock",
    "rwlock-write": "pthread_rwlock", "rwlock": "pthread_rwlock", "lock": "lock",
    "libc-lock": "libc-lock",
}

# Threads named in the musl unwinding warning.
MAX_NAMED_STUCK = 16


class Report(object):
    """Everything one analysis found, ready for rendering."""

    def __init__(self, target, threads, locks, edges, cycles, roots, warnings):
        self.target = target          # dict: kind, pid, executable, arch, threads
        self.threads = threads        # list of Thread, by number
        self.locks = locks            # list of Lock, by id
        self.edges = edges
        self.cycles = cycles          # list of lists of graph.Edge
        self.roots = roots            # {thread num: graph.Root}
        self.warnings = warnings
        self.used_locklog = False     # a lock-debug log was given
        self.source_orders = {}       # {cycle index: [order]} from the source (sourcecite)
        self.source_check = None      # {"files", "seconds", "cached"} when the source was read
        self.findings = None          # fingerprint.Finding list (knownbugs.of_report)
        self.by_num = dict((t.num, t) for t in threads)
        self.by_lwp = dict((t.lwp, t) for t in threads)
        self.lock_by_addr = list_to_map(locks)

    def thread(self, num):
        return self.by_num.get(num)

    def thread_by_lwp(self, lwp):
        return self.by_lwp.get(lwp)

    def cycle_threads(self):
        nums = set()
        for cyc in self.cycles:
            nums.update(e.src for e in cyc)
        return nums


def collect(max_frames=64, locklog=None, source_check=True, gdb_only=False):
    """Analyse the selected inferior (live or core) and return a Report.

    LOCKLOG is a parsed Janus lock-debug log (``locklog.LockLog``) or None.
    SOURCE_CHECK: when a lock was leaked or threads deadlock, read the C
    sources the debug info names for the exits that leak it and the orders
    of the cycle (``sourcecite``).  GDB_ONLY: read every thread of a core
    through gdb, not one of each group of identical stacks (``fastpath``).
    """
    # gdb-only modules, imported late
    from ..janus import names
    from ..janus import objects
    from ..janus import version as janus_version
    from . import fastpath
    from . import stackscan
    from ..target import gdbtarget
    inf = gdbtarget.require_inferior()
    warnings = []
    symtabs = {}
    scanner = stackscan.Scanner(gdbtarget.lock_kind_of_type)
    kind = gdbtarget.target_kind(inf)
    # a core opened with another executable: said in the report, and the
    # fast path is off (gdb unwinds with other CFI than the core's files)
    mismatch = gdbtarget.core_mismatch(inf) if kind == "core" else None
    groups = fastpath.plan(inf, kind, gdb_only, mismatch)
    gthreads = {} if groups is None else gdbtarget.LazyThreads(inf)
    try:
        snaps, arch = gdbtarget.snapshot_threads(
            inf, max_frames, warnings, symtabs, scanner, gthreads,
            numbers=None if groups is None else groups.first_pass())
        if groups is not None:
            snaps = fastpath.fill(groups, snaps, scanner, lambda numbers: (
                gdbtarget.snapshot_threads(inf, max_frames, warnings, symtabs, scanner,
                                           gthreads, numbers=numbers)[0]))
    finally:
        if groups is not None:
            groups.close()
    groups = None   # its stacks and registers: freed before the report is built
    mem = gdbtarget.Memory(inf)
    info = {"kind": kind, "pid": inf.pid,
            "executable": gdbtarget.executable(inf), "arch": arch,
            "libc": gdbtarget.libc_flavour(inf)}
    # with another program's executable, its symbols point anywhere in the
    # core and its file may be another release: no version rather than a
    # wrong one (a known bug's "This is" needs it)
    version = janus_version.from_target(inf) if not mismatch else None
    info["janus_version"] = version.to_dict() if version is not None else None
    global_queues = []
    globals_ = gdbtarget.global_locks(symtabs, warnings, global_queues)
    tables = objects.table_roots(scanner.types, mem, warnings)
    globals_.extend(objects.table_locks(scanner.types, tables))
    bases = names.LibBases()

    def namer(locks, threads):
        names.name_globals(locks, bases)
        stackscan.read_deferred_refs(locks, threads, scanner.types, gthreads)
        refs = {}
        for t in threads:
            for key, level in t.refs.items():
                refs.setdefault(key, level)
        found = objects.name_locks(locks, refs, scanner.types, mem, warnings, tables)
        queues = [t.wait.queue for t in threads
                  if t.wait is not None and t.wait.queue is not None]
        if queues:
            objects.name_queues(queues, refs, scanner.types, mem, warnings, tables,
                                global_queues, found)
            # queues still unnamed: the objects their waiters' own frames point to
            more = {}
            for t in stackscan.read_queue_refs(threads, scanner.types, gthreads):
                for key, level in t.refs.items():
                    more.setdefault(key, level)
            if more:
                objects.name_queues(queues, more, scanner.types, mem, warnings, None, (), found)
        return lambda thread: found.expand(thread.refs)

    report = build_report(snaps, arch, mem, info, warnings, globals_, namer, locklog)
    if scanner.code.unsupported:
        warnings.append("frames without line info were not analysed: their machine code "
                        "is read on x86_64 (AT&T disassembly) only, not with %s" %
                        scanner.code.unsupported)
    if scanner.sources.missing:
        warnings.append("source not readable for %d file%s (owners of GMutex locks taken "
                        "there are inferred from machine code only; use gdb's `directory` "
                        "command): %s" % (
                            len(scanner.sources.missing),
                            "" if len(scanner.sources.missing) == 1 else "s",
                            ", ".join(sorted(scanner.sources.missing)[:3])))
    if mismatch:
        warnings.insert(0, mismatch)
    if info["kind"] == "live":
        gone = gdbtarget.process_gone(inf)
        if gone:
            warnings.insert(0, "the process (pid %d) stopped existing during the analysis: %s; "
                               "the report shows what was read before" % (inf.pid, gone))
    if mem.failures:
        warnings.append("%d memory read%s failed; affected fields are shown as unknown"
                        % (mem.failures, "" if mem.failures == 1 else "s"))
    if source_check:
        _source_check(report)
    return report


def _source_check(report):
    """Cite the source's missing unlocks and lock orders (sourcecite)."""
    from . import sourcecite
    from ..target import debugsources
    if not sourcecite.needed(report):
        return
    try:
        sources = debugsources.debug_info_sources()
    except debugsources.NoSources:
        return      # no debug info: nothing to cite (next steps already say so)
    report.warnings.extend(sourcecite.check(report, sources))


def build_report(snaps, arch, mem, info, warnings, global_locks=(), namer=None, locklog=None):
    """Classify threads, decode locks, infer owners and find cycles (no gdb
    needed: NAMER(locks, threads), when given, names the locks and returns
    a function giving the objects a thread's frames reach, or None).

    GLOBAL_LOCKS, [(address, kind, name)], are lock variables known from
    debug info: those held are reported even when nobody waits for them.
    Locks that a frame's source says it holds are decoded too.
    """
    lwps = set(s.lwp for s in snaps)
    threads = []
    for s in snaps:
        t = Thread(s)
        t.state, t.detail, t.wait, t.syscall = classify.classify(s, arch, mem, lwps,
                                                                 info.get("libc"))
        t.site = classify.first_app_frame(s.frames)
        t.entry = classify.entry_function(s.frames, s.frames_truncated, s.lambda_lines)
        if s.stack_calls and (t.entry is None or t.entry.startswith("?? (")
                              or classify.musl_stack_stops(s.frames)):
            # gdb could not unwind to it (musl): the return address in the
            # thread start function, on the stack, names it
            t.entry = classify.entry_from_stack(s.stack_calls) or t.entry
        t.role, t.role_detail = thread_role(t, s, info.get("pid"))
        if t.wait is not None and t.wait.kind == "queue":
            t.wait.queue = classify.queue_of_wait(t.wait, mem, len(snaps), s.queue_call)
        threads.append(t)
    if info.get("libc") == "musl":
        stuck = [t.num for t in threads if classify.musl_stack_stops(t.frames)]
        if stuck:
            named = ", T".join(str(n) for n in stuck[:MAX_NAMED_STUCK])
            if len(stuck) > MAX_NAMED_STUCK:
                named += " and %d more" % (len(stuck) - MAX_NAMED_STUCK)
            warnings.append(
                "musl: gdb cannot unwind past musl's system-call and wait functions (no unwind "
                "tables in musl) in %d thread%s (T%s): no frame shows their callers; a lock "
                "function's caller found as a return address on the stack is read as "
                "evidence (its source, static lock variables only), other callers and the "
                "locks they hold are not seen; their waits are read from the registers "
                "(futex address, value) and the lock words" % (
                    len(stuck), "" if len(stuck) == 1 else "s", named))
    if arch not in syscalls.ARCH_REGISTERS:
        warnings.append("architecture %s: system-call registers are not decoded, "
                        "thread states are unknown" % arch)
    claimed = []
    for t in threads:
        t.held_claims = infer.net_claims(t)
        for c in t.held_claims:
            if c.addr is not None and c.kind is not None:
                claimed.append((c.addr, c.kind, None))
    known = list(global_locks) + claimed
    grwlocks_at_impl(threads, mem, known)
    locks = decode_locks(threads, mem, known, info.get("libc"))
    lock_map = list_to_map(locks)
    reach = namer(locks, threads) if namer is not None else None
    by_num = dict((t.num, t) for t in threads)

    def frame_refs_of(lock):
        """Threads whose frames point to the lock's object (within two links)."""
        if lock.obj is None:
            return set()
        key = (lock.obj.type_name, lock.obj.addr)
        return set(t.num for t in threads
                   if key in t.refs or (reach is not None and key in reach(t)))

    coverage = infer.infer_owners(threads, lock_map, locklog, frame_refs_of)
    infer.infer_rwlocks(threads, lock_map)
    for lock in locks:
        if lock.evidence == EXACT and lock.owner_source is None:
            lock.owner_source = "pthread-owner"
        owner = by_num.get(lock.owner_num) if lock.owner_num is not None else None
        if owner is not None and lock not in owner.holds:
            owner.holds.append(lock)
    for t in threads:
        if t.holds and t.state == "idle":
            # a thread that holds locks is not idle: it waits while holding them
            t.state = "waiting"
            if t.detail.startswith("idle: "):
                t.detail = t.detail[len("idle: "):]
    for lock in locks:
        owner = by_num.get(lock.owner_num) if lock.owner_num is not None else None
        leaked, note = infer.owner_coverage(lock, owner, coverage)
        if leaked:
            lock.leaked = True
            lock.evidence_detail += ("; T%d is %s and no frame on its stack takes it (every "
                                     "frame that could was analysed): it went on without "
                                     "unlocking (leaked)" % (owner.num, owner.detail))
        elif note:
            lock.evidence_detail += "; " + note
    edges = graph.build_edges(threads, lock_map)
    cycles = graph.find_cycles([t.num for t in threads], edges)
    roots = graph.trace_roots(threads, lock_map, edges, cycles)
    number_locks(locks, cycles, threads)
    locks.sort(key=lambda l: int(l.id[1:]))
    for lock in locks:
        if lock.state in ("corrupt", "unreadable"):
            warnings.append("%s at 0x%x: %s; its owner is unknown" % (
                lock.id, lock.addr, lock.evidence_detail))
    info = dict(info)
    info["threads"] = len(threads)
    info["mutex_impl"], info["also_gmutex"] = mutex_impl(locks, threads)
    info["owners"] = {"gmutex": INFERRED, "pthread": EXACT}.get(info["mutex_impl"], UNKNOWN)
    if info.get("libc") == "musl" and any(
            l.kind == "pthread_mutex" and not l.details.get("records_owner", True)
            for l in locks):
        info["owners"] = INFERRED      # musl's normal mutexes record no owner
    report = Report(info, threads, locks, edges, cycles, roots, warnings)
    report.used_locklog = locklog is not None
    return report


def mutex_impl(locks, threads):
    """("gmutex" | "pthread" | None, whether GMutex locks appear too).

    The mutexes in the report decide (a pthread Janus still has glib's own
    GMutexes); without any, the mutexes that the source of the stacks takes."""
    counts = {"gmutex": 0, "pthread_mutex": 0}
    for l in locks:
        if l.kind in counts:
            counts[l.kind] += 1
    if not any(counts.values()):
        for t in threads:
            for c in t.claims:
                if c.kind in counts:
                    counts[c.kind] += 1
    if not any(counts.values()):
        return None, False
    if counts["gmutex"] > counts["pthread_mutex"]:
        return "gmutex", True
    return "pthread", counts["gmutex"] > 0


def thread_role(t, snap, pid=None):
    """(role, detail) of a thread from its entry function, library, stack
    or name.  Only the process's first thread (LWP == PID) is "main"; an
    hloop's handle id comes from memory, else from its name (marked when
    the name cut it short)."""
    entry_lib = None
    for fr in t.frames:
        if (fr.function or "?? (0x%x)" % fr.pc) == t.entry:
            entry_lib = fr.lib
            break
    # (a stack that gdb could not unwind past musl's functions is not all
    # system libraries: its application frames are only not shown)
    all_system = (bool(t.frames) and all(fr.system for fr in t.frames)
                  and not classify.musl_stack_stops(t.frames))
    idle_pool = all_system and t.wait is not None and t.wait.kind == "queue"
    # LWP == PID, unless its stack says a thread starter created it (a core
    # without NT_PRPSINFO takes the first thread's LWP for the PID)
    is_main = (pid is not None and t.lwp == pid
               and not any(classify.normalize(fr.function) in classify.THREAD_STARTERS
                           for fr in t.frames if fr.system))
    role = janusdb.role_of(t.entry, t.name, entry_lib, all_system, idle_pool, is_main)
    detail = snap.role_detail
    if role is None and t.entry is not None and not t.frames_truncated:
        role, detail = janusdb.role_from_stack([(fr.function, fr.lib) for fr in t.frames
                                                if not fr.system])
    if role == "hloop" and detail is None:
        detail = janusdb.handle_from_name(t.name)
    return role, detail


def list_to_map(locks):
    return dict((l.addr, l) for l in locks)


def grwlocks_at_impl(threads, mem, known):
    """Waits inside g_rw_lock_*() sleep on the pthread_rwlock_t that glib
    allocated for the GRWLock (its pointer ``p`` at offset 0): point them
    at the GRWLock, when some variable, claim or waiting call of type
    GRWLock points to that rwlock.  KNOWN: [(address, kind, name)] of the
    variables and claims; the waiting calls are added to it.  Every rwlock
    wait also says whether the lock call on the waiter's line (its source)
    names the same lock."""
    for t in threads:
        if t.lock_call is not None and t.lock_call[1] == "grwlock":
            known.append((t.lock_call[0], "grwlock", None))
    impl_of = {}
    seen = set()
    for addr, kind, _name in known:
        if kind == "grwlock" and addr not in seen:
            seen.add(addr)
            impl = layouts.read_pointer(mem, addr + layouts.GRWLOCK["impl"])
            if impl:
                impl_of.setdefault(impl, addr)
    for t in threads:
        w = t.wait
        if w is not None and w.kind in ("rwlock-read", "rwlock-write") and w.lock_addr in impl_of:
            w.lock_addr = impl_of[w.lock_addr]
        if w is not None and w.rwlock and t.lock_call is not None:
            addr, _kind, expr = t.lock_call
            if addr == w.lock_addr:
                w.how += "; the source agrees: it locks %s there" % expr
            else:
                w.how += ("; the source's lock expression %s is 0x%x, not this rwlock: "
                          "the futex words decide" % (expr, addr))


def decode_locks(threads, mem, global_locks=(), libc=None):
    """One Lock per lock address some thread waits for or (for known lock
    variables) holds, with its owner (LIBC "musl": musl's layouts)."""
    by_lwp = dict((t.lwp, t) for t in threads)
    locks = {}
    grw = set(addr for addr, kind, _name in global_locks if kind == "grwlock")
    for addr, kind, name in global_locks:
        if addr in locks:
            continue
        lock = Lock(addr, kind)
        _decode(lock, mem, by_lwp, libc)
        if lock.state not in ("free", "unreadable", "corrupt"):
            lock.symbol = name
            locks[addr] = lock
    for t in threads:
        w = t.wait
        if w is None or not w.is_lock or w.lock_addr is None:
            continue
        lock = locks.get(w.lock_addr)
        if lock is None:
            lock = Lock(w.lock_addr, "grwlock" if w.lock_addr in grw else
                        LOCK_KIND_OF_WAIT[w.kind])
            _decode(lock, mem, by_lwp, libc)
            locks[w.lock_addr] = lock
        lock.waiters.append(t.num)
    for lock in locks.values():
        if lock.state == "corrupt":
            lock.evidence_detail = "implausible contents (%s): memory corrupt, or not a %s" % (
                lock.details.get("why", "?"), lock.kind_text())
        elif lock.state == "unreadable":
            lock.evidence_detail = "its memory cannot be read"
        owner = by_lwp.get(lock.owner_lwp) if lock.owner_lwp else None
        if owner is not None:
            owner.holds.append(lock)
    return list(locks.values())


def _set_owner(lock, lwp, by_lwp, detail):
    lock.owner_lwp = lwp
    lock.evidence = EXACT
    owner = by_lwp.get(lwp)
    lock.owner_alive = owner is not None
    lock.owner_num = owner.num if owner is not None else None
    lock.evidence_detail = detail


def _decode(lock, mem, by_lwp, libc=None):
    addr = lock.addr
    if libc == "musl" and lock.kind == "pthread_mutex":
        _decode_musl_mutex(lock, mem, by_lwp)
    elif libc == "musl" and lock.kind == "pthread_rwlock":
        _decode_musl_rwlock(lock, mem)
    elif libc == "musl" and lock.kind in RWLOCK_KINDS:
        lock.details = {"libc": "musl"}
        lock.state = "not decoded"
        lock.evidence = UNKNOWN
        lock.evidence_detail = "a GRWLock on musl is not decoded"
    elif lock.kind == "pthread_mutex":
        d = layouts.decode_pthread_mutex(mem, addr)
        lock.details = d
        lock.word = d["word"]
        lock.state = d["state"]
        lock.subkind = (layouts.mutex_kind_name(d["kind"])
                        if d["kind"] is not None and lock.state != "corrupt" else None)
        owner = d["owner"]
        if owner and owner > 0 and lock.state not in ("free", "corrupt"):
            _set_owner(lock, owner, by_lwp, "__data.__owner = %d" % owner)
        elif lock.state == "free":
            lock.evidence_detail = "free now: the waiter is about to be woken"
        else:
            lock.evidence_detail = "__data.__owner is 0 (lock elision, or not a glibc mutex)"
    elif lock.kind in RWLOCK_KINDS:
        _decode_rwlock(lock, mem, by_lwp)
    else:
        d = layouts.decode_gmutex(mem, addr)
        lock.details = d
        lock.word = d["word"]
        lock.state = d["state"]
        lock.evidence = UNKNOWN
        if lock.kind == "gmutex":
            lock.evidence_detail = ("GMutex records no owner (build Janus with "
                                    "--enable-pthread-mutex for exact owners)")
        else:
            lock.evidence_detail = "this lock type records no owner"
        if lock.state == "free":
            lock.evidence_detail = "free now: the waiter is about to be woken"


def _decode_musl_mutex(lock, mem, by_lwp):
    """A musl pthread_mutex_t: the owner's TID from _m_lock (exact) for the
    kinds that store it; a normal mutex records none (inferred later, like
    a GMutex)."""
    d = layouts.decode_musl_mutex(mem, lock.addr)
    lock.details = d
    lock.word = d["word"]
    lock.state = d["state"]
    lock.subkind = (layouts.musl_mutex_kind_name(d["type"])
                    if d["type"] is not None and lock.state != "corrupt" else None)
    if d["owner"] and lock.state not in ("free", "corrupt"):
        _set_owner(lock, d["owner"], by_lwp, "musl _m_lock = 0x%x: owner TID %d in its low "
                   "bits (%s mutex)" % (d["word"], d["owner"], lock.subkind))
    elif lock.state == "free":
        lock.evidence_detail = "free now: the waiter is about to be woken"
    elif not d["records_owner"] and lock.state not in ("corrupt", "unreadable"):
        lock.evidence = UNKNOWN
        lock.evidence_detail = ("a normal musl mutex records no owner (_m_lock = 0x%x: "
                                "EBUSY)" % d["word"])


def _decode_musl_rwlock(lock, mem):
    """A musl pthread_rwlock_t: state and reader count from _rw_lock; musl
    records neither the writer nor the readers (inferred later from the
    source, like glibc's readers)."""
    d = layouts.decode_musl_rwlock(mem, lock.addr)
    lock.details = d
    lock.word = d["word"]
    lock.state = d["state"]
    lock.readers = d["readers"]
    lock.evidence = UNKNOWN
    if lock.state == "free":
        lock.evidence_detail = "free now: the waiter is about to be woken"
    elif d["write_locked"]:
        lock.evidence_detail = ("write-locked (musl _rw_lock = 0x%x); musl records no writer"
                                % d["word"])
    elif d["readers"]:
        lock.evidence_detail = ("read-locked by %d thread%s (musl _rw_lock = 0x%x); musl does "
                                "not record readers" % (d["readers"],
                                                        "" if d["readers"] == 1 else "s",
                                                        d["word"]))


def _decode_rwlock(lock, mem, by_lwp):
    """A pthread_rwlock_t, or the one a GRWLock points to: state, exact
    writer (__cur_writer), reader count (readers are inferred later)."""
    if lock.kind == "grwlock":
        d = layouts.decode_grwlock(mem, lock.addr)
        if d["impl"] is None or d["impl"] == 0:
            lock.details = d
            lock.state = d["state"]
            if d["impl"] == 0:
                lock.evidence_detail = ("never locked (glib allocates its pthread_rwlock_t "
                                        "on first use)")
            return
    else:
        d = layouts.decode_rwlock(mem, lock.addr)
    lock.details = d
    lock.word = d["readers_word"]
    lock.state = d["state"]
    lock.readers = d["readers"]
    lock.subkind = d.get("prefer")
    if d["write_locked"] and d["writer"] and d["writer"] > 0:
        _set_owner(lock, d["writer"], by_lwp, "__data.__cur_writer = %d" % d["writer"])
    elif d["readers"]:
        lock.evidence_detail = ("read-locked by %d thread%s; glibc does not record readers"
                                % (d["readers"], "" if d["readers"] == 1 else "s"))
    elif lock.state == "free":
        lock.evidence_detail = "free now: the waiter is about to be woken"
    elif d["write_locked"]:
        lock.evidence_detail = "no writer recorded yet (__cur_writer is 0)"
    elif lock.state not in ("corrupt", "unreadable"):
        lock.evidence_detail = "no writer recorded"


def number_locks(locks, cycles, threads):
    """Give locks short ids M1, M2, ...: cycle locks first, then by waiters."""
    order = {}
    for cyc in cycles:
        for e in cyc:
            if e.lock is not None and e.lock.addr not in order:
                order[e.lock.addr] = len(order)
    rest = sorted((l for l in locks if l.addr not in order),
                  key=lambda l: (-len(l.waiters), l.addr))
    for l in rest:
        order[l.addr] = len(order)
    for l in locks:
        l.id = "M%d" % (order[l.addr] + 1)
