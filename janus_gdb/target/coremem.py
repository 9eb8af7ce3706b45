"""An ELF core file read directly, without gdb: its threads and their
registers (the ``NT_PRSTATUS`` notes), its memory (the ``PT_LOAD``
segments) and the files it had mapped (``NT_FILE``).  Stdlib only; the file
is opened once, read with pread, and every read is bounded.  Garbage gives
CoreFileError (a one-line message) or None, never another exception.

Issue 14's fast path: ``coregroups`` reads every thread through it.
"""

import array
import bisect
import os
import struct

from .corefile import ET_CORE, NT_FILE, PN_XNUM, PT_NOTE, CoreFileError, nt_file_entries

PT_LOAD = 1
NT_PRSTATUS = 1
NT_AUXV = 6
EM_X86_64 = 62
EM_AARCH64 = 183
MAX_NOTE_NAME = 64
MAX_THREADS = 1 << 20
MAX_SEGMENTS = 1 << 22
MAX_READ = 64 << 20

# struct elf_prstatus (64-bit Linux): pr_pid at 32, pr_reg at 112
PR_PID = 32
PR_REG = 112
# user_regs_struct of x86_64, in order
X86_64_REGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax",
               "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
               "fs_base", "gs_base", "ds", "es", "fs", "gs")
# struct user_pt_regs of aarch64: x0..x30, sp, pc, pstate
AARCH64_REGS = tuple("x%d" % i for i in range(31)) + ("sp", "pc", "pstate")
REG_NAMES = {EM_X86_64: X86_64_REGS, EM_AARCH64: AARCH64_REGS}
# the names of the pc, the stack pointer and the frame pointer
PC_SP_FP = {EM_X86_64: ("rip", "rsp", "rbp"), EM_AARCH64: ("pc", "sp", "x29")}


class Thread(object):
    """One NT_PRSTATUS note: a thread's LWP and general registers ``regs``
    {name: int}, decoded when asked for (ten thousand dicts of 27 numbers
    cost 20 MiB; their bytes 2.5)."""
    __slots__ = ("lwp", "_names", "_raw", "index")

    def __init__(self, lwp, names, raw, index):
        self.lwp = lwp
        self._names = names         # register names, in the order of RAW's words
        self._raw = raw             # their little-endian 64-bit words
        # its place among the notes (0: the thread that got the signal);
        # gdb numbers a core's threads in this order: gdb's num = index + 1
        # (tests/test_fastcore.py checks it)
        self.index = index

    @property
    def regs(self):
        if not self._names:
            return {}
        return dict(zip(self._names, struct.unpack("<%dQ" % len(self._names), self._raw)))


class Mapping(object):
    """One NT_FILE entry: [start, end) maps PATH from file offset OFFSET."""
    __slots__ = ("start", "end", "offset", "path")

    def __init__(self, start, end, offset, path):
        self.start = start
        self.end = end
        self.offset = offset
        self.path = path


class MappedFiles(object):
    """The files a process had mapped, sorted by address: ``mappings``
    ([Mapping]) and the lookup by address (a core's NT_FILE, a live
    process's /proc/PID/maps)."""
    mappings = ()
    _map_starts = ()

    def set_mappings(self, mappings):
        """Use MAPPINGS ([Mapping]) as the mapped files, e.g. those found
        from the dynamic linker's list when the core has no NT_FILE note."""
        self.mappings = sorted(mappings, key=lambda m: m.start)
        self._map_starts = [m.start for m in self.mappings]

    def mapping_at(self, addr):
        """The Mapping holding ADDR, or None."""
        i = bisect.bisect_right(self._map_starts, addr) - 1
        if i < 0:
            return None
        m = self.mappings[i]
        return m if addr < m.end else None


class _Segments(object):
    """The PT_LOAD segments as a read-only sequence of (vaddr, memsz,
    offset, filesz, lost) tuples, stored in arrays (20,000 tuples of five
    numbers cost 5 MiB)."""

    def __init__(self, segs):
        segs = sorted(segs)
        self.starts = array.array("Q", (x[0] for x in segs))
        self._memsz = array.array("Q", (x[1] for x in segs))
        self._offset = array.array("Q", (x[2] for x in segs))
        self._filesz = array.array("Q", (x[3] for x in segs))
        self._lost = frozenset(i for i, x in enumerate(segs) if x[4])

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, i):
        if i < 0:
            i += len(self.starts)
        return (self.starts[i], self._memsz[i], self._offset[i], self._filesz[i],
                i in self._lost)

    def __iter__(self):
        for i in range(len(self.starts)):
            yield self[i]


class _FileView(object):
    """Bytes of an open file by offset, read with pread through a 1 MiB
    window: the notes of 10,000 threads (35 MiB) parsed through a mapping
    counted in the peak RSS (issue 14: no more than gdb's own)."""
    WINDOW = 1 << 20

    def __init__(self, fd):
        self._fd = fd
        self._size = os.fstat(fd).st_size
        self._start = 0
        self._buf = b""

    def __len__(self):
        return self._size

    def read(self, at, n):
        """N bytes at AT (fewer at the end of the file)."""
        if at < 0 or n <= 0:
            return b""
        rel = at - self._start
        if 0 <= rel and rel + n <= len(self._buf):
            return self._buf[rel:rel + n]
        if n > self.WINDOW:
            return os.pread(self._fd, n, at)
        self._start = at
        self._buf = os.pread(self._fd, self.WINDOW, at)
        return self._buf[:n]

    def __getitem__(self, item):
        if isinstance(item, slice):
            return self.read(item.start or 0, (item.stop or self._size) - (item.start or 0))
        got = self.read(item, 1)
        if not got:
            raise IndexError(item)
        return got[0]

    def unpack_from(self, fmt, at):
        size = struct.calcsize(fmt)
        data = self.read(at, size)
        if len(data) != size:
            raise struct.error("truncated")
        return struct.unpack(fmt, data)

    def close(self):
        self._buf = b""


class CoreMemory(MappedFiles):
    """A 64-bit little-endian ELF core, opened once.  Use as a context
    manager or call close()."""

    def __init__(self, path):
        self.path = path
        self.machine = None
        self.threads = []       # [Thread] in note order
        self.mappings = []      # [Mapping] sorted by start
        self.auxv = {}          # NT_AUXV: {AT_* type: value}
        self.warnings = []      # what was cut short or skipped
        self._seg_starts = []
        self._segs = _Segments(())  # (vaddr, memsz, offset, filesz, lost) sorted by vaddr
        self._map_starts = []
        self._f = None
        self._fd = None
        self._mm = None     # only while the headers and notes are parsed
        try:
            self._f = open(path, "rb")
            self._fd = self._f.fileno()
            self._mm = _FileView(self._fd)
        except (OSError, IOError, ValueError) as exc:
            self.close()
            raise CoreFileError("cannot read core file %s: %s"
                                % (path, getattr(exc, "strerror", None) or exc))
        try:
            self._parse()
        except (struct.error, IndexError, ValueError, OverflowError):
            self.close()
            raise CoreFileError("%s is not a usable core file: its ELF headers are truncated"
                                % path)
        # the headers and notes are parsed; memory is read with pread
        self._mm.close()
        self._mm = None

    def close(self):
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- parsing --------------------------------------------------------------

    def _parse(self):
        mm = self._mm
        size = len(mm)
        if size < 64 or mm[:4] != b"\x7fELF":
            raise CoreFileError("%s is not a core file: not an ELF file" % self.path)
        if mm[4] != 2 or mm[5] != 1:
            raise CoreFileError("%s: only 64-bit little-endian cores are read directly"
                                % self.path)
        (e_type, e_machine, _, _, e_phoff, e_shoff, _, _, e_phentsize, e_phnum,
         _, _, _) = mm.unpack_from("<HHIQQQIHHHHHH", 16)
        if e_type != ET_CORE:
            raise CoreFileError("%s is not a core file (ELF type %d)" % (self.path, e_type))
        self.machine = e_machine
        if e_phnum == PN_XNUM and e_shoff and e_shoff + 64 <= size:
            e_phnum, = mm.unpack_from("<I", e_shoff + 44)
        if e_phentsize < 56 or e_phnum > MAX_SEGMENTS:
            raise CoreFileError("%s is not a usable core file: bad program headers" % self.path)
        if e_phoff + e_phnum * e_phentsize > size:
            raise CoreFileError("%s is not a usable core file: its program headers are "
                                "truncated" % self.path)
        segs = []
        for i in range(e_phnum):
            p_type, _, p_offset, p_vaddr, _, p_filesz, p_memsz, _ = mm.unpack_from(
                "<IIQQQQQQ", e_phoff + i * e_phentsize)
            if p_type == PT_LOAD and p_memsz:
                lost = False
                if p_offset + p_filesz > size:
                    # a truncated core: keep what is there; the rest is absent, not zeros
                    lost = True
                    p_filesz = max(0, min(p_filesz, size - p_offset))
                segs.append((p_vaddr, p_memsz, p_offset, p_filesz, lost))
            elif p_type == PT_NOTE:
                if p_offset >= size:
                    self.warnings.append("the notes are beyond the end of the file")
                    continue
                if p_offset + p_filesz > size:
                    self.warnings.append("the notes are cut short by the end of the file")
                self._notes(p_offset, min(p_filesz, size - p_offset))
        segs.sort()
        cut = sum(1 for seg in segs if seg[4])
        if cut:
            self.warnings.append("the core file is truncated: %d of %d memory segments are "
                                 "cut short or missing" % (cut, len(segs)))
        self._segs = _Segments(segs)
        self._seg_starts = self._segs.starts
        self.set_mappings(self.mappings)

    def _notes(self, offset, size):
        mm = self._mm
        pos = offset
        end = offset + size
        names = REG_NAMES.get(self.machine)
        while pos + 12 <= end:
            namesz, descsz, ntype = mm.unpack_from("<III", pos)
            name_at = pos + 12
            desc_at = name_at + ((namesz + 3) & ~3)
            if namesz > MAX_NOTE_NAME or desc_at + descsz > end:
                self.warnings.append("a note at file offset %d is cut short" % pos)
                break
            if mm[name_at:name_at + namesz].rstrip(b"\0") == b"CORE":
                if ntype == NT_PRSTATUS and len(self.threads) < MAX_THREADS:
                    self._prstatus(desc_at, descsz, names)
                elif ntype == NT_FILE and not self.mappings:
                    self._files(desc_at, descsz)
                elif ntype == NT_AUXV and not self.auxv and descsz <= 4096:
                    vals = mm.unpack_from("<%dQ" % (descsz // 8), desc_at)
                    self.auxv = dict(zip(vals[0::2], vals[1::2]))
            pos = desc_at + ((descsz + 3) & ~3)

    def _prstatus(self, at, size, names):
        mm = self._mm
        lwp, = mm.unpack_from("<i", at + PR_PID)
        if names and size >= PR_REG + 8 * len(names):
            self.threads.append(Thread(lwp, names, mm[at + PR_REG:at + PR_REG + 8 * len(names)],
                                       len(self.threads)))
        else:
            self.threads.append(Thread(lwp, (), b"", len(self.threads)))

    def _files(self, at, size):
        got = nt_file_entries(self._mm[at:at + size])
        if got is None:
            if size >= 16:
                self.warnings.append("the mapped-files note is garbage")
            return
        page, entries = got
        for start, stop, pgoff, path in entries:
            if stop > start:
                self.mappings.append(Mapping(start, stop, pgoff * (page or 1), path or ""))

    # --- queries --------------------------------------------------------------

    def segment_at(self, addr):
        """(vaddr, memsz, offset, filesz, lost) of the PT_LOAD segment holding
        ADDR, or None.  LOST: the file ends before the segment's data does."""
        i = bisect.bisect_right(self._seg_starts, addr) - 1
        if i < 0:
            return None
        seg = self._segs[i]
        return seg if addr < seg[0] + seg[1] else None

    def read(self, addr, size):
        """SIZE bytes of the process's memory at ADDR (across adjacent
        segments), or None when any of it is not in the core.  Bytes past a
        segment's p_filesz read as zeros (memory the core did not store), or
        give None when the core file was cut short there."""
        if size < 0 or size > MAX_READ or addr < 0 or self._f is None:
            return None
        out = []
        while size > 0:
            seg = self.segment_at(addr)
            if seg is None:
                return None
            vaddr, memsz, offset, filesz, lost = seg
            rel = addr - vaddr
            n = min(size, memsz - rel)
            if lost and rel + n > filesz:
                return None
            if rel >= filesz:
                out.append(b"\0" * n)
            else:
                have = min(n, filesz - rel)
                # pread, not the mapping: a page touched through the mapping
                # maps its neighbours too (fault-around), and a walk touching
                # every thread's stack would count a gigabyte core in the RSS
                try:
                    raw = os.pread(self._fd, have, offset + rel)
                except OSError:
                    return None
                if len(raw) != have:
                    return None
                out.append(raw)
                if have < n:
                    out.append(b"\0" * (n - have))
            addr += n
            size -= n
        return out[0] if len(out) == 1 else b"".join(out)

    def read_stored(self, addr, size):
        """SIZE bytes at ADDR only when the core file stores all of them in
        one segment, else None: where a core holds no bytes (a read-only
        file mapping the kernel left out, p_filesz 0) gdb reads the mapped
        file instead, so zeros would differ from what gdb shows."""
        seg = self.segment_at(addr)
        if seg is None or size <= 0 or size > MAX_READ or self._f is None:
            return None
        vaddr, _memsz, offset, filesz, _lost = seg
        rel = addr - vaddr
        if rel + size > filesz:
            return None
        try:
            raw = os.pread(self._fd, size, offset + rel)
        except OSError:
            return None
        return raw if len(raw) == size else None

    def read_u64(self, addr):
        """The little-endian 8-byte word at ADDR, or None."""
        raw = self.read(addr, 8)
        return struct.unpack("<Q", raw)[0] if raw is not None and len(raw) == 8 else None

    def read_cstr(self, addr, limit=4096):
        """The NUL-terminated string at ADDR (at most LIMIT bytes, across
        segments), decoded, or None."""
        out = b""
        while len(out) < limit:
            seg = self.segment_at(addr + len(out))
            if seg is None:
                return None
            n = min(limit - len(out), seg[0] + seg[1] - (addr + len(out)), 256)
            chunk = self.read(addr + len(out), n)
            if chunk is None:
                return None
            end = chunk.find(b"\0")
            if end >= 0:
                return (out + chunk[:end]).decode("utf-8", "surrogateescape")
            out += chunk
        return None

    def pc_sp_fp(self, thread):
        """(pc, sp, frame pointer) of THREAD, or None when its registers are unknown."""
        names = PC_SP_FP.get(self.machine)
        if not names or not thread.regs:
            return None
        return tuple(thread.regs[n] for n in names)
