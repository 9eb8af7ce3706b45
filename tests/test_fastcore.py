"""Issue 14's foundation: the core read without gdb (target/coremem.py,
cfi.py, elfsyms.py, coreunwind.py), compared with real gdb on the same
gcore cores of real fixtures: threads and registers, every thread's frames
(pc and function name), memory; truncated and garbage cores; aarch64
registers from a qemu core; the CFA interpreter on hand-built CFI.
"""

import json
import os
import shutil
import struct
import subprocess

import pytest

import gdbrun
from janus_gdb.target import cfi, coremem, coreunwind, linkmap
from janus_gdb.target.corefile import CoreFileError

GDB_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fastcore_gdb.py")
PILEUP = os.path.join(gdbrun.ROOT, "bench", "pileup.c")
# gcc's clones: the symbol table names foo.isra.0, gdb's debug info foo
CLONE_SUFFIXES = (".isra", ".constprop", ".part", ".cold")


def gdb_view(exe, core):
    """{lwp: what gdb says about the thread} (tests/fastcore_gdb.py)."""
    res = gdbrun.gdb([], exe=exe, core=core, load=False, extra=["-x", GDB_SCRIPT])
    assert "Traceback" not in res.stdout + res.stderr, res.stderr
    out = {}
    for line in res.stdout.splitlines():
        if line.startswith("FASTCORE "):
            d = json.loads(line[9:])
            out[d["lwp"]] = d
    assert out, res.stdout + res.stderr
    return out


@pytest.fixture(scope="module")
def pileup(build_dir):
    """A 60-thread bench/pileup.c (GMutex, glib thread pool) and its core."""
    exe = os.path.join(build_dir, "pileup-fastcore")
    subprocess.run(["gcc", "-g", "-O2", "-fno-omit-frame-pointer", "-Wall", "-pthread", "-o",
                    exe, PILEUP] + gdbrun.glib_flags(), check=True)
    sc = gdbrun.Scenario(exe, ["60"], timeout=60)
    core = os.path.join(build_dir, "core.pileup-fastcore")
    try:
        sc.gcore(core)
    finally:
        sc.kill()
    yield exe, core
    if os.path.exists(core):
        os.unlink(core)


def _cores(scenarios, pileup):
    yield scenarios.binaries.debug, scenarios.core("gmutex_pileup")
    yield scenarios.binaries.debug, scenarios.core("pthread_cycle")
    yield pileup


def _base(name):
    for suffix in CLONE_SUFFIXES:
        if suffix in name:
            name = name[:name.index(suffix)]
    return name


def _same_function(gdb_name, mine):
    """gdb names a frame by its debug info (or its minimal symbol); the
    reader by the symbol table, which may hold several names (aliases) for
    one address."""
    if gdb_name is None:
        return mine is None
    if mine is None:
        return False
    name, aliases, _start = mine
    names = set(_base(n) for n in [name] + aliases)
    return _base(gdb_name) in names or gdb_name in names


@pytest.mark.parametrize("which", [0, 1, 2])
def test_threads_registers_frames_memory_match_gdb(scenarios, pileup, which):
    exe, core = list(_cores(scenarios, pileup))[which]
    view = gdb_view(exe, core)
    with coremem.CoreMemory(core) as c:
        assert c.warnings == []
        # (a) the same threads, the same pc/sp/rbp
        assert sorted(t.lwp for t in c.threads) == sorted(view)
        un = coreunwind.Unwinder(c)
        compared = 0
        for t in c.threads:
            g = view[t.lwp]
            # gdb numbers a core's threads in the order of their notes
            assert t.index + 1 == g["num"], (t.lwp, t.index, g["num"])
            assert (t.regs["rip"], t.regs["rsp"], t.regs["rbp"]) == (
                g["regs"]["rip"], g["regs"]["rsp"], g["regs"]["rbp"]), t.lwp
            # (c) the memory at sp as gdb's x/2gx reads it
            assert g["words"] and [c.read_u64(t.regs["rsp"]),
                                   c.read_u64(t.regs["rsp"] + 8)] == g["words"]
            # (b) frame for frame: gdb stops at main (backtrace past-main
            # off), the reader goes on to _start; elsewhere both end together
            frames, why = un.unwind(t)
            gframes = g["frames"]
            assert len(frames) >= len(gframes), (t.lwp, why, frames, gframes)
            if len(frames) > len(gframes):
                assert gframes[-1][1] == "main", (t.lwp, gframes)
            else:
                assert why.startswith("outermost"), (t.lwp, why)
            for i, ((pc, cfa, how), (gpc, gname)) in enumerate(zip(frames, gframes)):
                assert pc == gpc, (t.lwp, i, hex(pc), hex(gpc))
                assert how == "cfi"
                mine = un.function(pc, caller=i > 0)
                assert _same_function(gname, mine), (t.lwp, i, gname, mine)
                compared += 1
        assert compared >= 4 * len(c.threads)


def test_pileup_frames_include_glib_and_glibc(pileup):
    """The pile-up's workers go through glib's thread pool and glibc's
    futex code: the names come from glib's .dynsym and glibc's debug file."""
    exe, core = pileup
    with coremem.CoreMemory(core) as c:
        names = set()
        for _t, _frames, fnames, why in coreunwind.walk_all(c):
            names.update(n for n in fnames if n)
            assert "DWARF expression" not in why and "no CFI" not in why, why
    assert "janus_videoroom_handle_message" in names
    assert set(["g_main_loop_run", "g_cond_wait", "syscall", "start_thread"]) <= names


def test_mapped_files_and_reads_outside_the_core(scenarios):
    core = scenarios.core("gmutex_pileup")
    with coremem.CoreMemory(core) as c:
        pc = c.threads[0].regs["rip"]
        m = c.mapping_at(pc)
        assert m is not None and "libc" in os.path.basename(m.path)
        assert m.start <= pc < m.end
        assert c.mapping_at(0) is None
        assert c.read(0, 8) is None and c.read_u64(0x10) is None
        assert c.read(c.threads[0].regs["rsp"], -1) is None


def test_truncated_and_garbage_cores(scenarios, tmp_path):
    core = scenarios.core("gmutex_pileup")
    size = os.path.getsize(core)
    with open(core, "rb") as f:
        head = f.read(1 << 20)
    # gdb's gcore writes the notes last: cut in the middle of the data, the
    # threads are lost (said so), the memory before the cut still reads,
    # the memory after it gives None
    cut = str(tmp_path / "cut.core")
    with open(core, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(size // 2))
    with coremem.CoreMemory(core) as whole, coremem.CoreMemory(cut) as c:
        assert c.threads == [] and any("notes" in w for w in c.warnings)
        assert any("truncated" in w for w in c.warnings)
        lost = [seg for seg in whole._segs if seg[2] + seg[3] > size // 2 and seg[3]]
        kept = [seg for seg in whole._segs if seg[2] + seg[3] <= size // 2 and seg[3]]
        assert lost and c.read(lost[-1][0], 8) is None
        assert whole.read(lost[-1][0], 8) is not None
        assert c.read(kept[0][0], 64) == whole.read(kept[0][0], 64)
        notes_at = min(off for off in _prstatus_offsets(core))
    # cut in the middle of the notes: the threads before the cut, a warning
    cut2 = str(tmp_path / "cut2.core")
    with open(core, "rb") as src, open(cut2, "wb") as dst:
        dst.write(src.read(notes_at + (size - notes_at) // 2))
    with coremem.CoreMemory(cut2) as c:
        assert 0 < len(c.threads) < 7 and any("cut short" in w for w in c.warnings)
        for _t, frames, _names, why in coreunwind.walk_all(c):
            assert isinstance(why, str)
    # cut inside the notes, inside the program headers, empty, not ELF
    for n in (2000, 100, 40, 0):
        bad = str(tmp_path / ("bad%d.core" % n))
        with open(bad, "wb") as f:
            f.write(head[:n])
        try:
            with coremem.CoreMemory(bad) as c:
                assert c.warnings or not c.threads
                coreunwind.walk_all(c)
        except CoreFileError as exc:
            assert str(exc).count("\n") == 0
    with pytest.raises(CoreFileError):
        coremem.CoreMemory(str(tmp_path / "missing.core"))
    # garbage registers: every thread's pc, sp and rbp overwritten
    junk = str(tmp_path / "junk.core")
    shutil.copy(core, junk)
    offsets = _prstatus_offsets(core)
    with open(junk, "r+b") as f:
        for i, off in enumerate(offsets):
            for reg, val in (("rip", 0x4141414141414141), ("rsp", 0x10 + i),
                             ("rbp", 0x7fff00000000)):
                f.seek(off + coremem.PR_REG + 8 * coremem.X86_64_REGS.index(reg))
                f.write(struct.pack("<Q", val))
    with coremem.CoreMemory(junk) as c:
        got = coreunwind.walk_all(c, fp_fallback=True)
        assert len(got) == 7
        for _t, frames, _names, why in got:
            assert len(frames) == 1 and "no mapped file" in why


def _prstatus_offsets(path):
    """File offsets of every NT_PRSTATUS descriptor (for corrupting them)."""
    with open(path, "rb") as f:
        data = f.read(64)
        phoff, = struct.unpack_from("<Q", data, 0x20)
        phnum, = struct.unpack_from("<H", data, 0x38)
        f.seek(phoff)
        table = f.read(56 * phnum)
        out = []
        for i in range(phnum):
            p_type, _, off, _, _, filesz = struct.unpack_from("<IIQQQQ", table, i * 56)
            if p_type != 4:
                continue
            f.seek(off)
            notes = f.read(filesz)
            pos = 0
            while pos + 12 <= len(notes):
                namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
                desc = pos + 12 + ((namesz + 3) & ~3)
                if ntype == 1:
                    out.append(off + desc)
                pos = desc + ((descsz + 3) & ~3)
        return out


def test_frame_pointer_fallback_only_when_asked(scenarios, tmp_path):
    """With .eh_frame gone (a copy of the core whose executable path points
    to a file without it) the walk stops at the first frame without CFI,
    unless fp_fallback is asked for, which marks its frames "fp"."""
    core = scenarios.core("gmutex_pileup")
    with coremem.CoreMemory(core) as c:
        un = coreunwind.Unwinder(c)
        holder = [t for t in c.threads if un.unwind(t)[0] and
                  un.function(un.unwind(t)[0][1][0]) and
                  un.function(un.unwind(t)[0][1][0])[0] == "block_reading_pipe"]
        assert holder
        exe_path = c.mapping_at(un.unwind(holder[0])[0][1][0]).path
        un._objs[exe_path] = coreunwind.ObjFile(exe_path, None, coreunwind.load_obj(
            exe_path).phdrs)
        frames, why = un.unwind(holder[0])
        assert "no CFI" in why and len(frames) == 2
        un.fp_fallback = True
        frames2, why2 = un.unwind(holder[0])
        assert [f[2] for f in frames2[1:2]] == ["fp"]


# --- aarch64: registers, files and stacks of a qemu core ---------------------

def test_aarch64_registers_files_and_stacks_from_qemu_core(build_dir):
    from test_aarch64 import Aarch64, _arm64_glib, NATIVE_LOADER, CROSS_LIBC
    missing = [t for t in ("aarch64-linux-gnu-gcc", "qemu-aarch64", "gdb-multiarch")
               if shutil.which(t) is None]
    if missing or _arm64_glib() is None or not (
            os.path.exists(NATIVE_LOADER) or os.path.isdir(CROSS_LIBC)):
        pytest.skip("no aarch64 cross setup (see tests/test_aarch64.py)")
    a = Aarch64(build_dir)
    try:
        core, truth = a.core("gmutex_pileup")
        script = os.path.join(a.dir, "a64regs.py")
        with open(script, "w") as f:
            f.write("import gdb\nfor t in gdb.selected_inferior().threads():\n"
                    "    t.switch()\n    f = gdb.newest_frame()\n"
                    "    print('A64 %d %d %d %d' % (t.ptid[1], int(f.read_register('pc')),"
                    " int(f.read_register('sp')), int(f.read_register('x29'))))\n")
        res = a.gdb([], core=core, extra=["-x", script])
        want = {}
        for line in res.stdout.splitlines():
            if line.startswith("A64 "):
                lwp, pc, sp, fp = map(int, line.split()[1:])
                want[lwp] = (pc, sp, fp)
        with coremem.CoreMemory(core) as c:
            assert c.machine == coremem.EM_AARCH64
            got = dict((t.lwp, c.pc_sp_fp(t)) for t in c.threads)
            assert got == want and len(got) == sum(len(v) for v in truth.threads.values())
            assert all(len(t.regs) == 34 for t in c.threads)
            # qemu writes no NT_FILE: the files come from the linker's list
            # (the executable's headers from the file: qemu keeps no
            # read-only pages)
            un = coreunwind.Unwinder(c)
            assert un.mappings_from == "link_map"
            paths = set(m.path for m in c.mappings)
            assert a.exe in paths and any("libc.so" in p for p in paths), paths
            assert any("ld-linux-aarch64" in p for p in paths), paths
            assert c.mapping_at(c.threads[0].regs["pc"]) is not None
            # every thread unwound as gdb-multiarch unwinds it, frame for
            # frame (gdb stops at main), names among the aliases
            res = a.gdb([], core=core, extra=["-x", GDB_SCRIPT])
            view = {}
            for line in res.stdout.splitlines():
                if line.startswith("FASTCORE "):
                    d = json.loads(line[9:])
                    view[d["lwp"]] = d["frames"]
            assert sorted(view) == sorted(got)
            for t in c.threads:
                frames, why = un.unwind(t)
                gframes = view[t.lwp]
                assert len(frames) >= len(gframes) >= 3, (t.lwp, why, frames, gframes)
                if len(frames) > len(gframes):
                    assert gframes[-1][1] == "main", (t.lwp, gframes)
                else:
                    assert why.startswith("outermost"), (t.lwp, why)
                for i, ((pc, _cfa, _how), (gpc, gname)) in enumerate(zip(frames, gframes)):
                    assert pc == gpc, (t.lwp, i, hex(pc), hex(gpc))
                    assert _same_function(gname, un.function(pc, caller=i > 0)), (
                        t.lwp, i, gname, un.function(pc, caller=i > 0))
    finally:
        a.close()


# --- the CFA interpreter on hand-built CFI ---------------------------------

def _cie(insns, code_align=1, data_align=-8, ra=16):
    body = (struct.pack("<I", 0) + b"\x01zR\x00" + bytes([code_align]) +
            bytes([data_align & 0x7f]) + bytes([ra]) + b"\x01\x1b" + insns)
    body += b"\x00" * (-(len(body) + 4) % 8)
    return struct.pack("<I", len(body)) + body


def _fde(cie_at, at, start, size, insns):
    # pc-relative sdata4 begin, sdata4 size, empty augmentation
    begin_field = at + 8
    body = struct.pack("<I", at + 4 - cie_at) + struct.pack("<i", start - begin_field) + \
        struct.pack("<i", size) + b"\x00" + insns
    body += b"\x00" * (-(len(body) + 4) % 8)
    return struct.pack("<I", len(body)) + body


def _frame(fde_insns, cie_insns=b"\x0c\x07\x08\x90\x01"):
    # CIE: def_cfa rsp+8; offset r16 (rip) at cfa-8
    cie = _cie(cie_insns)
    fde = _fde(0, len(cie), 0x1000, 0x100, fde_insns)
    return cfi.EhFrame(cie + fde + b"\x00" * 4, 0)


def test_cfa_interpreter_push_rbp_frame():
    # push %rbp; mov %rsp,%rbp ... leave; ret (gcc -fno-omit-frame-pointer)
    insns = (b"\x41\x0e\x10\x86\x02"       # +1: def_cfa_offset 16; rbp at cfa-16
             b"\x43\x0d\x06"               # +3: def_cfa_register rbp
             b"\x0a"                       # remember_state
             b"\x50\x0c\x07\x08"           # +16: def_cfa rsp+8 (after leave)
             b"\x41"                       # +1 (the ret)
             b"\x0b")                      # restore_state
    eh = _frame(insns)
    r = eh.row_at(0x1000)
    assert r.cfa == (7, 8) and r.regs == {16: (cfi.OFFSET, -8)}
    r = eh.row_at(0x1001)
    assert r.cfa == (7, 16) and r.regs[6] == (cfi.OFFSET, -16)
    r = eh.row_at(0x1004)
    assert r.cfa == (6, 16)
    assert eh.row_at(0x1014).cfa == (7, 8)
    assert eh.row_at(0x1015).cfa == (6, 16)     # restored
    assert eh.row_at(0x1100) is None and eh.row_at(0xfff) is None


def test_cfa_interpreter_other_rules():
    insns = (b"\x07\x10"                   # undefined rip (outermost, like clone3)
             b"\x08\x03"                   # same_value rbx
             b"\x09\x0c\x0d"               # register r12 in r13
             b"\x14\x0e\x02"               # val_offset r14 = cfa+16
             b"\x2e\x20"                   # GNU_args_size 32
             b"\x11\x0f\x7e"               # offset_extended_sf r15 at cfa+(-2*-8)
             b"\x02\x05"                   # advance_loc1 5
             b"\xc6"                       # restore rbp (never set: dropped)
             b"\x06\x10"                   # restore_extended rip: the CIE's rule
             b"\x13\x7e"                   # def_cfa_offset_sf -2*-8 = 16
             b"\x03\x10\x00"               # advance_loc2 16
             b"\x0f\x02\x77\x08")          # def_cfa_expression (unsupported)
    eh = _frame(insns)
    r = eh.row_at(0x1000)
    assert r.regs[16] == (cfi.UNDEFINED, 0) and r.regs[3] == (cfi.SAME, 0)
    assert r.regs[12] == (cfi.REGISTER, 13) and r.regs[14] == (cfi.VAL_OFFSET, -16)
    assert r.regs[15] == (cfi.OFFSET, 16)
    r = eh.row_at(0x1005)
    assert r.regs[16] == (cfi.OFFSET, -8) and r.cfa == (7, 16)
    assert eh.row_at(0x1015).cfa is None


def test_cfa_interpreter_garbage_gives_none():
    # restore_state without remember_state, an unknown opcode, state stack
    # too deep, an expression block longer than the FDE
    for insns in (b"\x0b", b"\x3f", b"\x0a" * 100, b"\x0f\x7f"):
        eh = _frame(insns + b"\x41")
        assert eh.row_at(0x1002) is None, insns
    # lengths pointing past the end, a CIE pointer to nowhere
    assert cfi.EhFrame(b"\xff\xff\xff\x00" + b"\x00" * 12, 0).row_at(0) is None
    assert cfi.EhFrame(struct.pack("<II", 12, 999) + b"\x00" * 8, 0).row_at(0) is None


def test_eh_frame_hdr_index_equals_a_full_scan():
    """glibc's .eh_frame_hdr binary-search table finds the same FDEs, and
    gives the same rows, as one scan of all of .eh_frame."""
    import ctypes.util
    from janus_gdb.target.elffile import read_bytes, section_headers
    path = None
    for cand in ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib64/libc.so.6"):
        if os.path.exists(cand):
            path = cand
    if path is None:
        pytest.skip("no x86_64 glibc at the usual paths (%s)" % ctypes.util.find_library("c"))
    with open(path, "rb") as f:
        head = f.read(64)
        secs, _ = section_headers(f, head)
        eh, hdr = secs[".eh_frame"], secs[".eh_frame_hdr"]
        data = read_bytes(f, eh[1], eh[2])
        hdr_data = read_bytes(f, hdr[1], hdr[2])
    by_hdr = cfi.EhFrame(data, eh[0], hdr_data, hdr[0])
    by_scan = cfi.EhFrame(data, eh[0])
    assert len(by_hdr._starts) > 1000
    assert by_hdr._starts == by_scan._starts and by_hdr._offsets == by_scan._offsets
    rows = 0
    for start in by_hdr._starts[::97]:
        for pc in (start, start + 1, start + 7):
            a, b = by_hdr.row_at(pc), by_scan.row_at(pc)
            assert (a is None) == (b is None)
            if a is not None:
                assert (a.cfa, a.regs) == (b.cfa, b.regs)
                rows += 1
    assert rows > 50


def test_a_rebuilt_file_on_disk_is_refused(binaries, tmp_path):
    """The CFI and names come from the files on disk: when a file is not the
    one the core had mapped (another build ID than the ELF notes the core
    holds), its frames are not read, and the walk says why."""
    exe = str(tmp_path / "scenarios-copy")
    shutil.copy(binaries.debug, exe)
    sc = gdbrun.Scenario(exe, ["gmutex_pileup"])
    core = str(tmp_path / "copy.core")
    try:
        sc.gcore(core)
    finally:
        sc.kill()
    with coremem.CoreMemory(core) as c:
        good = dict((t.lwp, coreunwind.Unwinder(c).unwind(t)) for t in c.threads)
        assert all(why.startswith("outermost") for _f, why in good.values())
    out = subprocess.run(["readelf", "-n", exe], stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    bid = out.split("Build ID: ")[1].split()[0]
    with open(exe, "r+b") as f:
        data = f.read()
        at = data.index(bytes.fromhex(bid))
        f.seek(at)
        f.write(bytes([data[at] ^ 0xff]))
    with coremem.CoreMemory(core) as c:
        un = coreunwind.Unwinder(c)
        for t in c.threads:
            frames, why = un.unwind(t)
            gframes = good[t.lwp][0]
            assert "not the file the core had mapped" in why, why
            assert len(frames) < len(gframes)
            assert [f[0] for f in frames] == [f[0] for f in gframes[:len(frames)]]


def _walk_bounded(path):
    """Open and walk every thread of the core at PATH: a CoreFileError line
    or the walks; any other exception fails the test."""
    try:
        with coremem.CoreMemory(path) as c:
            got = coreunwind.walk_all(c, fp_fallback=True)
    except CoreFileError as exc:
        assert "\n" not in str(exc)
        return None
    for _t, frames, _names, why in got:
        assert len(frames) <= coreunwind.MAX_FRAMES and why
    return got


@pytest.mark.parametrize("mode", ["mem", "words", "regs", "headers"])
def test_mutated_cores_never_raise(scenarios, tmp_path, mode):
    """tests/corefuzz.py's mutants (memory, stack words, registers) and
    byte flips in the ELF and program headers and the notes: a clear error
    or a (partial) walk, bounded, never an exception."""
    import random
    import corefuzz
    path = scenarios.core("pthread_cycle")
    truth = scenarios.get("pthread_cycle").truth
    core = corefuzz.Core(path)
    notes = [(seg_off, size) for seg_off, size in _note_ranges(path)]
    for seed in range(3):
        if mode == "headers":
            rng = random.Random("headers:%d" % seed)
            patches = []
            for _ in range(rng.randint(1, 40)):
                if rng.random() < 0.3:
                    off = rng.randrange(64 + 56 * 40)
                else:
                    start, size = rng.choice(notes)
                    off = start + rng.randrange(size)
                patches.append((off, bytes([rng.randrange(256)]), "flip"))
        else:
            patches = corefuzz.mutate(core, mode, seed, truth)
        mutant = corefuzz.write_mutant(path, patches, str(tmp_path / "mutant.core"))
        _walk_bounded(mutant)
        os.unlink(mutant)


def _note_ranges(path):
    with open(path, "rb") as f:
        data = f.read(64)
        phoff, = struct.unpack_from("<Q", data, 0x20)
        phnum, = struct.unpack_from("<H", data, 0x38)
        f.seek(phoff)
        table = f.read(56 * phnum)
    out = []
    for i in range(phnum):
        p_type, _, off, _, _, filesz = struct.unpack_from("<IIQQQQ", table, i * 56)
        if p_type == 4:
            out.append((off, filesz))
    return out


def _note_headers(path, ntype):
    """File offsets of the headers of every note of type NTYPE."""
    out = []
    with open(path, "rb") as f:
        for off, filesz in _note_ranges(path):
            f.seek(off)
            notes = f.read(filesz)
            pos = 0
            while pos + 12 <= len(notes):
                namesz, descsz, typ = struct.unpack_from("<III", notes, pos)
                if typ == ntype:
                    out.append(off + pos)
                pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return out


@pytest.mark.parametrize("which", [0, 2])
def test_without_nt_file_the_linker_list_finds_the_files(scenarios, pileup, tmp_path, which):
    """A core without the NT_FILE note (qemu's, older kernels'): the files
    come from the dynamic linker's r_debug/link_map list in the core's
    memory, and every thread unwinds and is named exactly as with NT_FILE."""
    exe, core = list(_cores(scenarios, pileup))[which]
    bare = str(tmp_path / "no-nt-file.core")
    shutil.copy(core, bare)
    (hdr,) = _note_headers(core, coremem.NT_FILE)
    with open(bare, "r+b") as f:
        f.seek(hdr + 8)
        f.write(struct.pack("<I", 0x7fff))      # no longer NT_FILE
    with coremem.CoreMemory(core) as c, coremem.CoreMemory(bare) as b:
        assert b.mappings == [] and c.mappings
        want = coreunwind.walk_all(c)
        found = linkmap.find_mappings(b)
        assert set(m.path for m in found) >= set([exe])
        un = coreunwind.Unwinder(b)
        assert un.mappings_from == "link_map"
        for (t, frames, names, why) in want:
            got = un.unwind(t)
            assert got == (frames, why), t.lwp
            assert [un.name(pc, i > 0) for i, (pc, _c, _h) in enumerate(got[0])] == names
        os.unlink(bare)
