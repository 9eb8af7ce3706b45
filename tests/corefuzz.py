"""Fuzzing janus-gdb with mutated cores (stdlib only).

A core is parsed just enough to mutate it safely: the ELF64 program headers,
the PT_LOAD segments with file contents (the memory gdb reads) and the
PT_NOTE segment (threads, registers, mappings).  A mutant is a copy of the
core with a few patches:

  mem    byte flips inside the memory segments (never the ELF headers or the
         notes, so gdb still opens the core);
  words  8-byte (and 4-byte) overwrites inside the memory segments with
         interesting values: 0, 1, 2, -1, huge numbers, pointers into other
         segments, a pointer to the word itself, LWPs of the threads;
  regs   byte flips and register overwrites inside the general-purpose
         register area (pr_reg) of the NT_PRSTATUS notes: corrupt registers.

Memory patches are biased towards what the analysis reads: each thread's
stack near its saved sp, the futex word its registers name, the lock
addresses a fixture prints as ground truth, and the heap objects the stacks
point to; the rest are uniform over all memory.  Everything is deterministic
for (core, mode, seed, ground truth).

run() runs gdb with the janus-gdb commands on a mutant, with a timeout, and
classify() sorts the outcome: ok, error (one clear line), and the bugs:
traceback, internal (our catch-all for bugs), hang, badjson, unescaped
(control characters in our output), gdb-crash (gdb itself died: reported,
but not ours to fix).

    core = Core(path)
    patches = mutate(core, "mem", seed=7, truth=truth)
    outcome = fuzz_one(exe, path, patches, workdir)   # writes, runs, deletes
"""

import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GDBINIT = os.path.join(ROOT, "gdbinit.py")
SCHEMA_PATH = os.path.join(ROOT, "docs", "janus-gdb.schema.json")
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import schema_check  # noqa: E402

PT_LOAD, PT_NOTE = 1, 4
PF_W = 2
NT_PRSTATUS = 1
# x86_64 struct elf_prstatus: pr_pid at 32, pr_reg (27 x 8 bytes) at 112
PRSTATUS_PID = 32
PRSTATUS_REG = 112
REG_NAMES = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax",
             "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
             "fs_base", "gs_base", "ds", "es", "fs", "gs")
REG = dict((n, i) for i, n in enumerate(REG_NAMES))
MAX_PHDRS = 65536
MAX_NOTES = 100000

MODES = ("mem", "words", "regs")
BUGS = ("traceback", "internal", "hang", "badjson", "unescaped", "gdb-crash")
COMMANDS = ("janus-waitgraph", "janus-waitgraph --format json", "janus-locks")
JSON_BEGIN, JSON_END = "@@fuzz-json-begin@@", "@@fuzz-json-end@@"
MASK64 = (1 << 64) - 1


class CoreFormatError(Exception):
    pass


class Segment(object):
    def __init__(self, vaddr, offset, filesz, flags):
        self.vaddr, self.offset, self.filesz, self.flags = vaddr, offset, filesz, flags

    def contains(self, addr):
        return self.vaddr <= addr < self.vaddr + self.filesz


class Thread(object):
    def __init__(self, pid, reg_offset, regs):
        self.pid, self.reg_offset, self.regs = pid, reg_offset, regs

    def reg(self, name):
        return self.regs[REG[name]]


class Core(object):
    """The parts of an x86_64 ELF64 core file the fuzzer needs."""

    def __init__(self, path):
        self.path = path
        self.size = os.path.getsize(path)
        self.segments = []
        self.notes = []     # (file offset, size) of each PT_NOTE
        self.threads = []
        with open(path, "rb") as f:
            ident = f.read(64)
            if len(ident) < 64 or ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
                raise CoreFormatError("%s is not a little-endian ELF64 file" % path)
            e_type, e_machine = struct.unpack_from("<HH", ident, 16)
            if e_type != 4:
                raise CoreFormatError("%s is not a core file" % path)
            if e_machine != 62:
                raise CoreFormatError("%s is not an x86_64 core" % path)
            phoff, = struct.unpack_from("<Q", ident, 32)
            phentsize, phnum = struct.unpack_from("<HH", ident, 54)
            if phentsize < 56 or phnum > MAX_PHDRS:
                raise CoreFormatError("%s: bad program headers" % path)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            for i in range(phnum):
                p_type, p_flags, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
                    "<IIQQQQ", table, i * phentsize)
                if p_offset + p_filesz > self.size:
                    continue
                if p_type == PT_LOAD and p_filesz > 0:
                    self.segments.append(Segment(p_vaddr, p_offset, p_filesz, p_flags))
                elif p_type == PT_NOTE:
                    self.notes.append((p_offset, p_filesz))
            for offset, size in self.notes:
                f.seek(offset)
                self._parse_notes(f.read(size), offset)
        self.mem_total = sum(s.filesz for s in self.segments)
        if not self.segments:
            raise CoreFormatError("%s has no memory segments" % path)

    def _parse_notes(self, data, base):
        pos = 0
        for _ in range(MAX_NOTES):
            if pos + 12 > len(data):
                return
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            desc = pos + 12 + ((namesz + 3) & ~3)
            if desc + descsz > len(data):
                return
            if ntype == NT_PRSTATUS and descsz >= PRSTATUS_REG + 27 * 8:
                pid, = struct.unpack_from("<i", data, desc + PRSTATUS_PID)
                regs = struct.unpack_from("<27Q", data, desc + PRSTATUS_REG)
                self.threads.append(Thread(pid, base + desc + PRSTATUS_REG, regs))
            pos = desc + ((descsz + 3) & ~3)

    def segment_of(self, addr):
        for s in self.segments:
            if s.contains(addr):
                return s
        return None

    def file_range(self, start, end):
        """(file offset, length) of [START, END) clipped to the segment of START."""
        seg = self.segment_of(start)
        if seg is None:
            return None
        end = min(end, seg.vaddr + seg.filesz)
        return seg.offset + start - seg.vaddr, end - start

    def read(self, addr, length):
        rng = self.file_range(addr, addr + length)
        if rng is None or rng[1] < length:
            return None
        with open(self.path, "rb") as f:
            f.seek(rng[0])
            return f.read(length)

    def targets(self, truth=None):
        """[(vaddr start, end, label)]: the regions the analysis reads."""
        out = []

        def add(start, end, label):
            start &= MASK64
            end &= MASK64
            seg = self.segment_of(start)
            if seg is not None:
                end = min(end, seg.vaddr + seg.filesz)
                if start < end:
                    out.append((start, end, label))
        for t in self.threads:
            sp = t.reg("rsp")
            add(sp - 256, sp + 8192, "stack:%d" % t.pid)
            rdi = t.reg("rdi")
            add(rdi - 32, rdi + 64, "futex:%d" % t.pid)
            # heap objects the innermost frames point to
            words = self.read(sp, 2048) or b""
            seen = 0
            for (w,) in struct.iter_unpack("<Q", words[:len(words) // 8 * 8]):
                seg = self.segment_of(w)
                if seg is not None and seg.flags & PF_W and not (sp - 65536 <= w < sp + 65536):
                    add(w, w + 256, "object:%d:0x%x" % (t.pid, w))
                    seen += 1
                    if seen >= 32:
                        break
        if truth is not None:
            for name, addr in sorted(truth.locks.items()):
                add(addr - 256, addr + 64, "lock:%s" % name)
        return out


def interesting_values(core, rng, where):
    """Candidates for an 8-byte overwrite at vaddr WHERE."""
    seg = rng.choice(core.segments)
    values = [0, 1, 2, 3, MASK64, MASK64 - 1, 0x7fffffffffffffff, 0x8000000000000000,
              0xffffffff, 0x80000000, 0xdeadbeef, 0x4141414141414141, 1 << 40,
              where, where + 8, where - 8,
              seg.vaddr + rng.randrange(0, max(1, seg.filesz // 8)) * 8,
              seg.vaddr + seg.filesz - 4, seg.vaddr + seg.filesz + 4096]
    if core.threads:
        t = rng.choice(core.threads)
        values += [t.pid, t.reg("rsp"), t.reg("rsp") + 16, t.reg("rdi")]
    return values


def _pick_address(core, rng, targets, bias):
    if targets and rng.random() < bias:
        start, end, label = rng.choice(targets)
        return rng.randrange(start, end), label
    n = rng.randrange(core.mem_total)
    for s in core.segments:
        if n < s.filesz:
            return s.vaddr + n, "uniform"
        n -= s.filesz
    raise AssertionError("unreachable")


def mutate(core, mode, seed, truth=None, count=None, bias=0.7):
    """Patches [(file offset, new bytes, label)] for MODE and SEED."""
    if mode not in MODES:
        raise ValueError("mode must be one of %s" % ", ".join(MODES))
    rng = random.Random("%s:%d" % (mode, seed))
    patches = []
    if mode == "regs":
        if not core.threads:
            return patches
        count = count or rng.randint(1, 8)
        for _ in range(count):
            t = rng.choice(core.threads)
            if rng.random() < 0.5:
                reg = rng.choice(("rsp", "rip", "rbp", "orig_rax", "rdi", "rsi", "rdx", "rax",
                                  "rbx", "r12", "fs_base"))
                cur = t.reg(reg)
                val = rng.choice([0, 1, MASK64, 202, 219, cur ^ (1 << rng.randrange(64)),
                                  cur + 8, cur - 8, 0xdeadbeef] +
                                 interesting_values(core, rng, cur))
                patches.append((t.reg_offset + REG[reg] * 8, struct.pack("<Q", val & MASK64),
                                "reg:%d:%s" % (t.pid, reg)))
            else:
                i = rng.randrange(27 * 8)
                old = _byte_at(core, t.reg_offset + i)
                patches.append((t.reg_offset + i, bytes([old ^ (1 << rng.randrange(8))]),
                                "regbyte:%d:%s" % (t.pid, REG_NAMES[i // 8])))
        return patches
    targets = core.targets(truth)
    if mode == "mem":
        count = count or rng.choice((rng.randint(1, 16), rng.randint(16, 256)))
        for _ in range(count):
            addr, label = _pick_address(core, rng, targets, bias)
            off = core.file_range(addr, addr + 1)[0]
            old = _byte_at(core, off)
            new = old ^ (1 << rng.randrange(8)) if rng.random() < 0.7 else rng.randrange(256)
            patches.append((off, bytes([new]), label))
        return patches
    count = count or rng.randint(1, 48)
    for _ in range(count):
        addr, label = _pick_address(core, rng, targets, bias)
        width = 8 if rng.random() < 0.75 else 4
        addr &= ~(width - 1)
        rngs = core.file_range(addr, addr + width)
        if rngs is None or rngs[1] < width:
            continue
        val = rng.choice(interesting_values(core, rng, addr))
        data = struct.pack("<Q", val & MASK64)[:width]
        patches.append((rngs[0], data, label))
    return patches


def _byte_at(core, offset):
    with open(core.path, "rb") as f:
        f.seek(offset)
        return f.read(1)[0]


def write_mutant(core_path, patches, out_path):
    """Copy the core to OUT_PATH and apply PATCHES in place."""
    shutil.copyfile(core_path, out_path)
    with open(out_path, "r+b") as f:
        for offset, data, _ in patches:
            f.seek(offset)
            f.write(data)
    return out_path


def gdb_command(exe, core):
    cmd = ["gdb", "-nx", "-batch", "-iex", "set pagination off", "-iex", "set width 0",
           exe, "-c", core, "-x", GDBINIT]
    for c in COMMANDS:
        if "json" in c:
            cmd += ["-ex", "echo %s\\n" % JSON_BEGIN, "-ex", c, "-ex", "echo %s\\n" % JSON_END]
        else:
            cmd += ["-ex", c]
    return cmd


class Outcome(object):
    def __init__(self, kind, detail, stdout="", stderr="", seconds=0.0):
        self.kind, self.detail = kind, detail
        self.stdout, self.stderr, self.seconds = stdout, stderr, seconds

    @property
    def bug(self):
        return self.kind in BUGS

    def __repr__(self):
        return "Outcome(%s, %r)" % (self.kind, self.detail)


def run(exe, core, timeout=60):
    """Run the janus-gdb commands on CORE; an Outcome."""
    start = time.time()
    try:
        res = subprocess.run(gdb_command(exe, core), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        return Outcome("hang", "no answer in %ds" % timeout,
                       (exc.stdout or b"").decode("utf-8", "replace"),
                       (exc.stderr or b"").decode("utf-8", "replace"), time.time() - start)
    out = classify(res.returncode, res.stdout, res.stderr)
    out.seconds = time.time() - start
    return out


_SCHEMA = []


def _schema():
    if not _SCHEMA:
        with open(SCHEMA_PATH) as f:
            _SCHEMA.append(json.load(f))
    return _SCHEMA[0]


REPORT_LINE = (r"^(Found \d+ deadlocks?|No deadlock found|Undetermined:|No lock is held or waited for|"
               r"\d+ locks? held or waited for)")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
BUG_PATTERNS = (("traceback", re.compile(r"Traceback \(most recent|Python Exception")),
                ("internal", re.compile(r"internal error")),
                ("gdb-crash", re.compile(r"internal-error:|Fatal signal|A problem internal to GDB")))


def classify(returncode, stdout, stderr):
    """An Outcome from gdb's exit status and output (bytes)."""
    out = stdout.decode("utf-8", "replace")
    err = stderr.decode("utf-8", "replace")
    both = out + "\n" + err
    for kind, pat in BUG_PATTERNS:
        m = pat.search(both)
        if m:
            line = both[both.rfind("\n", 0, m.start()) + 1:].split("\n", 1)[0]
            return Outcome(kind, line[:300], out, err)
    if returncode < 0:
        return Outcome("gdb-crash", "gdb killed by signal %d" % -returncode, out, err)
    # the JSON document between the markers, unless the command failed
    doc = None
    if JSON_BEGIN in out and JSON_END in out:
        body = out.split(JSON_BEGIN, 1)[1].split(JSON_END, 1)[0].strip()
        if body:
            try:
                doc = json.loads(body)
            except ValueError as exc:
                return Outcome("badjson", "not JSON: %s" % exc, out, err)
            errors = schema_check.validate(doc, _schema())
            if errors:
                return Outcome("badjson", "schema: %s" % errors[0], out, err)
    ours = _our_output(out)
    m = CONTROL.search(ours)
    if m:
        return Outcome("unescaped", "control character %r in the report" % m.group(0), out, err)
    reports = len(re.findall(REPORT_LINE, out, re.M))
    ours_err = [l for l in err.splitlines() if l.startswith("janus-")]
    if reports >= 2 and doc is not None and not ours_err:
        return Outcome("ok", "%d reports" % reports, out, err)
    if ours_err:
        return Outcome("error", ours_err[0][:300], out, err)
    last = [l for l in err.splitlines() if l.strip()]
    return Outcome("error", (last[-1] if last else "no report")[:300], out, err)


def _our_output(out):
    """stdout from the first report line on (gdb's core-loading chatter, which
    prints the target's strings itself, comes before)."""
    m = re.search(r"%s|^%s" % (REPORT_LINE, JSON_BEGIN), out, re.M)
    return out[m.start():] if m else ""


def fuzz_one(exe, core_path, patches, workdir, timeout=60, keep_dir=None, name="mutant"):
    """Write the mutant into WORKDIR, run it, delete it; keep it (and its
    patches) in KEEP_DIR when the outcome is a bug.  Returns the Outcome."""
    mutant = os.path.join(workdir, name + ".core")
    write_mutant(core_path, patches, mutant)
    try:
        outcome = run(exe, mutant, timeout)
        if keep_dir and outcome.bug:
            keep(keep_dir, name, exe, core_path, mutant, patches, outcome)
    finally:
        if os.path.exists(mutant):
            os.unlink(mutant)
    return outcome


def keep(keep_dir, name, exe, core_path, mutant, patches, outcome):
    """Move MUTANT into KEEP_DIR/NAME/ with the executable, the patches, the
    output and a replay script."""
    d = os.path.join(keep_dir, name)
    os.makedirs(d, exist_ok=True)
    shutil.move(mutant, os.path.join(d, "core"))
    shutil.copy2(exe, os.path.join(d, "exe"))
    with open(os.path.join(d, "patches.json"), "w") as f:
        json.dump({"original": core_path, "kind": outcome.kind, "detail": outcome.detail,
                   "patches": [[o, d_.hex(), label] for o, d_, label in patches]}, f, indent=1)
    with open(os.path.join(d, "output.txt"), "w") as f:
        f.write("== %s: %s\n== stdout\n%s\n== stderr\n%s\n" % (outcome.kind, outcome.detail,
                                                              outcome.stdout, outcome.stderr))
    cmd = gdb_command("$D/exe", "$D/core")
    with open(os.path.join(d, "replay"), "w") as f:
        f.write("#!/bin/sh\n# replay: %s (%s)\nD=$(cd \"$(dirname \"$0\")\" && pwd)\n"
                % (outcome.kind, outcome.detail.replace("\n", " ")))
        f.write(" ".join(_shq(c) for c in cmd) + "\n")
    os.chmod(os.path.join(d, "replay"), 0o755)
    return d


def _shq(s):
    if s.startswith("$D/"):
        return '"%s"' % s
    if re.match(r"^[\w@%+=:,./-]+$", s):
        return s
    return "'" + s.replace("'", "'\\''") + "'"
