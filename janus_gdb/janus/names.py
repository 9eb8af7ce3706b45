"""Names of lock variables: ``janus_videoroom.c: rooms_mutex`` with debug info,
``libjanus_videoroom.so+0x8e7e0`` without.

The shared library's load base comes from ``info sharedlibrary`` (gdb's
Python API has no list of loaded libraries with addresses) and the ELF
section headers of the library file, which ``strip`` keeps.
"""

import os
import re
import struct

import gdb  # pylint: disable=import-error

from . import janusdb

_SYM_RE = re.compile(r"<([^<>]+)>\s*$")
_SOLIB_RE = re.compile(r"^\s*(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+\S+(?:\s+\(\*\))?\s+(/.*\S)\s*$")


def data_symbol(addr):
    """``name`` or ``name+off`` of the symbol covering data ADDR, else None."""
    try:
        void_p = gdb.lookup_type("void").pointer()
        text = str(gdb.Value(addr).cast(void_p))
    except (gdb.error, RuntimeError, OverflowError):
        return None
    m = _SYM_RE.search(text)
    return m.group(1) if m else None


def variables(name):
    """Global and file-static variables called NAME (several files may each
    have a static one: the core's and VideoRoom's ``sessions_mutex``)."""
    syms = []
    try:
        if hasattr(gdb, "lookup_static_symbols"):  # gdb 10+
            syms.extend(gdb.lookup_static_symbols(name))
        glob = gdb.lookup_global_symbol(name)
        if glob is not None:
            syms.append(glob)
    except (gdb.error, RuntimeError):
        return []
    return syms


def variable_address(sym):
    try:
        return int(sym.value().address)
    except (gdb.error, RuntimeError, TypeError, ValueError):
        return None


def symbol_file(name, addr):
    """Basename of the source file defining the variable NAME at ADDR."""
    for sym in variables(name):
        if sym.symtab is not None and variable_address(sym) == addr:
            return os.path.basename(sym.symtab.filename)
    return None


def _text_addr(path):
    """sh_addr of .text in the ELF64 file PATH, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return None
            shoff, = struct.unpack_from("<Q", head, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from("<HHH", head, 0x3A)
            if shentsize != 64 or not 0 < shnum < 4096 or shstrndx >= shnum:
                return None
            f.seek(shoff)
            table = f.read(shentsize * shnum)
            if len(table) != shentsize * shnum:
                return None
            sections = [struct.unpack_from("<IIQQQQ", table, i * 64) for i in range(shnum)]
            _n, _t, _fl, _a, str_off, str_size = sections[shstrndx]
            f.seek(str_off)
            names = f.read(min(str_size, 1 << 20))
            for name_off, _typ, _flags, sh_addr, _off, _size in sections:
                end = names.find(b"\0", name_off)
                if names[name_off:end] == b".text":
                    return sh_addr
    except (OSError, IOError, struct.error):
        return None
    return None


class LibBases(object):
    """Load bases of the shared libraries, computed once per analysis."""

    def __init__(self):
        self._bases = None

    def _load(self):
        self._bases = {}
        try:
            text = gdb.execute("info sharedlibrary", to_string=True)
        except gdb.error:
            return
        for line in text.splitlines():
            m = _SOLIB_RE.match(line)
            if not m:
                continue
            path = m.group(2)
            text_addr = _text_addr(path)
            if text_addr is not None:
                self._bases[path] = int(m.group(1), 16) - text_addr

    def offset(self, addr):
        """``libfoo.so+0x1234`` for ADDR inside a shared library, else None."""
        if self._bases is None:
            self._load()
        try:
            path = gdb.solib_name(addr)
        except (gdb.error, RuntimeError):
            path = None
        if not path:
            return None
        base = self._bases.get(path)
        if base is None or addr < base:
            return None
        return "%s+0x%x" % (os.path.basename(path), addr - base)


def name_globals(locks, bases):
    """Symbol and name of every lock that is a variable (or inside one)."""
    for lock in locks:
        if lock.symbol is None:
            lock.symbol = data_symbol(lock.addr)
        if lock.name_text is not None:
            continue
        if lock.symbol:
            base = lock.symbol.split("+")[0]
            filename = symbol_file(base, lock.addr) if "+" not in lock.symbol else None
            lock.source_file = filename
            lock.name_text = janusdb.global_name(lock.symbol, filename)
        else:
            lock.name_text = bases.offset(lock.addr)
