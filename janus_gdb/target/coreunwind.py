"""Every thread's stack of an x86_64 (or aarch64) core, unwound without gdb: registers
from the core's NT_PRSTATUS notes (coremem), ``.eh_frame`` CFI (cfi) and
symbol tables (elfsyms) of the files the core had mapped, read from disk at
their NT_FILE paths (or, for a core without that note, the paths of the
dynamic linker's list: linkmap).  Stdlib only, no gdb; bounded depth; garbage stops a
walk with a reason, never an exception.

A frame is (pc, cfa, how): how is "cfi", or "fp" when the caller was found
by the frame-pointer chain (only with fp_fallback=True, when a pc has no CFI).
"""

import os
import struct

from . import cfi, elfsyms, linkmap
from .coremem import EM_AARCH64, EM_X86_64
from .elffile import ElfError, elf64_head, load_segments, read_bytes, section_headers

MAX_FRAMES = 256
PAGE = 4096
# DWARF register numbers of x86_64
DWARF_X86_64 = {"rax": 0, "rdx": 1, "rcx": 2, "rbx": 3, "rsi": 4, "rdi": 5, "rbp": 6,
                "rsp": 7, "r8": 8, "r9": 9, "r10": 10, "r11": 11, "r12": 12, "r13": 13,
                "r14": 14, "r15": 15, "rip": 16}
RSP, RBP, RIP = 7, 6, 16
# aarch64: x0..x30 are 0..30, sp 31; the return address column is x30
DWARF_AARCH64 = dict([("x%d" % i, i) for i in range(31)] + [("sp", 31)])
# registers a callee saves: their value in an older frame is what the CFI
# recovers (others are not known there; gdb says <not saved>)
CALLEE_SAVED = {EM_X86_64: frozenset(("rbx", "rbp", "r12", "r13", "r14", "r15")),
                EM_AARCH64: frozenset("x%d" % i for i in range(19, 30))}


class Arch(object):
    """What the unwinder needs of an architecture."""

    def __init__(self, columns, pc_name, sp, fp, ra, ra_default_same, addr_mask):
        self.columns = columns      # register name -> DWARF column
        self.pc_name = pc_name      # the register holding frame 0's pc
        self.sp = sp                # DWARF column of the stack pointer (= the caller's CFA)
        self.fp = fp                # DWARF column of the frame pointer
        self.ra = ra                # DWARF column of the return address
        # a return-address column without a rule: the same value (aarch64
        # leaf functions keep it in x30) or undefined (x86_64: a CIE always
        # says where it is)
        self.ra_default_same = ra_default_same
        self.addr_mask = addr_mask  # strips pointer-authentication bits


ARCHES = {EM_X86_64: Arch(DWARF_X86_64, "rip", RSP, RBP, RIP, False, (1 << 64) - 1),
          EM_AARCH64: Arch(DWARF_AARCH64, "pc", 31, 29, 30, True, (1 << 48) - 1)}


class ObjFile(object):
    """One file the core had mapped: its CFI and symbols (file addresses)
    and its load bias (runtime address = file address + bias)."""

    def __init__(self, path, eh, phdrs, build_id=None):
        self.path = path
        self.eh = eh            # cfi.EhFrame or None
        self.phdrs = phdrs      # [(p_vaddr, p_offset)] of PT_LOAD
        self.build_id = build_id
        self._syms = None

    @property
    def symbols(self):
        if self._syms is None:
            self._syms = elfsyms.load(self.path)
        return self._syms

    def bias_for(self, mapping):
        """Load bias given one MAPPING (start, file offset) of this file."""
        best = None
        for vaddr, offset in self.phdrs:
            if offset - offset % PAGE <= mapping.offset and (best is None or offset > best[1]):
                best = (vaddr, offset)
        if best is None:
            return None
        return mapping.start - mapping.offset - (best[0] - best[1])


def load_obj(path):
    """ObjFile of PATH, or None when it is not a readable little-endian ELF64 file."""
    if not os.path.isfile(path):     # never a FIFO or a device named by garbage
        return None
    try:
        with open(path, "rb") as f:
            head = elf64_head(f)
            if head is None:
                return None
            phdrs = [(vaddr, offset) for vaddr, _size, offset in load_segments(f, head)]
            sections, _ = section_headers(f, head)
            eh = None
            sec = sections.get(".eh_frame")
            if sec is not None and sec[3] != 8 and sec[2]:
                data = read_bytes(f, sec[1], sec[2])
                hdr = sections.get(".eh_frame_hdr")
                hdr_data = read_bytes(f, hdr[1], hdr[2]) if hdr and hdr[2] < (16 << 20) else None
                eh = cfi.EhFrame(data, sec[0], hdr_data, hdr[0] if hdr else None)
            return ObjFile(path, eh, phdrs, elfsyms.build_id(f, sections))
    except (OSError, IOError, ElfError, struct.error, ValueError, IndexError):
        return None


class Unwinder(object):
    """Unwinds threads of one coremem.CoreMemory (x86_64)."""

    def __init__(self, core, fp_fallback=False, max_frames=MAX_FRAMES, exe=None):
        self.core = core
        self.fp_fallback = fp_fallback
        self.max_frames = max_frames
        # where the mapped files came from: the NT_FILE note, else the
        # dynamic linker's list in the core's memory (EXE: the executable)
        self.mappings_from = "NT_FILE"
        if not core.mappings:
            core.set_mappings(linkmap.find_mappings(core, exe))
            self.mappings_from = "link_map" if core.mappings else None
        self._objs = {}         # path -> ObjFile or None
        self._bias = {}         # (path, start) -> bias
        self.refused = {}       # path -> why its file on disk is not used

    def supported(self):
        return self.core.machine in ARCHES

    def _obj(self, pc):
        """(ObjFile, bias) of the file mapped at PC, or (None, None)."""
        m = self.core.mapping_at(pc)
        if m is None:
            return None, None
        if m.path not in self._objs:
            obj = load_obj(m.path)
            if obj is not None and obj.build_id:
                mapped = self._mapped_build_id(m.path, obj)
                if mapped is not None and mapped != obj.build_id:
                    self.refused[m.path] = ("%s is not the file the core had mapped (build ID "
                                            "%s on disk, %s in the core)"
                                            % (m.path, obj.build_id, mapped))
                    obj = None
            self._objs[m.path] = obj
        obj = self._objs[m.path]
        if obj is None:
            return None, None
        key = (m.path, m.start)
        bias = self._bias.get(key)
        if bias is None:
            bias = self._bias[key] = obj.bias_for(m)
        return (obj, bias) if bias is not None else (None, None)

    def _mapped_build_id(self, path, obj):
        """The GNU build ID of the copy of PATH the core had mapped, read
        from the core's memory (its ELF header and notes, which the kernel
        and gcore keep), or None when the core does not hold them."""
        first = [m for m in self.core.mappings if m.path == path and m.offset == 0]
        if not first:
            return None
        bias = obj.bias_for(first[0])
        head = self.core.read(first[0].start, 64)
        if bias is None or head is None or head[:4] != b"\x7fELF":
            return None
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        if phentsize < 56 or phnum > 256:
            return None
        table = self.core.read(first[0].start + phoff, phentsize * phnum)
        if table is None:
            return None
        for i in range(phnum):
            p_type, _, _, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", table,
                                                                    i * phentsize)
            if p_type != 4 or p_filesz > 4096:
                continue
            notes = self.core.read(bias + p_vaddr, p_filesz)
            pos = 0
            while notes is not None and pos + 12 <= len(notes):
                namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
                desc = pos + 12 + ((namesz + 3) & ~3)
                if desc + descsz > len(notes):
                    break
                if ntype == 3 and notes[pos + 12:pos + 15] == b"GNU":
                    return notes[desc:desc + descsz].hex()
                pos = desc + ((descsz + 3) & ~3)
        return None

    def unwind(self, thread, want_regs=False, limit=None):
        """([(pc, cfa, how)], why the walk stopped) of THREAD; WANT_REGS: each
        frame is (pc, cfa, how, {DWARF column: value}), the registers the
        frame had as far as the CFI recovers them (callee-saved ones).
        LIMIT: stop after that many frames."""
        arch = ARCHES.get(self.core.machine)
        if arch is None:
            return [], "unwinding is only done for x86_64 and aarch64 cores"
        named = thread.regs
        if not named:
            return [], "no registers"
        regs = dict((col, named[n]) for n, col in arch.columns.items() if n in named)
        pc = named.get(arch.pc_name)
        frames = []
        stack = _StackWindow(self.core, regs.get(arch.sp))
        prev_cfa = None
        same_cfa = 0
        signal = True           # frame 0: its pc is not a return address
        for _ in range(min(self.max_frames, limit or self.max_frames)):
            if not pc:
                return frames, "pc unknown"
            obj, bias = self._obj(pc)
            if obj is None:
                frames.append((pc, None, "cfi"))
                m = self.core.mapping_at(pc)
                if m is not None and m.path in self.refused:
                    return frames, self.refused[m.path]
                if m is not None:
                    return frames, "pc 0x%x is in %s, which cannot be read" % (pc, m.path)
                return frames, "pc 0x%x is in no mapped file" % pc
            look = pc if signal else pc - 1
            row = obj.eh.row_at(look - bias) if obj.eh is not None else None
            if row is None:
                if not self.fp_fallback:
                    frames.append((pc, None, "cfi"))
                    return frames, "no CFI for pc 0x%x" % pc
                step = self._fp_step(regs, arch)
                if step is None:
                    frames.append((pc, None, "fp"))
                    return frames, "frame-pointer chain ends at pc 0x%x" % pc
                cfa, new = step
                how = "fp"
                signal = False
            else:
                if row.cfa is None:
                    frames.append((pc, None, "cfi"))
                    return frames, "CFA is a DWARF expression at pc 0x%x (unsupported)" % pc
                base = regs.get(row.cfa[0])
                if base is None:
                    frames.append((pc, None, "cfi"))
                    return frames, "CFA register %d unknown at pc 0x%x" % (row.cfa[0], pc)
                cfa = (base + row.cfa[1]) & 0xffffffffffffffff
                new, why = self._apply(row, regs, cfa, arch, stack)
                if new is None:
                    frames.append((pc, cfa, "cfi"))
                    return frames, "%s at pc 0x%x" % (why, pc)
                how = "cfi"
                signal = row.signal
            # the CFA grows from frame to frame; an equal one (aarch64's
            # thread_start under start_thread) only in another function,
            # as gdb's frame ids allow, and not many times in a row
            if prev_cfa is not None and (cfa < prev_cfa or cfa == prev_cfa and (
                    pc == frames[-1][0] or same_cfa >= 4)):
                return frames, "CFA not increasing at pc 0x%x (corrupt stack?)" % pc
            same_cfa = same_cfa + 1 if cfa == prev_cfa else 0
            frames.append((pc, cfa, how, regs) if want_regs else (pc, cfa, how))
            prev_cfa = cfa
            if arch.ra not in new:
                return frames, "outermost (return address undefined)"
            regs = new
            pc = new[arch.ra] & arch.addr_mask
        return frames, "stopped at %d frames" % self.max_frames

    def _apply(self, row, regs, cfa, arch, stack=None):
        """(the caller's registers, None) or (None, why not)."""
        new = dict(regs)
        new[arch.sp] = cfa
        read = stack.read_u64 if stack is not None else self.core.read_u64
        for reg, (kind, val) in row.regs.items():
            if kind == cfi.OFFSET:
                v = read(cfa + val)
                if v is None:
                    return None, "saved register %d not in the core" % reg
                new[reg] = v
            elif kind == cfi.VAL_OFFSET:
                new[reg] = (cfa + val) & 0xffffffffffffffff
            elif kind == cfi.REGISTER:
                if val in regs:
                    new[reg] = regs[val]
                else:
                    new.pop(reg, None)
            elif kind == cfi.UNDEFINED:
                new.pop(reg, None)
            elif kind == cfi.SAME:
                pass
            else:
                return None, "register %d is a DWARF expression (unsupported)" % reg
        if row.ra_reg != arch.ra:
            if row.ra_reg in new:
                new[arch.ra] = new[row.ra_reg]
            else:
                new.pop(arch.ra, None)
        elif arch.ra not in row.regs and not arch.ra_default_same:
            new.pop(arch.ra, None)
        return new, None

    def _fp_step(self, regs, arch):
        fp = regs.get(arch.fp)
        if not fp:
            return None
        saved = self.core.read(fp, 16)
        if saved is None:
            return None
        old_fp, ra = struct.unpack("<QQ", saved)
        new = dict(regs)
        new[arch.fp] = old_fp
        new[arch.sp] = fp + 16
        new[arch.ra] = ra
        return fp + 16, new

    def name(self, pc, caller=True):
        """Function name at PC (a return address when CALLER: looked up at pc - 1), or None."""
        obj, bias = self._obj(pc)
        if obj is None:
            return None
        got = obj.symbols.lookup((pc - 1 if caller else pc) - bias)
        return got[0] if got else None

    def function(self, pc, caller=True):
        """(name, every alias, runtime start) of the function at PC, or None."""
        obj, bias = self._obj(pc)
        if obj is None:
            return None
        got = obj.symbols.lookup((pc - 1 if caller else pc) - bias)
        if not got:
            return None
        return got[0], obj.symbols.aliases(got[1]), got[1] + bias


class _StackWindow(object):
    """The words of one thread's stack from its stack pointer up, read with
    one pread (a walk reads a dozen saved registers; each read alone cost
    a system call); words outside it are read from the core one by one."""
    SIZE = 16 << 10

    def __init__(self, core, sp):
        self._core = core
        self._start = sp
        self._data = b""
        if sp:
            seg = core.segment_at(sp)
            if seg is not None:
                n = min(self.SIZE, seg[0] + seg[1] - sp)
                self._data = core.read_stored(sp, n) or b""

    def read_u64(self, addr):
        rel = addr - self._start if self._start else -1
        if 0 <= rel <= len(self._data) - 8:
            return struct.unpack_from("<Q", self._data, rel)[0]
        return self._core.read_u64(addr)


def walk_all(core, fp_fallback=False, exe=None):
    """[(thread, frames, names, why)] for every thread of CORE (a CoreMemory)."""
    un = Unwinder(core, fp_fallback, exe=exe)
    out = []
    for t in core.threads:
        frames, why = un.unwind(t)
        names = [un.name(pc, i > 0) for i, (pc, _cfa, _how) in enumerate(frames)]
        out.append((t, frames, names, why))
    return out
