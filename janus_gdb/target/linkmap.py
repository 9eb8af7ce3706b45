"""The files a process had mapped, found in its core's memory through the
dynamic linker's list (``r_debug`` / ``link_map``, reached from the
executable's ``DT_DEBUG``), for cores without an ``NT_FILE`` note (qemu's,
older kernels'): what gdb's solib-svr4 does.  x86_64 and aarch64 (64-bit
little-endian) only; stdlib only; every read and loop bounded; garbage
gives fewer mappings, never an exception.
"""

import os
import struct

from .coremem import Mapping
from .elffile import elf64_head, load_segments

AT_PHDR = 3
AT_PHNUM = 5
AT_BASE = 7
AT_EXECFN = 31
PT_DYNAMIC = 2
PT_INTERP = 3
PT_PHDR = 6
DT_NULL = 0
DT_DEBUG = 21
PAGE = 4096
MAX_OBJECTS = 4096
MAX_DYNAMIC = 1024


def _file_loads(path):
    """[(p_vaddr, p_memsz, p_offset)] of PATH's PT_LOAD headers, or None."""
    if not os.path.isfile(path):     # never a FIFO or a device named by garbage
        return None
    try:
        with open(path, "rb") as f:
            head = elf64_head(f)
            return None if head is None else load_segments(f, head, max_headers=256)
    except (OSError, IOError, struct.error):
        return None


def _exe_phdrs(exe, phnum):
    """The program headers of the executable file EXE on disk, or None."""
    if not exe or not os.path.isfile(exe):
        return None
    try:
        with open(exe, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF":
                return None
            phoff, = struct.unpack_from("<Q", head, 0x20)
            f.seek(phoff)
            table = f.read(56 * phnum)
    except (OSError, IOError):
        return None
    return table if len(table) == 56 * phnum else None


def _interp(exe, phnum):
    """The PT_INTERP path of the executable file EXE on disk, or None."""
    table = _exe_phdrs(exe, phnum) if phnum <= 256 else None
    if table is None:
        return None
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", table, i * 56)
        if p_type == PT_INTERP and 0 < p_filesz <= 4096:
            try:
                with open(exe, "rb") as f:
                    f.seek(p_offset)
                    raw = f.read(p_filesz)
            except (OSError, IOError):
                return None
            return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape") or None
    return None


def _r_debug(core, exe=None):
    """(address of r_debug, the executable's load bias), or (None, None).
    The executable's program headers come from the core, or from EXE on
    disk when the core did not keep them (qemu keeps no read-only pages)."""
    phdr, phnum = core.auxv.get(AT_PHDR), core.auxv.get(AT_PHNUM)
    if not phdr or not phnum or phnum > 256:
        return None, None
    table = core.read(phdr, 56 * phnum)
    if table is None or not table.strip(b"\0"):
        table = _exe_phdrs(exe, phnum)
    if table is None:
        return None, None
    heads = [struct.unpack_from("<IIQQQQQQ", table, i * 56) for i in range(phnum)]
    bias = 0
    for h in heads:
        if h[0] == PT_PHDR:
            bias = phdr - h[3]
    for h in heads:
        if h[0] != PT_DYNAMIC:
            continue
        dyn = bias + h[3]
        for i in range(min(h[5] // 16, MAX_DYNAMIC)):
            tag, val = struct.unpack("<qQ", core.read(dyn + 16 * i, 16) or b"\0" * 16)
            if tag == DT_NULL:
                break
            if tag == DT_DEBUG:
                return (val or None), bias
    return None, bias


def find_mappings(core, exe=None):
    """[Mapping] of the executable and every shared object the dynamic
    linker's list names in CORE (a coremem.CoreMemory); EXE is the
    executable's path when known, else the core's AT_EXECFN string."""
    exe = exe or (core.read_cstr(core.auxv[AT_EXECFN]) if core.auxv.get(AT_EXECFN) else None)
    r_debug, bias = _r_debug(core, exe)
    if r_debug is None:
        return []
    out = []
    lm = core.read_u64(r_debug + 8)
    seen = set()
    for i in range(MAX_OBJECTS):
        if not lm or lm in seen:
            break
        seen.add(lm)
        raw = core.read(lm, 32)
        if raw is None:
            break
        l_addr, l_name, _l_ld, l_next = struct.unpack("<QQQQ", raw)
        name = core.read_cstr(l_name) if l_name else ""
        if not name and i > 0 and l_addr == core.auxv.get(AT_BASE):
            # the dynamic linker: its name is the executable's PT_INTERP,
            # which a core without read-only pages (qemu's) reads as zeros
            name = _interp(exe, core.auxv.get(AT_PHNUM) or 0) or ""
        path = exe if i == 0 and not name else name
        if i == 0 and not name:
            l_addr = bias
        loads = _file_loads(path) if path else None
        for vaddr, memsz, offset in loads or ():
            start = l_addr + vaddr - vaddr % PAGE
            end = l_addr + vaddr + memsz
            end += -end % PAGE
            out.append(Mapping(start, end, offset - offset % PAGE, path))
        lm = l_next
    return out
