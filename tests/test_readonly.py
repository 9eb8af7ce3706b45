"""janus-gdb is read-only by construction: the target's memory is the same
byte for byte after every way of using it.

For a live target, every writable and every executable mapping (from
/proc/PID/maps) is read through /proc/PID/mem and hashed (sha256) before
gdb attaches and after it detached.  Between the two gdb runs, in one
session: `janus-waitgraph`, `janus-locks --format json`, `janus-waitgraph
--format dot`, `print` of a lock (the pretty-printer), `thread apply all bt`
(the annotations); then the command-line tool `python3 -m janus_gdb --pid
PID`.  The hashes must be identical, `info breakpoints` must show none,
gdb's settings must be as before, and the process must be running, not
stopped and not traced.

Why the two hashes are comparable:
- A read of a mapping is not atomic, so the process is stopped (SIGSTOP,
  every thread in state T) while it is read, and continued (SIGCONT) after.
  Stopping and continuing a thread blocked in futex() or nanosleep() does not
  touch its memory: the kernel restarts the call itself.
- The fixtures are hung: every thread is blocked in futex, pause, read or
  nanosleep, except the scenarios' sleeper thread, which wakes once a second
  and goes back to sleep through the same code with the same values, so it
  rewrites its stack with the bytes that were there.  test_quiescent checks
  this (two hashes 1.5 s apart, without gdb, are equal, with the masks
  below).
- The real Janus is not quiescent (its watchdog, event loops and HTTP
  server wake up and allocate), so it is kept stopped (SIGSTOP) from the
  first hash to the second, gdb and the command-line tool included; it is
  continued afterwards and must answer `info` and `ping` over HTTP.
- Excluded, because the kernel itself writes them whenever a thread is
  stopped and continued (our SIGSTOP, or any ptrace attach), gdb or not:
  * each thread's rseq area (restartable sequences, registered by glibc
    2.35+): the kernel stores the CPU the thread runs on (cpu_id_start,
    cpu_id, node_id, mm_cid) at every return to user space after a
    migration.  Located with a plain gdb (no janus-gdb) before the first
    hash: $fs_base + __rseq_offset of each thread; only those four 4-byte
    fields are masked (rseq_cs and flags are still compared).
  * the `rem` timespec of a thread in nanosleep/clock_nanosleep (the
    scenarios' sleeper): an interrupted sleep writes the remaining time
    there (16 bytes, the address is the syscall's argument in
    /proc/PID/task/TID/syscall).
  * [vsyscall]: a kernel page, the same in every process, which
    /proc/PID/mem cannot read.
  Nothing else: a mapping that cannot be read is recorded as unreadable,
  so it must stay unreadable.

test_checksum_detects_one_byte shows that the check can fail: gdb itself
(not janus-gdb) writes one byte into an unused stack page of the fixture,
the hash of that mapping (and only that one) changes, and writing the byte
back restores it.
"""

import hashlib
import os
import signal
import subprocess
import time

import pytest

import gdbrun

SETTINGS_SHOWN = ["show may-write-memory", "show may-write-registers", "show may-call-functions",
                  "show may-insert-breakpoints", "show may-interrupt",
                  "show dcache line-size", "show dcache size", "show trust-readonly-sections",
                  "show mem inaccessible-by-default", "show pagination", "show width",
                  "show print pretty", "show confirm", "info mem", "info display",
                  "info breakpoints"]
MARK = "=MARK=%d="
EXCLUDED = ("[vsyscall]",)
CHUNK = 1 << 20


def mappings(pid):
    """[(start, end, perms, name)] of the writable or executable mappings."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split(None, 5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            perms = fields[1]
            name = fields[5].strip() if len(fields) > 5 else ""
            if ("w" in perms or "x" in perms) and name not in EXCLUDED:
                out.append((start, end, perms, name))
    return out


def _states(pid):
    states = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except OSError:
            pass
    return states


def stop(pid, timeout=10):
    """SIGSTOP PID and wait until every thread is stopped."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(s in ("T", "t") for s in _states(pid)):
            return
        time.sleep(0.01)
    raise AssertionError("process %d did not stop: %s" % (pid, _states(pid)))


RSEQ_PROBE = ("python import gdb; off = int(gdb.parse_and_eval('*(long *)&__rseq_offset')); "
              "size = int(gdb.parse_and_eval('*(unsigned int *)&__rseq_size')); "
              "[(th.switch(), print('RSEQ 0x%x' % ((int(gdb.parse_and_eval('$fs_base')) + off)"
              " & (2 ** 64 - 1)))) for th in gdb.selected_inferior().threads() if size]")
# (offset, length) in struct rseq the kernel updates: cpu_id_start, cpu_id, node_id, mm_cid
RSEQ_KERNEL_FIELDS = ((0, 4), (4, 4), (24, 4), (28, 4))
NANOSLEEP_REM = {"35": 1, "230": 3}   # syscall number: index of the rem argument


def kernel_written(pid):
    """{address: length} that the kernel writes on its own (see the module
    docstring): the rseq CPU fields of every thread.  Asks a plain gdb, so
    call it before the first hash."""
    res = gdbrun.gdb([RSEQ_PROBE], pid=pid, load=False)
    masks = {}
    for line in res.stdout.splitlines():
        if line.startswith("RSEQ 0x"):
            base = int(line.split()[1], 16)
            for off, size in RSEQ_KERNEL_FIELDS:
                masks[base + off] = size
    return masks


def _sleep_rem(pid):
    """{address: 16} of the rem buffers of threads in nanosleep (PID stopped)."""
    masks = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/syscall" % (pid, tid)) as f:
                fields = f.read().split()
        except OSError:
            continue
        if fields and fields[0] in NANOSLEEP_REM:
            rem = int(fields[1 + NANOSLEEP_REM[fields[0]]], 16)
            if rem:
                masks[rem] = 16
    return masks


def settle_sleepers(pid, timeout=3):
    """Wait until no thread is in restart_syscall (a sleep interrupted by an
    earlier attach): its rem buffer is then visible in /proc again."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        calls = []
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/syscall" % (pid, tid)) as f:
                    calls.append(f.read().split()[0])
            except (OSError, IndexError):
                pass
        if "219" not in calls:
            return
        time.sleep(0.05)


def _masked(data, start, masks):
    for addr, size in masks.items():
        if start <= addr and addr + size <= start + len(data):
            data = data[:addr - start] + b"\0" * size + data[addr - start + size:]
    return data


def checksums(pid, masks=None, keep_stopped=False):
    """{(start, end, perms, name): sha256 hex or 'unreadable'} of PID's
    writable and executable mappings, read while PID is stopped (continued
    afterwards unless KEEP_STOPPED: the caller then continues it).  MASKS
    ({address: length}, kernel-written bytes) are hashed as zeros and grow
    by the nanosleep rem buffers seen now."""
    sums = {}
    masks = {} if masks is None else masks
    stop(pid)
    masks.update(_sleep_rem(pid))
    try:
        fd = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
        try:
            for m in mappings(pid):
                start, end = m[0], m[1]
                h = hashlib.sha256()
                try:
                    addr = start
                    while addr < end:
                        data = os.pread(fd, min(CHUNK, end - addr), addr)
                        if not data:
                            raise OSError("short read at 0x%x" % addr)
                        h.update(_masked(data, addr, masks))
                        addr += len(data)
                    sums[m] = h.hexdigest()
                except OSError:
                    sums[m] = "unreadable"
        finally:
            os.close(fd)
    finally:
        if not keep_stopped:
            os.kill(pid, signal.SIGCONT)
    assert sums, "no mappings read"
    return sums


def differences(before, after):
    """Mappings added, removed or changed, described for the failure message."""
    diff = []
    for m in sorted(set(before) | set(after)):
        if before.get(m) != after.get(m):
            diff.append("%x-%x %s %s: %s -> %s" % (m[0], m[1], m[2], m[3],
                                                  before.get(m, "absent"),
                                                  after.get(m, "absent")))
    return diff


def status_field(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    return None


def assert_running(pid):
    """Continued (no thread stopped or traced) and no tracer attached."""
    deadline = time.time() + 5
    while time.time() < deadline:
        states = _states(pid)
        if status_field(pid, "TracerPid") == "0" and states and \
                not any(s in ("T", "t") for s in states):
            break
        time.sleep(0.05)
    assert status_field(pid, "TracerPid") == "0"
    states = _states(pid)
    assert states and all(s in ("S", "R", "D") for s in states), states


def _blocks(stdout):
    """The settings shown after each MARK line."""
    parts = stdout.split("=MARK=")
    return dict((p.split("=", 1)[0], p.split("=", 1)[1].split("=END=")[0].strip())
                for p in parts[1:])


def run_session(pid, print_expr, cli=True):
    """gdb with janus-gdb: the settings, every command, the settings again;
    then the command-line tool.  Returns (gdb result, cli result)."""
    def marks(n):
        return ["echo %s\\n" % (MARK % n)] + SETTINGS_SHOWN + ["echo =END=\\n"]
    commands = marks(0) + [
        "janus-waitgraph",
        "janus-locks --format json",
        "janus-waitgraph --format dot",
        "print %s" % print_expr,
        "thread apply all bt",
    ] + marks(1)
    res = gdbrun.gdb(commands, pid=pid, timeout=600)
    out = None
    if cli:
        env = dict(os.environ)
        env["PYTHONPATH"] = gdbrun.ROOT + os.pathsep + env.get("PYTHONPATH", "")
        out = subprocess.run(gdbrun.cli_argv(["--pid", str(pid)]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, env=env, cwd="/", timeout=600)
    return res, out


def check_session(res, cli, pid):
    both = res.stdout + res.stderr
    assert "Traceback" not in both and "Python Exception" not in both, both
    blocks = _blocks(res.stdout)
    assert set(blocks) == {"0", "1"}, res.stdout
    # the same settings before and after the commands, in the same session
    assert blocks["0"] and blocks["1"] == blocks["0"], (blocks["0"], blocks["1"])
    assert "No breakpoints or watchpoints." in blocks["1"]
    assert "is off." in blocks["1"] or "is on." in blocks["1"]
    # ... and the same as gdb's own without janus-gdb loaded
    plain = gdbrun.gdb(["echo %s\\n" % (MARK % 0)] + SETTINGS_SHOWN + ["echo =END=\\n"],
                       pid=pid, load=False)
    assert _blocks(plain.stdout)["0"] == blocks["1"]
    if cli is not None:
        assert "Traceback" not in cli.stdout + cli.stderr, cli.stderr
        assert cli.returncode in (0, 1), (cli.returncode, cli.stderr)
        assert cli.stdout.startswith(("Found", "No deadlock found")), cli.stdout[:500]


FIXTURES = [
    # (fixture, scenario, variant, lock to print)
    ("scenarios", "pthread_cycle", "debug", "m1"),
    ("scenarios", "gmutex_cycle", "debug", "gm1"),
    ("janus", "pli_inversion", "gmutex", "rooms_mutex"),
]


def quiet_checksums(pid, masks, tries=6):
    """Checksums once two in a row, 0.5 s apart, agree: a fixture that an
    earlier test attached to may still be finishing a restarted sleep or
    wait; after that it is quiescent (test_quiescent).  Returns the last."""
    settle_sleepers(pid)
    last = checksums(pid, masks)
    for _ in range(tries):
        time.sleep(0.5)
        settle_sleepers(pid)
        now = checksums(pid, masks)
        if not differences(last, now):
            return now
        last = now
    return last


def _scenario(request, fixture, name, variant):
    """A fresh process of the fixture's binary, killed after the test: the
    session's shared processes have been attached to by every earlier
    module, and in full runs one of them was seen still changing memory
    on its own (not reproduced in isolation), which would make the
    comparison measure that instead of janus-gdb."""
    fx = request.getfixturevalue(fixture)
    exe = fx.exes[variant] if fixture == "janus" else fx.binaries.exe(variant)
    sc = gdbrun.Scenario(exe, [name])
    request.addfinalizer(sc.kill)
    return sc


@pytest.mark.parametrize("fixture,name,variant,lock", FIXTURES,
                         ids=["%s-%s-%s" % (f[0], f[1], f[2]) for f in FIXTURES])
def test_quiescent(request, fixture, name, variant, lock):
    """Without gdb, two hashes of a hung fixture 1.5 s apart are equal: the
    comparison below measures gdb and janus-gdb, nothing else."""
    sc = _scenario(request, fixture, name, variant)
    masks = kernel_written(sc.pid)
    first = quiet_checksums(sc.pid, masks)
    time.sleep(1.5)
    settle_sleepers(sc.pid)
    assert differences(first, checksums(sc.pid, masks)) == []


@pytest.mark.parametrize("fixture,name,variant,lock", FIXTURES,
                         ids=["%s-%s-%s" % (f[0], f[1], f[2]) for f in FIXTURES])
def test_target_memory_unchanged(request, fixture, name, variant, lock):
    sc = _scenario(request, fixture, name, variant)
    masks = kernel_written(sc.pid)
    before = quiet_checksums(sc.pid, masks)
    futex_before = dict((t, c) for t, c in sc.syscall_state().items() if c.startswith("202 "))
    res, cli = run_session(sc.pid, lock)
    settle_sleepers(sc.pid)
    after = checksums(sc.pid, masks)
    assert differences(before, after) == []
    check_session(res, cli, sc.pid)
    # the commands did their work
    assert "Found 1 deadlock" in res.stdout, res.stdout[-3000:]
    assert '"schema": "janus-gdb/1"' in res.stdout
    assert "digraph" in res.stdout
    assert cli.returncode == 1 and cli.stdout.startswith("Found 1 deadlock")
    assert_running(sc.pid)
    assert sc.proc.poll() is None
    futex_after = sc.syscall_state()
    for tid, call in futex_before.items():
        assert futex_after[tid] == call


def _unused_stack_byte(pid):
    """The lowest address of a thread stack (the rw mapping just above a
    guard page): the far end of an 8 MiB stack no thread ever reaches."""
    maps = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            maps.append((start, end, fields[1], len(fields) > 5))
    for (s0, e0, p0, named0), (s1, e1, p1, named1) in zip(maps, maps[1:]):
        if p0 == "---p" and p1 == "rw-p" and e0 == s1 and not named0 and not named1 \
                and e1 - s1 >= 1 << 20:
            return s1
    raise AssertionError("no thread stack found")


def test_checksum_detects_one_byte(scenarios):
    """Control run: gdb (not janus-gdb) writes one byte on purpose; the
    checksum sees it in exactly that mapping, and not after it is undone."""
    sc = scenarios.get("pthread_cycle")
    addr = _unused_stack_byte(sc.pid)
    masks = kernel_written(sc.pid)
    settle_sleepers(sc.pid)
    before = checksums(sc.pid, masks)

    def poke(value):
        res = gdbrun.gdb(["set {unsigned char}0x%x = %d" % (addr, value),
                          "printf \"BYTE %%d\\n\", {unsigned char}0x%x" % addr],
                         pid=sc.pid, load=False)
        assert "BYTE %d" % value in res.stdout, res.stdout + res.stderr

    with open("/proc/%d/mem" % sc.pid, "rb") as f:
        f.seek(addr)
        old = f.read(1)[0]
    poke(old ^ 0xFF)
    try:
        settle_sleepers(sc.pid)
        diff = differences(before, checksums(sc.pid, masks))
        assert len(diff) == 1 and diff[0].startswith("%x-" % addr), diff
    finally:
        poke(old)
    settle_sleepers(sc.pid)
    assert differences(before, checksums(sc.pid, masks)) == []
    assert_running(sc.pid)


# --- the real Janus (scripts/build-janus; skipped without it) --------------------------

@pytest.fixture(scope="module")
def janus_healthy(tmp_path_factory):
    import janusd
    for tool in ("gdb", "readelf"):
        if not gdbrun.have(tool):
            pytest.skip("%s is not installed" % tool)
    prefix = janusd.default_prefix()
    problem = janusd.prefix_problem(prefix)
    if problem:
        pytest.skip(problem)
    j = janusd.JanusServer(prefix, str(tmp_path_factory.mktemp("janus-readonly")))
    j.start()
    try:
        session = j.create_session()
        handle = j.attach(session)
        yield j, session, handle
    finally:
        j.stop()


def test_real_janus_memory_unchanged(janus_healthy):
    """A healthy Janus with a session and a handle, stopped from the first
    hash to the second (it is not quiescent when running: see above)."""
    j, session, handle = janus_healthy
    masks = kernel_written(j.pid)
    before = checksums(j.pid, masks, keep_stopped=True)
    try:
        res, cli = run_session(j.pid, "sessions_mutex")
        assert all(s in ("T", "t") for s in _states(j.pid)), "gdb resumed the stopped Janus"
        after = checksums(j.pid, masks, keep_stopped=True)
    finally:
        os.kill(j.pid, signal.SIGCONT)
    assert differences(before, after) == []
    check_session(res, cli, j.pid)
    assert "No deadlock found" in res.stdout, res.stdout[-3000:]
    assert cli.returncode == 0, cli.stderr
    assert_running(j.pid)
    assert j.info()["janus"] == "server_info"
    ping = j.request("", {"janus": "ping"})
    assert ping["janus"] == "pong", ping
    assert session in j.admin_sessions()
