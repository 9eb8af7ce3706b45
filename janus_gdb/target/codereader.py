"""Lock claims of frames without line info, read from their machine code.

The gdb side of ``machinecode``: finds the function around a frame's pc
from the ``.eh_frame`` of its file on disk (``elffile``), disassembles it
read-only with ``gdb.Architecture.disassemble`` (on a core the text comes
from the executable and library files), and evaluates the lock addresses
in the frame (registers as gdb's unwinder restores them).  One
disassembly and one data flow per function and point, shared by every
thread stopped there.  x86_64 with AT&T disassembly only; anything else,
and every failure, leaves the frame unanalysed.
"""

import os
import re
import struct

import gdb  # pylint: disable=import-error

from . import elffile
from . import machinecode
from ..model import Claim

MAX_FRAGMENTS = 8
# local functions decoded to show that a call of them takes no lock
MAX_SUMMARIES = 96
SUMMARY_DEPTH = 3
_TEXT_RE = re.compile(r"^\s*0x([0-9a-f]+) - 0x[0-9a-f]+ is \.text(?: in (.+?))?\s*$")


class Module(object):
    __slots__ = ("path", "name", "elf", "bias")

    def __init__(self, path, elf, bias):
        self.path = path
        self.name = os.path.basename(path)
        self.elf = elf
        self.bias = bias


class CodeReader(object):
    """One per analysis: module biases, decoded functions and results."""

    def __init__(self):
        self._texts = None        # {path or None (the executable): runtime .text start}
        self._modules = {}        # path -> Module or None
        self._codes = {}          # (path, function start) -> machinecode.Code or None
        self._points = {}         # (pc, caller) -> (Module, Code, index) or None
        self._usable = None
        self.unsupported = None   # why machine code cannot be read here (for a warning)
        self._arch = None
        self._lock_free = {}      # (path, function start) -> bool
        self._summaries = 0

    # --- the target's modules ------------------------------------------------------

    def _usable_target(self, frame):
        if self._usable is None:
            ok = True
            try:
                arch = frame.architecture()
                if "x86-64" not in arch.name() or not hasattr(arch, "disassemble"):
                    self.unsupported = "the %s architecture" % arch.name()
                elif gdb.parameter("disassembly-flavor") not in (None, "att"):
                    self.unsupported = "`set disassembly-flavor intel`"
            except (gdb.error, RuntimeError, AttributeError):
                self.unsupported = "this gdb"
            self._usable = self.unsupported is None
        return self._usable

    def _load_texts(self):
        self._texts = {}
        try:
            text = gdb.execute("info files", to_string=True)
        except gdb.error:
            return
        for line in text.splitlines():
            m = _TEXT_RE.match(line)
            if m:
                self._texts.setdefault(m.group(2), int(m.group(1), 16))

    def module(self, pc):
        """Module (file, ELF data, load bias) containing PC, or None."""
        try:
            path = gdb.solib_name(pc)
        except (gdb.error, RuntimeError):
            return None
        key = path
        if key in self._modules:
            return self._modules[key]
        if self._texts is None:
            self._load_texts()
        mod = None
        if path is None:
            try:
                path = gdb.current_progspace().filename
            except (gdb.error, RuntimeError, AttributeError):
                path = None
            start = self._texts.get(None)
        else:
            start = self._texts.get(path)
        if path and start is not None:
            elf = elffile.load(path)
            if elf is not None and elf.text_addr is not None:
                mod = Module(path, elf, start - elf.text_addr)
        self._modules[key] = mod
        return mod

    # --- functions ------------------------------------------------------------------

    def _name_of(self, mod):
        elf, bias = mod.elf, mod.bias

        def name_of(ins):
            """The imported function a call or jump goes to; None when unknown
            or local (a local function could be a lock wrapper)."""
            if ins.sym and "+" not in ins.sym:
                for suffix in ("@plt", "@got.plt"):
                    if ins.sym.endswith(suffix):
                        return ins.sym[:-len(suffix)]
                if ins.sym in machinecode.KNOWN_CALLS:   # linked in: g_mutex_lock itself
                    return ins.sym
            if ins.slot is not None:
                return elf.got.get(ins.slot - bias)
            if ins.target is not None and elf.in_plt(ins.target - bias):
                return elf.plt_target(ins.target - bias)
            if ins.target is not None:
                name = elf.exports.get(ins.target - bias)
                if name in machinecode.KNOWN_CALLS:
                    return name
            return None
        return name_of

    def _lock_free_of(self, mod):
        def lock_free(ins):
            """The call's target is a local function of MOD that returns with
            no lock taken or released (``machinecode.Code.neutral``)."""
            return ins.target is not None and self._is_lock_free(mod, ins.target, 0)
        return lock_free

    def _is_lock_free(self, mod, target, depth):
        t = target - mod.bias
        key = (mod.path, t)
        if key in self._lock_free:
            return self._lock_free[key]
        if depth >= SUMMARY_DEPTH or self._summaries >= MAX_SUMMARIES or self._arch is None:
            return False
        fde = mod.elf.fde_at(t)
        if fde is None or fde.start != t or not fde.entry:
            self._lock_free[key] = False
            return False
        self._summaries += 1
        self._lock_free[key] = False          # while in progress (recursion): not shown
        result = False
        try:
            insns = self._decode_function(self._arch, mod, fde)

            def deeper(ins):
                return ins.target is not None and self._is_lock_free(mod, ins.target,
                                                                     depth + 1)
            code = machinecode.Code(insns, target, self._name_of(mod), deeper)
            result = code.neutral()
        except (gdb.error, gdb.MemoryError, RuntimeError, ValueError, KeyError, IndexError,
                machinecode.DecodeError):
            result = False
        self._lock_free[key] = result
        return result

    def _disassemble(self, arch, start, end):
        raw = arch.disassemble(start, end - 1, machinecode.MAX_INSNS + 1)
        return machinecode.decode(raw)

    def _decode_function(self, arch, mod, fde):
        """The instructions of the function FDE starts, with its ``.cold``
        fragments (out-of-range jumps into a range whose CFI starts inside a
        frame).  Raises DecodeError for a jump it cannot follow."""
        insns = self._disassemble(arch, mod.bias + fde.start, mod.bias + fde.end)
        ranges = [(fde.start, fde.end)]
        todo = [i for i in insns if i.kind in ("jmp", "jcc") and i.target is not None]
        while todo:
            ins = todo.pop()
            t = ins.target - mod.bias
            if any(a <= t < b for a, b in ranges) or mod.elf.in_plt(t):
                continue
            frag = mod.elf.fde_at(t)
            if frag is not None and frag.entry and frag.start == t:
                continue                  # a tail call of another function
            if frag is None or frag.entry or len(ranges) > MAX_FRAGMENTS:
                raise machinecode.DecodeError("a jump to 0x%x that cannot be followed" % t)
            more = self._disassemble(arch, mod.bias + frag.start, mod.bias + frag.end)
            ranges.append((frag.start, frag.end))
            insns.extend(more)
            todo.extend(i for i in more if i.kind in ("jmp", "jcc") and i.target is not None)
            if len(insns) > machinecode.MAX_INSNS:
                raise machinecode.DecodeError("function too long")
        return insns

    def code(self, frame, mod, fde):
        key = (mod.path, fde.start)
        if key in self._codes:
            return self._codes[key]
        code = None
        try:
            arch = frame.architecture()
            self._arch = arch
            insns = self._decode_function(arch, mod, fde)
            code = machinecode.Code(insns, mod.bias + fde.start, self._name_of(mod),
                                    self._lock_free_of(mod))
        except (gdb.error, gdb.MemoryError, RuntimeError, ValueError, KeyError, IndexError,
                machinecode.DecodeError):
            code = None
        self._codes[key] = code
        return code

    @staticmethod
    def _is_caller(frame):
        """True when FRAME's pc is a return address: the frame is neither the
        newest real one nor interrupted by a signal (inlined frames share a
        pc); None when gdb cannot tell."""
        try:
            newer = frame.newer()
            for _ in range(64):
                if newer is None or newer.type() != gdb.INLINE_FRAME:
                    break
                newer = newer.newer()
            return newer is not None and newer.type() != gdb.SIGTRAMP_FRAME
        except (gdb.error, RuntimeError):
            return None

    def function_at(self, frame, info):
        """(Module, Fde) of the function (its ``.eh_frame`` entry, not a
        ``.cold`` fragment) FRAME is in, or None."""
        caller = self._is_caller(frame)
        if caller is None or not self._usable_target(frame):
            return None
        where = info.pc - 1 if caller else info.pc
        mod = self.module(where)
        if mod is None:
            return None
        fde = mod.elf.fde_at(where - mod.bias)
        if fde is None or not fde.entry:
            return None
        return mod, fde

    def _point(self, frame, info):
        caller = self._is_caller(frame)
        if caller is None:
            return None
        key = (info.pc, caller)
        if key in self._points:
            return self._points[key]
        got = None
        # a caller's return address may be the next function's first byte
        # (after a call that does not return): look up the call's own byte
        where = info.pc - 1 if caller else info.pc
        mod = self.module(where)
        if mod is not None:
            fde = mod.elf.fde_at(where - mod.bias)
            if fde is not None and fde.entry:
                code = self.code(frame, mod, fde)
                if code is not None:
                    k = code.point_of(info.pc, caller)
                    if k is not None:
                        got = (mod, code, k, fde)
        self._points[key] = got
        return got

    # --- claims ---------------------------------------------------------------------

    def claims(self, frame, info):
        """(claims, complete) of FRAME (FrameInfo INFO): claims None when its
        machine code could not be analysed; COMPLETE when the frame can count
        as analysed (``machinecode`` docstring).  Never raises."""
        try:
            return self._claims(frame, info)
        except (machinecode.DecodeError, gdb.error, gdb.MemoryError, RuntimeError, ValueError,
                KeyError, IndexError, TypeError, OverflowError, struct.error):
            return None, False

    def _claims(self, frame, info):
        if not self._usable_target(frame):
            return None, False
        point = self._point(frame, info)
        if point is None:
            return None, False
        mod, code, k, fde = point
        res = code.held_at(k)
        complete = res.complete
        at_insn = code.insns[k]
        at = at_insn.addr - mod.bias
        out = []
        for h in res.held:
            addr = self._address(frame, h.key)
            if addr is None:
                complete = False
                continue
            calls = [c - mod.bias for c in h.calls]
            detail = {"module": mod.name, "func": fde.start, "at": at, "call_at": calls,
                      "call": h.name, "at_call": at_insn.kind == "call"}
            if h.key[0] == "abs":
                expr = "%s+0x%x" % (mod.name, h.key[1] - mod.bias)
            elif h.key[0] == "slot":
                expr = "*(%%%s%+#x)%+#x" % h.key[1:]
            else:
                expr = "%%%s%+#x" % (h.key[1], h.key[2])
            out.append(Claim(info.level, info.function, None, None, expr, addr,
                             machinecode_kind(h.kind), conditional=h.conditional or h.trylock,
                             trylock=h.trylock, mode=h.mode, origin="machine-code",
                             code=detail))
        for key in res.released:
            addr = self._address(frame, key)
            if addr is None:
                continue
            out.append(Claim(info.level, info.function, None, None, "released", addr,
                             released=True, origin="machine-code",
                             code={"module": mod.name, "func": fde.start, "at": at}))
        return out, complete

    @staticmethod
    def _address(frame, key):
        """The lock address of a ``machinecode`` key, evaluated in FRAME."""
        if key[0] == "abs":
            return key[1]
        try:
            value = frame.read_register(key[1])
            if value.is_optimized_out:
                return None
            base = int(value) & ((1 << 64) - 1)
            if key[0] == "reg":
                return (base + key[2]) & ((1 << 64) - 1)
            if key[0] == "slot":
                data = bytes(gdb.selected_inferior().read_memory(
                    (base + key[2]) & ((1 << 64) - 1), 8))
                return (struct.unpack("<Q", data)[0] + key[3]) & ((1 << 64) - 1)
        except (gdb.error, gdb.MemoryError, RuntimeError, ValueError, OverflowError,
                struct.error):
            return None
        return None


def machinecode_kind(kind):
    """The model's lock kind of a lock function's kind."""
    return {"gmutex": "gmutex", "pthread_mutex": "pthread_mutex",
            "pthread_rwlock": "pthread_rwlock"}.get(kind)
