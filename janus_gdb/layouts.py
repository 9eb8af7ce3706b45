"""Memory layouts of the lock primitives janus-gdb decodes without debug info.

Every offset that has to be assumed (because libc and glib usually ship
without debug info) lives here, with the versions it holds for.  The
decoders take a ``Memory`` object (see ``target.Memory`` or a fake in the
tests) and return plain dictionaries; they never raise on bad memory.
"""

# glibc >= 2.25 (checked against 2.36), x86_64 and aarch64:
#   struct __pthread_mutex_s { int __lock; unsigned __count; int __owner;
#                              unsigned __nusers; int __kind; ... }
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
# (sysdeps/x86/nptl/bits/struct_rwlock.h).  Waiters sleep on __readers,
# __wrphase_futex or __writers_futex, so the futex address is base+0, +8
# or +12.
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
RWLOCK_WRPHASE = 1
RWLOCK_WRLOCKED = 2
RWLOCK_RWAITING = 4
RWLOCK_READER_SHIFT = 3
RWLOCK_FUTEX_USED = 2

# glib 2.x futex GMutex (glib/gthread-posix.c, USE_NATIVE_MUTEX):
#   union { gpointer p; guint i[2]; }: the futex word is i[0] at offset 0.
#   0 empty, 1 owned, 2 contended (glib <= 2.73.1 counts up: 3+ seen).
GMUTEX = {"word": 0, "size": 8}
GMUTEX_STATES = {0: "free", 1: "locked", 2: "locked, contended"}
# glib <= 2.73.1 counts waiters up from 2; a word beyond this is garbage.
GMUTEX_MAX_WORD = 0xFFFF

# glib GCond (futex build): waiters sleep on i[0] at offset 0 of the GCond.


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


def decode_rwlock(mem, addr):
    """Read a glibc (>= 2.25) pthread_rwlock_t at ADDR.

    Returns ``readers_word``, ``readers`` (count of read holders),
    ``write_locked``, ``writer`` (LWP of the writer or 0), ``flags``, ``state``.
    """
    lay = PTHREAD_RWLOCK
    r = mem.u32(addr + lay["readers"])
    writer = mem.i32(addr + lay["cur_writer"])
    flags = mem.u32(addr + lay["flags"])
    res = {"readers_word": r, "writer": writer, "flags": flags,
           "readers": None, "write_locked": None}
    if r is None:
        res["state"] = "unreadable"
        return res
    if (flags is not None and flags > 2) or (writer is not None and not 0 <= writer <= MAX_TID):
        return _corrupt(res, "__flags %s / __cur_writer %s are not a glibc rwlock's"
                        % (flags, writer), field="writer")
    res["readers"] = r >> RWLOCK_READER_SHIFT
    res["write_locked"] = bool(r & RWLOCK_WRLOCKED)
    if res["write_locked"]:
        res["state"] = "write-locked"
    elif res["readers"]:
        res["state"] = "read-locked by %d reader%s" % (res["readers"], "" if res["readers"] == 1 else "s")
    else:
        res["state"] = "free"
    if r & RWLOCK_RWAITING:
        res["state"] += ", readers waiting"
    return res


def rwlock_base_candidates(futex_addr, val, reader):
    """Possible rwlock base addresses for a futex wait at FUTEX_ADDR.

    Readers wait on __readers (+0) or __wrphase_futex (+8); writers on
    __wrphase_futex (+8) or __writers_futex (+12).  The expected value tells
    which: the *_futex words are always waited for with 1|FUTEX_USED.
    """
    lay = PTHREAD_RWLOCK
    if val != 1 | RWLOCK_FUTEX_USED:
        return [futex_addr - lay["readers"]]
    if reader:
        return [futex_addr - lay["wrphase_futex"]]
    return [futex_addr - lay["writers_futex"], futex_addr - lay["wrphase_futex"]]


def plausible_rwlock(mem, base, lwps):
    """Score how plausible it is that a pthread_rwlock_t starts at BASE."""
    info = decode_rwlock(mem, base)
    if info["readers_word"] is None:
        return -1
    score = 0
    flags = info["flags"]
    if flags is not None and flags <= 2:
        score += 1
    writer = info["writer"] or 0
    if info["write_locked"]:
        score += 1
        if writer > 0:
            score += 2 if writer in lwps else 1
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
