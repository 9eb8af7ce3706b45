"""The Janus version of the target: which release the hung server runs.

Janus's generated ``src/version.c`` defines ``int janus_version = 1102;``
and ``const char *janus_version_string = "1.1.2";`` (next to
``janus_build_git_sha``, ``janus_build_git_time`` and
``libnice_version_string``).  The number is the release's: MAJOR*1000 +
MINOR*100 + PATCH since 1.0.0 (1102, 1401), MINOR*10 + PATCH in 0.x (95
for 0.9.5, 110 for 0.10.10), as configure.ac sets JANUS_VERSION.

``from_target()`` reads them in gdb: the variables by their symbols from
the target's memory (the runtime value of a process or core), else
``from_file()`` of its executable.  ``from_file()`` reads an executable on
disk: by its symbols (``.symtab``, a separate debug file found by build
ID, ``.dynsym``) when it has them, else by scanning its data for a pointer
(a raw one, or a RELATIVE relocation of a PIE) to a ``MAJOR.MINOR.PATCH``
string within 16 bytes of an int equal to that release's number: both
facts must agree, a lone string is never taken (libnice's "0.1.21" sits
right there).  Every read is bounded; a file that is not what it claims
gives None, never an exception.
"""

import os
import re
import struct

from ..target import elffile
from ..target import elfsyms

VERSION_RE = re.compile(r"(\d{1,4})\.(\d{1,4})\.(\d{1,4})\Z")
STRING_VAR = "janus_version_string"
NUMBER_VAR = "janus_version"
MAX_STRING = 32             # bytes of a version string read
NEAR = 16                   # the int and the pointer lie this close (bytes)
MAX_DATA = 16 << 20         # bytes of writable data scanned
MAX_RELOCS = 2000000        # relocations read
MAX_SYMBOLS = 2000000       # symbols read per table
MAX_STRING_READS = 20000    # candidate strings read while scanning
MAX_NUMBER = 99999          # the largest plausible janus_version
SHT_RELA = 4
SHT_NOBITS = 8
STT_OBJECT = 1
# RELATIVE relocation types by e_machine: x86_64, aarch64
RELATIVE = {62: 8, 183: 1027}
_READ_ERRORS = (OSError, IOError, elffile.ElfError, struct.error, ValueError, IndexError,
                OverflowError)


class JanusVersion(object):
    """A Janus release: TEXT "1.1.2", NUMBER 1102 (janus_version) or None,
    PARTS (1, 1, 2) or None when TEXT is not MAJOR.MINOR.PATCH, and HOW it
    was found (a phrase for people)."""
    __slots__ = ("text", "number", "parts", "how")

    def __init__(self, text, number, how):
        self.text = text
        self.number = number
        self.parts = parse(text)
        self.how = how

    def to_dict(self):
        return {"text": self.text, "number": self.number, "how": self.how}

    @classmethod
    def from_dict(cls, d):
        """The JanusVersion of a to_dict() result, or None (for None)."""
        if not d or not d.get("text"):
            return None
        return cls(d["text"], d.get("number"), d.get("how"))

    def __repr__(self):
        return "JanusVersion(%r, %r, %r)" % (self.text, self.number, self.how)


# --- release numbers -----------------------------------------------------------------

def parse(text):
    """(major, minor, patch) of a version TEXT "1.1.2" (a leading "v" is
    allowed), or None."""
    if not isinstance(text, str):
        return None
    if text[:1] in ("v", "V"):
        text = text[1:]
    m = VERSION_RE.match(text)
    return tuple(int(x) for x in m.groups()) if m else None


def number_of(parts):
    """Janus's janus_version for release PARTS (configure.ac's
    JANUS_VERSION): 1102 for (1, 1, 2), 95 for (0, 9, 5)."""
    major, minor, patch = parts
    if major == 0:
        return minor * 10 + patch
    return major * 1000 + minor * 100 + patch


def _parts(v):
    if isinstance(v, JanusVersion):
        return v.parts
    if isinstance(v, dict):         # a to_dict() (the report's target["janus_version"])
        return parse(v.get("text"))
    if isinstance(v, tuple):
        return v if len(v) == 3 else None
    return parse(v)


def compare(a, b):
    """-1, 0 or 1 as release A is older than, the same as or newer than B
    (each a JanusVersion, its to_dict(), a (major, minor, patch) tuple or
    a text "1.3.0"); None when either is unknown or not MAJOR.MINOR.PATCH."""
    pa, pb = _parts(a), _parts(b)
    if pa is None or pb is None:
        return None
    return (pa > pb) - (pa < pb)


def in_range(version, first, last):
    """Whether VERSION lies in [FIRST, LAST] (inclusive; FIRST or LAST None:
    open on that side): True, False, or None when VERSION (or a bound given)
    is unknown or not MAJOR.MINOR.PATCH."""
    pv = _parts(version)
    if pv is None:
        return None
    if first is not None:
        c = compare(pv, first)
        if c is None:
            return None
        if c < 0:
            return False
    if last is not None:
        c = compare(pv, last)
        if c is None:
            return None
        if c > 0:
            return False
    return True


def _text_of(raw):
    """The printable ASCII string at the start of RAW (cut at NUL), or None."""
    if raw is None:
        return None
    end = raw.find(b"\0")
    if end <= 0:
        return None
    s = raw[:end]
    if any(b < 0x20 or b > 0x7e for b in bytearray(s)):
        return None
    return s.decode("ascii")


# --- an executable on disk -----------------------------------------------------------

class _Image(object):
    """The loadable bytes of an ELF64 file: segments, relocations, reads
    by link-time (file) address."""

    def __init__(self, f, head):
        self.f = f
        self.machine, = struct.unpack_from("<H", head, 0x12)
        self.segments = elffile.pt_loads(f, head)
        try:
            self.sections, self.by_index = elffile.section_headers(f, head)
        except elffile.ElfError:
            self.sections, self.by_index = {}, []
        self.relative = None        # {slot address: addend}, read when needed

    def read(self, addr, size):
        """SIZE bytes at file address ADDR (short at a segment's end), or None."""
        for vaddr, _memsz, offset, filesz, _flags in self.segments:
            if vaddr <= addr < vaddr + filesz:
                size = min(size, vaddr + filesz - addr)
                self.f.seek(offset + addr - vaddr)
                data = self.f.read(size)
                return data if data else None
        return None

    def read_only(self, addr):
        return any(vaddr <= addr < vaddr + filesz and not flags & elffile.PF_W
                   for vaddr, _memsz, _offset, filesz, flags in self.segments)

    def relocations(self):
        """{slot address: addend} of the RELATIVE relocations."""
        if self.relative is not None:
            return self.relative
        self.relative = {}
        rtype = RELATIVE.get(self.machine)
        if rtype is None:
            return self.relative
        budget = MAX_RELOCS
        for _addr, off, size, typ, _link, entsize in self.by_index:
            if typ != SHT_RELA or entsize != 24 or not size:
                continue
            size -= size % 24
            if size // 24 > budget:
                break
            budget -= size // 24
            rel = elffile.read_bytes(self.f, off, size)
            for r_offset, r_info, addend in struct.iter_unpack("<QQq", rel):
                if r_info & 0xffffffff == rtype and addend > 0:
                    self.relative[r_offset] = addend
        return self.relative

    def pointer(self, slot):
        """The address the 8-byte pointer at file address SLOT holds at run
        time (its RELATIVE relocation's addend, else the raw word), or None."""
        got = self.relocations().get(slot)
        if got is not None:
            return got
        raw = self.read(slot, 8)
        if raw is None or len(raw) != 8:
            return None
        return struct.unpack("<Q", raw)[0] or None

    def int32(self, addr):
        raw = self.read(addr, 4)
        if raw is None or len(raw) != 4:
            return None
        return struct.unpack("<i", raw)[0]

    def string(self, addr):
        if addr is None or not self.read_only(addr):
            return None
        return _text_of(self.read(addr, MAX_STRING))


def _object_symbols(f, sections, by_index, table, names):
    """{name: address} of the data objects NAMES in the symbol TABLE
    (".symtab" or ".dynsym") of the open file F."""
    sec = sections.get(table)
    if sec is None or sec[3] == SHT_NOBITS or sec[5] != 24 or not sec[2]:
        return {}
    if sec[4] >= len(by_index):
        return {}
    strsec = by_index[sec[4]]
    strs = elffile.read_bytes(f, strsec[1], strsec[2])
    # the names' offsets in the string table (a name may be the tail of another)
    wanted = {}
    for name in names:
        key = name.encode("ascii") + b"\0"
        pos = strs.find(key)
        while pos >= 0 and len(wanted) < 64:
            wanted[pos] = name
            pos = strs.find(key, pos + 1)
    if not wanted:
        return {}
    size = min(sec[2] - sec[2] % 24, 24 * MAX_SYMBOLS)
    syms = elffile.read_bytes(f, sec[1], size)
    found = {}
    for st_name, st_info, _other, shndx, value, _size in struct.iter_unpack("<IBBHQQ", syms):
        name = wanted.get(st_name)
        if name is not None and st_info & 0xf == STT_OBJECT and shndx != 0 and value:
            found.setdefault(name, value)
    return found


def _by_symbols(image):
    """JanusVersion from the variables' symbols, or None."""
    names = (STRING_VAR, NUMBER_VAR)
    f = image.f
    for table, where in ((".symtab", "symbol table"), (None, "separate debug file"),
                         (".dynsym", "dynamic symbols")):
        if table is None:
            syms = _debug_file_symbols(f, image.sections, names)
        else:
            syms = _object_symbols(f, image.sections, image.by_index, table, names)
        if STRING_VAR not in syms:
            continue
        text = image.string(image.pointer(syms[STRING_VAR]))
        if text is None:
            continue
        number = image.int32(syms[NUMBER_VAR]) if NUMBER_VAR in syms else None
        return _by_variables(text, number, "the executable's %s" % where)
    return None


def _by_variables(text, number, where):
    """The JanusVersion of the two variables' values TEXT and NUMBER (or
    None) read from WHERE ("the core's memory", "the executable's symbol
    table"), with a note when NUMBER does not follow Janus's numbering."""
    how = "%s in %s: %s" % (STRING_VAR, where, _quote(text))
    if number is not None:
        how += ", %s %d" % (NUMBER_VAR, number)
        parts = parse(text)
        if parts is not None and number_of(parts) != number:
            how += " (which does not follow Janus's numbering of %s)" % text
    return JanusVersion(text, number, how)


def _debug_file_symbols(f, sections, names):
    """{name: address} from the .symtab of the separate debug file of the
    open file F (by build ID, as gdb finds it)."""
    dbg = elfsyms.debug_file(elfsyms.build_id(f, sections))
    if not dbg:
        return {}
    try:
        with open(dbg, "rb") as d:
            head = elffile.elf64_head(d)
            if head is None:
                return {}
            dsections, dby_index = elffile.section_headers(d, head)
            return _object_symbols(d, dsections, dby_index, ".symtab", names)
    except _READ_ERRORS:
        return {}


def _quote(text):
    return '"%s"' % text


def _by_scan(image):
    """JanusVersion from the data of an executable without symbols: a
    pointer to "X.Y.Z" within NEAR bytes of an int32 equal to X.Y.Z's
    number; None unless exactly one release is found so."""
    writable = [(vaddr, offset, min(filesz, MAX_DATA))
                for vaddr, _memsz, offset, filesz, flags in image.segments
                if flags & elffile.PF_W and filesz]
    relocs = image.relocations()
    found = {}              # (text, number) -> names of the build strings beside it
    strings = {}
    budget = [MAX_STRING_READS, MAX_DATA]
    for vaddr, offset, size in writable:
        if size > budget[1]:
            break
        budget[1] -= size
        image.f.seek(offset)
        data = image.f.read(size)
        for i in range(0, len(data) - 3, 4):
            number, = struct.unpack_from("<i", data, i)
            if not 0 < number <= MAX_NUMBER:
                continue
            at = vaddr + i
            # the 8-byte pointer slots starting within NEAR bytes of the int
            for slot in range((at - NEAR + 7) & ~7, at + NEAR + 1, 8):
                if slot < at + 4 and at < slot + 8:
                    continue        # overlaps the int itself
                target = _slot_pointer(data, vaddr, slot, relocs)
                if not target:
                    continue
                if target not in strings:
                    if budget[0] <= 0:
                        return None
                    budget[0] -= 1
                    strings[target] = image.string(target)
                text = strings[target]
                parts = parse(text) if text and text[:1].isdigit() else None
                if parts is not None and number_of(parts) == number:
                    found.setdefault((text, number), set()).update(
                        _build_strings(image, data, vaddr, at, relocs))
    if len(found) != 1:
        return None
    ((text, number), beside), = found.items()
    how = "the executable's data (not its symbols): %s %d next to a pointer to %s" % (
        NUMBER_VAR, number, _quote(text))
    if beside:
        how += " (and to a %s, as in Janus's version.c)" % " and a ".join(sorted(beside))
    return JanusVersion(text, number, how)


GIT_SHA_RE = re.compile(r"(?:[0-9a-f]{7,40}|not-a-git-repo)\Z")
BUILD_TIME_RE = re.compile(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \w+ \d{4}\Z")


def _slot_pointer(data, vaddr, slot, relocs):
    """The pointer in the 8-byte SLOT of DATA (loaded at VADDR): its RELATIVE
    relocation's addend when RELOCS has one (PIE), else the raw word; None
    when the slot is outside DATA."""
    if slot in relocs:
        return relocs[slot]
    off = slot - vaddr
    if 0 <= off and off + 8 <= len(data):
        return struct.unpack_from("<Q", data, off)[0]
    return None


def _build_strings(image, data, vaddr, at, relocs):
    """What the other version.c strings pointed to within 2*NEAR bytes of
    the int at AT look like ("build time": janus_build_git_time's, "git
    SHA": janus_build_git_sha's): told to people as corroboration, not
    required."""
    names = set()
    for slot in range((at - 2 * NEAR + 7) & ~7, at + 2 * NEAR + 1, 8):
        target = _slot_pointer(data, vaddr, slot, relocs)
        text = image.string(target) if target else None
        if text is None:
            continue
        if GIT_SHA_RE.match(text):
            names.add("git SHA")
        elif BUILD_TIME_RE.match(text):
            names.add("build time")
    return names


def from_file(path, symbols=True):
    """The JanusVersion of the ELF64 executable PATH, or None (not Janus, not
    readable, or the evidence does not agree).  SYMBOLS False: the scan
    only, as for an executable without symbols."""
    try:
        with open(path, "rb") as f:
            head = elffile.elf64_head(f)
            if head is None:
                return None
            image = _Image(f, head)
            if not image.segments:
                return None
            if symbols:
                got = _by_symbols(image)
                if got is not None:
                    return got
            return _by_scan(image)
    except _READ_ERRORS:
        return None


# --- the target in gdb -----------------------------------------------------------------

ADDRESS_RE = re.compile(r"\b(?:is at|at address) (0x[0-9a-fA-F]+)")


def _symbol_address(gdb, name):
    """The run-time address of the data symbol NAME (debug info, else a
    minimal symbol through `info address`), or None."""
    from . import names     # imports gdb: from_file works without it
    for sym in names.variables(name):
        addr = names.variable_address(sym) if sym.is_variable else None
        if addr is not None:
            return addr
    try:
        text = gdb.execute("info address %s" % name, to_string=True)
    except gdb.error:
        return None
    m = ADDRESS_RE.search(text)
    return int(m.group(1), 16) if m else None


def _read(inf, gdb, addr, size):
    if addr is None or addr <= 0 or size <= 0:
        return None
    try:
        return bytes(inf.read_memory(addr, size))
    except (gdb.MemoryError, gdb.error, ValueError, OverflowError):
        return None


def _read_string(inf, gdb, addr):
    """The NUL-terminated string at ADDR, at most MAX_STRING bytes (a read
    cut at a page end is retried shorter)."""
    for size in (MAX_STRING, 16, 8):
        raw = _read(inf, gdb, addr, size)
        if raw is not None:
            return _text_of(raw)
    return None


def _pointer_size(gdb):
    try:
        return gdb.lookup_type("void").pointer().sizeof
    except (gdb.error, RuntimeError):
        return 8


def from_target(inf=None):
    """The JanusVersion of the selected inferior (INF): janus_version_string
    and janus_version read from its memory (a process's or core's run-time
    values) by their symbols, else from_file() of its executable (for a
    process on this machine the file it runs, /proc/PID/exe), else None.
    Reads only."""
    import gdb  # pylint: disable=import-error
    from ..target import gdbtarget
    if inf is None:
        inf = gdb.selected_inferior()
    if inf is not None and inf.pid:
        got = _from_memory(gdb, gdbtarget, inf)
        if got is not None:
            return got
    exe = _running_executable(gdbtarget, inf) if inf is not None else None
    return from_file(exe) if exe else None


def _running_executable(gdbtarget, inf):
    """The file the target runs: for a process on this machine its
    /proc/PID/exe (the inode it runs, even when a package upgrade replaced
    or removed the file at its path since), else the executable gdb has."""
    if inf.pid and gdbtarget.target_kind(inf) == "live" and gdbtarget.is_native(inf):
        path = "/proc/%d/exe" % inf.pid
        if os.path.exists(path):
            return path
    return gdbtarget.executable(inf)


def _from_memory(gdb, gdbtarget, inf):
    saddr = _symbol_address(gdb, STRING_VAR)
    if saddr is None:
        return None
    psize = _pointer_size(gdb)
    raw = _read(inf, gdb, saddr, psize)
    if raw is None or len(raw) != psize or psize not in (4, 8):
        return None
    ptr, = struct.unpack("<Q" if psize == 8 else "<I", raw)
    text = _read_string(inf, gdb, ptr)
    if text is None:
        return None
    number = None
    naddr = _symbol_address(gdb, NUMBER_VAR)
    raw = _read(inf, gdb, naddr, 4)
    if raw is not None and len(raw) == 4:
        number, = struct.unpack("<i", raw)
    where = "core's" if gdbtarget.target_kind(inf) == "core" else "process's"
    return _by_variables(text, number, "the %s memory" % where)
