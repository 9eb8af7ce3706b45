"""Run inside gdb (``source``) with LOGNAME_FILES set to ELF paths separated
by ':' (each loaded with ``file`` in turn): applies janus_gdb.target.logname's rule to every function (``.eh_frame``
entry) of each file, as a frame without a symbol in it would, and prints
one line per function that has log calls:

    logname PATH START NAME|- CANDIDATE,...

START is the function's file address (hex).  Used by test_lognames.py to
check every name against the symbols the stripped files lost.
"""

import os
import sys

import gdb  # pylint: disable=import-error

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from janus_gdb.target import codereader, elffile, logname  # noqa: E402


class _Frame(object):
    """Enough of a gdb.Frame for CodeReader.code: the architecture."""

    def architecture(self):
        return gdb.selected_inferior().architecture()


def survey(path):
    elf = elffile.load(path)
    if elf is None:
        print("logname-error %s not a readable x86_64 ELF" % path)
        return
    reader = codereader.CodeReader()
    mod = codereader.Module(path, elf, 0)
    image = logname.Image(path, elf.sections)
    for fde in elf.fdes:
        if not fde.entry:
            continue
        code = reader.code(_Frame(), mod, fde)
        if code is None:
            continue
        calls = logname.log_calls(code.insns, code.names, image, 0)
        ranges = set()
        for ins in code.insns:
            d = elf.fde_at(ins.addr)
            if d is not None:
                ranges.add((d.start, d.end))
        got = logname.decide(calls, sorted(ranges), image)
        if got is not None:
            print("logname %s %x %s %s" % (path, fde.start, got.name or "-",
                                           ",".join(got.candidates) or "-"))


for p in os.environ.get("LOGNAME_FILES", "").split(":"):
    if p:
        gdb.execute("file %s" % p, to_string=True)   # disassembly reads its sections
        survey(p)
print("logname-done")
