"""Decide what each thread is doing: pure logic over a ``Snapshot``.

The registers at the system call say *that* a thread waits and on which
futex word; the names of the library frames above it (from the dynamic
symbol table, so no debug info is needed) say *what kind* of object the
word belongs to.  When no frame is named, the futex protocol itself is
used (glib's GMutex waits for the value 2 through ``syscall()``; a join
waits for the target's TID).
"""

import re

import sys

from ..target import layouts
from ..target import syscalls
from ..model import QueueRef, Wait

# Normalised library function name -> what a futex wait under it means.
FRAME_HINTS = {}
for _kind, _names in (
        ("mutex", ("lll_lock_wait", "pthread_mutex_lock", "pthread_mutex_timedlock",
                   "pthread_mutex_clocklock", "pthread_mutex_lock_full",
                   "pthread_mutex_lock_pi", "pthread_mutex_clocklock_common",
                   "pthread_mutex_cond_lock", "pthread_mutex_cond_lock_full",
                   "lll_mutex_lock_optimized")),
        ("libc-lock", ("lll_lock_wait_private",)),
        ("condvar", ("pthread_cond_wait", "pthread_cond_timedwait", "pthread_cond_clockwait",
                     "pthread_cond_wait_common")),
        ("join", ("pthread_join", "pthread_clockjoin_ex", "pthread_timedjoin_np",
                  "pthread_clockjoin_np", "pthread_tryjoin_np", "g_thread_join",
                  "g_system_thread_wait")),
        ("rwlock-read", ("pthread_rwlock_rdlock", "pthread_rwlock_timedrdlock",
                         "pthread_rwlock_clockrdlock", "pthread_rwlock_rdlock_full",
                         "g_rw_lock_reader_lock")),
        ("rwlock-write", ("pthread_rwlock_wrlock", "pthread_rwlock_timedwrlock",
                          "pthread_rwlock_clockwrlock", "pthread_rwlock_wrlock_full",
                          "g_rw_lock_writer_lock")),
        ("semaphore", ("sem_wait", "sem_timedwait", "sem_clockwait", "do_futex_wait",
                       "new_sem_wait_slow")),
        ("gmutex", ("g_mutex_lock", "g_mutex_lock_slowpath")),
        ("gcond", ("g_cond_wait", "g_cond_wait_until", "g_cond_timed_wait")),
        ("queue", ("g_async_queue_pop", "g_async_queue_pop_unlocked", "g_async_queue_timeout_pop",
                   "g_async_queue_timed_pop", "g_async_queue_pop_intern_unlocked",
                   "g_async_queue_timeout_pop_unlocked", "g_thread_pool_wait_for_new_pool",
                   "g_thread_pool_wait_for_new_task")),
):
    for _name in _names:
        FRAME_HINTS[_name] = _kind

# Kinds a deeper frame may refine: a GCond or condvar wait inside a queue pop.
REFINES = {"gcond": ("queue",), "condvar": ("queue",)}

# How far below the syscall frame hints are looked for.
HINT_DEPTH = 12

_NORM_RE = re.compile(r"^_*(?:GI_+)?_*(.*?)(?:@.*)?$")
_SUFFIX_RE = re.compile(r"(?:64|_time64)$")

# Entry-point wrappers: the frame just below them is the thread's entry function.
THREAD_STARTERS = ("start_thread", "g_thread_proxy", "clone", "clone3", "g_thread_pool_thread_proxy")


_NORMALIZED = {}


def normalize(name):
    """``__GI___pthread_mutex_lock`` -> ``pthread_mutex_lock``; strips @GLIBC and 64."""
    if not name:
        return ""
    got = _NORMALIZED.get(name)
    if got is not None:
        return got
    m = _NORM_RE.match(name)
    base = m.group(1) if m else name
    if base not in FRAME_HINTS:
        stripped = _SUFFIX_RE.sub("", base)
        if stripped in FRAME_HINTS:
            base = stripped
    if len(_NORMALIZED) < 100000:  # a pure function of NAME: memoised, bounded
        _NORMALIZED[name] = base
    return base


def frame_hint(frames):
    """First recognised library function above the first application frame.

    Returns (kind, frame index, function name) or (None, None, None).
    Application frames are never matched: a user function may be called
    ``g_mutex_lock`` only in a system library.
    """
    found = (None, None, None)
    for i, fr in enumerate(frames[:HINT_DEPTH]):
        if not fr.system and i > 0:
            break
        kind = FRAME_HINTS.get(normalize(fr.function))
        if kind is None:
            continue
        if found[0] is None:
            found = (kind, i, fr.function)
            if kind not in REFINES:
                break
        elif kind in REFINES.get(found[0], ()):
            return (kind, i, fr.function)
    return found


def first_app_frame(frames):
    """Index of the first frame outside the system libraries (or None)."""
    for i, fr in enumerate(frames):
        if not fr.system:
            return i
    return None


def entry_function(frames, truncated, lambda_lines=None):
    """The thread's entry function: main, or the outermost application frame
    above start_thread (glib's g_thread_proxy, unnamed without symbols, sits
    between them), else the frame just above start_thread.  A std::thread
    gets a label (std_thread_label; LAMBDA_LINES: {frame level: line where
    the frame's lambda starts})."""
    if not frames:
        return None
    for i, fr in enumerate(frames):
        name = normalize(fr.function)
        if name == "main" and not fr.system:
            return "main"
        if name in THREAD_STARTERS and fr.system and i > 0:
            above = frames[:i]
            apps = [f for f in above if not f.system]
            if _is_std_thread(above):
                return std_thread_label(above, apps[-1] if apps else None, lambda_lines)
            pick = apps[-1] if apps else above[-1]
            return pick.function or ("?? (0x%x)" % pick.pc)
    if truncated:
        return None
    apps = [f for f in frames if not f.system]
    if apps:  # library frames unnamed (no libc symbols): outermost app frame
        return apps[-1].function or ("?? (0x%x)" % apps[-1].pc)
    return frames[-1].function


# A lambda's enclosing function in libstdc++'s template names:
# std::thread::_Invoker<std::tuple<main()::<lambda(int)>, int> >
_LAMBDA_IN_RE = re.compile(r"([A-Za-z_~][\w:~]*\([^()]{0,200}\)(?: const)?)::[<{]lambda\(")
MAX_LABEL = 120


def _is_std_thread(above):
    """Was the thread started by std::thread (libstdc++'s
    execute_native_thread_routine, then _State_impl::_M_run)?"""
    last = above[-1]
    if last.lib and last.lib.startswith("libstdc++") or \
            normalize(last.function) == "execute_native_thread_routine":
        return True
    return any("std::thread::_State_impl" in (f.function or "") or
               "__thread_proxy" in (f.function or "") for f in above)    # libc++


def _is_lambda(name):
    return name == "operator()" or "{lambda(" in name or "<lambda(" in name


def std_thread_label(above, pick, lambda_lines=None):
    """``std::thread lambda in main() (deadlock.cpp:21)`` or ``std::thread
    worker``: the thread's lambda (where it starts when its source was read,
    else where it is) or function, below libstdc++'s start-up frames (PICK:
    the outermost application frame, or None)."""
    enclosing = None
    for f in above:
        m = _LAMBDA_IN_RE.search(f.function or "")
        if m:
            enclosing = m.group(1)
            break
    if pick is not None and pick.function and not _is_lambda(pick.function):
        return ("std::thread " + pick.function)[:MAX_LABEL]
    if pick is None and enclosing is None:
        return "std::thread (its function is not on the stack)"
    text = "std::thread lambda"
    if enclosing:
        text += " in " + enclosing[:80]
    if pick is not None and pick.file and pick.line:
        line = (lambda_lines or {}).get(pick.level, pick.line)
        text += " (%s:%d)" % (pick.file[:60], line)
    return text[:MAX_LABEL]


def classify(snap, arch, mem, lwps, libc=None):
    """Return (state, detail, Wait or None, syscall name) for one thread.

    SNAP is a ``model.Snapshot``, ARCH gdb's architecture name, MEM a
    memory reader, LWPS the set of LWPs of the target's threads, LIBC
    "musl" on a musl target (else glibc's layouts are used).
    """
    regs = snap.regs
    sysno = syscalls.to_signed64(regs.get("sysno"))
    if sysno is None:
        if "sysno" in regs:
            return ("unknown", "registers unreadable" + (
                ": " + regs["why"] if regs.get("why") else ""), None, None)
        return ("unknown", "no system-call register on this architecture (%s)" % arch,
                None, None)
    if sysno < 0:
        return ("running", "running (not in a system call)", None, None)
    name, state = syscalls.describe_syscall(arch, sysno)
    if regs.get("eintr"):
        return interrupted_call(snap.frames, name)
    if state == "restart":
        # (glibc's lock words; musl's read by musl_futex)
        got = (restarted_futex(snap, mem, lwps) if libc != "musl"
               else restarted_musl_futex(snap, mem, lwps))
        if got is not None:
            return (STATE_OF_WAIT[got.kind], describe_wait_kind(got), got, name)
        state, detail = classify_restart(snap.frames)
        return (state, detail, None, name)
    if state != "futex":
        return (state, syscalls.STATE_PHRASES.get(state, "in system call %s" % name), None, name)
    if name != "futex":  # futex_waitv
        return ("futex-wait", "in %s" % name, Wait("futex", how="futex_waitv"), name)
    args = regs.get("args") or (None, None, None)
    if None in args:
        return ("unknown", "futex arguments unreadable", None, name)
    if regs.get("svc") and not syscalls.plausible_futex_address(args[0]):
        # aarch64, pc after the svc: x0 holds futex's return value, not its address
        return ("unknown", "returned from futex (x0 = %d is no futex address)"
                % syscalls.to_signed64(args[0]), None, name)
    uaddr, op, val = args[0], args[1] & 0xFFFFFFFF, args[2] & 0xFFFFFFFF
    cmd, private, cmd_name = syscalls.decode_futex(op)
    wait = None
    if libc == "musl":
        wait = musl_futex(snap.frames, mem, lwps, uaddr, cmd, private, val,
                          snap.stack_calls, regs.get("sp"))
    if wait is None:
        wait = classify_futex(snap.frames, mem, lwps, uaddr, cmd, private, val, libc)
    return (STATE_OF_WAIT[wait.kind], describe_wait_kind(wait), wait, name)


# musl's wait functions (src/thread/__timedwait.c, __wait.c) and the
# cancellation-point system call under them.
MUSL_WAIT_FUNCS = ("__timedwait_cp", "__timedwait", "__wait", "__futexwait")
MUSL_SYSCALL_FUNCS = ("__syscall_cp_c", "__syscall_cp_asm", "__syscall_cp")


def musl_stack_stops(frames):
    """Whether gdb's unwinding of a musl thread stopped inside musl's system
    call or wait functions (the last frame a made-up pc 0 above them, or
    above musl's dynamic library without symbols)."""
    if len(frames) < 2:
        return False
    if frames[-1].function is not None:
        # gdb gave up inside musl's sleep (aarch64: "previous frame identical")
        return frames[-1].function in MUSL_STOPS and frames[0].function in MUSL_SYSCALL_FUNCS
    if frames[-1].pc != 0:
        return False
    return any(fr.function in MUSL_WAIT_FUNCS + MUSL_SYSCALL_FUNCS
               or (fr.lib or "").startswith("ld-musl") for fr in frames[:-1])


# musl functions where gdb's unwinding was seen to stop (aarch64)
MUSL_STOPS = ("clock_nanosleep", "nanosleep", "__clock_nanosleep")


def musl_unwind_note(frames, caller_found=False):
    """A sentence when the stack ends inside musl's wait functions (gdb
    cannot unwind through them: static musl has no unwind tables), else ''.
    CALLER_FOUND: a return address on the stack names the caller."""
    names = [fr.function or "" for fr in frames[:HINT_DEPTH]]
    inside = [n for n in names if n in MUSL_WAIT_FUNCS]
    if not inside and musl_stack_stops(frames):
        inside = ["functions (%s, no symbols)" % frames[0].lib if frames[0].lib
                  else "functions"]
    if not inside or any(not fr.system and fr.function not in MUSL_WAIT_FUNCS + MUSL_SYSCALL_FUNCS
                         and fr.function for fr in frames[:HINT_DEPTH]):
        return ""
    if caller_found:
        return ("gdb cannot unwind past musl's %s (no unwind tables in musl): no frame "
                "shows the caller, the registers and the stack words do" % inside[-1])
    return ("gdb cannot unwind past musl's %s (no unwind tables in musl): the caller "
            "and its source line are not known, the registers are" % inside[-1])


def musl_futex(frames, mem, lwps, uaddr, cmd, private, val, stack_calls=(), sp=None):
    """A futex wait of musl's pthread mutexes, rwlocks or condition
    variables, told by the futex words and value (the registers) and, where
    the shapes overlap, by the musl function under the wait: named in gdb's
    frames, else by a return address found on the stack (STACK_CALLS,
    ``target.stackwords``).  SP: the thread's stack pointer (a condition
    variable's waiter sleeps on a node on its own stack).  None when no
    musl shape fits and nothing names the call (the caller goes on)."""
    if cmd not in syscalls.FUTEX_WAIT_CMDS:
        return None
    hint, hint_text = musl_call_hint(frames, stack_calls)
    mutex = _musl_mutex(mem, lwps, uaddr, private, val)
    rwlock = _musl_rwlock(mem, uaddr, private, val, len(lwps))
    cond = _musl_cond(mem, uaddr, private, val, sp, hint == "condvar")
    wait = None
    if hint == "mutex" and mutex is not None:
        wait = mutex
    elif hint in ("rwlock-read", "rwlock-write") and rwlock is not None:
        wait = _musl_rwlock_wait(rwlock, hint, uaddr, val)
    elif hint == "condvar" and cond is not None:
        wait = cond
    elif hint is None or hint_text.startswith("a return address"):
        # nothing names the call (or only a word on the stack, which may be
        # stale): the words alone, when exactly one shape fits
        fits = [name for name, got in (
            ("a musl pthread_mutex_t at 0x%x" % (uaddr - layouts.MUSL_MUTEX["lock"]), mutex),
            ("a musl pthread_rwlock_t at 0x%x" % uaddr, rwlock),
            ("a musl condition variable waiter", cond)) if got is not None]
        if len(fits) == 1 and rwlock is not None:
            wait = _musl_rwlock_wait(rwlock, None, uaddr, val)
        elif len(fits) == 1:
            wait = mutex or cond
        elif len(fits) > 1:
            return Wait("futex", uaddr, how="futex wait (value 0x%x) on musl whose words fit "
                        "%s: which one is not known (no frame or return address on the stack "
                        "names the call)%s" % (val, " and ".join(fits),
                                               _musl_notes(frames, stack_calls)), frame=0)
    if wait is None and hint in ("semaphore", None):
        wait = _musl_sem(mem, uaddr, private, val)
    if wait is None and hint in ("gmutex", "gcond", "queue"):
        wait = _glib_on_musl(mem, uaddr, val, hint, hint_text)
    if wait is None and (hint == "join" or (hint is None and val == layouts.MUSL_DT_JOINABLE)):
        wait = _musl_join(mem, lwps, uaddr, val, hint == "join")
    if wait is None:
        if hint in ("join", "semaphore", "queue") or hint is None:
            return None     # classify_futex goes on from gdb's frames
        return Wait("futex", uaddr, how="futex wait (value 0x%x) on musl under %s (%s), but the "
                    "words at 0x%x do not decode as what it waits for%s" % (
                        val, _HINT_CALLS.get(hint, hint), hint_text, uaddr,
                        _musl_notes(frames, stack_calls)), frame=0)
    if hint is not None and _HINT_KINDS.get(wait.kind) is not None and \
            _HINT_KINDS.get(wait.kind) == _HINT_KINDS.get(hint):
        wait.how += ", under %s (%s)" % (_HINT_CALLS.get(hint, hint), hint_text)
    wait.how += _musl_notes(frames, stack_calls)
    return wait


_HINT_CALLS = {"mutex": "pthread_mutex_lock", "rwlock-read": "pthread_rwlock_rdlock",
               "rwlock-write": "pthread_rwlock_wrlock", "condvar": "pthread_cond_wait",
               "join": "pthread_join", "semaphore": "sem_wait", "gmutex": "g_mutex_lock",
               "gcond": "g_cond_wait", "queue": "a GAsyncQueue pop"}

_HINT_KINDS = {"mutex": "mutex", "rwlock-read": "rwlock", "rwlock-write": "rwlock",
               "rwlock": "rwlock", "condvar": "condvar", "join": "join",
               "semaphore": "semaphore", "gmutex": "gmutex", "gcond": "gcond",
               "queue": "queue"}

# How many return addresses found on the stack are looked at for the call.
STACK_HINT_DEPTH = 6


def musl_call_hint(frames, stack_calls):
    """(kind, how it is known) of the libc call a musl thread waits in: the
    first recognised function in gdb's frames, else the innermost return
    address found on the stack into a recognised function; (None, '')."""
    kind, idx, fname = frame_hint(frames)
    if kind is not None:
        return kind, "frame #%d %s" % (idx, fname)
    for c in list(stack_calls)[:STACK_HINT_DEPTH]:
        kind = FRAME_HINTS.get(normalize(c.function))
        if kind is not None:
            return kind, "a return address into %s found on the stack at 0x%x" % (
                c.function, c.slot)
    # musl's own functions without symbols (a stripped libc.so): the
    # application's call of the lock function, right after which the
    # innermost return address with a source line points
    c = stack_lock_caller(stack_calls)
    if c is not None:
        return FRAME_HINTS[normalize(c.callee)], (
            "a return address found on the stack at 0x%x, in %s right after its call of %s"
            % (c.slot, c.where(), c.callee))
    return None, ""


# Lock call kinds, by family: a caller found on the stack must call one.
_LOCK_FAMILY = {"mutex": "mutex", "rwlock-read": "rwlock", "rwlock-write": "rwlock",
                "rwlock": "rwlock", "gmutex": "gmutex"}


def stack_lock_caller(stack_calls, wait_kind=None):
    """The innermost return address on the stack into a function with a
    source line, when its call instruction calls a lock function directly
    (of WAIT_KIND's family when given): the caller of the lock function a
    thread waits in; None otherwise (it calls something else, or no callee
    is known: a stale word is not taken)."""
    family = _LOCK_FAMILY.get(wait_kind)
    if wait_kind is not None and family is None:
        return None
    for c in list(stack_calls)[:STACK_HINT_DEPTH + 4]:
        if not (c.file and c.line):
            continue
        got = _LOCK_FAMILY.get(FRAME_HINTS.get(normalize(c.callee)))
        if got is not None and (family is None or got == family):
            return c
        return None
    return None


# musl's thread start (src/thread/pthread_create.c), called by __clone
MUSL_THREAD_START = ("start", "start_c")
# what calls main (musl's src/env/__libc_start_main.c, glibc's)
MAIN_STARTERS = ("libc_start_main", "libc_start_main_stage2", "libc_start_call_main")


def entry_from_stack(stack_calls):
    """The thread's entry function from return addresses found on the stack:
    the application function (with a source line) whose return address lies
    right inside the thread start function's (musl's ``start`` under
    ``__clone``, or a thread starter of THREAD_STARTERS); None otherwise."""
    calls = list(stack_calls)
    for i in range(1, len(calls)):
        c, prev = calls[i], calls[i - 1]
        name = normalize(c.function)
        nxt = normalize(calls[i + 1].function) if i + 1 < len(calls) else ""
        starter = (name in THREAD_STARTERS and name not in ("clone", "clone3")
                   or name in MAIN_STARTERS
                   or (c.function in MUSL_THREAD_START and not c.file and nxt == "clone"))
        if starter:
            # the application function just inside it (a word or two left
            # by calls it made before may lie between: skipped)
            for inner in reversed(calls[max(0, i - 3):i]):
                if inner.file and inner.line:
                    return inner.function
            return None
    return None


# Calls followed through the stack words (stack_chain).
MAX_CHAIN = 16


def stack_chain(frames, stack_calls):
    """The return addresses on the stack that continue gdb's frames as one
    call chain, innermost first: each one's call instruction calls the
    function of the one before it (directly: the callee is known), starting
    from the last function gdb named; a call of a lock function where a
    lock function was left (musl's pthread_mutex_lock tail-calls
    pthread_mutex_timedlock) also continues it.  Other words (stale, or
    indirect calls that cannot be checked) are skipped.  Without a named
    frame to start from, only the lock function's caller (stack_lock_caller)
    is taken."""
    cur = None
    for fr in reversed(frames):
        if fr.function:
            cur = normalize(fr.function)
            break
    if cur is None:
        c = stack_lock_caller(stack_calls)
        return [c] if c is not None else []
    chain = []
    for c in list(stack_calls)[:MAX_CHAIN * 2]:
        fn, callee = normalize(c.function), normalize(c.callee)
        if not callee:
            continue
        in_lock = cur in FRAME_HINTS or cur in _MUSL_LOCK_PLUMBING
        if callee == cur or (in_lock and _LOCK_FAMILY.get(FRAME_HINTS.get(callee))):
            chain.append(c)
            cur = fn
            if len(chain) >= MAX_CHAIN:
                break
    return chain


# musl's functions under its lock calls (normalized names)
_MUSL_LOCK_PLUMBING = frozenset(normalize(n) for n in MUSL_WAIT_FUNCS + MUSL_SYSCALL_FUNCS)


def stack_caller(stack_calls):
    """The innermost return address on the stack into a function with a
    source line (the application's caller), or None."""
    for c in list(stack_calls)[:STACK_HINT_DEPTH + 4]:
        if c.file and c.line:
            return c
    return None


def _musl_notes(frames, stack_calls):
    """'; called from ... ; gdb cannot unwind ...' for a musl wait's how."""
    out = ""
    caller = stack_caller(stack_calls)
    if caller is not None:
        out += ("; called from %s by the return address 0x%x found on the stack (not an "
                "unwound frame)" % (caller.where(), caller.pc))
    note = musl_unwind_note(frames, caller is not None)
    if note:
        out += "; " + note
    return out


def _musl_mutex(mem, lwps, uaddr, private, val):
    """musl's pthread_mutex_lock/timedlock sleeps on _m_lock (the mutex + 4)
    for the lock word with bit 31 set, after counting itself in
    _m_waiters.  The words around UADDR must decode as that musl mutex
    (layouts.decode_musl_mutex) and the value must be what its kind stores
    (EBUSY for a normal mutex, a thread's TID otherwise); else None."""
    if not val & layouts.FUTEX_WAITERS:
        return None
    base = uaddr - layouts.MUSL_MUTEX["lock"]
    d = layouts.decode_musl_mutex(mem, base)
    if d["state"] in ("unreadable", "corrupt", "free") or not d["waiters"]:
        return None
    low = val & layouts.FUTEX_TID_MASK
    if d["records_owner"]:
        if not (low == d["owner"] and (low in lwps or d["type"] & layouts.MUSL_TYPE_ROBUST)):
            return None
    elif low != layouts.MUSL_EBUSY:
        return None
    if bool(private) == bool(d["type"] & layouts.MUSL_TYPE_PSHARED):
        return None     # musl waits privately unless the mutex is process-shared
    how = ("futex wait (value 0x%x) on _m_lock (+4) of a musl pthread_mutex_t at 0x%x "
           "(%s, _m_waiters %d; from the registers: futex address and value)"
           % (val, base, layouts.musl_mutex_kind_name(d["type"]), d["waiters"]))
    return Wait("mutex", uaddr, base, how=how, frame=0)


def _glib_on_musl(mem, uaddr, val, hint, hint_text):
    """glib's own futex waits on a musl target, under the glib call that
    HINT names (from a frame or a return address on the stack): a GMutex
    waiter sleeps for 2 on its word (1 or 2 while held); GCond and queue
    waits are idle.  None when a GMutex's words do not fit."""
    if hint == "gmutex":
        word = mem.u32(uaddr)
        if val != 2 or word is None or not 1 <= word <= layouts.GMUTEX_MAX_WORD:
            return None
        return Wait("gmutex", uaddr, uaddr, how="futex wait for 2 on a GMutex (glib's futex "
                    "protocol; word %d)" % word, frame=0)
    return Wait(hint, uaddr, how="futex wait (value 0x%x)" % val, frame=0)


def _musl_sem(mem, uaddr, private, val):
    """musl's sem_wait/sem_timedwait: sets the count (__val[0]) to -1,
    counts itself in __val[1] and sleeps on __val[0] for -1, privately when
    __val[2] is 128 (sem_init: 0 for a process-shared one).  A musl rwlock
    waited for has the same first words but keeps 0 for private at +8."""
    if val != 0xFFFFFFFF or mem.u32(uaddr) != 0xFFFFFFFF:
        return None
    waiters, priv = mem.i32(uaddr + 4), mem.i32(uaddr + 8)
    if waiters is None or not 0 < waiters <= layouts.MAX_TID or priv not in (0, 128):
        return None
    if bool(private) != (priv == 128):
        return None
    return Wait("semaphore", uaddr, how="futex wait (value -1) on the count of a musl sem_t at "
                "0x%x (%d waiter%s)" % (uaddr, waiters, "" if waiters == 1 else "s"), frame=0)


def _musl_join(mem, lwps, uaddr, val, named):
    """musl's pthread_join sleeps on the joined thread's detach_state (in
    its struct pthread) for its value; the struct's self pointer and its
    tid (layouts.musl_joined_tid) name the thread.  Without a call NAMED
    pthread_join, only a live thread's struct for DT_JOINABLE is taken."""
    tid = layouts.musl_joined_tid(mem, uaddr)
    if tid is None or (not named and (tid not in lwps or mem.u32(uaddr) != val)):
        return None
    return Wait("join", uaddr, target_lwp=tid, how="futex wait (value %d) on detach_state of "
                "musl's struct pthread of LWP %d (its self pointer and tid at -8)"
                % (val, tid), frame=0)


def _musl_rwlock(mem, uaddr, private, val, nthreads):
    """The decoded musl rwlock at UADDR when a rwlock waiter could sleep
    there for VAL (layouts.musl_rwlock_wait_path: a writer for the readers'
    count | bit 31, anyone for 0xffffffff while a writer holds it), with
    _rw_waiters counting it; else None.  A count of readers far beyond the
    NTHREADS threads (a thread's TID in a mutex's lock word) is no rwlock."""
    path = layouts.musl_rwlock_wait_path(val)
    if path == "":
        return None
    if path and val & 0x7FFFFFFF > max(MUSL_PLAUSIBLE_READERS, 4 * nthreads):
        return None
    d = layouts.decode_musl_rwlock(mem, uaddr)
    if d["state"] in ("unreadable", "corrupt", "free") or not d["waiters"]:
        return None
    if bool(private) != (d["shared"] == 0):
        return None     # musl waits privately unless the rwlock is process-shared
    if path is None and not d["write_locked"]:
        return None     # waiting for a writer: a writer still holds it
    if path == "write-for-readers" and not d["readers"]:
        return None
    return d


def _musl_rwlock_wait(d, hint, uaddr, val):
    """The Wait on the musl rwlock D at UADDR for VAL; HINT the call
    (rwlock-read / rwlock-write) when known."""
    path = layouts.musl_rwlock_wait_path(val)
    if path == "write-for-readers":
        kind, phrase = "rwlock-write", "a writer waiting for %s to leave" % (
            "the %d readers" % d["readers"] if d["readers"] != 1 else "the reader")
    elif hint == "rwlock-read":
        kind, path, phrase = "rwlock-read", "read-for-writer", "a reader waiting for the writer"
    elif hint == "rwlock-write":
        kind, path, phrase = "rwlock-write", "write-for-writer", \
            "a writer waiting for the writer"
    else:
        kind, path, phrase = "rwlock", "any-for-writer", \
            "waiting for the writer (a read or a write lock: not known)"
    how = ("futex wait (value 0x%x) on _rw_lock (+0) of a musl pthread_rwlock_t at 0x%x "
           "(%s, _rw_waiters %d; from the registers: futex address and value): %s"
           % (val, uaddr, d["state"], d["waiters"], phrase))
    w = Wait(kind, uaddr, uaddr, how=how, frame=0)
    w.rwlock = path
    return w


# Readers a musl rwlock plausibly has (at least; 4 per thread beyond that).
MUSL_PLAUSIBLE_READERS = 64

# A condition-variable waiter's node lies this close above its stack pointer
# (in pthread_cond_timedwait's frame, a few calls up).
MUSL_COND_STACK_WINDOW = 16384


def _musl_cond(mem, uaddr, private, val, sp, named):
    """A private musl condition-variable wait: on the barrier of a waiter
    node on the thread's own stack (UADDR within MUSL_COND_STACK_WINDOW
    above SP; when SP is unknown, NAMED by a pthread_cond_* call), for 2,
    with the node's
    words as a sleeping waiter leaves them (layouts.decode_musl_cond_node).
    A process-shared one waits on _c_seq for a sequence number: taken only
    when NAMED.  Else None."""
    if not private:
        if not named:
            return None
        return Wait("condvar", uaddr, how="futex wait (value 0x%x, process-shared) on _c_seq "
                    "(+8) of a musl pthread_cond_t at 0x%x" % (val, uaddr - 8), frame=0)
    on_stack = sp is not None and 0 <= uaddr - sp < MUSL_COND_STACK_WINDOW
    if val != layouts.MUSL_COND_BARRIER or not (on_stack or (named and sp is None)):
        # (under pthread_cond_wait but off its own stack: the condition
        # variable's internal lock, not the wait for a signal)
        return None
    node = layouts.decode_musl_cond_node(mem, uaddr)
    if not node["plausible"]:
        return None
    where = ("on its own stack (sp + 0x%x)" % (uaddr - sp)) if on_stack else "on its stack"
    if node["state"] == layouts.MUSL_COND_SIGNALED:
        return Wait("futex", uaddr, how="futex wait (value 2) on the barrier of a musl condition "
                    "variable waiter node at 0x%x %s: it was signalled (state 1) and waits "
                    "for the waiter signalled before it to let it relock the mutex"
                    % (node["node"], where), frame=0)
    return Wait("condvar", uaddr, how="futex wait (value 2) on the barrier (+20) of a musl "
                "condition variable waiter node at 0x%x %s, state 0 (waiting): "
                "pthread_cond_wait's shape; the condition variable's address is not in the "
                "node" % (node["node"], where), frame=0)


# Waits whose timed variants (pthread_mutex_timedlock, pthread_rwlock_timed*,
# pthread_timedjoin_np, ...) an earlier attach turns into restart_syscall.
RESTARTED_KINDS = ("mutex", "rwlock-read", "rwlock-write", "join", "queue")


def restarted_futex(snap, mem, lwps):
    """A timed futex wait that an earlier ptrace attach interrupted and the
    kernel resumed as restart_syscall: the system-call register says 219,
    but the argument registers still hold the futex address, op and value
    (the kernel keeps them; only rax and rip change).  Taken only when a
    frame names a lock or join call and the op is a futex wait; else None."""
    kind = frame_hint(snap.frames)[0]
    args = snap.regs.get("args")
    if kind not in RESTARTED_KINDS or not args or None in args:
        return None
    uaddr, op, val = args[0], args[1] & 0xFFFFFFFF, args[2] & 0xFFFFFFFF
    cmd, private, _cmd_name = syscalls.decode_futex(op)
    if cmd not in syscalls.FUTEX_WAIT_CMDS + syscalls.FUTEX_PI_CMDS:
        return None
    wait = classify_futex(snap.frames, mem, lwps, uaddr, cmd, private, val)
    if wait.kind != kind:
        return None
    wait.how += ("; resumed as restart_syscall after an interruption (an earlier attach): "
                 "the futex arguments are still in the registers")
    return wait


def restarted_musl_futex(snap, mem, lwps):
    """restarted_futex on musl: the argument registers of a timed musl wait
    resumed as restart_syscall still hold the futex address, op and value;
    taken only when they decode as a musl mutex, rwlock or condition wait
    (musl_futex), else None."""
    args = snap.regs.get("args")
    if not args or None in args:
        return None
    uaddr, op, val = args[0], args[1] & 0xFFFFFFFF, args[2] & 0xFFFFFFFF
    cmd, private, _cmd_name = syscalls.decode_futex(op)
    wait = musl_futex(snap.frames, mem, lwps, uaddr, cmd, private, val, snap.stack_calls,
                      snap.regs.get("sp"))
    if wait is None or wait.kind == "futex":
        return None
    wait.how += ("; resumed as restart_syscall after an interruption (an earlier attach): "
                 "the futex arguments are still in the registers")
    return wait


def interrupted_call(frames, name):
    """aarch64: the call NAME returned -4 (EINTR, a signal: the one that
    stopped the thread or made the core) and x0, its first argument, is
    gone.  The frames may still say the thread sleeps, polls or idles; a
    lock wait cannot be placed on its lock, so it stays unknown."""
    why = "%s was interrupted by a signal (x0 = -4, EINTR): its arguments are gone" % name
    kind = frame_hint(frames)[0]
    state, detail = classify_restart(frames)
    if state in ("idle", "sleep", "poll"):
        return (state, "%s (from its frames; %s)" % (detail, why), None, name)
    if name in ("rt_sigsuspend", "rt_sigtimedwait") or any(
            normalize(fr.function) in ("pause", "sigsuspend", "sigwait", "sigwaitinfo",
                                       "sigtimedwait") for fr in frames[:4] if fr.system):
        return ("signal-wait", "waiting for a signal (%s)" % why, None, name)
    if kind is not None:
        why = "%s; its frames say %s" % (why, _WAIT_PHRASES.get(kind, kind))
    return ("unknown", why, None, name)


def classify_restart(frames):
    """A call interrupted (e.g. by an earlier attach) and resumed by the kernel
    as restart_syscall: the registers no longer say which, the frames do."""
    kind = frame_hint(frames)[0]
    if kind is not None and STATE_OF_WAIT.get(kind) == "idle":
        return "idle", _WAIT_PHRASES[kind] + " (with a timeout)"
    for fr in frames[:4]:
        name = normalize(fr.function)
        if "sleep" in name:
            return "sleep", "sleeping"
        if "poll" in name or "select" in name:
            return "poll", "polling for events"
    return "syscall", "in restart_syscall (an interrupted call, resumed)"


STATE_OF_WAIT = {
    "mutex": "lock-wait", "gmutex": "lock-wait", "rwlock-read": "lock-wait",
    "rwlock-write": "lock-wait", "rwlock": "lock-wait", "lock": "lock-wait", "libc-lock": "lock-wait",
    "join": "join", "condvar": "idle", "gcond": "idle", "queue": "idle",
    "semaphore": "idle", "futex": "futex-wait",
}

_WAIT_PHRASES = {
    "mutex": "waiting for a pthread mutex", "gmutex": "waiting for a GMutex",
    "rwlock-read": "waiting to read-lock a rwlock", "rwlock-write": "waiting to write-lock a rwlock",
    "rwlock": "waiting to lock a rwlock",
    "lock": "waiting for a futex lock", "libc-lock": "waiting for a libc internal lock",
    "join": "joining a thread", "condvar": "idle: waiting on a condition variable",
    "gcond": "idle: waiting on a GCond", "queue": "idle: waiting on a queue",
    "semaphore": "idle: waiting on a semaphore", "futex": "waiting on a futex",
}


_RW_WAIT_PHRASES = {
    "write-for-readers": "waiting to write-lock a rwlock until its readers leave",
    "write-for-writer": "waiting to write-lock a rwlock behind another writer",
    "read-for-writer": "waiting to read-lock a rwlock held by a writer",
    "read-for-pending-writer": "waiting to read-lock a rwlock behind a waiting writer",
    "any-for-writer": "waiting to lock a rwlock held by a writer (read or write: not known)",
}


def describe_wait_kind(wait):
    if wait.rwlock:
        return _RW_WAIT_PHRASES[wait.rwlock]
    return _WAIT_PHRASES.get(wait.kind, wait.kind)


def classify_futex(frames, mem, lwps, uaddr, cmd, private, val, libc=None):
    """Work out what a futex wait at UADDR is, from frames, then protocol
    (glibc's and glib's; on musl (LIBC) glibc's protocols are not used)."""
    kind, idx, fname = frame_hint(frames)
    if libc == "musl" and kind in ("mutex", "rwlock-read", "rwlock-write"):
        # glibc's names (a dynamic musl unwinds into pthread_mutex_lock);
        # the musl mutex was not recognised above: the lock's start is not
        # known, and musl's rwlock layout is not decoded
        note = musl_unwind_note(frames)
        return Wait("futex", uaddr, how="futex wait in %s (frame #%d) on musl: the words "
                    "do not decode as a musl mutex waited for%s" % (
                        fname, idx, "; " + note if note else ""), frame=idx)
    if cmd in syscalls.FUTEX_PI_CMDS:
        return Wait("mutex", uaddr, uaddr, how="FUTEX_LOCK_PI on a priority-inheritance mutex",
                    frame=idx)
    if kind is not None:
        how = "futex wait in %s (frame #%d)" % (fname, idx)
        if kind in ("rwlock-read", "rwlock-write"):
            return rwlock_wait(frames, mem, lwps, uaddr, val, kind == "rwlock-read", how, idx)
        how = sys.intern(how)  # one per call site
        if kind in ("mutex", "libc-lock", "gmutex"):
            return Wait(kind, uaddr, uaddr, how=how, frame=idx)
        if kind == "join" and libc == "musl":
            # musl's pthread_join sleeps on the thread's detach_state, for a
            # state value, not for its TID (src/thread/pthread_join.c)
            tid = layouts.musl_joined_tid(mem, uaddr)
            if tid is not None:
                return Wait("join", uaddr, target_lwp=tid, how=how + "; on detach_state of "
                            "musl's struct pthread of LWP %d (its self pointer and tid)" % tid,
                            frame=idx)
            return Wait("join", uaddr, target_lwp=None, how=how + "; on musl the value is the "
                        "thread's detach state, not its TID: the joined thread is not known",
                        frame=idx)
        if kind == "join":
            return Wait("join", uaddr, target_lwp=val, how=how, frame=idx)
        return Wait(kind, uaddr, how=how, frame=idx)
    if libc == "musl":
        f0 = normalize(frames[0].function) if frames else ""
        caller_lib = frames[1].lib if len(frames) > 1 else None
        if f0 == "syscall" and val == 2 and caller_lib and caller_lib.startswith("libglib"):
            # glib's GMutex through musl's syscall() (its futex protocol)
            return Wait("gmutex", uaddr, uaddr, how="raw futex wait for value 2 from libglib "
                        "(GMutex protocol)", frame=1)
        note = musl_unwind_note(frames)
        return Wait("futex", uaddr, how="unrecognised futex wait (value 0x%x) on musl%s" % (
            val, "; " + note if note else ""), frame=0)
    return classify_by_protocol(frames, mem, lwps, uaddr, private, val)


def classify_by_protocol(frames, mem, lwps, uaddr, private, val):
    """No recognised frame: infer the object from the futex protocol."""
    word = mem.u32(uaddr)
    f0 = normalize(frames[0].function) if frames else ""
    caller_lib = frames[1].lib if len(frames) > 1 else None
    if f0 == "syscall" and val == 2 and caller_lib and caller_lib.startswith("libglib"):
        return Wait("gmutex", uaddr, uaddr,
                    how="raw futex wait for value 2 from libglib (GMutex protocol)", frame=1)
    if not private and val and val == word and val in lwps:
        return Wait("join", uaddr, target_lwp=val,
                    how="shared futex wait for a thread's TID (pthread_join protocol)", frame=0)
    if val == 2 and word in (1, 2):
        owner = mem.i32(uaddr + layouts.PTHREAD_MUTEX["owner"])
        if owner and owner > 0:
            return Wait("mutex", uaddr, uaddr,
                        how="futex wait for value 2 with an owner TID at +8 (glibc mutex layout)",
                        frame=0)
    rw = rwlock_by_protocol(mem, lwps, uaddr, val, word)
    if rw is not None:
        return rw
    if val == 2 and word in (1, 2):
        return Wait("lock", uaddr, uaddr, how="futex wait for value 2 (lock protocol)", frame=0)
    return Wait("futex", uaddr, how="unrecognised futex wait (value %d, word %s)"
                % (val, "unreadable" if word is None else word), frame=0)


def pick_rwlock_base(mem, uaddr, val, reader, lwps):
    """(base, wait path, score) of the most plausible rwlock for a futex
    wait at UADDR for VAL (see ``layouts.rwlock_base_candidates``); READER
    None when no frame says which call it is.  (None, None, -1) when the
    value fits no wait path of glibc's rwlock."""
    best = (None, None, -1)
    for base, path in layouts.rwlock_base_candidates(uaddr, val, reader):
        score = layouts.plausible_rwlock(mem, base, lwps, path)
        if score > best[2]:
            best = (base, path, score)
    return best


_RW_PATH_PHRASES = {
    "write-for-readers": "a writer waiting for the readers to leave",
    "write-for-writer": "a writer waiting for the writer before it",
    "read-for-writer": "a reader waiting for the writer that holds it",
    "read-for-pending-writer": "a reader waiting behind a waiting writer (writer preference)",
}


def _grw_frame(frames):
    for fr in frames[:HINT_DEPTH]:
        name = normalize(fr.function)
        if fr.system and name.startswith("g_rw_lock_"):
            return name
    return None


def rwlock_wait(frames, mem, lwps, uaddr, val, reader, how, idx):
    """The Wait of a futex wait inside pthread_rwlock_rdlock/wrlock: the
    rwlock's own address, found from the futex word the path sleeps on."""
    kind = "rwlock-read" if reader else "rwlock-write"
    base, path, score = pick_rwlock_base(mem, uaddr, val, reader, lwps)
    if base is None:
        # a value no path of glibc >= 2.25 waits for (another libc?): the
        # lock's start is not known, so no lock (and no state) is reported
        return Wait(kind, uaddr, None, how=how + "; futex value %d fits no wait path of "
                    "glibc's rwlock: the lock's start is not known" % val, frame=idx)
    how += "; on %s (+%d, value %d): %s" % (
        layouts.RWLOCK_PATH_WORD[path], uaddr - base, val, _RW_PATH_PHRASES[path])
    if score < 0:
        how += " (the words at 0x%x do not look like that state)" % base
    grw = _grw_frame(frames)
    if grw:
        how += ", inside %s" % grw
    w = Wait(kind, uaddr, base, how=sys.intern(how) if score >= 0 else how, frame=idx)
    w.rwlock = path
    return w


def rwlock_by_protocol(mem, lwps, uaddr, val, word):
    """A futex wait without named frames that fits a rwlock wait path and
    whose neighbouring words decode as that rwlock state (libc with no
    symbols at all, e.g. a static binary); None otherwise."""
    if word != val:
        return None
    base, path, score = pick_rwlock_base(mem, uaddr, val, None, lwps)
    # the path checks passed (score >= 3) plus a sane __flags word
    if base is None or score < 4:
        return None
    kind = "rwlock-read" if path.startswith("read") else "rwlock-write"
    w = Wait(kind, uaddr, base, how="futex wait for value %d on what decodes as %s of a glibc "
             "rwlock at 0x%x (%s; rwlock protocol, no frame names)" % (
                 val, layouts.RWLOCK_PATH_WORD[path], base, _RW_PATH_PHRASES[path]), frame=0)
    w.rwlock = path
    return w


# The pops whose first argument is the GAsyncQueue (read on the calling
# application frame's line, and as glib's own ``queue`` argument when glib
# has debug info).
QUEUE_CALLS = frozenset(("g_async_queue_pop", "g_async_queue_timeout_pop",
                         "g_async_queue_timed_pop", "g_async_queue_pop_unlocked",
                         "g_async_queue_timeout_pop_unlocked",
                         "g_async_queue_timed_pop_unlocked"))


def queue_of_wait(wait, mem, nthreads, frame_queue=None):
    """The GAsyncQueue (``model.QueueRef``) a "queue" WAIT sleeps on, or None.

    The thread sleeps in g_cond_wait(&queue->cond, ...) on the GCond's
    futex word, 16 bytes into the queue (``layouts.GASYNCQUEUE``).
    FRAME_QUEUE, (address, expression, frame level, how read) from a frame
    (``Snapshot.queue_call``), is taken when that queue's GCond is the futex
    word (evidence "frame").  Else the queue 16 bytes before the futex word
    is claimed only when its words fit a GAsyncQueue a thread waits on
    (``layouts.decode_gasyncqueue``: evidence "futex").  When neither holds,
    None, and WAIT.how says why (no guessed queue)."""
    if wait is None or wait.kind != "queue" or wait.futex is None:
        return None
    cand = layouts.gasyncqueue_of_futex(wait.futex)
    dec = layouts.decode_gasyncqueue(mem, cand, nthreads)
    if frame_queue is not None and frame_queue[0] == cand:
        addr, expr, level, what = frame_queue
        how = ("%s is 0x%x (%s, frame #%d) and the futex word 0x%x is its GCond "
               "(cond.i[0], +%d)" % (expr, addr, what, level, wait.futex,
                                     layouts.GASYNCQUEUE["futex"]))
        how += ("; its words: %s" % dec["summary"] if dec["plausible"] else
                "; its words do not look like a waited-on queue (%s)" % dec["why"])
        return QueueRef(addr, "frame", how, expr)
    note = ""
    if frame_queue is not None:
        note = ("; the frame's %s is 0x%x (%s, frame #%d), whose GCond is not the futex "
                "word" % (frame_queue[1], frame_queue[0], frame_queue[3], frame_queue[2]))
    if dec["plausible"]:
        return QueueRef(cand, "futex", "the futex word 0x%x is cond.i[0] (+%d) of a GAsyncQueue "
                        "at 0x%x: its words fit (%s)%s" % (
                            wait.futex, layouts.GASYNCQUEUE["futex"], cand, dec["summary"],
                            note))
    wait.how += ("; which queue is not known: the words around the futex word do not fit a "
                 "GAsyncQueue at 0x%x (%s)%s" % (cand, dec["why"], note))
    return None
