"""janus-gdb watch: probe a running Janus; when it stops answering, capture a
core with gcore and analyse it.

Usage: janus-gdb watch --pid PID [--url URL] [--interval S] [--timeout S]
                       [--failures N] [--out DIR] [--once | --rounds N]
                       [--exe PATH] [--plugin videoroom] [--verbose]

Each round POSTs Janus's {"janus": "ping"} to URL (the HTTP API, e.g.
http://127.0.0.1:8088/janus) and wants "pong" within --timeout seconds.  With
--plugin videoroom the watchdog also keeps a session with a VideoRoom handle
(created at the start, kept alive with keepalives) and sends the synchronous
{"request": "list"} each round: that request takes VideoRoom's rooms_mutex.

After --failures consecutive rounds without an answer it runs
``gdb -nx -batch -p PID -ex 'gcore FILE'`` (the process is stopped only while
the core is written, then detached and left running), analyses the core with
``python3 -m janus_gdb CORE --format text|json|dot``, writes the core and the
three reports with timestamped names into --out (the reports' names end
with the fingerprint of the first hang finding, e.g. ``-leak-be39da3bcb``, so
a fleet's reports group by bug), prints one line per file and one per
finding (its fingerprint and the known Janus bug it is, if any), and exits.

Exit status: 0 healthy rounds done (--once/--rounds) or a core captured with
neither a deadlock nor a hang shown in it, 1 a core captured with a deadlock,
2 an error (process gone, gcore failed, another debugger attached, analysis
failed, bad usage), 3 a core captured with a hang that is not a cycle (a
leaked lock, a dead owner, a holder waiting elsewhere), 4 a core captured
with threads blocked behind a lock whose owner cannot be shown, 130
interrupted.  Errors are one line on stderr, never a traceback.

Example:
  python3 -m janus_gdb watch --pid "$(pidof janus)" \\
      --url http://127.0.0.1:8088/janus --plugin videoroom --out /var/tmp/janus-hangs
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from ..report.textsafe import escape
from . import userlocale

PROG = "janus-gdb watch"
DEFAULT_URL = "http://127.0.0.1:8088/janus"
GCORE_TIMEOUT = 600          # seconds: writing the core of a big Janus
ANALYSIS_TIMEOUT = 900       # seconds per report format
FORMATS = (("text", "txt"), ("json", "json"), ("dot", "dot"))
PLUGINS = {"videoroom": "janus.plugin.videoroom"}


class WatchError(Exception):
    """A failure that ends the watchdog with status 2 and one line on stderr."""


class Interrupted(Exception):
    """SIGTERM (Ctrl-C arrives as KeyboardInterrupt)."""


class ProbeFailure(Exception):
    """Janus did not answer a probe as it should."""

    def __init__(self, message, unreachable=False):
        Exception.__init__(self, message)
        self.unreachable = unreachable     # nothing listens / not a Janus endpoint


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise WatchError("%s (see --help)" % message)


def _positive(kind):
    def conv(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not a number: %r" % text)
        if v <= 0:
            raise argparse.ArgumentTypeError("must be > 0: %r" % text)
        return v
    return conv


def parse_args(argv):
    p = _Parser(prog=PROG, description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="Exit status: 0 healthy or captured without deadlock or hang, 1 "
                       "deadlock found, 2 error, 3 hang without a cycle, 4 blocked behind "
                       "a lock whose owner cannot be shown, 130 interrupted.")
    p.add_argument("--pid", type=_positive(int), required=True, help="Janus's process id")
    p.add_argument("--url", default=DEFAULT_URL,
                   help="Janus HTTP API endpoint (default %s)" % DEFAULT_URL)
    p.add_argument("--interval", type=_positive(float), default=5.0, metavar="S",
                   help="seconds between rounds (default 5)")
    p.add_argument("--timeout", type=_positive(float), default=10.0, metavar="S",
                   help="seconds to wait for each answer (default 10)")
    p.add_argument("--failures", type=_positive(int), default=3, metavar="N",
                   help="consecutive failed rounds before capturing (default 3)")
    p.add_argument("--out", default=".", metavar="DIR",
                   help="where the core and reports go (default: current directory)")
    p.add_argument("--once", action="store_true", help="one round, then exit")
    p.add_argument("--rounds", type=_positive(int), metavar="N",
                   help="stop after N rounds (exit 0 when Janus answered)")
    p.add_argument("--exe", metavar="PATH",
                   help="Janus executable for the analysis (default: /proc/PID/exe)")
    p.add_argument("--plugin", choices=sorted(PLUGINS),
                   help="also probe this plugin with a synchronous request")
    p.add_argument("--verbose", "-v", action="store_true", help="one line per round")
    args = p.parse_args(argv)
    if args.once:
        args.rounds = 1
    if not args.url.startswith(("http://", "https://")):
        raise WatchError("--url must be an http:// or https:// URL, not %r" % args.url)
    args.url = args.url.rstrip("/")
    return args


def say(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def warn(msg):
    sys.stderr.write("%s: %s\n" % (PROG, msg))
    sys.stderr.flush()


# --- the process ------------------------------------------------------------------

def proc_status(pid):
    """{field: value} of /proc/PID/status; None when the process is gone."""
    try:
        # the Name: line is the target's own (prctl), in any bytes
        with open("/proc/%d/status" % pid, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise WatchError("cannot read /proc/%d/status: %s" % (pid, e.strerror or e))
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def check_alive(pid):
    st = proc_status(pid)
    if st is None:
        raise WatchError("process %d is gone" % pid)
    if st.get("State", "").startswith(("Z", "X")):
        raise WatchError("process %d has exited (%s)" % (pid, st.get("State")))
    return st


def comm(pid):
    """The process's name, escaped (the process sets it: prctl, pthread_setname_np)."""
    try:
        with open("/proc/%d/comm" % pid, "rb") as f:
            return escape(f.read().rstrip(b"\n"), 64)
    except OSError:
        return "?"


def tracer_of(pid):
    """(pid, name) of the process ptrace-attached to PID, or None."""
    st = proc_status(pid) or {}
    try:
        tracer = int(st.get("TracerPid", "0"))
    except ValueError:
        return None
    return (tracer, comm(tracer)) if tracer else None


def default_exe(pid):
    try:
        path = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None
    if path.endswith(" (deleted)"):
        warn("the executable of process %d was deleted or replaced (%s): pass --exe"
             % (pid, path))
        return None
    return path


# --- the probe --------------------------------------------------------------------

class Prober(object):
    """Janus's HTTP API: ping, and with a plugin a session + handle + request."""

    def __init__(self, url, timeout, plugin=None):
        self.url = url
        self.timeout = timeout
        self.plugin = PLUGINS.get(plugin) if plugin else None
        self.session = None
        self.handle = None
        self.answered = False       # Janus answered at least once

    def post(self, path, body, timeout=None):
        body = dict(body)
        body.setdefault("transaction", uuid.uuid4().hex[:12])
        data = json.dumps(body).encode()
        req = Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        what = body.get("janus")
        if what == "message":
            what = "%s %s" % (self.plugin, body.get("body", {}).get("request"))
        t = self.timeout if timeout is None else timeout
        try:
            resp = urlopen(req, timeout=t)
            try:
                raw = resp.read()
            finally:
                resp.close()
        except HTTPError as e:
            raise ProbeFailure("%s: HTTP %d %s from %s" % (what, e.code, e.reason, self.url),
                               unreachable=True)
        except (socket.timeout, TimeoutError):
            raise ProbeFailure("%s: no answer within %gs" % (what, t))
        except URLError as e:
            reason = e.reason
            if isinstance(reason, socket.timeout):
                raise ProbeFailure("%s: no answer within %gs" % (what, t))
            refused = isinstance(reason, (ConnectionRefusedError, socket.gaierror))
            raise ProbeFailure("%s: %s" % (what, getattr(reason, "strerror", None) or reason),
                               unreachable=refused)
        except (OSError, ValueError) as e:   # reset, broken pipe, http.client errors
            raise ProbeFailure("%s: %s" % (what, e or type(e).__name__))
        try:
            answer = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            raise ProbeFailure("%s: the answer is not JSON (is %s Janus's HTTP API?)"
                               % (what, self.url), unreachable=True)
        if not isinstance(answer, dict):
            raise ProbeFailure("%s: unexpected answer %.80s" % (what, raw), unreachable=True)
        return answer

    def round(self):
        """One probe; raises ProbeFailure.  Returns a short description."""
        a = self.post("", {"janus": "ping"})
        if a.get("janus") != "pong":
            raise ProbeFailure("ping: answer %r, not pong" % a.get("janus"),
                               unreachable=not self.answered)
        self.answered = True
        if not self.plugin:
            return "pong"
        if self.session is None:
            self.setup()
        a = self.post("/%d" % self.session, {"janus": "keepalive"})
        if a.get("janus") != "ack":
            self.session = None       # expired or destroyed: a new one next round
            return "pong; session gone (%s), a new one next round" % _error_text(a)
        a = self.post("/%d/%d" % (self.session, self.handle),
                      {"janus": "message", "body": {"request": "list"}})
        if a.get("janus") != "success":
            self.session = None
            return "pong; list: %s, a new session next round" % _error_text(a)
        rooms = a.get("plugindata", {}).get("data", {}).get("list")
        return "pong; list: %s rooms" % (len(rooms) if isinstance(rooms, list) else "?")

    def setup(self):
        a = self.post("", {"janus": "create"})
        if a.get("janus") != "success":
            raise ProbeFailure("create: %s" % _error_text(a))
        session = a["data"]["id"]
        a = self.post("/%d" % session, {"janus": "attach", "plugin": self.plugin})
        if a.get("janus") != "success":
            self._destroy(session)
            raise ProbeFailure("attach %s: %s" % (self.plugin, _error_text(a)))
        self.session, self.handle = session, a["data"]["id"]

    def close(self):
        """Destroy our session (best effort, short timeout)."""
        if self.session is not None:
            self._destroy(self.session)
            self.session = None

    def _destroy(self, session):
        try:
            self.post("/%d" % session, {"janus": "destroy"}, timeout=min(self.timeout, 3.0))
        except ProbeFailure:
            pass


def _error_text(answer):
    err = answer.get("error")
    if isinstance(err, dict):
        return "error %s %s" % (err.get("code"), err.get("reason"))
    data = answer.get("plugindata", {}).get("data", {})
    if isinstance(data, dict) and data.get("error"):
        return "error %s %s" % (data.get("error_code"), data.get("error"))
    return "answer %r" % answer.get("janus")


# --- capture and analysis ---------------------------------------------------------

def run_bounded(cmd, timeout, env=None):
    """Run CMD with a deadline; (status, combined output).  On timeout or
    Ctrl-C the child gets SIGINT, then SIGTERM, then SIGKILL."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True,
                            errors="replace", env=env)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        _stop(proc)
        return None, ""
    except BaseException:
        _stop(proc)
        raise


def _stop(proc):
    # gdb detaches from its target on SIGINT/SIGTERM; SIGKILL only as the last resort
    for sig, wait in ((signal.SIGINT, 5), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        try:
            proc.send_signal(sig)
            proc.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        except OSError:
            return


def _gdb_reason(out):
    """The line of gdb's output that says why it failed."""
    lines = [l.strip() for l in out.splitlines() if l.strip()]
    keys = ("ptrace:", "Could not attach", "Operation not permitted", "No such process",
            "Failed to", "Can't create", "Cannot", "No space")
    for l in lines:
        if any(k in l for k in keys):
            return escape(l, 300)      # gdb quotes the target's file names
    return escape(lines[-1], 300) if lines else "no output"


def capture(pid, path, timeout=GCORE_TIMEOUT):
    """Write a core of PID to PATH with gdb's gcore; the process is detached and
    left running.  Raises WatchError."""
    check_alive(pid)
    tracer = tracer_of(pid)
    if tracer:
        raise WatchError("cannot capture a core of process %d: it is already traced by "
                         "process %d (%s); detach that debugger first" % (pid, tracer[0], tracer[1]))
    before = (proc_status(pid) or {}).get("State", "")
    cmd = ["gdb", "-nx", "-batch", "-iex", "set auto-load off", "-iex", "set pagination off",
           "-p", str(pid), "-ex", "gcore %s" % path]
    try:
        status, out = run_bounded(cmd, timeout)
    except FileNotFoundError:
        raise WatchError("gdb is not installed (needed for gcore)")
    except BaseException:
        _remove(path)
        raise
    finally:
        _resume_if_left_stopped(pid, before)
    if status is None:
        _remove(path)
        raise WatchError("gcore of process %d did not finish within %ds" % (pid, timeout))
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        _remove(path)
        if proc_status(pid) is None:
            raise WatchError("process %d is gone (it exited during the capture)" % pid)
        tracer = tracer_of(pid)
        if tracer:
            raise WatchError("gcore failed: process %d is traced by process %d (%s)"
                             % (pid, tracer[0], tracer[1]))
        raise WatchError("gcore of process %d failed: %s" % (pid, _gdb_reason(out)))
    return path


def _resume_if_left_stopped(pid, before):
    """A gdb killed mid-capture can leave the threads stopped: continue the
    process, unless it was already stopped before we came."""
    if before.startswith(("T", "t")):
        return
    st = proc_status(pid)
    if st and st.get("State", "").startswith("T") and not tracer_of(pid):
        try:
            os.kill(pid, signal.SIGCONT)
            warn("process %d was left stopped after the capture: sent SIGCONT" % pid)
        except OSError:
            pass


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


# The CLI's exit statuses that come with a report: none, deadlock, hang,
# undetermined (docs/cli.md); 2 is an error.
ANALYSIS_VERDICTS = (0, 1, 3, 4)
# When the formats disagree (they cannot, but a failed one may be missing):
# a deadlock outranks a hang, a hang an undetermined verdict.
VERDICT_RANK = {1: 3, 3: 2, 4: 1, 0: 0}


def analyse(core, exe, fmt, path, timeout=ANALYSIS_TIMEOUT):
    """Run the CLI on CORE; (status 0/1/2/3/4 as the CLI's, message)."""
    # the directory holding the janus_gdb package (this is janus_gdb/cli/watch.py)
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = userlocale.child_env()      # the user's locale decides the escaping, not Python's
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "janus_gdb", core, "--format", fmt, "--output", path]
    if exe:
        cmd += ["--exe", exe]
    status, out = run_bounded(cmd, timeout, env=env)
    if status is None:
        return 2, "the %s analysis did not finish within %ds" % (fmt, timeout)
    if status in ANALYSIS_VERDICTS and os.path.exists(path):
        return status, ""
    lines = [l for l in out.splitlines() if l.strip()]
    return 2, "the %s analysis failed (status %s): %s" % (fmt, status,
                                                         lines[-1] if lines else "no output")


def verdict(text_path):
    try:
        with open(text_path, errors="replace") as f:
            for line in f:
                if line.startswith(("Found ", "No deadlock")):
                    return line.strip()
    except OSError:
        pass
    return None


def _size(path):
    n = os.path.getsize(path)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return "%d %s" % (n, unit) if unit == "bytes" else "%.1f %s" % (n, unit)
        n /= 1024.0


def capture_and_analyse(args, exe, reason):
    out_dir = os.path.abspath(args.out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = os.path.join(out_dir, "janus-%d-%s" % (args.pid, stamp))
    n = 1
    while any(os.path.exists(base + s) for s in (".core", ".txt", ".json", ".dot")):
        base = os.path.join(out_dir, "janus-%d-%s-%d" % (args.pid, stamp, n))
        n += 1
    core = base + ".core"
    say("%s: process %d (%s) did not answer %s (last: %s); capturing a core"
        % (PROG, args.pid, comm(args.pid),
           "1 round" if args.failures == 1 else "%d rounds in a row" % args.failures, reason))
    t0 = time.time()
    capture(args.pid, core)
    state = (proc_status(args.pid) or {}).get("State", "")
    left = "stopped, as it was before" if state.startswith(("T", "t")) else "left running"
    say("core    %s  (%s, %.1fs; process %d detached, %s)"
        % (core, _size(core), time.time() - t0, args.pid, left))
    worst = 0
    found = 0
    written = []
    for fmt, ext in FORMATS:
        path = "%s.%s" % (base, ext)
        status, msg = analyse(core, exe, fmt, path)
        if status == 2:
            warn(msg)
            worst = 2
            if msg.startswith("the %s analysis failed (status 2)" % fmt):
                continue            # the CLI's own error: the other formats may work
            break                   # no CLI, a crash, a timeout: the others would too
        if VERDICT_RANK[status] > VERDICT_RANK[found]:
            found = status
        written.append((fmt, ext, path))
    hits = findings(dict((f, p) for f, _e, p in written).get("json"))
    if hits:
        # the reports are named after the first finding, so a fleet's can be grouped
        written = [(fmt, ext, _rename(path, "%s-%s.%s" % (base, hits[0][0], ext)))
                   for fmt, ext, path in written]
    for fmt, _ext, path in written:
        if fmt == "text":
            v = verdict(path)
            say("%-7s %s%s" % (fmt, path, "  (%s)" % v if v else ""))
        else:
            say("%-7s %s" % (fmt, path))
    for fp, where, sentence in hits[:MAX_FINDINGS_SHOWN]:
        say("finding %s (%s)%s" % (fp, where, ": " + sentence if sentence else ""))
    if len(hits) > MAX_FINDINGS_SHOWN:
        say("finding ... (+%d more in the report)" % (len(hits) - MAX_FINDINGS_SHOWN))
    if worst:
        return 2
    return found


MAX_FINDINGS_SHOWN = 5
_FP_RE = re.compile(r"^(cycle|leak|stall)-[0-9a-f]{6,32}$")


def findings(json_path):
    """[(fingerprint, where, known-bug sentence or None)] of the JSON report."""
    if not json_path:
        return []
    try:
        with open(json_path, errors="replace") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return []
    out = []
    for item in (data.get("findings") or [])[:1000] if isinstance(data, dict) else []:
        if not isinstance(item, dict) or not _FP_RE.match(str(item.get("fingerprint"))):
            continue
        known = item.get("known") if isinstance(item.get("known"), dict) else {}
        out.append((item["fingerprint"], escape(str(item.get("where") or "?"), 40),
                    escape(str(known["sentence"]), 1000) if known.get("sentence") else None))
    return out


def _rename(path, new):
    """PATH renamed to NEW (when NEW is free); the name it has now."""
    if os.path.exists(new):
        return path
    try:
        os.rename(path, new)
    except OSError as exc:
        warn("could not rename %s to %s: %s" % (path, new, exc))
        return path
    return new


# --- main -------------------------------------------------------------------------

def watch(args):
    check_alive(args.pid)
    if args.out and not os.path.isdir(args.out):
        try:
            os.makedirs(args.out)
        except OSError as e:
            raise WatchError("cannot create --out %s: %s" % (args.out, e.strerror or e))
    if not os.access(args.out, os.W_OK):
        raise WatchError("--out %s is not writable" % args.out)
    exe = args.exe or default_exe(args.pid)
    if args.exe and not os.path.exists(args.exe):
        raise WatchError("--exe %s does not exist" % args.exe)
    prober = Prober(args.url, args.timeout, args.plugin)
    if args.verbose:
        say("%s: watching process %d (%s) at %s every %gs, timeout %gs, capture after %d "
            "failures" % (PROG, args.pid, comm(args.pid), args.url, args.interval,
                          args.timeout, args.failures))
    failures = 0
    rounds = 0
    try:
        while True:
            rounds += 1
            start = time.time()
            try:
                what = prober.round()
                failures = 0
                if args.verbose:
                    say("round %d: %s" % (rounds, what))
            except ProbeFailure as e:
                check_alive(args.pid)
                if e.unreachable and not prober.answered:
                    raise WatchError("%s (is %s Janus's HTTP API?)" % (e, args.url))
                failures += 1
                say("round %d: %s (%d of %d)" % (rounds, e, failures, args.failures))
                if failures >= args.failures:
                    prober.session = None      # a hung Janus would not destroy it
                    return capture_and_analyse(args, exe, str(e))
            check_alive(args.pid)
            if args.rounds and rounds >= args.rounds:
                return 0
            time.sleep(max(0.0, args.interval - (time.time() - start)))
    finally:
        prober.close()


def _on_sigterm(signum, frame):
    raise Interrupted()


def main(argv=None):
    """Entry point of ``janus-gdb watch``; returns the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    argv = list(argv)
    if argv[:1] == ["watch"]:
        argv = argv[1:]
    old = None
    try:
        old = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:       # not the main thread
        pass
    try:
        return watch(parse_args(argv))
    except SystemExit as e:          # --help
        return e.code if isinstance(e.code, int) else 0
    except WatchError as e:
        warn(str(e))
        return 2
    except (KeyboardInterrupt, Interrupted):
        warn("interrupted")
        return 130
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        tb = sys.exc_info()[2]
        while tb.tb_next:
            tb = tb.tb_next
        warn("internal error: %s: %s (at %s:%d)" % (type(e).__name__, e,
                                                     os.path.basename(tb.tb_frame.f_code.co_filename),
                                                     tb.tb_lineno))
        return 2
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":
    sys.exit(main())
