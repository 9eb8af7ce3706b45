"""Names of functions without a symbol, read from their own log calls.

A stripped Janus has no symbols for its static functions, but every
``JANUS_LOG`` formats ``"[%s:%s:%d] "`` with ``__FILE__``, ``__FUNCTION__``
and ``__LINE__``, so a function that logs passes the string of its own name
to ``snprintf`` (and its lock and reference debugging prints
``"[%s:%s:%d:lock] %p"`` pass it to ``janus_vprintf``).  This module finds
such calls in a function's decoded machine code (``x86insn.Insn``, as
``codereader`` disassembles it) and decides whether they name the
function.  No gdb here: ``Namer`` asks ``codereader.CodeReader`` for the
frame's function and its instructions; ``Image`` reads the module's file
on disk (read-only data and code bytes), never the target.

The rule (docs/evidence.md, "Names from log strings"); a false name costs
more than a gap:

1. A *log call* is a call of a printf-like import (``snprintf``,
   ``__snprintf_chk``, ``g_snprintf``, ``fprintf``, ... by name, through the
   PLT or GOT) whose format argument is a string of the file's read-only
   data containing the conversions ``%s``, ``%s``, ``%d`` in a row, whose
   arguments are, in that order: a read-only string that is a source file
   name (``*.c``, ``*.cpp``, ``*.h``, ...: ``__FILE__``), a read-only string
   that is a C identifier of at most 128 characters (``__FUNCTION__``) and
   an immediate (``__LINE__``).  Each argument is traced back through
   straight-line code only (``lea 0x..(%rip)``, ``mov $imm``, register
   copies, pushes and stores to the outgoing stack slots).
2. The function's *log names* are the identifiers of its log calls (its
   ``.cold`` fragments included).
3. It is named X only when its log names are exactly {X} **and** every
   RIP-relative reference to X's string in the module's code lies inside
   this function.  An inlined function that logs brings its name along:
   a function with several log names gets none (they are listed as what its
   log strings say), and a name whose string other functions also use (the
   function was inlined there, or another function of that name exists) is
   not given either.

Known risk (documented): a function that logs nothing itself and into
which exactly one logging function was inlined, inlined nowhere else (a
static function called once), is named after the inlined function.
"""

import re
import struct

from .x86insn import CALLER_SAVED, IMM_RE, mem, reg as reg_of

ARG_REGS = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
# printf-like functions: index of the format argument
PRINTF_FORMAT_ARG = {
    "printf": 0, "__printf_chk": 1, "fprintf": 1, "__fprintf_chk": 2,
    "dprintf": 1, "__dprintf_chk": 2, "sprintf": 1, "__sprintf_chk": 3,
    "snprintf": 2, "__snprintf_chk": 4, "asprintf": 1, "__asprintf_chk": 2,
    "syslog": 1, "__syslog_chk": 2, "g_snprintf": 2, "g_strdup_printf": 0,
    "g_print": 0, "g_printerr": 0, "g_string_printf": 1, "g_string_append_printf": 1,
    "janus_vprintf": 0,
}
MAX_NAME = 128
MAX_STRING = 512            # format strings read at most this long
MAX_TRACE = 48              # instructions walked back for one argument
MAX_LOG_CALLS = 4096        # log calls examined per function
MAX_CANDIDATES = 8
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
FILE_RE = re.compile(r"^[A-Za-z0-9_./+-]{0,200}[A-Za-z0-9_+-]\.(?:c|cc|cpp|cxx|C|h|hh|hpp)$")
_CONV_RE = re.compile(r"%(%|[-+ #0']*(\*|\d+)?(?:\.(\*|\d*))?"
                      r"(?:hh|h|ll|l|j|z|t|L|q)?([diouxXeEfFgGaAcspnm]))")
_LEA_RE = re.compile(b"[\x48-\x4f]\x8d[\x05\x0d\x15\x1d\x25\x2d\x35\x3d]", re.S)


class Image(object):
    """What the rule needs of one module file: its read-only strings and
    the RIP-relative references its code makes (file addresses)."""

    def __init__(self, path, sections):
        """SECTIONS: {name: (addr, offset, size, ...)} (``elffile.ElfFile``)."""
        self.path = path
        self.rodata = sorted((s[0], s[1], s[2]) for name, s in sections.items()
                             if name.startswith(".rodata") and s[2] and s[3] != 8)
        self._text = sections.get(".text")
        self._refs = None
        self._strings = {}

    def string(self, addr, limit=MAX_STRING):
        """The NUL-terminated string at file address ADDR of the read-only
        data, or None (not there, no NUL within LIMIT bytes, not ASCII)."""
        key = (addr, limit)
        if key in self._strings:
            return self._strings[key]
        got = None
        for start, off, size in self.rodata:
            if start <= addr < start + size:
                n = min(limit + 1, start + size - addr)
                try:
                    with open(self.path, "rb") as f:
                        f.seek(off + addr - start)
                        data = f.read(n)
                except (OSError, IOError):
                    data = b""
                end = data.find(b"\0")
                if end >= 0:
                    try:
                        got = data[:end].decode("ascii")
                    except UnicodeDecodeError:
                        got = None
                    if got is not None and any(ord(c) < 9 for c in got):
                        got = None
                break
        if len(self._strings) > 100000:
            self._strings.clear()
        self._strings[key] = got
        return got

    def refs(self):
        """{target: [addresses of the lea instructions]} for every byte
        sequence of ``.text`` that decodes as ``lea disp32(%rip),%reg``.  A
        sequence that is not really an instruction only adds references,
        which makes the uniqueness test stricter, never looser."""
        if self._refs is not None:
            return self._refs
        refs = {}
        t = self._text
        if t is not None and 0 < t[2] <= (64 << 20) and t[3] != 8:
            try:
                with open(self.path, "rb") as f:
                    f.seek(t[1])
                    data = f.read(t[2])
            except (OSError, IOError):
                data = b""
            base = t[0]
            for m in _LEA_RE.finditer(data):
                p = m.start()
                if p + 7 > len(data):
                    break
                disp, = struct.unpack_from("<i", data, p + 3)
                refs.setdefault(base + p + 7 + disp, []).append(base + p)
        self._refs = refs
        return refs


class LogCall(object):
    """One log call: where (file address), and its file, function and line."""
    __slots__ = ("addr", "file", "function", "string", "line")

    def __init__(self, addr, file_, function, string, line):
        self.addr = addr
        self.file = file_
        self.function = function
        self.string = string        # file address of the function's name string
        self.line = line


def conversions(fmt):
    """[(conversion letter, argument offset)] of printf format FMT, counting
    ``*`` widths as arguments; None when FMT has something not understood."""
    out = []
    arg = 0
    pos = 0
    while True:
        i = fmt.find("%", pos)
        if i < 0:
            return out
        m = _CONV_RE.match(fmt, i)
        if m is None:
            return None
        pos = m.end()
        if m.group(1) == "%":
            continue
        if m.group(2) == "*":
            arg += 1
        if m.group(3) == "*":
            arg += 1
        conv = m.group(4)
        if conv == "m":
            continue
        out.append((conv, arg))
        arg += 1
        if len(out) > 64:
            return None


class Tracer(object):
    """Values of call arguments in straight-line code before a call."""

    def __init__(self, insns):
        self.insns = insns
        self.leaders = set()
        for ins in insns:
            if ins.kind in ("jmp", "jcc", "call") and ins.target is not None:
                self.leaders.add(ins.target)

    def _prev(self, k):
        """Index of the instruction that falls through into K, or None."""
        if k <= 0 or self.insns[k].addr in self.leaders:
            return None
        p = self.insns[k - 1]
        if p.addr + p.length != self.insns[k].addr or p.kind in ("jmp", "ret"):
            return None
        return k - 1

    def reg_value(self, reg, k, budget=MAX_TRACE):
        """("addr", A) / ("imm", N) of register REG just before instruction
        K, or None when not a constant of straight-line code."""
        j = self._prev(k)
        while j is not None and budget > 0:
            budget -= 1
            ins = self.insns[j]
            if ins.kind == "call":
                if reg in CALLER_SAVED:
                    return None
            elif reg in ins.writes():
                return self._defined(ins, reg, j, budget)
            j = self._prev(j)
        return None

    def _defined(self, ins, reg, j, budget):
        ops = ins.ops
        if len(ops) != 2 or reg_of(ops[1]) != reg:
            return None
        if ins.mnem in ("lea", "leaq"):
            t = ins.rip_target(ops[0])
            return ("addr", t) if t is not None else None
        if ins.mnem in ("mov", "movq", "movl", "movabs", "movabsq"):
            m = IMM_RE.match(ops[0])
            if m:
                return ("imm", int(m.group(1), 0))
            src = reg_of(ops[0])
            if src is not None and ins.mnem in ("mov", "movq") and ops[0].startswith("%r"):
                return self.reg_value(src, j, budget)
        return None

    def stack_value(self, slot, k, budget=MAX_TRACE):
        """Value of the outgoing stack argument at SLOT bytes above %rsp at
        the call K: pushes and stores to ``disp(%rsp)`` of straight-line code."""
        off = 0
        j = self._prev(k)
        while j is not None and budget > 0:
            budget -= 1
            ins = self.insns[j]
            mn = ins.mnem
            if ins.kind is not None:
                return None
            if mn in ("push", "pushq"):
                if off == slot and len(ins.ops) == 1:
                    m = IMM_RE.match(ins.ops[0])
                    if m:
                        return ("imm", int(m.group(1), 0))
                    r = reg_of(ins.ops[0])
                    return self.reg_value(r, j, budget) if r else None
                off += 8
            elif mn in ("sub", "subq") and len(ins.ops) == 2 and ins.ops[1] == "%rsp":
                m = IMM_RE.match(ins.ops[0])
                if not m:
                    return None
                off += int(m.group(1), 0)
            elif "rsp" in ins.writes():
                return None
            elif mn in ("mov", "movq", "movl") and len(ins.ops) == 2:
                mm = mem(ins.ops[1])
                if mm is not None and mm[1] == "rsp" and mm[2] is None and mm[0] + off == slot:
                    m = IMM_RE.match(ins.ops[0])
                    if m:
                        return ("imm", int(m.group(1), 0))
                    r = reg_of(ins.ops[0])
                    return self.reg_value(r, j, budget) if r else None
            j = self._prev(j)
        return None

    def arg(self, n, k):
        if n < len(ARG_REGS):
            return self.reg_value(ARG_REGS[n], k)
        return self.stack_value(8 * (n - len(ARG_REGS)), k)


def log_calls(insns, names, image, bias=0):
    """[LogCall] of the decoded function INSNS (sorted by address); NAMES[k]
    is the imported function called by INSNS[k] or None; IMAGE reads
    strings at file addresses (runtime address - BIAS)."""
    tracer = Tracer(insns)
    out = []
    for k, ins in enumerate(insns):
        if ins.kind != "call" or names[k] not in PRINTF_FORMAT_ARG:
            continue
        if len(out) >= MAX_LOG_CALLS:
            break
        fmt_arg = PRINTF_FORMAT_ARG[names[k]]
        v = tracer.arg(fmt_arg, k)
        if v is None or v[0] != "addr":
            continue
        fmt = image.string(v[1] - bias)
        if not fmt or "%" not in fmt:
            continue
        convs = conversions(fmt)
        if not convs:
            continue
        for i in range(len(convs) - 2):
            if (convs[i][0], convs[i + 1][0]) != ("s", "s") or convs[i + 2][0] not in "di":
                continue
            first = fmt_arg + 1
            f = tracer.arg(first + convs[i][1], k)
            fn = tracer.arg(first + convs[i + 1][1], k)
            ln = tracer.arg(first + convs[i + 2][1], k)
            if not (f and fn and ln) or f[0] != "addr" or fn[0] != "addr" or ln[0] != "imm":
                continue
            fname = image.string(f[1] - bias, 256)
            func = image.string(fn[1] - bias, MAX_NAME + 1)
            if fname and func and FILE_RE.match(fname) and IDENT_RE.match(func) and \
                    0 < ln[1] < 10000000:
                out.append(LogCall(ins.addr - bias, fname, func, fn[1] - bias, ln[1]))
                break
    return out


class Naming(object):
    """What a function's log calls say of its name."""
    __slots__ = ("name", "candidates", "calls")

    def __init__(self, name, candidates, calls):
        self.name = name              # the name, when the rule gives one
        self.candidates = candidates  # otherwise the names its log calls carry (sorted)
        self.calls = calls            # number of log calls found


def decide(calls, ranges, image):
    """Naming of a function with log calls CALLS (LogCall) whose code occupies RANGES [(start, end)] of
    file addresses; None when it has no log call."""
    if not calls:
        return None
    names = {}
    for c in calls:
        names.setdefault(c.function, set()).add(c.string)
    if len(names) == 1:
        name, addrs = list(names.items())[0]
        refs = image.refs()
        inside = all(any(a <= r < b for a, b in ranges)
                     for addr in addrs for r in refs.get(addr, ()))
        if inside and all(refs.get(addr) for addr in addrs):
            return Naming(name, (), len(calls))
    return Naming(None, tuple(sorted(names))[:MAX_CANDIDATES], len(calls))



class Namer(object):
    """Names frames without a symbol; one per analysis, sharing the
    ``codereader.CodeReader`` (its modules and decoded functions).  Every
    result is cached per function; never raises."""

    def __init__(self, reader):
        self.reader = reader
        self._images = {}         # module path -> Image
        self._done = {}           # (module path, function start) -> Naming or None
        self._seen = set()        # ids of the FrameInfos looked at (shared by threads)

    def name(self, frame, info):
        """Naming of the function FRAME (FrameInfo INFO) is in, or None."""
        if id(info) in self._seen:
            return None           # already looked at (and marked) for another thread
        self._seen.add(id(info))
        try:
            got = self.reader.function_at(frame, info)
            if got is None:
                return None
            mod, fde = got
            key = (mod.path, fde.start)
            if key in self._done:
                return self._done[key]
            self._done[key] = None
            code = self.reader.code(frame, mod, fde)
            if code is None:
                return None
            image = self._images.get(mod.path)
            if image is None:
                image = self._images[mod.path] = Image(mod.path, mod.elf.sections)
            calls = log_calls(code.insns, code.names, image, mod.bias)
            ranges = set()
            if calls:
                for ins in code.insns:
                    d = mod.elf.fde_at(ins.addr - mod.bias)
                    if d is not None:
                        ranges.add((d.start, d.end))
            got = self._done[key] = decide(calls, sorted(ranges), image)
            return got
        except (ValueError, KeyError, IndexError, TypeError, OverflowError, struct.error,
                re.error, OSError, IOError):
            return None
