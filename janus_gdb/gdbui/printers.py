"""Pretty-printers for locks: ``print rooms_mutex`` shows state, owner, waiters.

Types: ``pthread_mutex_t``, ``GMutex`` (and typedefs of either, such as
Janus's ``janus_mutex``) and ``pthread_rwlock_t``.  The lock word is decoded
with ``layouts`` (a word no valid lock can hold prints as corrupt, and no
owner is read from it).  Owners: a pthread mutex records its owner's LWP
(exact); a GMutex records none, so the owner is the one janus-gdb's analysis
inferred, when an analysis of this stop is cached (see ``annotate``).
Waiters are the threads stopped in a futex wait on the lock's address,
read from each thread's system-call registers once per stop.

``print/r`` bypasses the printers and shows the raw union.
"""

import gdb  # pylint: disable=import-error

from . import charset
from ..target import layouts
from ..target import syscalls
from ..report.textsafe import escape

PRINTER_NAME = "janus-gdb-locks"
# threads whose registers are read for the waiter map (once per stop)
MAX_THREADS = 10000
# waiters named in the one-line summary
MAX_NAMED = 8

FUTEX_WAIT_CMDS = syscalls.FUTEX_WAIT_CMDS + syscalls.FUTEX_PI_CMDS
DECODERS = {"pthread_mutex": layouts.decode_pthread_mutex, "gmutex": layouts.decode_gmutex,
            "pthread_rwlock": layouts.decode_rwlock, "grwlock": layouts.decode_grwlock}
# bytes from the lock's address where its waiters sleep: rwlock waiters on
# __readers (+0), __wrphase_futex (+8), __writers_futex (+12)
WAIT_SPAN = {"pthread_mutex": 4, "gmutex": 4,
             "pthread_rwlock": layouts.PTHREAD_RWLOCK["writers_futex"] + 4,
             "grwlock": layouts.PTHREAD_RWLOCK["writers_futex"] + 4}  # at its impl


def _libc(inf):
    """The target's C library (gdbtarget.libc_flavour), once per stop."""
    from . import annotate
    from ..target import gdbtarget
    got = annotate.CACHE.get("libc")
    if got is None:
        got = annotate.CACHE.put("libc", gdbtarget.libc_flavour(inf))
    return got


def lock_kind(gtype):
    """'pthread_mutex', 'gmutex', 'pthread_rwlock', 'grwlock' or None for a gdb.Type."""
    from ..target.gdbtarget import lock_kind_of_type
    return lock_kind_of_type(gtype)


class Threads(object):
    """Per stop: {lwp: thread number} and {futex address: [(num, lwp)]}."""

    def __init__(self):
        self.num_of_lwp = {}
        self.futex_waits = {}
        self.complete = True
        self.error = None


def _read_threads():
    from ..target import gdbtarget
    info = Threads()
    inf = gdb.selected_inferior()
    threads = sorted(inf.threads(), key=lambda t: t.num)
    if len(threads) > MAX_THREADS:
        info.complete = False
        threads = threads[:MAX_THREADS]
    for th in threads:
        lwp = th.ptid[1] or th.ptid[2]
        info.num_of_lwp[lwp] = th.num
    arch = None
    with gdbtarget.SelectionKept():
        for th in threads:
            lwp = th.ptid[1] or th.ptid[2]
            try:
                if not th.is_valid() or (hasattr(th, "is_running") and th.is_running()):
                    continue
                th.switch()
                frame = gdb.newest_frame()
                if arch is None:
                    arch = frame.architecture().name()
                if arch not in syscalls.ARCH_REGISTERS:
                    info.complete = False
                    break
                regs = gdbtarget.read_syscall_regs(frame, arch)
            except (gdb.error, RuntimeError, ValueError, OverflowError):
                continue
            if regs.get("sysno") is None or regs.get("eintr"):
                # unreadable, or (aarch64) a call whose address x0 a signal clobbered
                info.complete = False
                continue
            args = regs.get("args")
            if regs.get("sysno") != syscalls.FUTEX_NR.get(arch) or not args or None in args[:2]:
                continue
            uaddr, op = args[0], args[1] & 0xFFFFFFFF
            if (op & syscalls.FUTEX_CMD_MASK) in FUTEX_WAIT_CMDS:
                info.futex_waits.setdefault(uaddr, []).append((th.num, lwp))
    return info


def _threads_of_report(rep):
    info = Threads()
    for t in rep.threads:
        info.num_of_lwp[t.lwp] = t.num
        w = t.wait
        if w is not None and w.futex is not None and t.syscall == "futex":
            info.futex_waits.setdefault(w.futex, []).append((t.num, t.lwp))
    return info


def threads_info():
    """The Threads of the current stop (read once, then cached), or None."""
    from . import annotate
    got = annotate.CACHE.get("threads")
    if got is not None:
        return got
    if annotate.busy():      # the analysis has the threads selected in turn
        return None
    rep = annotate.cached_report()
    if rep is not None:      # no thread switch needed: the analysis read them
        return annotate.CACHE.put("threads", _threads_of_report(rep))
    try:
        got = _read_threads()
    except (gdb.error, RuntimeError, AttributeError) as exc:
        got = Threads()
        got.complete = False
        got.error = str(exc)
    return annotate.CACHE.put("threads", got)


def _waiters(info, addr, size):
    out = []
    for a in range(addr, addr + size, 4):
        out.extend(info.futex_waits.get(a, ()))
    return sorted(set(out))


def _waiters_text(info, waiters):
    if info is None:
        return "waiters not read"
    if not waiters:
        text = "no waiters"
    else:
        nums = ", ".join(str(n) for n, _ in waiters[:MAX_NAMED])
        if len(waiters) > MAX_NAMED:
            nums += ", ..."
        text = "%d waiter%s (Thread%s %s)" % (len(waiters), "" if len(waiters) == 1 else "s",
                                             "" if len(waiters) == 1 else "s", nums)
    if not info.complete:
        text += " (not every thread read)"
    return text


def _thread_of(info, lwp):
    num = info.num_of_lwp.get(lwp) if info is not None else None
    if num is not None:
        return "Thread %d (LWP %d)" % (num, lwp)
    if info is None:
        return "LWP %d" % lwp
    return "LWP %d (no such thread: exited?)" % lwp


class LockPrinter(object):
    """to_string() of one lock value."""

    def __init__(self, val, kind):
        self.val = val
        self.kind = kind

    def to_string(self):
        try:
            charset.apply()
            return self._describe()
        except Exception as exc:  # a printer must never raise into gdb
            return "<janus-gdb: cannot describe this lock: %s>" % escape(str(exc), 100)

    def _describe(self):
        from ..target import gdbtarget
        addr = self.val.address
        if addr is None:
            return "%s (not in memory: no state)" % self._kind_text(None)
        addr = int(addr)
        inf = gdb.selected_inferior()
        mem = gdbtarget.Memory(inf)
        musl = _libc(inf) == "musl"
        if musl and self.kind == "pthread_mutex":
            d = layouts.decode_musl_mutex(mem, addr)
        elif musl and self.kind in ("pthread_rwlock", "grwlock"):
            d = _decode_musl_rwlock(self.kind, mem, addr)
        else:
            d = DECODERS[self.kind](mem, addr)
        state = d["state"]
        if state == "unreadable":
            return "%s at 0x%x (memory unreadable)" % (self._kind_text(None), addr)
        if state == "corrupt":
            return self._corrupt(d)
        info = threads_info()
        if musl and self.kind == "pthread_mutex":
            parts = self._musl_mutex(d, addr, info)
        elif musl:
            parts = self._musl_rwlock(d, addr, info)
        else:
            parts = getattr(self, "_" + self.kind)(d, addr, info)
        at = d.get("impl") or addr    # a GRWLock's waiters sleep on its pthread_rwlock_t
        span = WAIT_SPAN[self.kind]
        if musl and self.kind == "pthread_mutex":
            span = layouts.MUSL_MUTEX["lock"] + 4      # waiters sleep on _m_lock (+4)
        elif musl:
            span = layouts.MUSL_RWLOCK["lock"] + 4     # waiters sleep on _rw_lock (+0)
        parts.append(_waiters_text(info, _waiters(info, at, span) if info else []))
        return "; ".join(parts)

    def _kind_text(self, subkind):
        if self.kind == "pthread_mutex":
            return "pthread mutex (%s)" % subkind if subkind else "pthread mutex"
        return {"gmutex": "GMutex", "pthread_rwlock": "pthread rwlock",
                "grwlock": "GRWLock"}[self.kind]

    def _corrupt(self, d):
        return "%s CORRUPT (%s): not trusted, no owner" % (
            self._kind_text(None), escape(d.get("why", "implausible contents"), 100))

    def _pthread_mutex(self, d, addr, info):
        state = d["state"]
        parts = ["%s %s" % (self._kind_text(layouts.mutex_kind_name(d["kind"])), state)]
        if state != "free":
            owner = d["owner"]
            if owner and owner > 0 and owner not in layouts.MUTEX_OWNER_SPECIAL:
                parts.append("owner %s [exact: __data.__owner]" % _thread_of(info, owner))
            elif owner in layouts.MUTEX_OWNER_SPECIAL:
                parts.append("owner died (robust mutex, __owner 0x%x)" % owner)
            else:
                parts.append("owner unknown (__data.__owner is 0)")
            if d["count"] and d["kind"] is not None and d["kind"] & 3 == 1:
                parts[-1] += ", count %d" % d["count"]
        return parts

    def _musl_mutex(self, d, addr, info):
        """musl's layout: the owner's TID in _m_lock (exact) for every kind
        but normal, which records none (its owner from the analysis)."""
        from . import annotate
        state = d["state"]
        parts = ["%s %s" % (self._kind_text("musl, " + layouts.musl_mutex_kind_name(d["type"])),
                            state)]
        if state != "free":
            if d["owner"]:
                parts.append("owner %s [exact: musl _m_lock]" % _thread_of(info, d["owner"]))
                if d["count"] and d["type"] & 3 == 1:
                    parts[-1] += ", locked %d times (_m_count %d)" % (d["count"] + 1, d["count"])
            elif not d["records_owner"]:
                parts.append(_inferred_owner(annotate.cached_report(), addr,
                                             "normal musl mutex"))
            else:
                parts.append("owner unknown")
        return parts

    def _pthread_rwlock(self, d, addr, info):
        parts = ["%s %s" % (self._kind_text(None), d["state"])]
        if d.get("impl"):
            parts[0] += " (its pthread_rwlock_t at 0x%x)" % d["impl"]
        if d["write_locked"] and d["writer"]:
            parts.append("writer %s [exact: __data.__cur_writer]" % _thread_of(info, d["writer"]))
        elif d["readers"]:
            parts.append("readers not recorded by glibc (janus-locks infers them)")
        return parts

    _grwlock = _pthread_rwlock

    def _musl_rwlock(self, d, addr, info):
        """musl's layout: _rw_lock is the state; musl records neither the
        writer nor the readers (their owners from the analysis)."""
        from . import annotate
        parts = ["%s (musl) %s" % (self._kind_text(None), d["state"])]
        if d.get("impl"):
            parts[0] += " (its pthread_rwlock_t at 0x%x)" % d["impl"]
        at = d.get("impl") or addr
        if d["write_locked"]:
            parts.append(_inferred_owner(annotate.cached_report(), at, "musl rwlock").replace(
                "owner", "writer", 1))
        elif d["readers"]:
            parts.append("readers not recorded by musl (janus-locks infers them)")
        return parts

    def _gmutex(self, d, addr, info):
        from . import annotate
        parts = ["GMutex %s" % d["state"]]
        if d["state"] != "free":
            parts.append(_gmutex_owner(annotate.cached_report(), addr))
        return parts


def _decode_musl_rwlock(kind, mem, addr):
    """A musl pthread_rwlock_t at ADDR, or the one a GRWLock points to."""
    if kind == "grwlock":
        impl = layouts.read_pointer(mem, addr + layouts.GRWLOCK["impl"])
        if impl is None:
            return {"state": "unreadable"}
        if impl == 0:
            return {"state": "free", "impl": 0, "readers": 0, "write_locked": False}
        d = layouts.decode_musl_rwlock(mem, impl)
        d["impl"] = impl
        return d
    return layouts.decode_musl_rwlock(mem, addr)


def _gmutex_owner(rep, addr):
    return _inferred_owner(rep, addr, "GMutex")


def _inferred_owner(rep, addr, what):
    lock = rep.lock_by_addr.get(addr) if rep is not None else None
    if lock is not None and lock.owner_lwp:
        owner = rep.thread(lock.owner_num) if lock.owner_num is not None else None
        who = ("Thread %d (LWP %d)" % (owner.num, owner.lwp) if owner is not None
               else "LWP %d" % lock.owner_lwp)
        return "owner inferred: %s [%s]" % (who, escape(lock.evidence_detail, 160))
    if rep is not None:
        return "owner not recorded (%s), none inferred; see janus-locks" % what
    return "owner not recorded (%s); see janus-locks" % what


class LockPrinterLookup(object):
    """The lookup function gdb calls for every value printed."""

    def __init__(self):
        self.name = PRINTER_NAME
        self.enabled = True
        self.subprinters = None

    def __call__(self, val):
        try:
            t = val.type
            if t.code not in (gdb.TYPE_CODE_TYPEDEF, gdb.TYPE_CODE_UNION,
                              gdb.TYPE_CODE_STRUCT):
                return None
            kind = lock_kind(t)
        except (gdb.error, RuntimeError, AttributeError):
            return None
        if kind is None:
            return None
        return LockPrinter(val, kind)


_STATE = {"lookup": None}


def register():
    """Register the printers globally (replacing an earlier registration)."""
    try:
        import gdb.printing  # pylint: disable=import-error
    except ImportError:
        return None
    if _STATE["lookup"] is None:
        _STATE["lookup"] = LockPrinterLookup()
    lookup = _STATE["lookup"]
    try:
        gdb.printing.register_pretty_printer(None, lookup, replace=True)
    except (RuntimeError, TypeError):
        # a gdb.printing without replace=: remove ours, then add
        gdb.pretty_printers[:] = [p for p in gdb.pretty_printers
                                  if getattr(p, "name", None) != PRINTER_NAME]
        gdb.pretty_printers.insert(0, lookup)
    return lookup
