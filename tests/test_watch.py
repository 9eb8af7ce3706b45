"""janus-gdb watch: the watchdog against a real Janus 1.1.2 (scripts/build-janus).

1. healthy: a few rounds of ping + VideoRoom "list"; no capture, exit 0, our
   session destroyed, Janus still answers.
2. stalled: a REAL stall with no debugger attached, reached through the HTTP
   API.  1.1.2's janus_plugin_handle_sdp leaks handle->mutex of a NoSIP handle
   ("Invalid msid", as in test_janus_real.py d); a "trickle" for that handle is
   served synchronously by Janus's single "sessions requests" thread
   (janus_transport_requests), which then blocks forever in janus_mutex_lock
   on the leaked lock.  Every later request, "ping" included, is queued behind
   it: Janus stops answering while nobody ptrace-attaches it.  The watchdog,
   started while Janus was healthy, sees the pings time out, captures a core
   with gcore (the process is left running, not traced, still stuck), and
   the text, JSON and DOT reports name the process and the leaked lock.
3. errors: a PID that does not exist, a URL where nothing listens, a target
   another debugger is attached to: exit 2, one line on stderr.

Janus tests are skipped (with the reason) when there is no Janus build.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading

import pytest

import gdbrun
import janusd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def have_cli():
    return os.path.exists(os.path.join(ROOT, "janus_gdb", "__main__.py"))


def watch_cmd(args):
    # the contract is `python3 -m janus_gdb watch ...`; before the CLI exists,
    # the watchdog module itself
    if have_cli():
        return [sys.executable, "-m", "janus_gdb", "watch"] + list(args)
    return [sys.executable, "-m", "janus_gdb.cli.watch"] + list(args)


def run_watch(args, timeout=120):
    return subprocess.run(watch_cmd(args), cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)


def one_line(stderr):
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture(scope="module")
def prefix():
    p, problem = janusd.usable_prefix(("gdb",), need_pexpect=False)
    if problem:
        pytest.skip(problem)
    return p


# --- 1: healthy -----------------------------------------------------------------------

def test_healthy_janus_keeps_probing(prefix, tmp_path):
    j = janusd.JanusServer(prefix, str(tmp_path / "janus"))
    j.start()
    try:
        out_dir = str(tmp_path / "out")
        r = run_watch(["--pid", str(j.pid), "--url", j.url, "--rounds", "3", "--interval", "0.3",
                       "--timeout", "5", "--plugin", "videoroom", "--out", out_dir, "-v"])
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert r.stderr == "", r.stderr
        rounds = re.findall(r"^round (\d+): pong; list: (\d+) rooms$", r.stdout, re.M)
        assert [n for n, _ in rounds] == ["1", "2", "3"], r.stdout
        assert int(rounds[0][1]) >= 1, r.stdout          # room 1234 of the sample config
        assert "core" not in r.stdout, r.stdout
        assert not os.listdir(out_dir), os.listdir(out_dir)
        # Janus is undisturbed and the watchdog's session is gone
        assert j.info()["janus"] == "server_info"
        assert j.request("", {"janus": "ping"})["janus"] == "pong"
        assert j.admin_sessions() == [], j.admin_sessions()
        # --once, plain ping
        r = run_watch(["--pid", str(j.pid), "--url", j.url, "--once", "--out", out_dir])
        assert r.returncode == 0 and r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)
        assert not os.listdir(out_dir)
    finally:
        j.stop()


# --- 2: a real stall ------------------------------------------------------------------

class Lines(object):
    """A child's stdout, read line by line by a daemon thread."""

    def __init__(self, stream):
        self.lines = []
        self.lock = threading.Lock()
        t = threading.Thread(target=self._read, args=(stream,))
        t.daemon = True
        t.start()
        self.thread = t

    def _read(self, stream):
        for line in stream:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def text(self):
        with self.lock:
            return "\n".join(self.lines)


def reported_files(stdout):
    """{"core"|"text"|"json"|"dot": path} from the watchdog's summary lines."""
    return dict(re.findall(r"^(core|text|json|dot)\s+(/\S+)", stdout, re.M))


def test_stalled_janus_captured_and_analysed(prefix, tmp_path):
    if not janusd.has_nosip(prefix):
        pytest.skip(janusd.LEAK_SKIP_REASON)
    if not have_cli():
        pytest.skip("the CLI (python3 -m janus_gdb, janus_gdb/cli/main.py) has not landed yet")
    # small thread stacks keep the core small
    j = janusd.JanusServer(prefix, str(tmp_path / "janus"), nosip=True, stack_kib=1024)
    j.start()
    out_dir = str(tmp_path / "out")
    proc = None
    files = {}
    try:
        s = j.create_session()
        h = j.attach(s, "janus.plugin.nosip")
        proc = subprocess.Popen(
            watch_cmd(["--pid", str(j.pid), "--url", j.url, "--interval", "0.5", "--timeout", "3",
                       "--failures", "2", "--plugin", "videoroom", "--out", out_dir, "-v"]),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        out = Lines(proc.stdout)
        assert janusd.wait_until(lambda: "round 2: pong; list:" in out.text(), 30), out.text()
        # the stall: leak handle->mutex, then a trickle for that handle
        assert janusd.trigger_handle_mutex_leak(j, s, h), j.log_tail()
        bg = janusd.Background()
        bg.run(j.trickle, s, h, {"completed": True}, timeout=60)
        try:
            proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            pytest.fail("the watchdog did not finish: %s" % out.text())
        out.thread.join(10)
        stdout, stderr = out.text(), proc.stderr.read()
        assert "Traceback" not in stdout + stderr
        # a leak, no cycle: a hang that is not a cycle (3)
        assert proc.returncode == 3, (proc.returncode, stdout, stderr)
        assert stderr == "", stderr
        assert re.search(r"^round \d+: ping: no answer within 3s \(2 of 2\)$", stdout, re.M), stdout
        files = reported_files(stdout)
        assert sorted(files) == ["core", "dot", "json", "text"], stdout
        for path in files.values():
            assert os.path.dirname(path) == os.path.realpath(out_dir), path
            assert os.path.getsize(path) > 0, path
        assert re.search(r"/janus-%d-\d{8}-\d{6}\.core$" % j.pid, files["core"]), files
        # the reports carry the fingerprint of the first finding (issue 15)
        fps = re.findall(r"^finding ((?:cycle|leak|stall)-[0-9a-f]{10}) \((M\d+|T\d+|deadlock #\d+)\)"
                         r"(.*)$", stdout, re.M)
        assert fps, stdout
        for ext in ("txt", "json", "dot"):
            path = files[{"txt": "text"}.get(ext, ext)]
            assert re.search(r"/janus-%d-\d{8}-\d{6}-%s\.%s$" % (j.pid, fps[0][0], ext), path), path

        # Janus: left running, not traced, and still stuck (the stall is real)
        assert j.alive()
        assert j.status("TracerPid") == "0"
        assert not j.status("State").startswith(("T", "t")), j.status("State")
        with pytest.raises(Exception):
            j.request("", {"janus": "ping"}, timeout=2)

        # the reports
        with open(files["json"]) as f:
            data = json.load(f)
        assert data["target"]["kind"] == "core", data["target"]
        assert data["target"]["pid"] == j.pid, data["target"]
        assert os.path.basename(data["target"]["executable"] or "") == "janus", data["target"]
        assert data["verdict"].startswith("No deadlock found"), data["verdict"]
        # the finding the log line names is the report's leak of handle->mutex
        leak = [f for f in data["findings"] if f["fingerprint"] == fps[0][0]]
        assert leak and leak[0]["kind"] == "leak", data["findings"]
        assert leak[0]["classes"] == ["janus_ice_handle.mutex"], leak
        # 1.1.2's leak is the catalogue's msid leak (tests/test_janus_real.py says why)
        assert leak[0]["known"]["same_bug"] is True, leak
        assert fps[0][2] == ": " + leak[0]["known"]["sentence"], (fps, leak)
        leaked = [l for l in data["locks"] if l.get("leaked")]
        assert [l for l in leaked if "handle->mutex of handle %d" % h in (l.get("name") or "")], \
            data["locks"]
        with open(files["text"]) as f:
            text = f.read()
        assert text.startswith("No deadlock found"), text[:300]
        assert "core file of pid %d" % j.pid in text, text[:300]
        assert "handle->mutex of handle %d" % h in text and "leaked" in text
        assert re.search(r"^text\s+\S+\s+\(No deadlock found", stdout, re.M), stdout
        with open(files["dot"]) as f:
            dot = f.read()
        assert re.match(r"\s*(strict\s+)?digraph\b", dot), dot[:200]
        if gdbrun.have("dot"):
            svg = subprocess.run(["dot", "-Tsvg", files["dot"]], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
            assert svg.returncode == 0, svg.stderr
            assert "<svg" in svg.stdout
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        j.stop()
        for path in [files.get("core")] + [os.path.join(out_dir, n) for n in
                                           (os.listdir(out_dir) if os.path.isdir(out_dir) else [])]:
            if path and path.endswith(".core") and os.path.exists(path):
                os.unlink(path)


# --- 3: errors ------------------------------------------------------------------------

def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_bad_pid_is_one_line_and_status_2(tmp_path):
    pid = dead_pid()
    r = run_watch(["--pid", str(pid), "--url", "http://127.0.0.1:9/janus", "--out", str(tmp_path)],
                  timeout=30)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert one_line(r.stderr) == "janus-gdb watch: process %d is gone" % pid
    r = run_watch(["--pid", "nope"], timeout=30)
    assert r.returncode == 2 and "--pid" in one_line(r.stderr)


def test_nothing_listening_is_an_error_not_a_capture(tmp_path):
    port = janusd.free_port()
    r = run_watch(["--pid", str(os.getpid()), "--url", "http://127.0.0.1:%d/janus" % port,
                   "--timeout", "2", "--out", str(tmp_path)], timeout=30)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Connection refused" in one_line(r.stderr)
    assert not os.listdir(str(tmp_path))


def test_another_debugger_attached(tmp_path):
    """A server that accepts connections and never answers, a target traced by
    another gdb: the watchdog says who traces it instead of failing obscurely."""
    if not gdbrun.have("gdb"):
        pytest.skip("gdb is not installed")
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    url = "http://127.0.0.1:%d/janus" % srv.getsockname()[1]
    target = subprocess.Popen(["sleep", "120"])
    tracer = subprocess.Popen(["gdb", "-nx", "-batch", "-p", str(target.pid),
                               "-ex", "shell sleep 60"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)     # its `shell sleep` dies with it
    try:
        def traced():
            with open("/proc/%d/status" % target.pid) as f:
                return re.search(r"^TracerPid:\s*([1-9]\d*)", f.read(), re.M)
        if not janusd.wait_until(traced, 30):
            pytest.skip("gdb could not attach here (ptrace restricted?)")
        r = run_watch(["--pid", str(target.pid), "--url", url, "--timeout", "1",
                       "--interval", "0.2", "--failures", "2", "--out", str(tmp_path)], timeout=60)
        assert r.returncode == 2, (r.stdout, r.stderr)
        line = one_line(r.stderr)
        assert "already traced by process %d (gdb)" % tracer.pid in line, line
        assert "(2 of 2)" in r.stdout, r.stdout
        assert not os.listdir(str(tmp_path))
    finally:
        try:
            os.killpg(tracer.pid, signal.SIGKILL)
        except OSError:
            pass
        tracer.wait(10)
        target.kill()
        target.wait(10)
        srv.close()
