"""What a core file's ELF notes say about the process it was made from
(the command name and line, the mapped files): stdlib only, no gdb, cheap
to import (used by the command-line tool and inside gdb)."""

import os
import struct


class CoreFileError(Exception):
    """One line for the user: the file is not a (usable) core."""


ET_CORE = 4
PT_NOTE = 4
PN_XNUM = 0xffff
NT_PRPSINFO = 3
NT_FILE = 0x46494c45
MAX_NOTES = 256 << 20
ELF_TYPES = {1: "a relocatable object", 2: "an executable", 3: "a shared object or PIE "
             "executable"}


class CoreInfo(object):
    """What a core's notes say about the process it was made from."""

    def __init__(self):
        self.fname = None     # NT_PRPSINFO pr_fname: the command, at most 15 bytes
        self.psargs = None    # NT_PRPSINFO pr_psargs: the command line, at most 79 bytes
        self.files = []       # NT_FILE: mapped file paths, by address
        self.machine = None   # ELF e_machine: the architecture (EM_* number)


# ELF e_machine -> (name people know, gdb's architecture name)
MACHINES = {3: ("i386", "i386"), 40: ("arm", "arm"), 62: ("x86_64", "i386:x86-64"),
            183: ("aarch64", "aarch64"), 243: ("riscv64", "riscv:rv64"),
            21: ("ppc64", "powerpc:common64"), 22: ("s390x", "s390:64-bit")}
# platform.machine() -> e_machine
HOST_MACHINES = {"x86_64": 62, "amd64": 62, "aarch64": 183, "arm64": 183, "i386": 3,
                 "i686": 3, "riscv64": 243, "ppc64le": 21, "ppc64": 21, "s390x": 22}


def machine_name(machine):
    """``aarch64`` for an ELF e_machine number."""
    got = MACHINES.get(machine)
    return got[0] if got else "ELF machine %s" % machine


def _cstr(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


# Bigger note names or file tables are garbage, not a core's.
MAX_NOTE_NAME = 64
MAX_FILE_TABLE = 64 << 20


def _parse_prpsinfo(desc, word, info):
    # struct elf_prpsinfo: pr_fname[16], pr_psargs[80] after 40 bytes on
    # 64-bit targets, 28 on 32-bit ones.  Neither need end in a NUL: gdb's
    # gcore fills all 16 bytes of a long name (the kernel stores its comm,
    # at most 15 characters).
    off = 40 if word == 8 else 28
    if len(desc) >= off + 96:
        info.fname = _cstr(desc[off:off + 16])
        info.psargs = _cstr(desc[off + 16:off + 96])


def nt_file_entries(desc, end="<", word=8):
    """The NT_FILE note DESC (bytes) as (page size, [(start, stop, page
    offset, path)]) in note order (path None where the note's strings run
    out); None when its table is garbage.  END, WORD: the ELF byte order ("<" or
    ">") and word size (4 or 8)."""
    if len(desc) < 2 * word:
        return None
    count, page = struct.unpack_from(end + ("QQ" if word == 8 else "II"), desc, 0)
    start = 2 * word
    names_at = start + count * 3 * word
    if count > len(desc) // (3 * word) or names_at > len(desc):
        return None
    paths = desc[names_at:].split(b"\0")
    triple = end + ("QQQ" if word == 8 else "III")
    return page, [struct.unpack_from(triple, desc, start + i * 3 * word)
                  + (paths[i].decode("utf-8", "surrogateescape") if i < len(paths) else None,)
                  for i in range(count)]


def _parse_files(desc, end, word, info):
    got = nt_file_entries(desc, end, word)
    if got is not None:
        info.files = [path for _vma, path in sorted((e[0], e[3]) for e in got[1]
                                                      if e[3] is not None)]


def _scan_notes(f, offset, size, end, word, info, want_files):
    """Read the notes of the PT_NOTE segment at OFFSET (SIZE bytes) of F: the
    headers of all, the contents of the command-name note and (WANT_FILES)
    the mapped-files note only, so the per-thread notes of ten thousand
    threads cost a seek each."""
    pos = 0
    while pos + 12 <= size:
        f.seek(offset + pos)
        head = f.read(12)
        if len(head) < 12:
            break
        namesz, descsz, ntype = struct.unpack_from(end + "III", head, 0)
        name_len = (namesz + 3) & ~3
        if namesz > MAX_NOTE_NAME or pos + 12 + name_len + descsz > size:
            break
        name = f.read(namesz)
        if name.rstrip(b"\0") == b"CORE":
            if ntype == NT_PRPSINFO and info.fname is None:
                f.seek(offset + pos + 12 + name_len)
                _parse_prpsinfo(f.read(min(descsz, 4096)), word, info)
            elif ntype == NT_FILE and want_files and not info.files and descsz <= MAX_FILE_TABLE:
                f.seek(offset + pos + 12 + name_len)
                _parse_files(f.read(descsz), end, word, info)
        if info.fname is not None and (info.files or not want_files):
            break
        pos += 12 + name_len + ((descsz + 3) & ~3)


def read_core(path, max_notes=MAX_NOTES):
    """CoreInfo of the ELF core file PATH, looking at most MAX_NOTES bytes
    into its notes (less than all: the command name only, which comes
    first); CoreFileError when it is not one."""
    try:
        with open(path, "rb") as f:
            ident = f.read(64)
            if ident[:4] == b"\x7fELF" and len(ident) < 52:
                raise CoreFileError("%s is not a usable core file: its ELF header is truncated"
                               % path)
            if ident[:4] != b"\x7fELF":
                hint = ""
                if ident[:4] == b"\x28\xb5\x2f\xfd" or ident[:3] in (b"\x1f\x8b\x08", b"\xfd7z"):
                    hint = " (it is compressed: `coredumpctl dump` or unpack it first)"
                raise CoreFileError("%s is not a core file: not an ELF file%s" % (path, hint))
            word = {1: 4, 2: 8}.get(ident[4])
            end = {1: "<", 2: ">"}.get(ident[5])
            if word is None or end is None:
                raise CoreFileError("%s is not a core file: unknown ELF class or byte order" % path)
            if word == 8:
                (e_type, e_machine, _, _, e_phoff, e_shoff, _, _, e_phentsize, e_phnum,
                 e_shentsize, _, _) = struct.unpack_from(end + "HHIQQQIHHHHHH", ident, 16)
            else:
                (e_type, e_machine, _, _, e_phoff, e_shoff, _, _, e_phentsize, e_phnum,
                 e_shentsize, _, _) = struct.unpack_from(end + "HHIIIIIHHHHHH", ident, 16)
            if e_type != ET_CORE:
                what = ELF_TYPES.get(e_type, "an ELF file of type %d" % e_type)
                raise CoreFileError("%s is not a core file but %s (the executable goes in --exe)"
                               % (path, what))
            if e_phnum == PN_XNUM and e_shoff:
                # more segments than fit in e_phnum: the count is section 0's sh_info
                f.seek(e_shoff + (44 if word == 8 else 28))
                raw = f.read(4)
                e_phnum = struct.unpack(end + "I", raw)[0] if len(raw) == 4 else 0
            info = CoreInfo()
            info.machine = e_machine
            phfmt = end + ("IIQQQQQQ" if word == 8 else "IIIIIIII")
            f.seek(e_phoff)
            table = f.read(e_phnum * e_phentsize)
            budget = max_notes
            for i in range(len(table) // max(e_phentsize, 1)):
                fields = struct.unpack_from(phfmt, table, i * e_phentsize)
                if fields[0] != PT_NOTE:
                    continue
                offset, size = (fields[2], fields[5]) if word == 8 else (fields[1], fields[4])
                size = min(size, budget)
                budget -= size
                want_files = max_notes >= MAX_NOTES
                _scan_notes(f, offset, size, end, word, info, want_files)
                if info.fname is not None and (info.files or not want_files):
                    break
            return info
    except struct.error:
        raise CoreFileError("%s is not a usable core file: its ELF headers are truncated" % path)
    except OSError as exc:
        raise CoreFileError("cannot read core file %s: %s" % (path, exc.strerror or exc))


# The kernel's command name (a task's comm) keeps at most 15 characters.
COMM_LEN = 15
# pr_psargs holds at most 79 characters (80 from gdb's gcore, no NUL).
PSARGS_LEN = 79


def _base(path):
    return os.path.basename(path.replace(" (deleted)", "")) if path else ""


def comm_matches(fname, name):
    """Whether FNAME, the command name a core records, can be that of a
    program file called NAME: the kernel stores its comm (the name cut at
    15 characters, or what the program set with prctl), gdb's gcore the
    first 16 characters of argv[0]'s base name."""
    if not fname or not name:
        return False
    return name == fname or (len(fname) >= COMM_LEN and name.startswith(fname))


def psargs_matches(psargs, exe):
    """Whether the command line PSARGS a core records (possibly cut short)
    starts with the program file EXE (by base name; the path as given to
    exec may be relative or a link)."""
    if not psargs or not exe:
        return False
    argv0 = psargs.split(" ", 1)[0]
    name = _base(exe)
    if _base(argv0) == name:
        return True
    if len(psargs) >= PSARGS_LEN and " " not in psargs:
        # argv[0] itself was cut: the part kept must be the start of EXE's
        # path or end in the start of its name
        return exe.startswith(argv0) or (bool(_base(argv0)) and name.startswith(_base(argv0)))
    return False


def program_matches(info, exe):
    """True when what the core INFO records shows it was made from the
    executable file EXE, False when it records a program and that is not
    EXE, None when it records nothing to compare.  The mapped files decide
    when the core lists them (a program's executable is always mapped),
    else the command name or line."""
    name = _base(exe)
    if not name:
        return None
    if info.files:
        real = os.path.realpath(exe)
        for path in info.files:
            clean = path.replace(" (deleted)", "")
            if _base(clean) == name or clean == exe or os.path.realpath(clean) == real:
                return True
        return False
    if comm_matches(info.fname, name) or psargs_matches(info.psargs, exe):
        return True
    if info.fname or info.psargs:
        return False
    return None


def names_in_full(info, exe):
    """Whether the core's command name or line names EXE's file in full (not
    a prefix cut at 15 or 16 characters, which another program can share)."""
    name = _base(exe)
    if not name:
        return False
    if info.fname == name and len(name) < COMM_LEN:
        return True
    return bool(info.psargs) and _base(info.psargs.split(" ", 1)[0]) == name
