"""janus-waitgraph on a real Janus 1.1.2 at scale (issue 4, point 3).

One Janus (scripts/build-janus) with 1,000 VideoRoom handles over 4 sessions
(one "hloop" thread each; session_timeout 0) and 200 "list" requests piled up
on VideoRoom's rooms_mutex, held by a request thread frozen inside the
critical section (janusd.freeze_rooms_mutex: it sleeps in pause(2) with the
lock held, no debugger attached).  Janus runs with a 256 KiB RLIMIT_STACK
(its threads' default stack size) and MALLOC_ARENA_MAX=2, so the ~1,200
threads cost ~300 MiB of stacks and the core ~0.5 GiB.

Checked on the core and on the live process: verdict, the lock's name,
owner and 200 waiters, one group of 200, every hloop thread named after
its handle (the ids the API returned), every thread with a role, and a
short text report.  Correctness only: no timing assertions (bench/janus_scale.py
measures).  JANUS_SCALE_HANDLES / JANUS_SCALE_WAITERS change the sizes.
"""

import os
import re

import pytest

import gdbrun
import janusd

N_HANDLES = int(os.environ.get("JANUS_SCALE_HANDLES", "1000"))
N_WAITERS = int(os.environ.get("JANUS_SCALE_WAITERS", "200"))
STACK_KIB = 256
MAX_TEXT_LINES = 80


def limits_problem(threads):
    """Why this machine cannot run a process with THREADS threads, or None."""
    for path, need in (("/proc/sys/kernel/threads-max", threads),
                       ("/proc/sys/kernel/pid_max", threads),
                       ("/proc/sys/vm/max_map_count", 4 * threads)):
        try:
            with open(path) as f:
                have = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if have < need:
            return "%s is %d, %d needed" % (path, have, need)
    import resource
    soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    if os.geteuid() != 0 and soft != resource.RLIM_INFINITY and soft < threads + 200:
        return "ulimit -u is %d, about %d needed" % (soft, threads + 200)
    return None


@pytest.fixture(scope="module")
def scale(tmp_path_factory):
    prefix, problem = janusd.usable_prefix(("gdb",))
    if problem:
        pytest.skip(problem)
    why = limits_problem(N_HANDLES + N_WAITERS + 100)
    if why:
        pytest.skip(why)
    workdir = str(tmp_path_factory.mktemp("janus-scale"))
    st = os.statvfs(workdir)
    if st.f_bavail * st.f_frsize < (2 << 30):
        pytest.skip("less than 2 GiB free in %s for the core" % workdir)
    s = janusd.ScaleSetup(prefix, workdir, n_handles=N_HANDLES, n_waiters=N_WAITERS,
                          stack_kib=STACK_KIB, core_path=os.path.join(workdir, "core.scale"))
    try:
        yield s
    finally:
        s.close()


def run(scale, command, live=False):
    if live:
        out = gdbrun.gdb([command], pid=scale.janus.pid)
    else:
        out = gdbrun.gdb([command], exe=scale.janus.exe, core=scale.core)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    assert "Python Exception" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out


@pytest.fixture(scope="module")
def core_json(scale):
    return gdbrun.Result(gdbrun.extract_json(run(scale, "janus-waitgraph --format json").stdout))


@pytest.fixture(scope="module")
def core_text(scale):
    return gdbrun.extract_report(run(scale, "janus-waitgraph").stdout)


def test_scale_setup(scale):
    """The target really is that big, with small stacks, and a sane core."""
    j = scale.janus
    assert scale.hloop_count() >= N_HANDLES
    assert len(scale.handle_ids()) == N_HANDLES
    # RLIMIT_STACK took: (almost) every thread stack is STACK_KIB
    assert scale.stack_sizes.get(STACK_KIB, 0) >= N_HANDLES, scale.stack_sizes
    assert len(scale.stall.waiters) == N_WAITERS
    assert scale.stall.frozen_lwp not in scale.stall.waiters
    assert scale.stall.lock_line < scale.stall.bp_line < scale.stall.lock_line + 10
    assert int(j.status("Threads")) >= N_HANDLES + N_WAITERS + 1
    # well under 1 GiB per 1,000 threads (about 0.5 GiB here)
    size = os.path.getsize(scale.core)
    threads = int(j.status("Threads"))
    assert 0 < size < threads * (1 << 20), (size, threads)


def check_report(scale, r):
    res = scale.stall
    assert r.data["verdict"].startswith("No deadlock found"), r.data["verdict"]
    assert r.data["deadlocks"] == 0
    assert res.rooms_mutex in r.locks, "rooms_mutex 0x%x not reported" % res.rooms_mutex
    lock = r.locks[res.rooms_mutex]
    assert lock["kind"] == "gmutex"
    assert lock["name"] == "janus_videoroom.c: rooms_mutex", lock["name"]
    assert len(lock["waiters"]) == N_WAITERS
    assert r.waiter_lwps(res.rooms_mutex) == res.waiters
    owner = lock["owner"]
    assert owner["lwp"] == res.frozen_lwp, owner
    assert owner["evidence"] == "inferred", owner
    assert "locked at janus_videoroom.c:%d" % res.lock_line in owner["detail"], owner
    assert res.function in owner["detail"], owner
    # the 200 waiters are one group, behind the frozen thread
    holder = r.by_lwp[res.frozen_lwp]["num"]
    groups = [g for g in r.data["groups"] if g["waits_for"] == lock["id"]]
    assert [g["count"] for g in groups] == [N_WAITERS], [
        (g["count"], g["signature"]) for g in r.data["groups"]]
    g = groups[0]
    assert len(g["threads"]) == N_WAITERS
    assert set(r.by_num[n]["lwp"] for n in g["threads"]) == res.waiters
    assert g["blocked_behind"]["kind"] == "thread" and g["blocked_behind"]["thread"] == holder, g
    # roles: every thread has one; one hloop per handle, named after it
    lacking = [(t["lwp"], t.get("name"), t.get("entry")) for t in r.data["threads"]
               if not t.get("role")]
    assert not lacking, "%d threads without a role: %s" % (len(lacking), lacking[:20])
    hloops = [t for t in r.data["threads"] if t["role"] == "hloop"]
    assert len(hloops) >= N_HANDLES
    named = {}
    for t in hloops:
        m = re.search(r"\bhandle (\d+)\b", t.get("role_detail") or "")
        assert m, t
        named[int(m.group(1))] = t["lwp"]
    assert len(named) == len(hloops), "two hloop threads name the same handle"
    missing = scale.handle_ids() - set(named)
    assert not missing, "%d handles without their hloop: %s" % (len(missing), sorted(missing)[:10])
    assert r.by_lwp[res.frozen_lwp]["role"] == "request worker"
    for lwp in res.waiters:
        assert r.by_lwp[lwp]["role"] == "request worker", r.by_lwp[lwp]


def check_text(scale, text):
    assert text is not None
    assert text.startswith("No deadlock found"), text[:2000]
    assert "%d threads wait for" % N_WAITERS in text, text
    assert re.search(r"^\s+%d threads wait for M\d+ janus_videoroom\.c: rooms_mutex \(held by T\d+\)"
                     % N_WAITERS, text, re.M), text
    assert "locked at janus_videoroom.c:%d" % scale.stall.lock_line in text, text
    assert "(LWP %d)" % scale.stall.frozen_lwp in text, text
    lines = text.rstrip("\n").split("\n")
    assert len(lines) < MAX_TEXT_LINES, "%d lines:\n%s" % (len(lines), text)


def test_scale_core_json(scale, core_json):
    check_report(scale, core_json)
    assert core_json.data["target"].get("mutex_impl") == "gmutex"
    assert len(core_json.data["threads"]) == int(scale.janus.status("Threads"))


def test_scale_core_text(scale, core_text):
    check_text(scale, core_text)


def test_scale_core_text_all(scale, core_json):
    """--all names every waiter in the group's thread list, and every other thread."""
    text = gdbrun.extract_report(run(scale, "janus-waitgraph --all").stdout)
    assert text and text.startswith("No deadlock found")
    m = re.search(r"^\s+%d threads wait for M\d+ janus_videoroom\.c: rooms_mutex .*\n.*\n"
                  r"\s+threads: (.*)$" % N_WAITERS, text, re.M)
    assert m, text[:3000]
    listed = set(int(n) for n in re.findall(r"T(\d+)", m.group(1)))
    assert listed == set(core_json.by_lwp[lwp]["num"] for lwp in scale.stall.waiters)
    for t in core_json.data["threads"]:
        if t["lwp"] not in scale.stall.waiters:
            assert "(LWP %d)" % t["lwp"] in text, t


def test_scale_live(scale):
    """The same answers attached to the live, hung Janus, which stays hung and
    keeps serving what does not need rooms_mutex."""
    j = scale.janus
    res = scale.stall
    r = gdbrun.Result(gdbrun.extract_json(run(scale, "janus-waitgraph --format json",
                                              live=True).stdout))
    check_report(scale, r)
    check_text(scale, gdbrun.extract_report(run(scale, "janus-waitgraph", live=True).stdout))
    assert j.alive()
    assert j.futex_waiters(res.rooms_mutex) == res.waiters
    assert j.info()["janus"] == "server_info"
    for s in scale.sessions:
        assert j.keepalive(s)["janus"] == "ack"
