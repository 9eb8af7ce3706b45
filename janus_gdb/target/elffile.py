"""What the machine-code pass needs from an ELF64 x86_64 file on disk: the
function ranges of ``.eh_frame`` (which ``strip --strip-all`` keeps), the
imported function behind each GOT slot and PLT stub, and the exported
functions of ``.dynsym``.  Pure stdlib (``struct``); no gdb.  Every read is
bounded; a file that is not what it claims gives None, never an exception.
"""

import bisect
import os
import struct

MAX_SECTIONS = 4096
MAX_SECTION_BYTES = 64 << 20
MAX_FDES = 400000

SHT_RELA = 4
R_X86_64_64 = 1
R_X86_64_GLOB_DAT = 6
R_X86_64_JUMP_SLOT = 7
STT_FUNC = 2
EM_X86_64 = 62

_cache = {}


class ElfError(Exception):
    pass


class Fde(object):
    """One function (or a fragment of one, e.g. a ``.cold`` part)."""
    __slots__ = ("start", "end", "entry")

    def __init__(self, start, end, entry):
        self.start = start
        self.end = end
        self.entry = entry      # False: its CFI starts inside a frame (a fragment)


class ElfFile(object):
    """Link-time (file) addresses throughout; add the load bias for runtime ones."""

    def __init__(self, path):
        self.path = path
        self.machine = None
        self.sections = {}      # name -> (sh_addr, offset, size, type, link, entsize)
        self._by_index = []
        self.text_addr = None
        self.fdes = []          # sorted by start
        self._starts = []
        self.got = {}           # GOT slot address -> imported function name
        self.exports = {}       # function address -> name (.dynsym)
        self.plt = []           # [(start, end)] of .plt, .plt.sec, .plt.got
        self._plt_names = {}    # PLT stub address -> name (filled lazily)
        self._read()

    # --- reading ---------------------------------------------------------------

    def _read(self):
        with open(self.path, "rb") as f:
            self._f = f
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                raise ElfError("not a little-endian ELF64 file")
            self.machine, = struct.unpack_from("<H", head, 0x12)
            self.sections, self._by_index = section_headers(f, head)
            if ".text" in self.sections:
                self.text_addr = self.sections[".text"][0]
            self._read_eh_frame()
            self._read_relocs()
            for name in (".plt", ".plt.sec", ".plt.got"):
                s = self.sections.get(name)
                if s is not None and s[2]:
                    self.plt.append((s[0], s[0] + s[2]))
            self._plt_bytes = {}
            for name in (".plt", ".plt.sec", ".plt.got"):
                s = self.sections.get(name)
                if s is not None and s[2] and s[2] <= MAX_SECTION_BYTES:
                    self._plt_bytes[s[0]] = self._bytes(s[1], s[2])
        self._f = None

    def _bytes(self, off, size):
        return read_bytes(self._f, off, size)

    def _read_eh_frame(self):
        s = self.sections.get(".eh_frame")
        if s is None or s[3] == 8:  # SHT_NOBITS (a debug-info file)
            return
        data = self._bytes(s[1], s[2])
        fdes = parse_eh_frame(data, s[0])
        fdes.sort(key=lambda d: d.start)
        self.fdes = fdes
        self._starts = [d.start for d in fdes]

    def _read_relocs(self):
        for addr, off, size, typ, link, entsize in list(self._by_index):
            if typ != SHT_RELA or entsize != 24 or not size or link >= len(self._by_index):
                continue
            symsec = self._by_index[link]
            if symsec[5] != 24 or symsec[4] >= len(self._by_index):
                continue
            strsec = self._by_index[symsec[4]]
            syms = self._bytes(symsec[1], symsec[2])
            strs = self._bytes(strsec[1], strsec[2])
            rel = self._bytes(off, size)
            for i in range(0, len(rel) - 23, 24):
                r_offset, r_info, _addend = struct.unpack_from("<QQq", rel, i)
                rtype, symi = r_info & 0xffffffff, r_info >> 32
                if rtype not in (R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT, R_X86_64_64):
                    continue
                name = _sym_name(syms, strs, symi)
                if name:
                    self.got[r_offset] = name
            if not self.exports:
                self._read_exports(syms, strs)

    def _read_exports(self, syms, strs):
        for i in range(0, len(syms) - 23, 24):
            st_name, st_info, _other, shndx, value, _size = struct.unpack_from(
                "<IBBHQQ", syms, i)
            if (st_info & 0xf) == STT_FUNC and shndx != 0 and value:
                end = strs.find(b"\0", st_name)
                if end > st_name:
                    self.exports.setdefault(value, strs[st_name:end].decode("latin-1"))

    # --- queries (file addresses) ------------------------------------------------

    def fde_at(self, addr):
        """The Fde covering ADDR, or None."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        d = self.fdes[i]
        return d if d.start <= addr < d.end else None

    def in_plt(self, addr):
        return any(a <= addr < b for a, b in self.plt)

    def plt_target(self, addr):
        """Name of the function a PLT stub at ADDR jumps to (through its GOT slot)."""
        if addr in self._plt_names:
            return self._plt_names[addr]
        name = None
        for start, data in self._plt_bytes.items():
            if not start <= addr < start + len(data):
                continue
            stub = data[addr - start:addr - start + 16]
            # jmp *disp32(%rip), possibly after endbr64 / the bnd prefix
            for i in range(0, len(stub) - 5):
                if stub[i] == 0xff and stub[i + 1] == 0x25:
                    disp, = struct.unpack_from("<i", stub, i + 2)
                    name = self.got.get(addr + i + 6 + disp)
                    break
        self._plt_names[addr] = name
        return name


def elf64_head(f):
    """The first 64 bytes of the little-endian ELF64 file F, or None."""
    head = f.read(64)
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return None
    return head


def load_segments(f, head, max_headers=4096):
    """[(p_vaddr, p_memsz, p_offset)] of the PT_LOAD program headers of the
    little-endian ELF64 file F whose first 64 bytes are HEAD (none when the
    header table is implausible)."""
    return [(vaddr, memsz, offset)
            for vaddr, memsz, offset, _filesz, _flags in pt_loads(f, head, max_headers)]


PF_W = 2


def pt_loads(f, head, max_headers=4096):
    """[(p_vaddr, p_memsz, p_offset, p_filesz, p_flags)] of the PT_LOAD
    program headers of the little-endian ELF64 file F whose first 64 bytes
    are HEAD (none when the header table is implausible).  P_FLAGS & PF_W:
    a writable segment."""
    phoff, = struct.unpack_from("<Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    if phentsize < 56 or phnum > max_headers:
        return []
    f.seek(phoff)
    raw = f.read(phentsize * phnum)
    out = []
    for i in range(len(raw) // phentsize):
        p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz = struct.unpack_from(
            "<IIQQQQQ", raw, i * phentsize)
        if p_type == 1 and p_memsz:     # PT_LOAD
            out.append((p_vaddr, p_memsz, p_offset, p_filesz, p_flags))
    return out


def section_headers(f, head):
    """({name: (sh_addr, offset, size, type, link, entsize)}, [the same by
    index]) of the little-endian ELF64 file F whose first 64 bytes are HEAD;
    ElfError when they are unusable."""
    shoff, = struct.unpack_from("<Q", head, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", head, 0x3A)
    if shentsize != 64 or not 0 < shnum < MAX_SECTIONS or shstrndx >= shnum:
        raise ElfError("no usable section headers")
    f.seek(shoff)
    table = f.read(64 * shnum)
    if len(table) != 64 * shnum:
        raise ElfError("truncated section headers")
    raw = [struct.unpack_from("<IIQQQQIIQQ", table, i * 64) for i in range(shnum)]
    strtab = read_bytes(f, raw[shstrndx][4], raw[shstrndx][5])
    sections = {}
    by_index = []
    for (name_off, typ, _flags, addr, off, size, link, _info, _align, entsize) in raw:
        end = strtab.find(b"\0", name_off)
        name = strtab[name_off:end if end >= 0 else None].decode("latin-1")
        entry = (addr, off, size, typ, link, entsize)
        by_index.append(entry)
        sections.setdefault(name, entry)
    return sections, by_index


def read_bytes(f, off, size):
    """SIZE bytes at OFF of file F; ElfError when too large or cut short."""
    if size > MAX_SECTION_BYTES:
        raise ElfError("section too large")
    f.seek(off)
    data = f.read(size)
    if len(data) != size:
        raise ElfError("truncated section")
    return data


def _sym_name(syms, strs, index):
    off = index * 24
    if index == 0 or off + 24 > len(syms):
        return None
    st_name, = struct.unpack_from("<I", syms, off)
    end = strs.find(b"\0", st_name)
    if end <= st_name:
        return None
    return strs[st_name:end].decode("latin-1")


def _uleb(data, pos):
    result = shift = 0
    for _ in range(10):
        b = data[pos]
        pos += 1
        result |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return result, pos
    raise ElfError("bad LEB128")


def _sleb(data, pos):
    result = shift = 0
    for _ in range(10):
        b = data[pos]
        pos += 1
        result |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            if b & 0x40:
                result -= 1 << shift
            return result, pos
    raise ElfError("bad LEB128")


_FIXED = {0x00: ("<Q", 8), 0x02: ("<H", 2), 0x03: ("<I", 4), 0x04: ("<Q", 8),
          0x0a: ("<h", 2), 0x0b: ("<i", 4), 0x0c: ("<q", 8)}


def _encoded(data, pos, enc, vaddr_of_pos):
    """(value, new pos) of a DW_EH_PE-encoded pointer at POS."""
    if enc == 0xff:
        return None, pos
    fmt = enc & 0x0f
    if fmt == 0x01:
        value, npos = _uleb(data, pos)
    elif fmt == 0x09:
        value, npos = _sleb(data, pos)
    elif fmt in _FIXED:
        f, size = _FIXED[fmt]
        value, = struct.unpack_from(f, data, pos)
        npos = pos + size
    else:
        raise ElfError("pointer encoding 0x%x" % enc)
    app = enc & 0x70
    if app == 0x10:
        value += vaddr_of_pos
    elif app != 0x00:
        raise ElfError("pointer application 0x%x" % enc)
    return value & ((1 << 64) - 1), npos


def _starts_in_frame(instrs):
    """True when the FDE's first CFA instructions (before any advance)
    change the CFA or save registers: the range begins inside a frame set up
    elsewhere (a ``.cold`` fragment), not at a function's entry."""
    for b in instrs[:8]:
        if b == 0x00:           # DW_CFA_nop
            continue
        if 0x40 <= b < 0x80 or b in (0x02, 0x03, 0x04):  # advance_loc*
            return False
        return True
    return False


def parse_eh_frame(data, base):
    """[Fde] of an .eh_frame section DATA loaded at file address BASE (its
    CIEs and FDEs read by ``cfi``, which decodes with this module's
    readers: imported here, not at the top)."""
    from . import cfi
    cies = {}
    out = []
    pos = 0
    n = len(data)
    while pos + 4 <= n and len(out) < MAX_FDES:
        try:
            got = cfi.entry_at(data, pos)
        except struct.error:
            break
        if got is None or got[1] > n or got[1] - got[0] < 4:
            break
        fde = cfi.parse_fde(data, pos, base, cies)
        if fde is not None and fde[1] and fde[2] > fde[1]:
            out.append(Fde(fde[1], fde[2], not _starts_in_frame(fde[3])))
        pos = got[1]
    return out


def load(path):
    """ElfFile of PATH (cached per path, size and mtime), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, st.st_size, int(st.st_mtime))
    if key in _cache:
        return _cache[key]
    try:
        elf = ElfFile(path)
        if elf.machine != EM_X86_64:
            elf = None
    except (OSError, IOError, ElfError, struct.error, ValueError, IndexError):
        elf = None
    if len(_cache) > 256:
        _cache.clear()
    _cache[key] = elf
    return elf
