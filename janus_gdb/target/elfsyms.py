"""Function names of an ELF64 file from its symbol tables: ``.symtab`` when
it has one, else that of its separate debug file found by build ID under
/usr/lib/debug/.build-id (as gdb finds it), else ``.dynsym``.  Sorted
addresses and bisect; cached per file.  Stdlib only; garbage gives an
empty table, never an exception.
"""

import bisect
import os
import stat
import struct

from .elffile import ElfError, read_bytes, section_headers

STT_FUNC = 2
STT_GNU_IFUNC = 10
SHT_NOBITS = 8
DEBUG_DIRS = ("/usr/lib/debug",)
MAX_SYMBOLS = 2000000
# binding: GLOBAL before WEAK before LOCAL when several names share an address
_RANK = {1: 0, 2: 1, 0: 2}

_cache = {}


class Symbols(object):
    """Function symbols of one file, by link-time (file) address."""

    def __init__(self, entries, source=None):
        # entries: [(addr, size, rank, name)]
        entries.sort(key=lambda e: (e[0], e[2], e[3]))
        self._starts = []
        self._sizes = []
        self._names = []
        self._aliases = {}
        for addr, size, _rank, name in entries:
            if self._starts and self._starts[-1] == addr:
                self._aliases.setdefault(addr, [self._names[-1]]).append(name)
                self._sizes[-1] = max(self._sizes[-1], size)
                continue
            self._starts.append(addr)
            self._sizes.append(size)
            self._names.append(name)
        self.source = source    # the file the names came from

    def __len__(self):
        return len(self._starts)

    def lookup(self, addr):
        """(name, start) of the function holding file address ADDR, or None.
        A symbol of size 0 holds up to the next symbol."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        start, size = self._starts[i], self._sizes[i]
        if size and addr >= start + size:
            return None
        return self._names[i], start

    def aliases(self, start):
        """Every name of the function at START (several symbols, one address)."""
        got = self._aliases.get(start)
        if got:
            return list(got)
        i = bisect.bisect_left(self._starts, start)
        if i < len(self._starts) and self._starts[i] == start:
            return [self._names[i]]
        return []


def _table(f, sections, by_index, name):
    sec = sections.get(name)
    if sec is None or sec[3] == SHT_NOBITS or sec[5] != 24 or not sec[2]:
        return []
    if sec[4] >= len(by_index):
        return []
    strsec = by_index[sec[4]]
    syms = read_bytes(f, sec[1], sec[2])
    strs = read_bytes(f, strsec[1], strsec[2])
    out = []
    for i in range(24, min(len(syms), 24 * MAX_SYMBOLS) - 23, 24):
        st_name, st_info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", syms, i)
        if st_info & 0xf not in (STT_FUNC, STT_GNU_IFUNC) or shndx == 0 or not value:
            continue
        end = strs.find(b"\0", st_name)
        if end > st_name:
            out.append((value, size, _RANK.get(st_info >> 4, 3),
                        strs[st_name:end].decode("utf-8", "surrogateescape")))
    return out


def build_id(f, sections):
    """The GNU build ID of the open ELF file F as hex, or None."""
    sec = sections.get(".note.gnu.build-id")
    if sec is None or sec[2] > 4096 or sec[2] < 16:
        return None
    raw = read_bytes(f, sec[1], sec[2])
    namesz, descsz, ntype = struct.unpack_from("<III", raw, 0)
    desc_at = 12 + ((namesz + 3) & ~3)
    if ntype != 3 or desc_at + descsz > len(raw) or not descsz:
        return None
    return raw[desc_at:desc_at + descsz].hex()


def debug_file(bid):
    """The separate debug file of build ID BID, or None."""
    if not bid or len(bid) < 4:
        return None
    for d in DEBUG_DIRS:
        path = os.path.join(d, ".build-id", bid[:2], bid[2:] + ".debug")
        if os.path.isfile(path):
            return path
    return None


def _open_tables(path):
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            raise ElfError("not a little-endian ELF64 file")
        sections, by_index = section_headers(f, head)
        return (_table(f, sections, by_index, ".symtab"),
                _table(f, sections, by_index, ".dynsym"), build_id(f, sections))


def load(path):
    """Symbols of the ELF file PATH (cached per path, size and mtime); an
    empty table when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return Symbols([])
    if not stat.S_ISREG(st.st_mode):
        return Symbols([])
    key = (path, st.st_size, int(st.st_mtime))
    got = _cache.get(key)
    if got is not None:
        return got
    try:
        symtab, dynsym, bid = _open_tables(path)
        source = path
        if not symtab:
            dbg = debug_file(bid)
            if dbg:
                try:
                    symtab = _open_tables(dbg)[0]
                    source = dbg
                except (OSError, IOError, ElfError, struct.error, ValueError, IndexError):
                    symtab = []
        syms = Symbols(symtab + dynsym if symtab else dynsym, source)
    except (OSError, IOError, ElfError, struct.error, ValueError, IndexError):
        syms = Symbols([])
    if len(_cache) > 256:
        _cache.clear()
    _cache[key] = syms
    return syms
