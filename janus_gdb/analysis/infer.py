"""Owners of locks that record none (GMutex), inferred from evidence.

Pure logic over ``model`` objects; no gdb.  Sources, strongest first:

lockset    the source of a frame on the thread's stack locked the lock on
           the path to the frame's current line and did not unlock it, and
           the expression evaluates there to the lock's address;
machine-code  the same, read from the machine code of a frame without line
           info (``machinecode``, ``codereader``);
type-match the expression could not be evaluated (optimized out), but the
           lock is the only held one of that struct type and field;
locklog    Janus's lock-debug log shows the lock's last ``lock`` without an
           ``unlock``, in a function that is on exactly one thread's stack;
frameref   (tie-break only) the thread's frames point to the object that
           contains the lock.

A held lock is reported as probably leaked only with positive evidence
(docs/evidence.md, "When each word is used"): every frame of every thread
that could hold it was analysed (its source, or its machine code), the
analysis models how such a lock is taken there, and none takes it.
Otherwise its owner is unknown and the threads that could hold it are
listed as candidates (``Coverage``).  Claims that contradict the lock word
(the lock is free) are dropped: a lock cannot be held while its word says
free.
"""

import heapq

from . import classify
from ..csource import locksets
from ..model import EXACT, INFERRED, RWLOCK_KINDS, Inference

# Lock kinds whose taking the source (and machine-code) analysis reads:
# other kinds (a futex lock of unknown type, libc's internal locks) never
# get an inferred owner, so they are never called leaked.
MODELLED_KINDS = ("gmutex", "pthread_mutex")
# Source files of C++: a frame there holds locks through RAII guards
# (std::lock_guard, std::unique_lock, ...).  Unless the source analysis
# models guards (locksets.CXX_GUARDS, the guard classes it reads), a C++
# frame that shows no lock is not evidence that it holds none.
CXX_SUFFIXES = (".cc", ".cpp", ".cxx", ".c++", ".C", ".hpp", ".hh", ".hxx", ".h++", ".ipp",
                ".tcc")
CXX_GUARDS_MODELLED = bool(getattr(locksets, "CXX_GUARDS", None))
# Candidates listed for a lock whose owner is unknown (the count is kept).
MAX_CANDIDATES = 8
# Library functions whose futex waits are lock waits (where a waiter's lock call is).
_LOCK_WAIT_FUNCS = frozenset(name for name, kind in classify.FRAME_HINTS.items()
                             if kind in ("mutex", "gmutex", "libc-lock", "rwlock-read",
                                         "rwlock-write", "rwlock"))

def net_claims(thread):
    """The thread's claims still in force: inner frames' unlocks of locks
    taken by callers cancel the callers' claims (matched by address).
    analyze.build_report keeps the result as ``thread.held_claims``."""
    held = []
    for c in sorted(thread.claims, key=lambda c: -c.level):  # outermost first
        if c.released:
            if c.addr is not None:
                for i in range(len(held) - 1, -1, -1):
                    if held[i].addr == c.addr:
                        del held[i]
                        break
            continue
        held.append(c)
    return held


def is_held(lock):
    """Held by one owner (rwlocks are settled by infer_rwlocks)."""
    return lock.state.startswith("locked") and lock.kind not in RWLOCK_KINDS


def _code_detail(claim, lock=None):
    """``from machine code: lib.so+0x2a1f3 (frame #3) calls g_mutex_lock(0x...) at
    +0x2a1c0, no unlock before the call at +0x2a1f3``."""
    c = claim.code or {}
    calls = c.get("call_at") or []
    at = c.get("at", 0)
    point = "the call at" if c.get("at_call") else "the instruction at"
    sym = lock.symbol if lock is not None else None
    arg = "&%s" % sym if sym and "+" not in sym else "0x%x" % (claim.addr or 0)
    text = "from machine code: %s+0x%x (frame #%d%s) calls %s(%s) at %s, " % (
        c.get("module", "?"), at, claim.level,
        ", in %s" % claim.function if claim.function else "",
        c.get("call", "a lock function"), arg,
        ", ".join("+0x%x" % a for a in calls[:3]) or "?")
    if claim.conditional and not claim.trylock:
        text += ("but some path to %s +0x%x skips it or may unlock it: held only on "
                 "some paths" % (point, at))
    else:
        text += "no unlock before %s +0x%x" % (point, at)
    if claim.trylock:
        text += ", by a trylock or timed lock (it may have failed)"
    return text


def _detail(claim, prefix="locked at", lock=None):
    if claim.origin == "machine-code":
        return _code_detail(claim, lock)
    if claim.origin == "stack-word":
        c = claim.code or {}
        text = ("%s %s:%d in %s (not an unwound frame: found on the stack, the return address "
                "0x%x at 0x%x after its call of %s)" % (
                    prefix, claim.file, claim.line, claim.function, c.get("pc", 0),
                    c.get("slot", 0), c.get("callee") or "a lock function"))
    else:
        text = "%s %s:%d in %s (frame #%d)" % (prefix, claim.file, claim.line, claim.function,
                                               claim.level)
    if claim.at_line and claim.at_line != claim.line:
        text += ", not unlocked before line %d" % claim.at_line
    if claim.conditional:
        text += ", on a branch that may have run"
    if claim.trylock:
        text += ", by a trylock"
    return text


def _rank(claim):
    """Lower is stronger."""
    return (1 if claim.conditional else 0, 1 if claim.trylock else 0)


def addressed_claims(threads):
    """{lock address: [(thread, claim)]} of the evaluated claims."""
    out = {}
    for t in threads:
        for c in t.held_claims:
            if c.addr is not None:
                out.setdefault(c.addr, []).append((t, c))
    return out


def infer_owners(threads, locks, locklog=None, frame_refs_of=None):
    """Set ``lock.inference`` for every lock, and the owner of locks without
    an exact one.  LOCKS: {address: Lock}.  FRAME_REFS_OF(lock) gives the
    thread numbers whose frames point to the object containing the lock.

    Returns the ``Coverage`` used: a held lock without an owner is called
    leaked only when no thread could hold it, else its candidates are set."""
    by_num = dict((t.num, t) for t in threads)
    claims = addressed_claims(threads)
    taken = set()
    for addr, lock in sorted(locks.items()):
        if lock.state in ("free", "corrupt", "unreadable") or lock.kind in RWLOCK_KINDS:
            continue
        cands = claims.get(addr, [])
        if not cands:
            continue
        best = min(_rank(c) for _t, c in cands)
        top = [(t, c) for t, c in cands if _rank(c) == best]
        # one claim per thread: its outermost frame took the lock
        per_thread = {}
        for t, c in top:
            if t.num not in per_thread or c.level > per_thread[t.num][1].level:
                per_thread[t.num] = (t, c)
        chosen = None
        tie_note = ""
        if len(per_thread) == 1:
            chosen = list(per_thread.values())[0]
        elif frame_refs_of is not None:
            refs = frame_refs_of(lock)
            pointed = [v for n, v in per_thread.items() if n in refs]
            if len(pointed) == 1:
                chosen = pointed[0]
                tie_note = ("; frame references (weaker evidence) break the tie among %d "
                            "threads: only its frames point to the %s" % (
                                len(per_thread), lock.obj.type_name if lock.obj else "object"))
        if chosen is None:
            lock.candidates = sorted(per_thread)
            if lock.evidence != EXACT:
                lock.evidence_detail = ("%d threads' sources lock it (%s): owner undecided" % (
                    len(per_thread), ", ".join("T%d" % n for n in lock.candidates)))
            continue
        t, c = chosen
        source = "machine-code" if c.origin == "machine-code" else "lockset"
        lock.inference = Inference(t.lwp, t.num, "frameref" if tie_note else source,
                                   _detail(c, lock=lock) + tie_note, c)
        taken.add(addr)
    _type_matches(threads, locks, taken)
    if locklog is not None:
        _from_locklog(threads, locks, locklog)
    coverage = Coverage(threads, locks)
    for lock in locks.values():
        _apply(lock, by_num, coverage)
    return coverage


def _type_matches(threads, locks, taken):
    """Claims whose expression was optimized out: match by struct type and field."""
    for t in threads:
        for c in t.held_claims:
            if c.addr is not None or not c.type_name or not c.field:
                continue
            fits = [l for l in locks.values()
                    if l.inference is None and l.evidence != EXACT and l.obj is not None
                    and l.obj.type_name == c.type_name and l.obj.field == c.field
                    and is_held(l) and l.addr not in taken and t.num not in l.waiters]
            if len(fits) == 1:
                lock = fits[0]
                var = c.expr.lstrip("&*(").split("-")[0].split(".")[0]
                lock.inference = Inference(
                    t.lwp, t.num, "type-match",
                    "%s; `%s` is %s there, and %s is the only held %s %s" % (
                        _detail(c), var, c.why or "unreadable", lock.id or "this lock",
                        c.type_name, c.field), c)
                taken.add(lock.addr)


def _from_locklog(threads, locks, log):
    outstanding = log.outstanding()
    for addr, lock in locks.items():
        site = outstanding.get(addr)
        if site is None:
            continue
        where = "%s:%d in %s" % (site.file, site.line, site.function)
        lock.leak_site = "%s (lock-debug log line %d)" % (where, site.lineno)
        lock.leak_function = site.function
        if lock.inference is not None or not is_held(lock):
            continue
        on_stack = []
        for t in threads:
            for fr in t.frames:
                if fr.function == site.function and not fr.system:
                    on_stack.append((t, fr))
                    break
        if len(on_stack) == 1:
            t, fr = on_stack[0]
            if fr.level in t.analysed_levels:
                # its source says that frame holds no such lock now: it went
                # on without unlocking (a later pass of a loop, an error path)
                lock.leaked_by = t.num
                lock.leak_site += ("; T%d is still in %s (frame #%d), but its source holds "
                                   "no lock there now: it went on without unlocking" % (
                                       t.num, site.function, fr.level))
                continue
            lock.inference = Inference(
                t.lwp, t.num, "locklog",
                "lock-debug log: last lock at %s without an unlock (log line %d); only "
                "T%d is in %s (frame #%d)" % (where, site.lineno, t.num, site.function,
                                              fr.level))


def frame_is_evidence(thread, fr):
    """Whether FR's analysis says what FR holds: its source (or machine code)
    was read, in a language whose lock mechanisms are modelled."""
    if fr.level not in thread.analysed_levels:
        return False
    if fr.file and fr.file.endswith(CXX_SUFFIXES) and not CXX_GUARDS_MODELLED:
        return False
    return True


class Coverage(object):
    """Which threads could hold a lock, from what the analysis read.

    A thread could hold lock L unless each of its frames that could take L
    was analysed (``frame_is_evidence``) and none claims L.  Frames that
    could take L: those of the application's modules (the executable,
    every module with line info somewhere, Janus's plugins ``libjanus_*``)
    and of the modules L's waiters take it from.  Frames of the system
    libraries (libc, glib) and of other libraries without debug info are
    assumed not to take the application's locks except by calling back into
    the application, whose frames are analysed: the rule, and when it
    does not hold, are in docs/evidence.md.
    """

    def __init__(self, threads, locks):
        self.threads = threads
        self.by_num = dict((t.num, t) for t in threads)
        mods = set([None])
        for t in threads:
            for fr in t.frames:
                if fr.system:
                    continue
                if fr.line is not None or (fr.lib or "").startswith("libjanus"):
                    mods.add(fr.lib)
        self.app_modules = frozenset(mods)
        self.analysed_any = any(t.analysed_levels for t in threads)
        # per thread: {module: frames there that are not evidence}, and the
        # count of those in the application's modules (the usual question)
        self._blind = {}
        self._blind_app = {}
        self._libs = {}
        for t in threads:
            blind = {}
            libs = set()
            for fr in t.frames:
                if fr.system:
                    continue
                libs.add(fr.lib)
                if not frame_is_evidence(t, fr):
                    blind[fr.lib] = blind.get(fr.lib, 0) + 1
            self._blind[t.num] = blind
            self._blind_app[t.num] = sum(k for lib, k in blind.items() if lib in mods)
            self._libs[t.num] = libs
        # per thread: claims that hold a lock nobody can place, no evidence
        # that the frame holds none: an expression that could not be
        # evaluated, then one evaluated to an address where no held lock is
        # (the lock there free, unreadable or not a lock).  The source says
        # the frame holds a lock there, so the address is wrong: gcc's
        # location lists can name a register after it was reused for
        # something else (gcc 10 at -O2 in a loop that never exits).
        self._unplaced = {}
        for t in threads:
            bad = ([c for c in t.held_claims if c.addr is None]
                   + [c for c in t.held_claims if _stale(c, locks)])
            if bad:
                self._unplaced[t.num] = bad
        self._takers = {}

    def takers(self, lock):
        """(modules whose code takes LOCK, the library functions that take it
        when that is library code): where each waiter's lock call is."""
        got = self._takers.get(lock.addr)
        if got is not None:
            return got
        mods = set()
        internal = set()
        for num in lock.waiters:
            t = self.by_num.get(num)
            w = t.wait if t is not None else None
            if w is None or w.frame is None:
                continue
            for fr in t.frames[w.frame + 1:]:
                name = classify.normalize(fr.function)
                if fr.system and (not name or name in _LOCK_WAIT_FUNCS):
                    continue    # the lock call itself (unnamed: a static helper of it)
                if fr.system:
                    internal.add("%s (%s)" % (name or "??", fr.lib))
                else:
                    mods.add(fr.lib)
                break
        got = self._takers[lock.addr] = (mods, internal)
        return got

    def modules_for(self, lock):
        takers = self.takers(lock)[0]
        if takers <= self.app_modules:
            return self.app_modules
        return self.app_modules | takers

    def could_hold(self, t, lock, mods=None):
        """Why T could hold LOCK (a phrase), or None when its analysis says it does not."""
        if any(c.addr == lock.addr for c in t.held_claims):
            return "its source takes it"
        if mods is None:
            mods = self.modules_for(lock)
        if not t.frames:
            return "no stack"
        n = self.blind_frames(t, lock, mods)
        if n:
            return "%d frame%s not analysed" % (n, "" if n == 1 else "s")
        if t.frames_truncated:
            return "stack cut at %d frames" % len(t.frames)
        for c in self._unplaced.get(t.num, ()):
            if not _may_be(c, lock):
                continue
            if c.addr is None:
                return "frame #%d locks `%s`, which could not be evaluated" % (c.level, c.expr)
            return ("frame #%d locks `%s`, which evaluates to 0x%x, where no held lock "
                    "is: the variable's location in the debug info may be stale" % (
                        c.level, c.expr, c.addr))
        return None

    def blind_frames(self, t, lock, mods=None):
        """Frames of T, in modules that could take LOCK, whose analysis is no evidence."""
        if mods is None:
            mods = self.modules_for(lock)
        if mods is self.app_modules:
            return self._blind_app.get(t.num, 0)
        return sum(k for lib, k in self._blind.get(t.num, {}).items() if lib in mods)

    def candidates(self, lock):
        """(candidate thread numbers, best first, bounded; their total count;
        frames not analysed among all of them).  Threads that could hold LOCK
        and do not wait for it; those not blocked on a lock first, then those
        whose stacks pass through the module that takes it."""
        mods = self.modules_for(lock)
        takers = self.takers(lock)[0]
        waiting = set(lock.waiters)
        found = []
        blind = 0
        fast = mods is self.app_modules
        blind_app = self._blind_app
        for t in self.threads:
            # inlined could_hold: ten thousand threads per lock at scale
            n = blind_app[t.num] if fast else self.blind_frames(t, lock, mods)
            if not (n or not t.frames or t.frames_truncated) and (
                    not t.held_claims or self.could_hold(t, lock, mods) is None):
                continue
            blind += n
            if t.num in waiting:
                continue
            through = bool(takers) and bool(takers & self._libs[t.num])
            found.append(((1 if t.state == "lock-wait" else 0, 0 if through else 1, t.num),
                          t.num))
        total = len(found)
        best = heapq.nsmallest(MAX_CANDIDATES, found)
        return [n for _k, n in best], total, blind


def _taken(lock):
    """Whether LOCK's word says someone holds it (a mutex locked, an rwlock
    read- or write-locked)."""
    return lock.state.startswith(("locked", "read-locked", "write-locked"))


def _may_be(claim, lock):
    """Whether CLAIM, whose address is unknown or not LOCK's, could still be
    LOCK: a compatible kind, and the same struct type and field when both
    are known."""
    if claim.kind is not None and claim.kind != lock.kind and not (
            claim.kind in RWLOCK_KINDS and lock.kind in RWLOCK_KINDS):
        return False
    if lock.obj is None or not claim.type_name or not claim.field:
        return True
    return claim.type_name == lock.obj.type_name and claim.field == lock.obj.field


def _cand_text(nums, total):
    text = ", ".join("T%d" % n for n in nums)
    if total > len(nums):
        text += " (+%d)" % (total - len(nums))
    return text


def _apply(lock, by_num, coverage):
    """Use the inference as the owner when the lock records none; say when
    it agrees with an exact owner; mark held locks nobody holds, or list
    the threads that could."""
    inf = lock.inference
    if lock.evidence == EXACT:
        if inf is not None and inf.lwp != lock.owner_lwp:
            lock.evidence_detail += "; the source points at T%d instead" % inf.num
        return
    if lock.state in ("free", "corrupt", "unreadable"):
        return
    if inf is not None:
        t = by_num.get(inf.num)
        lock.owner_lwp = inf.lwp
        lock.owner_num = inf.num
        lock.owner_alive = t is not None
        lock.evidence = INFERRED
        lock.owner_source = inf.source
        lock.owner_claim = inf.claim
        lock.evidence_detail = inf.detail
        return
    if not is_held(lock) or lock.candidates:
        return
    why = None
    internal = coverage.takers(lock)[1]
    nums, total, blind = coverage.candidates(lock)
    lock.possible, lock.possible_count = nums, total
    if lock.kind not in MODELLED_KINDS:
        why = ("%s records no owner, and how it is taken is not analysed" % (
            {"lock": "this futex lock", "libc-lock": "a libc internal lock",
             "pthread_rwlock": "a read-locked rwlock"}.get(lock.kind, "this lock")))
    elif internal and not lock.symbol and not lock.obj:
        why = ("it is taken inside %s, a library's own lock that the analysis does not "
               "read" % ", ".join(sorted(internal)[:2]))
    elif lock.kind == "pthread_mutex" and lock.details.get("records_owner", True):
        # glibc records the owner of every mutex it locks: a held one without
        # an owner is not understood (lock elision, not a glibc mutex)
        why = lock.evidence_detail or "__data.__owner is 0"
    elif blind:
        why = ("no thread can be shown to hold it: %d frame%s without line info or "
               "without readable source (or in a language the analysis does not model)" % (
                   blind, "" if blind == 1 else "s"))
    elif total:
        why = ("no thread can be shown to hold it, but %d could (a stack not read in full, "
               "or a lock expression that could not be evaluated)" % total)
    elif coverage.analysed_any:
        lock.leaked = True
        why = ("no live thread can be shown to hold it: every frame that could take it was "
               "analysed and none holds it: probably leaked (an unlock is missing, or a "
               "helper function returned holding it)")
    if why is not None and total:
        why += "; candidates: %s" % _cand_text(nums, total)
    if lock.leak_site:
        why = (why + "; " if why else "") + "last locked at " + lock.leak_site
    if why:
        lock.evidence_detail = why


def owner_coverage(lock, owner, coverage):
    """For an exact owner that is alive and whose frames show no claim of
    LOCK: (True, note) when every frame that could take it was analysed
    (it went on without unlocking: leaked), else (False, note: where it took
    it is not visible).  (False, None) when there is nothing to say."""
    if lock.evidence != EXACT or owner is None or lock.inference is not None:
        return False, None
    if any(c.addr == lock.addr for c in owner.held_claims):
        return False, None
    blind = coverage.blind_frames(owner, lock)
    if owner.state in ("lock-wait", "running", "unknown"):
        return False, None
    if blind or owner.frames_truncated or not owner.analysed_levels:
        return False, ("where T%d took it is not visible (%s)" % (
            owner.num, "%d frame%s without line info or readable source, or in a language "
            "whose locks are not modelled" % (blind, "" if blind == 1 else "s") if blind
            else "its stack was not read in full" if owner.frames_truncated
            else "no frame of it was analysed"))
    why = coverage.could_hold(owner, lock)
    if why is not None:
        return False, "where T%d took it is not visible (%s)" % (owner.num, why)
    return True, None


def _per_thread(cands):
    """{thread num: (thread, claim)}: each thread's strongest claim, of
    equal strength the outermost frame's (the one that took the lock)."""
    out = {}
    for t, c in cands:
        got = out.get(t.num)
        if got is None or (_rank(c), -c.level) < (_rank(got[1]), -got[1].level):
            out[t.num] = (t, c)
    return out


def infer_rwlocks(threads, locks):
    """Readers and writers of rwlocks (LOCKS: {address: Lock}).

    glibc records the writer (``__cur_writer``, exact) but not the readers,
    only their number.  Readers are the threads whose source read-locked
    the lock and did not unlock it (claims with mode "read"), like GMutex
    owners: each gets an Inference in ``lock.reader_infs`` and the lock in
    its ``holds``.  Claims that contradict the lock word (a read claim on a
    write-locked lock, a write claim in a read phase) are dropped.  Also
    sets ``lock.pending``: the writers waiting for the readers to leave."""
    by_num = dict((t.num, t) for t in threads)
    claims = addressed_claims(threads)
    for addr, lock in sorted(locks.items()):
        if lock.kind not in RWLOCK_KINDS:
            continue
        lock.pending = sorted(t.num for t in threads if t.wait is not None
                              and t.wait.rwlock == "write-for-readers"
                              and t.wait.lock_addr == addr)
        d = lock.details
        if lock.state in ("free", "corrupt", "unreadable"):
            continue
        cands = claims.get(addr, []) + _typed_claims(threads, lock, locks)
        reads = _per_thread([(t, c) for t, c in cands if c.mode == "read"])
        times = {}          # read holds per thread: a thread may read-lock it twice
        for t, c in cands:
            if c.mode == "read" and _rank(c) == (0, 0):
                times[t.num] = times.get(t.num, 0) + 1
        writes = _per_thread([(t, c) for t, c in cands if c.mode != "read"])
        if d.get("readers"):
            _readers(lock, reads, times)
        elif d.get("write_locked"):
            if lock.evidence == EXACT and lock.owner_num not in writes:
                # the exact writer's own claim of the same struct field agrees
                mine = [(t, c) for t, c in _typed_claims(threads, lock, locks, unique=False,
                                                          stale=True)
                        if t.num == lock.owner_num and c.mode != "read"]
                writes.update(_per_thread(mine))
            _writer(lock, writes, by_num)


def _source_of(claim):
    """The evidence source of a claim: read from the C source (``lockset``),
    matched by type (``type-match``) or read from machine code."""
    if claim.origin == "machine-code":
        return "machine-code"
    return "lockset" if claim.addr is not None else "type-match"


def _typed_claims(threads, lock, locks, unique=True, stale=False):
    """Claims whose expression could not be evaluated (optimized out) but
    whose struct type and field are those of LOCK, when UNIQUE the only
    rwlock of the report in such a field: [(thread, claim)].  STALE: also
    those evaluated to an address where no held lock is (``Coverage``)."""
    obj = lock.obj
    if obj is None:
        return []
    same = [l for l in locks.values() if l.kind in RWLOCK_KINDS and l.obj is not None
            and l.obj.type_name == obj.type_name and l.obj.field == obj.field]
    if unique and len(same) != 1:
        return []
    return [(t, c) for t in threads for c in t.held_claims
            if (c.addr is None or (stale and _stale(c, locks)))
            and c.type_name == obj.type_name and c.field == obj.field]


def _stale(claim, locks):
    """Whether CLAIM was evaluated to an address where no held lock is."""
    return claim.addr is not None and not (claim.addr in locks and _taken(locks[claim.addr]))


def _readers(lock, reads, times):
    """Pick the read holders among the read claimants READS; TIMES: how many
    unconditional read holds each thread's frames show."""
    n = lock.readers
    ranked = sorted(reads.values(), key=lambda tc: (_rank(tc[1]), tc[0].num))
    sure = sum(times.get(t.num, 0) for t, c in ranked if _rank(c) == (0, 0))
    lock.readers_unknown = n
    if sure > n:
        lock.candidates = sorted(reads)
        lock.evidence_detail = ("read-locked %d time%s, but the sources of %d threads "
                                "read-lock it (%s): which of them hold it is undecided" % (
                                    n, "" if n == 1 else "s", len(reads),
                                    ", ".join("T%d" % k for k in lock.candidates)))
        return
    chosen = []
    shown = 0
    for t, c in ranked:
        if shown >= n:
            lock.candidates.append(t.num)
            continue
        chosen.append((t, c))
        shown += max(1, times.get(t.num, 0))
    for t, c in chosen:
        detail = _detail(c, "read-locked at")
        if times.get(t.num, 0) > 1:
            detail += " (its frames read-lock it %d times)" % times[t.num]
        if c.addr is None:
            detail += "; `%s` is %s there: matched by its struct type %s and field %s" % (
                c.expr, c.why or "unreadable", c.type_name, c.field)
        lock.reader_infs.append(Inference(t.lwp, t.num, _source_of(c), detail, c))
        if lock not in t.holds:
            t.holds.append(lock)
    lock.readers_unknown = max(0, n - shown)
    text = "read-locked by %d reader%s (%s records no readers)" % (
        n, "" if n == 1 else "s",
        "musl" if (lock.details or {}).get("libc") == "musl" else "glibc")
    if chosen:
        text += "; the source shows %s" % ", ".join("T%d" % i.num for i in lock.reader_infs)
    if lock.readers_unknown:
        text += "; %d reader%s not shown by any frame's source" % (
            lock.readers_unknown, "" if lock.readers_unknown == 1 else "s")
    lock.evidence_detail = text


def _writer(lock, writes, by_num):
    if lock.evidence == EXACT:
        got = writes.get(lock.owner_num)
        if got is not None:
            c = got[1]
            detail = _detail(c)
            source = _source_of(c)
            if c.addr is None:
                detail += "; `%s` is %s there: matched by its struct type %s and field %s" % (
                    c.expr, c.why or "unreadable", c.type_name, c.field)
            elif c.addr != lock.addr:
                source = "type-match"
                detail += ("; `%s` evaluates to 0x%x there, where no held lock is (a stale "
                           "location in the debug info): matched by its struct type %s and "
                           "field %s" % (c.expr, c.addr, c.type_name, c.field))
            lock.inference = Inference(got[0].lwp, got[0].num, source, detail, c)
        elif writes:
            lock.evidence_detail += "; the source points at %s instead" % ", ".join(
                "T%d" % k for k in sorted(writes))
        return
    # write-locked, __cur_writer not stored yet: one claimant is the writer
    if len(writes) == 1:
        t, c = list(writes.values())[0]
        lock.inference = Inference(t.lwp, t.num, _source_of(c), _detail(c), c)
        lock.owner_lwp = t.lwp
        lock.owner_num = t.num
        lock.owner_alive = True
        lock.evidence = INFERRED
        lock.owner_source = lock.inference.source
        lock.owner_claim = c
        lock.evidence_detail = lock.inference.detail
    elif writes:
        lock.candidates = sorted(writes)
