"""Memory layouts of the lock primitives janus-gdb decodes without debug info.

Every offset that has to be assumed (because libc and glib usually ship
without debug info) lives here, with the versions it holds for.  The
decoders take a ``Memory`` object (see ``target.Memory`` or a fake in the
tests) and return plain dictionaries; they never raise on bad memory.
"""

# glibc >= 2.25 (checked against 2.36), x86_64 and aarch64:
#   struct __pthread_mutex_s { int __lock; unsigned __count; int __owner;
#                              unsigned __nusers; int __kind; ... }
# The offsets are the same on both; the whole pthread_mutex_t is 40 bytes on
# x86_64 and 48 on aarch64 (bits/pthreadtypes-arch.h): "size" is x86_64's
# and is not used to decode.
PTHREAD_MUTEX = {
    "lock": 0,      # futex word: 0 free, 1 locked, 2 locked with waiters
    "count": 4,     # recursion count (recursive kind)
    "owner": 8,     # LWP of the owner (0 only under lock elision)
    "nusers": 12,
    "kind": 16,
    "size": 40,
}

# __kind bits (glibc nptl/pthreadP.h, stable since 2.x)
MUTEX_KIND_NAMES = {0: "normal", 1: "recursive", 2: "errorcheck", 3: "adaptive"}
MUTEX_KIND_ROBUST = 16
MUTEX_KIND_PI = 32
MUTEX_KIND_PP = 64
MUTEX_KIND_PSHARED = 128
MUTEX_KIND_ELISION = 256

MUTEX_KIND_VALID_BITS = 0x3FF   # kind 0-3 and the flags above (+ NO_ELISION 512)

# Linux thread ids are at most PID_MAX_LIMIT (2^22): anything larger in an
# owner field is garbage, not an LWP.
MAX_TID = 1 << 22

# __owner values glibc uses for robust mutexes whose owner died.
MUTEX_OWNER_SPECIAL = (0x7FFFFFFF, 0x7FFFFFFE)  # INCONSISTENT, NOTRECOVERABLE

# PI and robust mutexes keep the owner's TID in the futex word itself.
FUTEX_WAITERS = 0x80000000
FUTEX_OWNER_DIED = 0x40000000
FUTEX_TID_MASK = 0x3FFFFFFF

# glibc >= 2.25 (new rwlock, checked against 2.36), x86_64 layout
# (sysdeps/x86/nptl/bits/struct_rwlock.h):
#   unsigned __readers, __writers, __wrphase_futex, __writers_futex,
#   __pad3, __pad4; int __cur_writer, __shared; ... ; unsigned __flags (+48)
# aarch64's generic layout (sysdeps/nptl/bits/struct_rwlock.h: __pad1 and
# __pad2 are longs where x86_64 has __rwelision and padding) puts every
# field at the same offset, 56 bytes in all.
PTHREAD_RWLOCK = {
    "readers": 0,
    "writers": 4,
    "wrphase_futex": 8,
    "writers_futex": 12,
    "cur_writer": 24,
    "shared": 28,
    "flags": 48,
    "size": 56,
}
# __readers bits (nptl/pthread_rwlock_common.c): WRPHASE (a write phase),
# WRLOCKED (a primary writer exists: it holds the lock in a write phase, or
# waits for the readers to leave in a read phase), RWAITING (readers wait on
# __readers behind that writer, writer preference only); the rest counts
# readers: the holders in a read phase, readers waiting for the hand-over in
# a write phase.
RWLOCK_WRPHASE = 1
RWLOCK_WRLOCKED = 2
RWLOCK_RWAITING = 4
RWLOCK_READER_SHIFT = 3
RWLOCK_FUTEX_USED = 2
RWLOCK_WRHANDOVER = 0x80000000   # __writers: a writer hands WRLOCKED to a waiting one
# __flags: PTHREAD_RWLOCK_PREFER_READER_NP, _PREFER_WRITER_NP, _PREFER_WRITER_NONRECURSIVE_NP
RWLOCK_FLAG_NAMES = {0: None, 1: "prefer writer", 2: "prefer writer, nonrecursive"}

# Where each wait path of glibc's rwlock sleeps (nptl/pthread_rwlock_common.c)
# and the value it waits for; ``reader`` is the kind of call.
#   write-for-readers        wrlock in a read phase: WRLOCKED is its, the
#                            readers must leave; __wrphase_futex == FUTEX_USED
#   write-for-writer         wrlock while another writer has WRLOCKED (holds
#                            it, or waits for readers itself);
#                            __writers_futex == 1 | FUTEX_USED
#   read-for-writer          rdlock in a write phase: a writer holds it;
#                            __wrphase_futex == 1 | FUTEX_USED
#   read-for-pending-writer  rdlock with PREFER_WRITER_NONRECURSIVE while a
#                            writer waits for the readers: __readers itself,
#                            with RWAITING set
RWLOCK_WAIT_PATHS = ("write-for-readers", "write-for-writer", "read-for-writer",
                     "read-for-pending-writer")
RWLOCK_PATH_WORD = {"write-for-readers": "__wrphase_futex", "write-for-writer": "__writers_futex",
                    "read-for-writer": "__wrphase_futex", "read-for-pending-writer": "__readers"}


def read_pointer(mem, addr):
    """The 8-byte pointer at ADDR, or None when unreadable."""
    import struct
    data = mem.read(addr, 8)
    if data is None or len(data) != 8:
        return None
    return struct.unpack("<Q", data)[0]


# glib 2.x futex GMutex (glib/gthread-posix.c, USE_NATIVE_MUTEX):
#   union { gpointer p; guint i[2]; }: the futex word is i[0] at offset 0.
#   0 empty, 1 owned, 2 contended (glib <= 2.73.1 counts up: 3+ seen).
GMUTEX = {"word": 0, "size": 8}
GMUTEX_STATES = {0: "free", 1: "locked", 2: "locked, contended"}
# glib <= 2.73.1 counts waiters up from 2; a word beyond this is garbage.
GMUTEX_MAX_WORD = 0xFFFF

# glib 2.x GRWLock (glib/gthread-posix.c, checked against 2.74): on Linux
#   { gpointer p; guint i[2]; } where p points to a pthread_rwlock_t that
#   glib mallocs on first use (g_rw_lock_get_impl); NULL: never used.
GRWLOCK = {"impl": 0, "size": 16}

# glib GCond (futex build, glib/gthread-posix.c): { gpointer p; guint i[2]; };
# waiters sleep on i[0], at offset 8 (after the unused pointer p).
GCOND = {"futex": 8, "size": 16}

# glib 2.x GAsyncQueue (glib/gasyncqueue.c, checked against 2.74.6; 64-bit):
#   struct _GAsyncQueue { GMutex mutex; GCond cond; GQueue queue;
#                         GDestroyNotify item_free_func; guint waiting_threads;
#                         gint ref_count; };
# GQueue is { GList *head; GList *tail; guint length; }.  A thread in
# g_async_queue_pop / timeout_pop sleeps in g_cond_wait(&queue->cond,
# &queue->mutex) on cond.i[0]: the futex word is at +16 of the queue, and
# the queue's mutex is released (the thread holds it again only to wake).
GASYNCQUEUE = {"mutex": 0, "cond": 8, "futex": 8 + GCOND["futex"], "head": 24, "tail": 32,
               "length": 40, "item_free_func": 48, "waiting_threads": 56, "ref_count": 60,
               "size": 64}
# more references or queued items than this: not a live GAsyncQueue
GASYNCQUEUE_MAX_COUNT = 1 << 24


def gasyncqueue_of_futex(uaddr):
    """The address of the GAsyncQueue whose GCond's futex word is at UADDR."""
    return uaddr - GASYNCQUEUE["futex"]


def decode_gasyncqueue(mem, addr, max_waiters):
    """The words of a GAsyncQueue at ADDR, as a thread blocked in its pop
    leaves them: {"plausible": bool, "why": the first word that does not
    fit, or None; "mutex", "length", "waiting_threads", "ref_count",
    "summary"}.  MAX_WAITERS: the number of threads of the process (no more
    can wait on it)."""
    q = GASYNCQUEUE
    res = {"plausible": False, "why": None, "mutex": None, "length": None,
           "waiting_threads": None, "ref_count": None, "summary": ""}
    if addr <= 0 or addr % 8:
        res["why"] = "0x%x is not 8-byte aligned" % addr
        return res
    mutex = mem.u32(addr + q["mutex"])
    waiting = mem.u32(addr + q["waiting_threads"])
    refs = mem.i32(addr + q["ref_count"])
    length = mem.u32(addr + q["length"])
    head = read_pointer(mem, addr + q["head"])
    tail = read_pointer(mem, addr + q["tail"])
    res.update(mutex=mutex, length=length, waiting_threads=waiting, ref_count=refs)
    if None in (mutex, waiting, refs, length, head, tail):
        res["why"] = "its memory cannot be read"
    elif mutex > 2:
        res["why"] = "mutex word %d is no GMutex state" % mutex
    elif not 1 <= waiting <= max(1, max_waiters):
        res["why"] = "waiting_threads is %d (%d thread%s in the process)" % (
            waiting, max_waiters, "" if max_waiters == 1 else "s")
    elif not 1 <= refs <= GASYNCQUEUE_MAX_COUNT:
        res["why"] = "ref_count is %d" % refs
    elif length > GASYNCQUEUE_MAX_COUNT:
        res["why"] = "queue length is %d" % length
    elif (length == 0) != (head == 0 and tail == 0) or (length != 0 and not (head and tail)):
        res["why"] = "queue length %d does not match its head/tail pointers" % length
    else:
        res["plausible"] = True
        res["summary"] = "waiting_threads %d, ref_count %d, %s, mutex word %d" % (
            waiting, refs, "empty" if length == 0 else "%d item%s queued" % (
                length, "" if length == 1 else "s"), mutex)
    return res


def _corrupt(res, why, field="owner"):
    """Mark decoded fields RES as garbage: no owner is trusted from them."""
    res["state"] = "corrupt"
    res["why"] = why
    res[field] = None
    return res


def mutex_kind_name(kind):
    """Describe a pthread mutex __kind value, e.g. ``recursive, robust``."""
    if kind is None:
        return "unknown kind"
    parts = [MUTEX_KIND_NAMES.get(kind & 3, "kind %d" % (kind & 3))]
    for bit, name in ((MUTEX_KIND_ROBUST, "robust"), (MUTEX_KIND_PI, "priority-inherit"),
                      (MUTEX_KIND_PP, "priority-protect"), (MUTEX_KIND_PSHARED, "process-shared"),
                      (MUTEX_KIND_ELISION, "elision")):
        if kind & bit:
            parts.append(name)
    return ", ".join(parts)


def decode_pthread_mutex(mem, addr):
    """Read a glibc pthread_mutex_t at ADDR.

    Returns a dict with ``word``, ``count``, ``owner`` (LWP or 0), ``nusers``,
    ``kind`` and ``state`` (a short phrase); ``None`` values for what could
    not be read.
    """
    lay = PTHREAD_MUTEX
    word = mem.u32(addr + lay["lock"])
    kind = mem.i32(addr + lay["kind"])
    owner = mem.i32(addr + lay["owner"])
    res = {
        "word": word,
        "count": mem.u32(addr + lay["count"]),
        "owner": owner,
        "nusers": mem.u32(addr + lay["nusers"]),
        "kind": kind,
    }
    if word is None:
        res["state"] = "unreadable"
        return res
    if kind is None or kind < 0 or kind & ~MUTEX_KIND_VALID_BITS:
        return _corrupt(res, "__kind %s is not a glibc mutex kind" % kind)
    if owner is not None and not 0 <= owner <= MAX_TID and owner not in MUTEX_OWNER_SPECIAL:
        return _corrupt(res, "__owner %d is not a thread id" % owner)
    if kind & (MUTEX_KIND_PI | MUTEX_KIND_ROBUST):
        tid = word & FUTEX_TID_MASK
        if tid > MAX_TID or (tid and owner and owner != tid and owner not in MUTEX_OWNER_SPECIAL):
            return _corrupt(res, "lock word %d and __owner %s disagree" % (word, owner))
        if tid == 0:
            res["state"] = "free"
        else:
            res["state"] = "locked, contended" if word & FUTEX_WAITERS else "locked"
            if word & FUTEX_OWNER_DIED:
                res["state"] += ", owner died"
            if not owner:
                res["owner"] = tid
        return res
    if word == 0:
        res["state"] = "free"
    elif word == 1:
        res["state"] = "locked"
    elif word == 2:
        res["state"] = "locked, contended"
    else:
        _corrupt(res, "lock word %d is not 0, 1 or 2" % word)
    return res


# musl 1.2.x (checked against 1.2.3: include/alltypes.h.in, src/internal/
# pthread_impl.h), 64-bit: pthread_mutex_t is a union of int __i[10],
# volatile int __vi[10] and void *__p[5] (40 bytes):
#   _m_type = __i[0] (+0), _m_lock = __vi[1] (+4: the futex word),
#   _m_waiters = __vi[2] (+8), _m_prev = __p[3] (+24), _m_next = __p[4]
#   (+32), _m_count = __i[5] (+20).
# _m_type bits: & 3 normal/recursive/errorcheck, 4 robust, 8 priority-
# inherit, 128 process-shared (pthread_mutexattr_*).  A normal mutex
# (_m_type & 15 == 0) stores EBUSY in _m_lock and records no owner; every
# other kind stores the owner's TID (pthread_mutex_trylock.c), both with
# bit 31 set by a waiter (pthread_mutex_timedlock.c) and bit 30 when the
# owner died.  Waiters sleep in __timedwait(&_m_lock, word | 0x80000000)
# after incrementing _m_waiters.
MUSL_MUTEX = {"type": 0, "lock": 4, "waiters": 8, "count": 20, "size": 40}
MUSL_EBUSY = 16
MUSL_TYPE_ROBUST = 4
MUSL_TYPE_PI = 8
MUSL_TYPE_PSHARED = 128
MUSL_TYPE_VALID_BITS = 3 | 4 | 8 | 128
MUSL_OWNER_NOTRECOVERABLE = 0x3FFFFFFF


def musl_mutex_kind_name(mtype):
    """Describe a musl _m_type value, e.g. ``recursive, robust``."""
    if mtype is None:
        return "unknown kind"
    parts = [MUTEX_KIND_NAMES.get(mtype & 3, "kind %d" % (mtype & 3))]
    for bit, name in ((MUSL_TYPE_ROBUST, "robust"), (MUSL_TYPE_PI, "priority-inherit"),
                      (MUSL_TYPE_PSHARED, "process-shared")):
        if mtype & bit:
            parts.append(name)
    return ", ".join(parts)


def musl_records_owner(mtype):
    """Whether a musl mutex of _m_type MTYPE keeps its owner's TID."""
    return mtype is not None and (mtype & 15) != 0


def decode_musl_mutex(mem, addr):
    """Read a musl pthread_mutex_t at ADDR (layout above).

    Returns ``word`` (_m_lock), ``type`` (_m_type), ``kind`` (the same, for
    callers of decode_pthread_mutex), ``waiters`` (_m_waiters), ``count``,
    ``owner`` (the TID from the lock word for kinds that record one, else
    None), ``records_owner``, ``libc`` = "musl" and ``state``.
    """
    lay = MUSL_MUTEX
    mtype = mem.i32(addr + lay["type"])
    word = mem.u32(addr + lay["lock"])
    res = {"word": word, "type": mtype, "kind": mtype,
           "waiters": mem.i32(addr + lay["waiters"]), "count": mem.i32(addr + lay["count"]),
           "owner": None, "records_owner": musl_records_owner(mtype), "libc": "musl",
           "nusers": None}
    if word is None or mtype is None:
        res["state"] = "unreadable"
        return res
    if mtype < 0 or mtype & ~MUSL_TYPE_VALID_BITS:
        return _corrupt(res, "_m_type %d is not a musl mutex type" % mtype)
    if res["waiters"] is not None and not 0 <= res["waiters"] <= MAX_TID:
        return _corrupt(res, "_m_waiters %d is not a waiter count" % res["waiters"])
    low = word & FUTEX_TID_MASK
    if word == 0:
        res["state"] = "free"
        return res
    if not res["records_owner"]:
        if low != MUSL_EBUSY:
            return _corrupt(res, "lock word 0x%x of a normal musl mutex is not EBUSY "
                            "(| 0x80000000)" % word)
        res["state"] = "locked, contended" if word & FUTEX_WAITERS else "locked"
        return res
    if low == MUSL_OWNER_NOTRECOVERABLE:
        res["state"] = "not recoverable (robust, its owner died)"
        return res
    if low == 0:
        # only the owner-died bit (and waiters) left: free, to be recovered
        res["state"] = "free"
        return res
    if low > MAX_TID:
        return _corrupt(res, "lock word 0x%x holds no thread id" % word)
    res["owner"] = low
    res["state"] = "locked, contended" if word & FUTEX_WAITERS else "locked"
    if word & FUTEX_OWNER_DIED:
        res["state"] += ", owner died"
    return res


# musl 1.2.x (checked against 1.2.3: src/internal/pthread_impl.h,
# src/thread/pthread_rwlock_*.c), 64-bit: pthread_rwlock_t is a union of
# int __i[14] (56 bytes): _rw_lock = __vi[0] (+0, the futex word),
# _rw_waiters = __vi[1] (+4), _rw_shared = __i[2] (+8: 0 private, 128
# process-shared).  _rw_lock: 0 free, 0x7fffffff write-locked, else the
# number of readers (at most 0x7ffffffe); bit 31 is set by a waiter.
# musl records neither the writer nor the readers.  A waiter counts itself
# in _rw_waiters, sets bit 31 and sleeps in __timedwait(&_rw_lock, word |
# 0x80000000), privately unless _rw_shared is 128: a reader only while a
# writer holds it (value 0xffffffff), a writer while anybody does
# (0xffffffff, or the readers' count | bit 31).
MUSL_RWLOCK = {"lock": 0, "waiters": 4, "shared": 8, "size": 56}
MUSL_RW_WRITE_LOCKED = 0x7FFFFFFF
MUSL_RW_MAX_READERS = 0x7FFFFFFE


def decode_musl_rwlock(mem, addr):
    """Read a musl pthread_rwlock_t at ADDR (layout above), with the keys of
    decode_rwlock that apply: ``word`` / ``readers_word`` (_rw_lock),
    ``waiters`` (_rw_waiters), ``shared``, ``readers``, ``write_locked``,
    ``writer`` (None: musl records none), ``libc`` = "musl", ``state``."""
    lay = MUSL_RWLOCK
    word = mem.u32(addr + lay["lock"])
    res = {"word": word, "readers_word": word, "waiters": mem.i32(addr + lay["waiters"]),
           "shared": mem.i32(addr + lay["shared"]), "readers": None, "write_locked": None,
           "writer": None, "writer_pending": None, "readers_blocked": None, "phase": None,
           "readers_waiting": None, "prefer": None, "libc": "musl"}
    if word is None:
        res["state"] = "unreadable"
        return res
    if res["shared"] not in (0, 128):
        return _corrupt(res, "_rw_shared %s is not 0 or 128" % res["shared"], field="writer")
    if res["waiters"] is None or not 0 <= res["waiters"] <= MAX_TID:
        return _corrupt(res, "_rw_waiters %s is not a waiter count" % res["waiters"],
                        field="writer")
    cnt = word & 0x7FFFFFFF
    contended = bool(word & FUTEX_WAITERS)
    if cnt == 0:
        if contended:
            return _corrupt(res, "_rw_lock 0x%x: the waiter bit without a holder" % word,
                            field="writer")
        res.update(readers=0, write_locked=False, state="free")
        return res
    if cnt == MUSL_RW_WRITE_LOCKED:
        res.update(readers=0, write_locked=True, phase="write", state="write-locked")
    else:
        res.update(readers=cnt, write_locked=False, phase="read",
                   state="read-locked by %s" % _plural(cnt, "reader"))
    if contended:
        res["state"] += ", contended"
    return res


def musl_rwlock_wait_path(val):
    """The glibc-named wait path (RWLOCK_WAIT_PATHS) a musl rwlock waiter
    sleeping for VAL follows, as far as the value tells: a writer for the
    readers' count | bit 31 ("write-for-readers"); 0xffffffff ("write-
    locked", waiting for a writer) is a reader's or a writer's: None then
    (the caller decides from other evidence); "" for no rwlock wait value."""
    if not val & FUTEX_WAITERS:
        return ""
    cnt = val & 0x7FFFFFFF
    if cnt == MUSL_RW_WRITE_LOCKED:
        return None
    if 0 < cnt <= MUSL_RW_MAX_READERS:
        return "write-for-readers"
    return ""


# musl 1.2.x private condition variable waiters (src/thread/
# pthread_cond_timedwait.c): each waiter links a node on its own stack,
#   struct waiter { struct waiter *prev, *next; volatile int state,
#                   barrier; volatile int *notify; }
# (prev +0, next +8, state +16, barrier +20, notify +24), and sleeps in
# __timedwait_cp(&node.barrier, 2, ...) privately: state 0 (WAITING) until
# a signal marks it 1 (SIGNALED), then waits for its barrier lock.  A
# process-shared condition variable is waited on at _c_seq (+8) instead.
MUSL_COND_NODE = {"prev": 0, "next": 8, "state": 16, "barrier": 20, "notify": 24, "size": 32}
MUSL_COND_WAITING = 0
MUSL_COND_SIGNALED = 1
MUSL_COND_BARRIER = 2


def decode_musl_cond_node(mem, futex):
    """The musl condition-variable waiter node whose barrier is at FUTEX:
    ``node`` (its address), ``state``, ``barrier``, ``prev``, ``next`` and
    ``plausible`` (the words are what a sleeping waiter leaves)."""
    node = futex - MUSL_COND_NODE["barrier"]
    lay = MUSL_COND_NODE
    res = {"node": node, "state": mem.i32(node + lay["state"]),
           "barrier": mem.i32(node + lay["barrier"]),
           "prev": read_pointer(mem, node + lay["prev"]),
           "next": read_pointer(mem, node + lay["next"])}
    res["plausible"] = (res["barrier"] == MUSL_COND_BARRIER
                        and res["state"] in (MUSL_COND_WAITING, MUSL_COND_SIGNALED)
                        and res["prev"] is not None and res["next"] is not None
                        and all(p == 0 or p & 7 == 0 for p in (res["prev"], res["next"])))
    return res


# musl 1.2.x struct pthread (src/internal/pthread_impl.h): pthread_join
# sleeps on the joined thread's detach_state for its current value
# (DT_JOINABLE, 2), privately; tid is the int 8 bytes before it, and the
# struct starts with a pointer to itself (self), 56 bytes before
# detach_state on x86_64 (self, dtv, prev, next, sysinfo, canary) and 40
# on aarch64 (TLS_ABOVE_TP: no dtv, no canary).
MUSL_PTHREAD_TID_FROM_DETACH = 8
MUSL_PTHREAD_SELF_FROM_DETACH = (56, 40)
MUSL_DT_JOINABLE = 2


def musl_joined_tid(mem, futex):
    """The tid of the musl thread whose detach_state is at FUTEX, when the
    words around it are a struct pthread (its self pointer points to its
    start); else None."""
    for back in MUSL_PTHREAD_SELF_FROM_DETACH:
        start = futex - back
        if read_pointer(mem, start) == start:
            tid = mem.i32(futex - MUSL_PTHREAD_TID_FROM_DETACH)
            if tid is not None and 0 < tid <= MAX_TID:
                return tid
    return None


def decode_gmutex(mem, addr):
    """Read a futex-based GMutex at ADDR: ``word`` and ``state``."""
    word = mem.u32(addr + GMUTEX["word"])
    res = {"word": word}
    if word is None:
        state = "unreadable"
    elif word > GMUTEX_MAX_WORD:
        state = "corrupt"
        res["why"] = "lock word %d is not a GMutex state" % word
    elif word >= 2:
        state = GMUTEX_STATES[2]
    else:
        state = GMUTEX_STATES[word]
    res["state"] = state
    return res


def _plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def decode_rwlock(mem, addr):
    """Read a glibc (>= 2.25) pthread_rwlock_t at ADDR.

    Returns the raw words (``readers_word``, ``writers_word``,
    ``wrphase_futex``, ``writers_futex``, ``writer`` = __cur_writer,
    ``flags``) and what they mean: ``phase`` (read/write), ``readers``
    (read holders: the reader count in a read phase, else 0),
    ``readers_waiting`` (readers registered in a write phase, waiting for
    it to end), ``write_locked`` (a writer holds it), ``writer_pending``
    (a primary writer waits for the readers to leave), ``readers_blocked``
    (RWAITING: readers wait behind that writer), ``prefer`` and ``state``.
    """
    lay = PTHREAD_RWLOCK
    r = mem.u32(addr + lay["readers"])
    writer = mem.i32(addr + lay["cur_writer"])
    flags = mem.u32(addr + lay["flags"])
    res = {"readers_word": r, "writers_word": mem.u32(addr + lay["writers"]),
           "wrphase_futex": mem.u32(addr + lay["wrphase_futex"]),
           "writers_futex": mem.u32(addr + lay["writers_futex"]),
           "writer": writer, "flags": flags, "phase": None,
           "readers": None, "readers_waiting": None, "write_locked": None,
           "writer_pending": None, "readers_blocked": None, "prefer": None}
    if r is None:
        res["state"] = "unreadable"
        return res
    if (flags is not None and flags > 2) or (writer is not None and not 0 <= writer <= MAX_TID):
        return _corrupt(res, "__flags %s / __cur_writer %s are not a glibc rwlock's"
                        % (flags, writer), field="writer")
    count = r >> RWLOCK_READER_SHIFT
    wrphase = bool(r & RWLOCK_WRPHASE)
    wrlocked = bool(r & RWLOCK_WRLOCKED)
    res["phase"] = "write" if wrphase else "read"
    res["readers"] = 0 if wrphase else count
    res["readers_waiting"] = count if wrphase else 0
    res["write_locked"] = wrphase and wrlocked
    res["writer_pending"] = wrlocked and not wrphase
    res["readers_blocked"] = bool(r & RWLOCK_RWAITING)
    res["prefer"] = RWLOCK_FLAG_NAMES.get(flags) if flags is not None else None
    if res["write_locked"]:
        state = "write-locked"
        if count:
            state += ", %s waiting" % _plural(count, "reader")
    elif count and not wrphase:
        state = "read-locked by %s" % _plural(count, "reader")
        if wrlocked:
            state += ", a writer waiting for them"
    else:
        # idle, or in a hand-over: a write phase nobody holds (readers are
        # taking over), or a read phase without readers (a writer is)
        state = "free"
    if res["readers_blocked"]:
        state += ", readers waiting behind the writer"
    res["state"] = state
    return res


def decode_grwlock(mem, addr):
    """Read a GRWLock at ADDR (glib 2.x on Linux: ``p`` at offset 0 points
    to a pthread_rwlock_t that glib allocates on first use): the rwlock's
    fields plus ``impl``, its address (0: never used, free)."""
    impl = read_pointer(mem, addr + GRWLOCK["impl"])
    if impl is None:
        return {"state": "unreadable", "impl": None}
    if impl == 0:
        return {"state": "free", "impl": 0, "readers": 0, "write_locked": False, "writer": 0}
    d = decode_rwlock(mem, impl)
    d["impl"] = impl
    return d


def rwlock_held(d):
    """Whether decoded rwlock fields D say somebody holds the lock."""
    return bool(d.get("write_locked") or d.get("readers"))


def rwlock_base_candidates(futex_addr, val, reader):
    """[(base, wait path)] of a rwlock whose waiter sleeps at FUTEX_ADDR for
    the value VAL; READER True/False from the call (rdlock/wrlock), None
    when no frame says (then every path the value allows).

    The expected value decides, since each path waits for its own value:
    a writer for FUTEX_USED (2) on __wrphase_futex (+8) or for 1|FUTEX_USED
    (3) on __writers_futex (+12); a reader for 3 on __wrphase_futex, or for
    the __readers word itself (RWAITING set, WRPHASE clear) at +0.
    """
    lay = PTHREAD_RWLOCK
    used = 1 | RWLOCK_FUTEX_USED
    out = []
    if reader is not True:
        if val == RWLOCK_FUTEX_USED:
            out.append((futex_addr - lay["wrphase_futex"], "write-for-readers"))
        elif val == used:
            out.append((futex_addr - lay["writers_futex"], "write-for-writer"))
    if reader is not False:
        if val == used:
            out.append((futex_addr - lay["wrphase_futex"], "read-for-writer"))
        elif val & RWLOCK_RWAITING and val & RWLOCK_WRLOCKED and not val & RWLOCK_WRPHASE:
            out.append((futex_addr - lay["readers"], "read-for-pending-writer"))
    return out


def plausible_rwlock(mem, base, lwps, path=None):
    """Score how plausible it is that a pthread_rwlock_t starts at BASE and
    that a thread waits on it by PATH (-1: not a rwlock).  The words must
    agree with the path: a writer waiting for readers needs a read phase
    with readers and WRLOCKED, a waiter for a writer needs WRLOCKED, ..."""
    info = decode_rwlock(mem, base)
    if info["readers_word"] is None or info["state"] == "corrupt":
        return -1
    score = 0
    if info["flags"] is not None and info["flags"] <= 2:
        score += 1
    r = info["readers_word"]
    writer = info["writer"] or 0
    wrlocked = bool(r & RWLOCK_WRLOCKED)
    if writer and not wrlocked:
        return -1       # __cur_writer is cleared before WRLOCKED is given up
    if path is not None and info["writers_futex"] not in (1, 1 | RWLOCK_FUTEX_USED):
        # on every wait path a primary writer exists and has set
        # __writers_futex to 1 (| FUTEX_USED) before anyone sleeps
        return -1
    if path == "write-for-readers":
        if not (info["writer_pending"] and info["readers"]):
            return -1
        score += 2 + (writer == 0)
    elif path == "write-for-writer":
        if not wrlocked:
            return -1
        score += 2 + (writer in lwps or writer == 0)
        score += info["writers_futex"] in (1, 1 | RWLOCK_FUTEX_USED)
    elif path == "read-for-writer":
        if not info["phase"] == "write":
            return -1
        score += 2 + (writer in lwps)
    elif path == "read-for-pending-writer":
        if not (info["writer_pending"] and info["readers_blocked"]):
            return -1
        score += 2 + (info["flags"] == 2)
    else:
        if info["write_locked"]:
            score += 1 + (2 if writer in lwps else 1 if writer > 0 else 0)
        elif writer == 0:
            score += 1
    return score


# glib 2.60 - 2.86 GHashTable (glib/ghash.c, checked against 2.74):
#   gsize size; gint mod; guint mask; gint nnodes; gint noccupied;
#   guint have_big_keys:1, have_big_values:1; gpointer keys; guint *hashes;
#   gpointer values; ...
# A slot i is used when hashes[i] >= 2; values[i] is a pointer when
# have_big_values, else a guint.
GHASHTABLE = {"size": 0, "mask": 12, "nnodes": 16, "noccupied": 20, "flags": 24,
              "keys": 32, "hashes": 40, "values": 48}
GHASHTABLE_MAX_SIZE = 1 << 17   # values array <= 1 MiB, one bounded read


def ghashtable_values(mem, addr, limit):
    """Up to LIMIT values of the GHashTable at ADDR, as integers.

    Returns (values, why): WHY is None, or says why the table was not read
    (unreadable, implausible header) or was cut short.
    """
    import struct
    head = mem.read(addr, 56)
    if head is None:
        return [], "unreadable"
    size, = struct.unpack_from("<Q", head, 0)
    mask, nnodes, noccupied, flags = struct.unpack_from("<IiiI", head, 12)
    keys, hashes, values = struct.unpack_from("<QQQ", head, 32)
    if (size < 8 or size > GHASHTABLE_MAX_SIZE or size & (size - 1) or mask != size - 1
            or not 0 <= nnodes <= noccupied <= size):
        return [], "implausible GHashTable header"
    big = bool(flags & 2)
    width = 8 if big else 4
    hs = mem.read(hashes, 4 * size)
    vs = mem.read(values, width * size)
    if hs is None or vs is None:
        return [], "unreadable GHashTable arrays"
    out = []
    fmt = "<Q" if big else "<I"
    for i in range(size):
        h, = struct.unpack_from("<I", hs, 4 * i)
        if h >= 2:
            v, = struct.unpack_from(fmt, vs, width * i)
            out.append(v)
            if len(out) >= limit:
                return out, "cut at %d entries" % limit
    return out, None
