"""Reading the target through gdb: threads, registers, frames, memory.

Read-only: only ``read_memory``, ``read_register`` and frame queries are
used; no function of the target is ever called and nothing is written.
Every gdb failure is turned into ``None`` or a warning here, so the layers
above see plain data.
"""

import os
import re
import struct

import gdb  # pylint: disable=import-error

from . import stackwords
from . import syscalls
from ..model import FrameInfo, Snapshot

# Libraries whose frames are plumbing, not the application.
SYSTEM_LIB_RE = re.compile(
    r"^(?:libc|libpthread|libglib-2\.0|libgthread-2\.0|ld-linux[^/]*|ld-musl[^/]*|ld64|libgcc_s|"
    r"libstdc\+\+)"
    r"[.-].*|^ld-linux.*")

# Headers of the C++ standard library (libstdc++, libc++): their inlined
# frames (std::mutex::lock, std::thread::_State_impl::_M_run) are plumbing too.
# musl's own functions in a static executable (no library to tell them by):
# the system-call and wait plumbing under every blocking call.
MUSL_STATIC_INTERNALS = frozenset((
    "__syscall_cp_c", "__syscall_cp_asm", "__syscall_cp", "__timedwait_cp", "__timedwait",
    "__wait", "__futexwait", "__lock", "__pthread_mutex_timedlock", "__pthread_mutex_lock",
    "__clock_nanosleep", "__cp_begin", "__cp_end",
    # the lock and wait calls above them, by the names gdb gives their frames
    # where it can unwind (aarch64): musl's weak aliases
    "pthread_mutex_timedlock", "pthread_mutex_lock", "pthread_rwlock_timedrdlock",
    "pthread_rwlock_timedwrlock", "pthread_rwlock_rdlock", "pthread_rwlock_wrlock",
    "__pthread_rwlock_timedrdlock", "__pthread_rwlock_timedwrlock",
    "pthread_cond_timedwait", "pthread_cond_wait", "__pthread_cond_timedwait",
    "pthread_join", "__pthread_join", "pthread_timedjoin_np", "clock_nanosleep", "nanosleep",
    "sem_timedwait", "sem_wait", "__clone"))

CXX_STD_HEADER_RE = re.compile(r"/c\+\+/(?:v1|\d[\w.]*)/")

ADDR_MAX = (1 << 64) - 1


class NoTarget(Exception):
    """There is nothing to analyse (no process, no core, no threads)."""


class Memory(object):
    """Bounded, cached, fault-tolerant reads of target memory."""

    def __init__(self, inferior):
        self._inf = inferior
        self._cache = {}
        self.failures = 0

    def read(self, addr, size):
        """Bytes at ADDR, or None when unreadable."""
        if addr is None or addr <= 0 or addr + size > ADDR_MAX or size <= 0 or size > 1 << 20:
            return None
        key = (addr, size)
        if key in self._cache:
            return self._cache[key]
        try:
            data = bytes(self._inf.read_memory(addr, size))
        except (gdb.MemoryError, gdb.error, ValueError, OverflowError):
            data = None
            self.failures += 1
        self._cache[key] = data
        return data

    def _unpack(self, fmt, addr, size):
        data = self.read(addr, size)
        if data is None or len(data) != size:
            return None
        return struct.unpack(fmt, data)[0]

    def u32(self, addr):
        return self._unpack("<I", addr, 4)

    def i32(self, addr):
        return self._unpack("<i", addr, 4)

    def u64(self, addr):
        return self._unpack("<Q", addr, 8)


def require_inferior():
    """The selected inferior, or NoTarget with a sentence for the user."""
    inf = gdb.selected_inferior()
    if inf is None or not inf.pid:
        raise NoTarget("No process or core file: attach with `gdb -p PID` or open a core "
                       "with `gdb EXECUTABLE CORE` first.")
    try:
        # listing the threads costs O(threads) in gdb: snapshot_threads does it once
        if gdb.selected_thread() is None:
            raise NoTarget(NO_THREADS)
    except gdb.error as exc:
        raise NoTarget("Cannot list the threads of the target: %s" % exc)
    return inf


NO_THREADS = "The target has no threads (is the process running or the core valid?)."


def target_kind(inf):
    """'core' for a core file, 'live' for a running process."""
    conn = getattr(inf, "connection", None)
    ctype = getattr(conn, "type", None) if conn is not None else None
    if ctype:
        return "core" if ctype == "core" else "live"
    try:
        text = gdb.execute("info target", to_string=True)
    except gdb.error:
        return "live"
    return "core" if "core dump" in text else "live"


def is_native(inf):
    """Whether INF is a process on this machine (its /proc is ours), not a
    remote target or a core."""
    conn = getattr(inf, "connection", None)
    ctype = getattr(conn, "type", None) if conn is not None else None
    if ctype is not None:
        return ctype == "native"
    try:
        text = gdb.execute("info target", to_string=True)
    except gdb.error:
        return False
    return "attached process" in text or "Native process" in text


def process_gone(inf):
    """For a live process on this machine: a phrase when it no longer runs
    (it exited or was killed while being analysed: gdb still answers from
    what it had read), else None.  Never guesses for remote targets."""
    conn = getattr(inf, "connection", None)
    ctype = getattr(conn, "type", None) if conn is not None else None
    if ctype is None:
        try:
            text = gdb.execute("info target", to_string=True)
        except gdb.error:
            return None
        if "attached process" not in text and "Native process" not in text:
            return None
    elif ctype != "native":
        return None
    try:
        with open("/proc/%d/stat" % inf.pid) as f:
            stat = f.read(512)
    except (OSError, TypeError):
        return "it no longer exists"
    state = stat.rpartition(")")[2].split()[:1]
    if state and state[0] in ("Z", "X"):
        return "it has exited (zombie)"
    return None


# The command name is in the first notes of a core (NT_PRPSINFO): this much
# is read, not the per-thread notes of ten thousand threads.
CORE_NOTES_READ = 256 << 10


def core_mismatch(inf):
    """For a core: a sentence when the executable loaded in gdb is missing or
    is not the program the core was made from, else None.  The core's
    command name (cut at 15 or 16 characters), command line and mapped
    files are compared (corefile.program_matches); only the first notes are
    read unless they do not name the program in full."""
    from .corefile import CoreFileError, names_in_full, program_matches, read_core
    path = core_path(inf)
    if path is None:
        return None
    try:
        info = read_core(path, CORE_NOTES_READ)
    except CoreFileError:
        return None
    exe = executable(inf)
    recorded = info.psargs or info.fname
    if not exe:
        return ("no executable is loaded (the core was made from %s): give it to gdb "
                "(`gdb EXE CORE` or `file EXE`) for names, lines and lock types"
                % (repr(recorded) if recorded else "an unknown program"))
    if not info.files and not names_in_full(info, exe):
        # a name cut short or another name: the mapped files (last in
        # gdb's cores) decide
        try:
            info = read_core(path)
        except CoreFileError:
            pass
    if program_matches(info, exe) is False:
        return ("the executable %s is not the program the core was made from (%r): "
                "owners, names and lock types may be wrong; open the core with its own "
                "executable" % (os.path.basename(exe), recorded))
    return None


def core_path(inf):
    """The path of the core file INF was opened from, or None: gdb 15's
    ``Inferior.corefile`` where there is one, else `info target`."""
    corefile = getattr(inf, "corefile", None)
    if corefile is not None:
        try:
            return getattr(corefile, "filename", None)
        except (gdb.error, RuntimeError):
            return None
    try:
        text = gdb.execute("info target", to_string=True)
    except gdb.error:
        return None
    m = re.search(r"core dump file:\s*`(.*?)'", text)
    return m.group(1) if m else None


def executable(inf):
    prog = getattr(inf, "progspace", None) or gdb.current_progspace()
    name = getattr(prog, "filename", None)
    return name


# Names only musl defines (src/thread/__timedwait.c, pthread_cancel.c):
# found as minimal symbols in a static executable without libc debug info.
MUSL_MARKERS = ("__timedwait_cp", "__syscall_cp_c")


def libc_flavour(inf):
    """'musl' or 'glibc' (the default): the executable's ELF interpreter
    (PT_INTERP ld-musl-*), the loaded libraries, else a symbol only musl
    defines (a static executable).  Read-only; never raises."""
    exe = executable(inf)
    if exe:
        interp = elf_interpreter(exe)
        if interp:      # '' for a static executable: its symbols decide
            return "musl" if "ld-musl" in interp else "glibc"
    try:
        libs = gdb.execute("info sharedlibrary", to_string=True)
    except gdb.error:
        libs = ""
    if "ld-musl" in libs:
        return "musl"
    if "libc.so.6" in libs:
        return "glibc"
    for name in MUSL_MARKERS:
        try:
            text = gdb.execute("info address %s" % name, to_string=True)
        except gdb.error:
            continue
        if "is at" in text:
            return "musl"
    return "glibc"


def elf_interpreter(path):
    """The PT_INTERP string of the ELF file PATH ('' for a static
    executable), or None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return None
            phoff, = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            if phentsize < 56 or phnum > 256:
                return None
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            for i in range(phnum):
                if len(table) < (i + 1) * phentsize:
                    return None
                ptype, = struct.unpack_from("<I", table, i * phentsize)
                if ptype == 3:      # PT_INTERP
                    off, = struct.unpack_from("<Q", table, i * phentsize + 8)
                    size, = struct.unpack_from("<Q", table, i * phentsize + 32)
                    if size > 4096:
                        return None
                    f.seek(off)
                    return f.read(size).split(b"\0")[0].decode("latin-1")
            return ""
    except (OSError, struct.error):
        return None


def arch_name():
    try:
        return gdb.selected_frame().architecture().name()
    except gdb.error:
        return "unknown"


def _int(value):
    try:
        return int(value) & ADDR_MAX
    except (gdb.error, ValueError, TypeError, OverflowError):
        return None


def read_syscall_regs(frame, arch):
    """{'sysno': system call number or None, 'args': (3 arguments) for futex
    calls only} from the newest FRAME; {} on an architecture not decoded."""
    spec = syscalls.ARCH_REGISTERS.get(arch)
    if spec is None:
        return {}
    nr_reg, arg_regs = spec
    regs = {}
    if arch in syscalls.SVC_ARCHES:
        return _read_svc_regs(frame, arch, nr_reg, arg_regs)
    try:
        sysno = regs["sysno"] = _int(frame.read_register(nr_reg))
        # the arguments matter for futex calls only (the lock's address), and
        # for restart_syscall: a timed futex wait resumed after an attach
        # keeps its arguments in these registers
        if sysno is not None and syscalls.describe_syscall(arch, sysno)[1] in (
                "futex", "restart"):
            regs["args"] = tuple(_int(frame.read_register(r)) for r in arg_regs)
    except (gdb.error, ValueError):
        regs["sysno"] = None
    return regs


def _insn_word(addr):
    """The 4-byte little-endian word at ADDR (read-only), or None."""
    if addr is None or addr <= 0 or addr + 4 > ADDR_MAX:
        return None
    try:
        data = bytes(gdb.selected_inferior().read_memory(addr, 4))
    except (gdb.MemoryError, gdb.error, ValueError, OverflowError):
        return None
    return struct.unpack("<I", data)[0] if len(data) == 4 else None


def _read_svc_regs(frame, arch, nr_reg, arg_regs):
    """aarch64 (syscalls.decode_svc_registers): the words at pc and pc-4
    and the registers of FRAME, read-only."""
    try:
        pc = _int(frame.pc())
        at, before = _insn_word(pc), _insn_word(pc - 4 if pc else None)
        return syscalls.decode_svc_registers(arch, pc, at, before,
                                             lambda r: _int(frame.read_register(r)))
    except (gdb.error, ValueError):
        return {"sysno": None}


def _frame_info(frame, level, chain, symtabs=None, cache=None):
    """(FrameInfo of FRAME, id of the frames read so far).

    CACHE, shared by the threads of one analysis, maps (CHAIN, pc) to that
    pair: CHAIN identifies the thread's newer frames (their pcs, newest
    first), so a frame is looked up once for all the threads stopped in the
    same call chain (a thousand handle loops in the same poll) and they
    share one FrameInfo (never modified).  What gdb says of a frame follows
    from its pc and those of the newer frames (which of the frames at one pc
    are inlined functions, whether the newer one is a signal frame), never
    from the thread, but for frame #0 (see below).
    """
    try:
        pc = frame.pc()
    except gdb.error:
        return None, chain
    # a thread stopped by a breakpoint at an inlined function's start shows
    # its caller as frame #0 at the same pc: the name tells them apart
    name = _frame_name(frame) if level == 0 else None
    key = (chain, pc, name)
    if cache is not None:
        got = cache.get(key)
        if got is not None:
            return got
    if level != 0:
        name = _frame_name(frame)
    lib = None
    try:
        path = gdb.solib_name(pc)
        if path:
            lib = _basename(path)
    except gdb.error:
        pass
    fname = line = None
    system = bool(lib and SYSTEM_LIB_RE.match(lib)) or (lib is None and
                                                       name in MUSL_STATIC_INTERNALS)
    try:
        sal = frame.find_sal()
        if sal is not None and sal.symtab is not None and sal.line:
            fname = _basename(sal.symtab.filename)
            line = sal.line
            if CXX_STD_HEADER_RE.search(sal.symtab.filename):
                system = True
            if symtabs is not None and not system:
                symtabs.setdefault(sal.symtab.fullname(), sal.symtab)
    except gdb.error:
        pass
    info = FrameInfo(level, pc, name, fname, line, lib, system)
    if cache is None:
        return info, 0
    got = (info, len(cache) + 1)   # ids are never reused: entries are never removed
    cache[key] = got
    return got


def _frame_name(frame):
    try:
        return frame.name()
    except gdb.error:
        return None


_BASENAMES = {}


def _basename(path):
    """os.path.basename, one string per path (tens of thousands of frames)."""
    got = _BASENAMES.get(path)
    if got is None:
        if len(_BASENAMES) > 10000:
            _BASENAMES.clear()
        got = _BASENAMES[path] = os.path.basename(path)
    return got


# Below these the stack is the thread start-up of glib or the C library:
# nothing to learn (every Janus thread is a GThread: g_thread_proxy, then
# start_thread; stopping at the first saves a frame a thread).
STACK_BOTTOMS = frozenset(("g_thread_proxy", "start_thread", "clone3", "__clone3", "clone",
                           "__clone", "__libc_start_call_main", "__libc_start_main"))


def read_frames(max_frames, symtabs=None, gframes=None, newest=None, cache=None):
    """Frames of the selected thread, newest first, at most MAX_FRAMES; the
    walk ends at the thread's start-up frame (start_thread, main's caller).

    Returns (frames, truncated, error text or None).  The symtabs of the
    frames are added to the dict SYMTABS when given, the gdb.Frame objects
    to the list GFRAMES when given (valid while the thread stays selected).
    NEWEST is the thread's newest frame when the caller already has it;
    CACHE is shared by the threads of one analysis (see _frame_info).
    """
    frames = []
    try:
        frame = newest if newest is not None else gdb.newest_frame()
    except gdb.error as exc:
        return frames, False, str(exc)
    level = 0
    chain = 0
    while frame is not None:
        if level >= max_frames:
            return frames, True, None
        info, chain = _frame_info(frame, level, chain, symtabs, cache)
        if info is None:
            break
        frames.append(info)
        if gframes is not None:
            gframes.append(frame)
        level += 1
        if info.system and info.function in STACK_BOTTOMS:
            break
        try:
            # gdb stops by itself on a corrupt stack ("previous frame
            # identical to this frame"); max_frames bounds the rest.
            frame = frame.older()
        except gdb.error as exc:
            return _musl_plumbing(frames), True, "unwinding stopped at frame #%d: %s" % (
                level, exc)
    return _musl_plumbing(frames), False, None


MUSL_THREAD_START = ("start", "start_c")    # src/thread/pthread_create.c, thrd_create


def _musl_plumbing(frames):
    """Mark musl's plumbing in a static executable as system frames (new
    FrameInfo objects: the cached ones are shared): its thread start
    function ``start`` (a common name, so only without line info and right
    under ``__clone``)."""
    out = frames
    for i, fr in enumerate(frames):
        fix = False
        if fr.system or fr.line is not None or fr.lib is not None:
            continue
        if fr.function in MUSL_THREAD_START and i + 1 < len(frames) and \
                frames[i + 1].function == "__clone":
            fix = True
        if fix:
            if out is frames:
                out = list(frames)
            out[i] = FrameInfo(fr.level, fr.pc, fr.function, fr.file, fr.line, fr.lib, True)
    return out


# Threads whose stack words are scanned (stuck_in_musl), per analysis.
MAX_STACK_SCANS = 256


def stuck_in_musl(frames):
    """Whether gdb's unwinding stopped right above musl's internal functions
    (a static musl has no unwind tables for them): the last frame has no
    symbol and a frame before it is one of MUSL_STATIC_INTERNALS (or in
    musl's dynamic loader), or the last frame is one of them."""
    if len(frames) < 2:
        return False
    last = frames[-1]
    if last.function is not None:
        # aarch64: gdb stops at musl's clock_nanosleep ("previous frame
        # identical to this frame")
        return (last.function in MUSL_STATIC_INTERNALS and last.function != "__clone"
                and (last.lib is None or last.lib.startswith("ld-musl")))
    return any(f.function in MUSL_STATIC_INTERNALS or (f.lib or "").startswith("ld-musl")
               for f in frames[:-1])


def _read_reg(frame, name):
    try:
        return frame.read_register(name)
    except (gdb.error, ValueError):
        return None


# Threads read per nested gdb command: gdb frees the values it creates while
# unwinding only when a command ends, so reading 10,000 threads in one
# command holds them all; a nested command per batch frees them as it goes
# (as `thread apply all` does per thread).
BATCH = 100


class _Reader(object):
    """Reads threads into Snapshots; one per snapshot_threads call."""

    def __init__(self, max_frames, warnings, symtabs, scanner):
        self.max_frames = max_frames
        self.warnings = warnings
        self.symtabs = symtabs
        self.scanner = scanner
        self.arch = None
        self.snaps = []
        self.frame_cache = {}
        self.batch = ()
        self.error = None
        self.scanned = 0

    def run_batch(self):
        """Read self.batch; exceptions are kept for the caller (a nested
        gdb command would print them as a traceback)."""
        try:
            for th in self.batch:
                self.read(th)
        except BaseException as exc:  # re-raised by snapshot_threads, Ctrl-C included
            self.error = exc

    def read(self, th):
        if not th.is_valid():
            return
        try:
            th.switch()
            newest = gdb.newest_frame()
        except gdb.error as exc:
            self.warnings.append("T%d: cannot read its registers: %s" % (th.num, exc))
            self.snaps.append(Snapshot(th.num, th.ptid[1], regs={"sysno": None},
                                       global_num=getattr(th, "global_num", None)))
            return
        if self.arch is None:
            try:
                self.arch = newest.architecture().name()
            except gdb.error:
                self.arch = "unknown"
        regs = read_syscall_regs(newest, self.arch)
        gframes = []
        frames, truncated, err = read_frames(self.max_frames, self.symtabs, gframes, newest,
                                             self.frame_cache)
        if err:
            self.warnings.append("T%d: %s" % (th.num, err))
        name = None
        try:
            name = th.name
        except gdb.error:
            pass
        except UnicodeDecodeError as exc:
            # the target named the thread with bytes gdb cannot decode in
            # its host charset: kept as bytes (surrogateescape), escaped
            # when printed (report/textsafe.py)
            if isinstance(exc.object, bytes):
                name = exc.object.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        snap = Snapshot(th.num, th.ptid[1] or th.ptid[2], name, regs, frames,
                        truncated, getattr(th, "global_num", None))
        if regs.get("args") is not None and "sp" not in regs:
            # a futex wait on the thread's own stack (musl's condition
            # variables) is told by the stack pointer
            regs["sp"] = _int(_read_reg(newest, "sp"))
        if stuck_in_musl(frames) and self.scanned < MAX_STACK_SCANS:
            # gdb cannot unwind past musl's wait functions: the stack pointer
            # and the return addresses on the stack say what the frames cannot
            self.scanned += 1
            sp = _int(_read_reg(newest, "sp"))
            regs["sp"] = sp
            snap.stack_calls = stackwords.scan(newest, self.arch, sp)
        if self.scanner is not None:
            self.scanner(snap, gframes)
        self.snaps.append(snap)


_CURRENT = [None]   # the _Reader of the running snapshot_threads, for run_current_batch


def run_current_batch():
    """Entry point of the nested gdb command (see BATCH)."""
    _CURRENT[0].run_batch()


# Up to this many threads are found by number (`thread apply`); more are
# taken from the list of all threads, which libthread_db makes cost 0.6 s
# at 10,000 threads.
MAX_LOOKUPS = 256
_FOUND = []


def _found_thread():
    """Run by `thread apply` in threads_by_number: keep the thread it selected."""
    _FOUND.append(gdb.selected_thread())


def threads_by_number(inf, numbers):
    """{num: gdb.InferiorThread} of the threads of INF numbered NUMBERS
    (the missing ones left out)."""
    wanted = set(numbers)
    numbers = sorted(wanted)
    if len(numbers) > MAX_LOOKUPS:
        try:
            return dict((t.num, t) for t in inf.threads() if t.num in wanted)
        except gdb.error as exc:
            raise NoTarget("Cannot list the threads of the target: %s" % exc)
    del _FOUND[:]
    # `thread apply` switches without announcing it (`thread N` would print
    # the frame on the console, past to_string) and switches back
    try:
        gdb.execute("thread apply %s python __import__('sys').modules['%s']._found_thread()"
                    % (" ".join(str(n) for n in numbers), __name__), to_string=True)
    except gdb.error:
        pass
    found = dict((t.num, t) for t in _FOUND
                 if t is not None and t.num in wanted and t.inferior.num == inf.num)
    del _FOUND[:]
    return found


class LazyThreads(dict):
    """{thread number: gdb.InferiorThread}, looked up by number when first
    asked for (threads the fast path did not read through gdb)."""

    def __init__(self, inf):
        dict.__init__(self)
        self._inf = inf

    def get(self, num, default=None):
        if num not in self:
            self[num] = threads_by_number(self._inf, [num]).get(num)
        th = dict.get(self, num)
        return default if th is None else th


def snapshot_threads(inf, max_frames, warnings, symtabs=None, scanner=None, gthreads=None,
                     numbers=None):
    """Read every thread's registers and frames; restores the selection.

    Returns (list of Snapshot sorted by thread number, arch name); the
    application symtabs seen on the stacks are collected in SYMTABS.
    SCANNER(snapshot, gdb frames), when given, reads more from each thread's
    frames while the thread is selected (lock claims, object references).
    GTHREADS, a dict, receives {thread number: gdb.InferiorThread}.
    NUMBERS: read only the threads with these numbers (the fast path).
    """
    try:
        old_thread = gdb.selected_thread()
    except gdb.error:
        old_thread = None
    try:
        old_frame = gdb.selected_frame()
    except gdb.error:
        old_frame = None
    if numbers is not None:
        threads = sorted(threads_by_number(inf, numbers).values(), key=lambda t: t.num)
    else:
        try:
            threads = sorted(inf.threads(), key=lambda t: t.num)
        except gdb.error as exc:
            raise NoTarget("Cannot list the threads of the target: %s" % exc)
    if not threads:
        raise NoTarget(NO_THREADS)
    if gthreads is not None:
        gthreads.update((t.num, t) for t in threads)
    reader = _Reader(max_frames, warnings, symtabs, scanner)
    nested = len(threads) > BATCH
    try:
        for start in range(0, len(threads), BATCH):
            reader.batch = threads[start:start + BATCH]
            if nested:
                _CURRENT[0] = reader
                try:
                    gdb.execute("python __import__('sys').modules['%s'].run_current_batch()"
                                % __name__, to_string=True)
                except gdb.error:
                    if reader.error is None:   # no nested commands here: read directly
                        nested = False
                        reader.run_batch()
                finally:
                    _CURRENT[0] = None
            else:
                reader.run_batch()
            if reader.error is not None:
                raise reader.error
    finally:
        _restore(old_thread, old_frame)
    return reader.snaps, reader.arch or "unknown"


class SelectionKept(object):
    """Context manager: the selected thread and frame are restored on exit."""

    def __enter__(self):
        try:
            self.thread = gdb.selected_thread()
        except gdb.error:
            self.thread = None
        try:
            self.frame = gdb.selected_frame()
        except gdb.error:
            self.frame = None
        return self

    def __exit__(self, *exc):
        _restore(self.thread, self.frame)
        return False


def _restore(thread, frame):
    try:
        if thread is not None and thread.is_valid():
            thread.switch()
        if frame is not None and frame.is_valid():
            frame.select()
    except gdb.error:
        pass


# Type names (typedef or tag) of the locks janus-gdb decodes -> lock kind.
LOCK_TYPES = {"pthread_mutex_t": "pthread_mutex", "GMutex": "gmutex", "_GMutex": "gmutex",
              "pthread_rwlock_t": "pthread_rwlock", "GRWLock": "grwlock", "_GRWLock": "grwlock",
              # libstdc++ wraps a pthread object at offset 0 (std_mutex.h, shared_mutex)
              "std::mutex": "pthread_mutex", "std::recursive_mutex": "pthread_mutex",
              "std::timed_mutex": "pthread_mutex", "std::recursive_timed_mutex": "pthread_mutex",
              "std::shared_mutex": "pthread_rwlock", "std::shared_timed_mutex": "pthread_rwlock"}
MAX_BLOCK_SYMBOLS = 20000
_INLINE_NS_RE = re.compile(r"^std::__\w+::")


def lock_kind_of_type(gtype):
    """'pthread_mutex', 'gmutex', 'pthread_rwlock', 'grwlock' or None for a gdb.Type."""
    t = gtype
    for _ in range(8):
        for name in (t.name, getattr(t, "tag", None)):
            if name in LOCK_TYPES:
                return LOCK_TYPES[name]
            if name and name.startswith("std::__"):     # libc++'s std::__1::mutex
                plain = _INLINE_NS_RE.sub("std::", name)
                if plain in LOCK_TYPES:
                    return LOCK_TYPES[plain]
        if t.code != gdb.TYPE_CODE_TYPEDEF:
            return None
        t = t.target()
    return None


QUEUE_TYPE_NAMES = ("_GAsyncQueue", "GAsyncQueue")


def is_queue_pointer(gtype):
    """Whether the gdb.Type GTYPE is a pointer to glib's GAsyncQueue."""
    try:
        t = gtype.strip_typedefs()
        if t.code != gdb.TYPE_CODE_PTR:
            return False
        target = t.target()
        for name in (target.name, getattr(target, "tag", None),
                     target.strip_typedefs().name, getattr(target.strip_typedefs(), "tag", None)):
            if name in QUEUE_TYPE_NAMES:
                return True
    except (gdb.error, RuntimeError):
        return False
    return False


def global_locks(symtabs, warnings, queues=None):
    """Global and file-static lock variables of the source files on the stacks.

    Returns [(address, kind, name)].  Needs debug info; empty without it.
    QUEUES, a list, gets (address, name, file basename) of the variables
    that point to a GAsyncQueue (``static GAsyncQueue *messages``).
    """
    found = []
    seen = set()
    budget = MAX_BLOCK_SYMBOLS
    for symtab in symtabs.values():
        try:
            blocks = (symtab.global_block(), symtab.static_block())
        except (gdb.error, RuntimeError):
            continue
        for block in blocks:
            for sym in block:
                budget -= 1
                if budget < 0:
                    warnings.append("global lock scan stopped after %d symbols" % MAX_BLOCK_SYMBOLS)
                    return found
                try:
                    if not sym.is_variable:
                        continue
                    kind = lock_kind_of_type(sym.type)
                    if kind is None and queues is not None and is_queue_pointer(sym.type):
                        qaddr = int(sym.value().address)
                        if qaddr not in seen:
                            seen.add(qaddr)
                            queues.append((qaddr, sym.name, os.path.basename(
                                sym.symtab.filename) if sym.symtab is not None else None))
                        continue
                    if kind is None:
                        continue
                    addr = int(sym.value().address)
                except (gdb.error, RuntimeError, TypeError, ValueError):
                    continue
                if addr not in seen:
                    seen.add(addr)
                    found.append((addr, kind, sym.name))
    return found
