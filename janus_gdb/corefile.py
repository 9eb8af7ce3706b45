"""What a core file's ELF notes say about the process it was made from
(the command name and line, the mapped files): stdlib only, no gdb, cheap
to import (used by the command-line tool and inside gdb)."""

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


def _cstr(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _parse_notes(blob, end, word, info):
    wfmt = end + ("Q" if word == 8 else "I")
    pos = 0
    while pos + 12 <= len(blob):
        namesz, descsz, ntype = struct.unpack_from(end + "III", blob, pos)
        pos += 12
        name = blob[pos:pos + namesz]
        pos += (namesz + 3) & ~3
        desc = blob[pos:pos + descsz]
        pos += (descsz + 3) & ~3
        if len(desc) < descsz:
            break
        if name.rstrip(b"\0") != b"CORE":
            continue
        if ntype == NT_PRPSINFO and info.fname is None:
            # struct elf_prpsinfo: pr_fname[16], pr_psargs[80] after 40 bytes
            # on 64-bit targets, 28 on 32-bit ones
            off = 40 if word == 8 else 28
            if len(desc) >= off + 96:
                info.fname = _cstr(desc[off:off + 16])
                info.psargs = _cstr(desc[off + 16:off + 96])
        elif ntype == NT_FILE and not info.files:
            if len(desc) < 2 * word:
                continue
            count = struct.unpack_from(wfmt, desc, 0)[0]
            start = 2 * word
            names_at = start + count * 3 * word
            if count > len(desc) // (3 * word) or names_at > len(desc):
                continue
            vmas = [struct.unpack_from(end + ("QQQ" if word == 8 else "III"), desc,
                                       start + i * 3 * word)[0] for i in range(count)]
            paths = desc[names_at:].split(b"\0")
            info.files = [p.decode("utf-8", "surrogateescape")
                          for _, p in sorted(zip(vmas, paths))]


def read_core(path, max_notes=MAX_NOTES):
    """CoreInfo of the ELF core file PATH, reading at most MAX_NOTES bytes of
    notes; CoreFileError when it is not one."""
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
                (e_type, _, _, _, e_phoff, e_shoff, _, _, e_phentsize, e_phnum, e_shentsize,
                 _, _) = struct.unpack_from(end + "HHIQQQIHHHHHH", ident, 16)
            else:
                (e_type, _, _, _, e_phoff, e_shoff, _, _, e_phentsize, e_phnum, e_shentsize,
                 _, _) = struct.unpack_from(end + "HHIIIIIHHHHHH", ident, 16)
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
                f.seek(offset)
                _parse_notes(f.read(size), end, word, info)
                if info.fname is not None and max_notes < MAX_NOTES:
                    break   # a bounded read wants the command name only
            return info
    except struct.error:
        raise CoreFileError("%s is not a usable core file: its ELF headers are truncated" % path)
    except OSError as exc:
        raise CoreFileError("cannot read core file %s: %s" % (path, exc.strerror or exc))
