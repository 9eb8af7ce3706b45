"""A real Janus (built by scripts/build-janus) for integration tests.

JanusServer writes a test configuration into a temp dir, starts `janus` on
127.0.0.1 (HTTP API and Admin API on free ports), and talks to it with a small
urllib client.  stall_rooms_mutex() freezes one request thread inside a
`rooms_mutex` critical section of the VideoRoom plugin with a non-stop gdb,
piles up N more request threads behind it, and writes a core; it returns the
ground truth (LWPs, lock address, source lines) it observed.

All traffic goes to 127.0.0.1; every wait loop is bounded in time.
"""

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

from urllib.request import Request, urlopen
from urllib.error import URLError

ADMIN_SECRET = "janus-gdb-admin"
FUTEX = "202"


# The Janus versions the tests run against (scripts/build-janus JANUS_VERSION=...):
# version -> (variable holding its prefix, variable holding why its build failed).
VERSIONS = ("1.1.2", "1.4.1")
VERSION_ENV = {"1.1.2": ("JANUS_PREFIX", "JANUS_BUILD_ERROR"),
               "1.4.1": ("JANUS_PREFIX_NEWER", "JANUS_BUILD_ERROR_NEWER")}

# Thread entry functions of janusdb.ENTRY_ROLES that only one version has.
ENTRY_VERSIONS = {
    # the RTP forwarders' RTCP loop: VideoRoom's own in 1.1.2, the core's (rtpfwd.c) since 1.1.4
    "janus_videoroom_rtp_forwarder_rtcp_thread": ("1.1.2",),
    "janus_rtp_forwarder_rtcp_thread": ("1.4.1",),
    # VideoRoom helper threads (room "threads" setting), since 1.2.3
    "janus_videoroom_helper_thread": ("1.4.1",),
}

# janusdb.OBJECT_TYPES structs that only one version has.
STRUCT_VERSIONS = {
    "janus_videoroom_helper": ("1.4.1",),
}


def default_prefix(version="1.1.2"):
    prefix = os.environ.get(VERSION_ENV[version][0])
    if prefix:
        return prefix
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "janus-gdb", "janus-%s" % version)


def source_version(prefix):
    """The version in the AC_INIT of the build's source tree (PREFIX.src), or None."""
    try:
        with open(os.path.join(prefix + ".src", "configure.ac"), errors="replace") as f:
            m = re.search(r"AC_INIT\(\[[^]]*\],\s*\[([^]]+)\]", f.read(4096))
    except OSError:
        return None
    return m.group(1) if m else None


def prefix_problem(prefix, version="1.1.2"):
    """None when PREFIX holds a usable Janus VERSION build, else why not."""
    error = os.environ.get(VERSION_ENV[version][1])
    if error:
        return "Janus %s build failed: %s" % (version, error)
    need = [os.path.join(prefix, "bin", "janus"),
            os.path.join(prefix, "lib", "janus", "plugins", "libjanus_videoroom.so"),
            os.path.join(prefix, "lib", "janus", "transports", "libjanus_http.so"),
            os.path.join(prefix, "etc", "janus", "janus.plugin.videoroom.jcfg"),
            os.path.join(prefix + ".src", "src", "plugins", "janus_videoroom.c")]
    for path in need:
        if not os.path.exists(path):
            return "no Janus %s build at %s (missing %s; run JANUS_VERSION=%s " \
                "scripts/build-janus)" % (version, prefix, path, version)
    found = source_version(prefix)
    if found != version:
        return "the Janus build at %s is %s, not %s" % (prefix, found, version)
    return None


def usable_prefix(tools=("gdb",), need_pexpect=True, version="1.1.2"):
    """(the Janus VERSION build's prefix, None) when it and the TOOLS (and
    pexpect, which drives gdb here) are there, else (prefix, why not)."""
    for tool in tools:
        if shutil.which(tool) is None:
            return None, "%s is not installed" % tool
    if need_pexpect:
        try:
            import pexpect  # noqa: F401
        except ImportError:
            return None, "pexpect is not installed (pip install pexpect)"
    prefix = default_prefix(version)
    return prefix, prefix_problem(prefix, version)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class JanusError(Exception):
    pass


class PfunixRace(JanusError):
    """The Unix-socket transport's thread ended as janus started (see JanusServer.start)."""


def _post(url, body, timeout):
    data = json.dumps(body).encode()
    req = Request(url, data=data, headers={"Content-Type": "application/json"})
    resp = urlopen(req, timeout=timeout)
    try:
        return json.loads(resp.read().decode())
    finally:
        resp.close()


def _get(url, timeout):
    resp = urlopen(url, timeout=timeout)
    try:
        return json.loads(resp.read().decode())
    finally:
        resp.close()


def tid():
    return uuid.uuid4().hex[:12]


# The transports a test Janus can load (JanusServer(transports=...)).
TRANSPORTS = ("http", "websockets", "pfunix")


def write_websockets_config(confdir, port):
    """janus.transport.websockets.jcfg in CONFDIR: the Janus API over plain
    WebSockets on 127.0.0.1:PORT only (ws_ip; Janus turns it into the
    interface that has it, lws binds that interface's address); no secure
    WebSockets, no Admin API."""
    with open(os.path.join(confdir, "janus.transport.websockets.jcfg"), "w") as f:
        f.write("""general: {
	json = "plain"
	ws = true
	ws_port = %d
	ws_ip = "127.0.0.1"
	ws_acl = "127."
	wss = false
}
admin: {
	admin_ws = false
	admin_wss = false
}
cors: {
}
certificates: {
}
""" % port)


def write_pfunix_config(confdir, path):
    """janus.transport.pfunix.jcfg in CONFDIR: the Janus API on a
    SOCK_SEQPACKET Unix socket at PATH; no Admin API."""
    with open(os.path.join(confdir, "janus.transport.pfunix.jcfg"), "w") as f:
        f.write("""general: {
	enabled = true
	json = "plain"
	path = "%s"
	type = "SOCK_SEQPACKET"
}
admin: {
	admin_enabled = false
}
""" % path)


class JanusServer(object):
    """One janus process with its own config dir, log and ports."""

    def __init__(self, prefix, workdir, session_timeout=120, nosip=False, stack_kib=None,
                 env=None, plugins=("videoroom",), transports=("http",)):
        self.prefix = prefix
        self.exe = os.path.join(prefix, "bin", "janus")
        self.plugin = os.path.realpath(os.path.join(prefix, "lib", "janus", "plugins",
                                                    "libjanus_videoroom.so"))
        self.srcdir = prefix + ".src"
        self.workdir = workdir
        self.confdir = os.path.join(workdir, "conf")
        self.logpath = os.path.join(workdir, "janus.log")
        self.port = free_port()
        self.admin_port = free_port()
        while self.admin_port == self.port:
            self.admin_port = free_port()
        self.session_timeout = session_timeout
        self.nosip = nosip
        # the plugins janus loads (short names: "videoroom", "audiobridge", ...);
        # every other plugin in the build, and every transport but HTTP, is disabled
        self.plugins = tuple(plugins) + (("nosip",) if nosip else ())
        # the transports janus loads: HTTP always; "websockets" (ws on
        # 127.0.0.1 only, a free port) and "pfunix" (a SOCK_SEQPACKET socket in
        # WORKDIR) on request; admin interfaces and TLS of both off
        self.transports = ("http",) + tuple(t for t in transports if t != "http")
        for t in self.transports:
            if t not in TRANSPORTS:
                raise JanusError("unknown transport %r (known: %s)" % (t, ", ".join(TRANSPORTS)))
        self.ws_port = None
        self.unix_path = None
        if "websockets" in self.transports:
            self.ws_port = free_port()
            while self.ws_port in (self.port, self.admin_port):
                self.ws_port = free_port()
        if "pfunix" in self.transports:
            # sun_path holds 108 bytes: a short name in WORKDIR
            self.unix_path = os.path.join(workdir, "ux-janusapi")
            if len(self.unix_path.encode()) >= 100:
                raise JanusError("workdir too long for a Unix socket path: %s" % workdir)
        # RLIMIT_STACK for janus: glib/pthread threads take their default stack
        # size from it, so a small value keeps thousands of threads (and their
        # cores) small.  None: inherit ours.
        self.stack_kib = stack_kib
        self.env = env              # extra environment for janus (e.g. MALLOC_ARENA_MAX)
        self.proc = None
        self.pid = None
        self._write_config()

    # --- configuration -------------------------------------------------------------

    def _write_config(self):
        if not os.path.isdir(self.confdir):
            os.makedirs(self.confdir)
        src = os.path.join(self.prefix, "etc", "janus")
        for path in glob.glob(os.path.join(src, "*.jcfg")):
            shutil.copy(path, self.confdir)
        lib = os.path.join(self.prefix, "lib", "janus")
        write_janus_jcfg(self.confdir, dict(
            (kind, os.path.join(lib, kind))
            for kind in ("plugins", "transports", "events", "loggers")),
            self.session_timeout,
            disabled_line(os.path.join(lib, "plugins"), ["libjanus_%s.so" % p
                                                         for p in self.plugins]),
            disabled_line(os.path.join(lib, "transports"), ["libjanus_%s.so" % t
                                                            for t in self.transports]))
        if self.nosip:
            self._write_nosip_config()
        self._write_http_config()
        if "websockets" in self.transports:
            write_websockets_config(self.confdir, self.ws_port)
        if "pfunix" in self.transports:
            write_pfunix_config(self.confdir, self.unix_path)
        # room 1234 must stay in the VideoRoom config
        with open(os.path.join(self.confdir, "janus.plugin.videoroom.jcfg")) as f:
            if "room-1234" not in f.read():
                raise JanusError("janus.plugin.videoroom.jcfg has no room-1234")

    def _write_nosip_config(self):
        with open(os.path.join(self.confdir, "janus.plugin.nosip.jcfg"), "w") as f:
            f.write('general: {\n\tlocal_ip = "127.0.0.1"\n\tsdp_ip = "127.0.0.1"\n'
                    '\trtp_port_range = "20000-40000"\n\tevents = false\n}\n')

    def _write_http_config(self):
        """The HTTP transport: API and Admin API on 127.0.0.1 only, no HTTPS."""
        with open(os.path.join(self.confdir, "janus.transport.http.jcfg"), "w") as f:
            f.write("""general: {
	json = "plain"
	base_path = "/janus"
	http = true
	port = %d
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_base_path = "/admin"
	admin_http = true
	admin_port = %d
	admin_ip = "127.0.0.1"
	admin_https = false
}
cors: {
}
certificates: {
}
""" % (self.port, self.admin_port))

    # --- process -------------------------------------------------------------------

    def start(self, timeout=30):
        """Start janus; the server's info once it answers (and the extra
        transports listen).  Janus 1.1.2 to 1.4.1 start the Unix-socket
        transport's thread before setting its `initialized` flag: when the
        thread runs first it ends at once and unlinks its socket ("Unix
        Sockets thread ended" in the log); janus is then started again
        (at most 5 times)."""
        for _attempt in range(5):
            try:
                return self._start_once(timeout)
            except PfunixRace:
                self.stop()
        raise JanusError("the Unix Sockets thread of janus ended at every start:\n%s"
                         % self.log_tail())

    def _pfunix_ended(self):
        return bool(self.unix_path) and "Unix Sockets thread ended" in self.log_tail(400)

    def _start_once(self, timeout):
        log = open(self.logpath, "w")
        try:
            self.proc = subprocess.Popen(
                [self.exe, "-F", self.confdir, "-C", os.path.join(self.confdir, "janus.jcfg"),
                 "-o", "-d", "4"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=self.workdir, preexec_fn=self._preexec(),
                env=dict(os.environ, **self.env) if self.env else None)
        finally:
            log.close()
        self.pid = self.proc.pid
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise JanusError("janus exited with %s:\n%s" % (self.proc.returncode, self.log_tail()))
            try:
                info = self.info(timeout=2)
                if info.get("janus") == "server_info" and self._transports_ready() and \
                        not self._pfunix_ended():
                    return info
            except (URLError, OSError, ValueError) as e:
                last = e
            if self._pfunix_ended():
                raise PfunixRace()
            time.sleep(0.2)
        self.stop()
        raise JanusError("janus did not answer info within %ds (%s):\n%s"
                         % (timeout, last, self.log_tail()))

    def _transports_ready(self):
        """True when the extra transports listen (HTTP answers first: the
        transports load in name order): the Unix socket exists, the
        WebSockets port takes connections."""
        if self.unix_path and not os.path.exists(self.unix_path):
            return False
        if self.ws_port:
            try:
                socket.create_connection(("127.0.0.1", self.ws_port), timeout=2).close()
            except OSError:
                return False
        return True

    def _preexec(self):
        if self.stack_kib is None:
            return None
        limit = int(self.stack_kib) * 1024

        def set_stack():
            import resource
            hard = resource.getrlimit(resource.RLIMIT_STACK)[1]
            if hard != resource.RLIM_INFINITY and hard < limit:
                soft = hard
            else:
                soft = limit
            resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))
        return set_stack

    def thread_stack_sizes(self):
        """{size in KiB: count} of the anonymous mappings just above a guard
        page (thread stacks) in /proc/PID/maps: shows whether stack_kib took."""
        sizes = {}
        prev = None
        with open("/proc/%d/maps" % self.pid) as f:
            for line in f:
                parts = line.split()
                lo, hi = [int(x, 16) for x in parts[0].split("-")]
                if (prev is not None and prev[1] == lo and prev[2] == "---p"
                        and parts[1] == "rw-p" and len(parts) == 5):
                    k = (hi - lo) // 1024
                    sizes[k] = sizes.get(k, 0) + 1
                prev = (lo, hi, parts[1])
        return sizes

    def status(self, field):
        """A field of /proc/PID/status ("VmRSS", "Threads", ...), as a string."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].strip()
        return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40):
        try:
            with open(self.logpath, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass

    # --- /proc ---------------------------------------------------------------------

    def tasks(self):
        return sorted(int(t) for t in os.listdir("/proc/%d/task" % self.pid))

    def syscalls(self):
        """{lwp: fields of /proc/PID/task/LWP/syscall} (threads that vanish are skipped)."""
        out = {}
        for t in self.tasks():
            try:
                with open("/proc/%d/task/%d/syscall" % (self.pid, t)) as f:
                    out[t] = f.read().split()
            except OSError:
                pass
        return out

    def futex_waiters(self, addr=None):
        """LWPs in futex(2); with ADDR only those waiting on that address."""
        out = set()
        for t, fields in self.syscalls().items():
            if fields and fields[0] == FUTEX:
                if addr is None or (len(fields) > 1 and int(fields[1], 16) == addr):
                    out.add(t)
        return out

    def thread_names(self):
        out = {}
        for t in self.tasks():
            try:
                with open("/proc/%d/task/%d/comm" % (self.pid, t)) as f:
                    out[t] = f.read().strip()
            except OSError:
                pass
        return out

    def mapped_files(self):
        files = []
        with open("/proc/%d/maps" % self.pid) as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    path = parts[5].strip()
                    if path not in files:
                        files.append(path)
        return files

    # --- Janus API -----------------------------------------------------------------

    @property
    def url(self):
        return "http://127.0.0.1:%d/janus" % self.port

    @property
    def admin_url(self):
        return "http://127.0.0.1:%d/admin" % self.admin_port

    def info(self, timeout=5):
        return _get(self.url + "/info", timeout)

    def request(self, path, body, timeout=10):
        body = dict(body)
        body.setdefault("transaction", tid())
        return _post(self.url + path, body, timeout)

    def _ok(self, resp, what):
        if resp.get("janus") not in ("success", "ack", "event"):
            raise JanusError("%s failed: %s" % (what, resp))
        return resp

    def create_session(self):
        resp = self._ok(self.request("", {"janus": "create"}), "create")
        return resp["data"]["id"]

    def attach(self, session, plugin="janus.plugin.videoroom"):
        resp = self._ok(self.request("/%d" % session, {"janus": "attach", "plugin": plugin}),
                        "attach")
        return resp["data"]["id"]

    def attach_many(self, sessions, count, plugin="janus.plugin.videoroom", workers=8,
                    timeout=300):
        """Attach COUNT handles spread round-robin over SESSIONS, with a small
        bounded pool of WORKERS client threads (127.0.0.1 only); at most COUNT
        requests, and none started after TIMEOUT seconds.  Returns
        [(session, handle)] in attach order; raises JanusError when one failed."""
        jobs = [sessions[i % len(sessions)] for i in range(count)]
        out = [None] * count
        errors = []
        lock = threading.Lock()
        state = {"next": 0}
        deadline = time.time() + timeout

        def worker():
            while True:
                with lock:
                    i = state["next"]
                    if i >= count or errors or time.time() > deadline:
                        return
                    state["next"] = i + 1
                try:
                    out[i] = (jobs[i], self.attach(jobs[i], plugin))
                except Exception as e:  # noqa: BLE001 - reported below
                    with lock:
                        errors.append((i, e))
                    return
        threads = [threading.Thread(target=worker) for _ in range(max(1, min(workers, count)))]
        for t in threads:
            t.daemon = True
            t.start()
        for t in threads:
            t.join(max(1.0, deadline - time.time() + 30))
        if errors:
            raise JanusError("attach %d of %d failed: %s" % (errors[0][0], count, errors[0][1]))
        missing = [i for i, r in enumerate(out) if r is None]
        if missing:
            raise JanusError("%d of %d attaches not done within %ds" % (len(missing), count, timeout))
        return out

    def keepalive(self, session):
        return self.request("/%d" % session, {"janus": "keepalive"})

    def message(self, session, handle, body, jsep=None, timeout=10):
        req = {"janus": "message", "body": body}
        if jsep is not None:
            req["jsep"] = jsep
        return self.request("/%d/%d" % (session, handle), req, timeout=timeout)

    def trickle(self, session, handle, candidate, timeout=10):
        return self.request("/%d/%d" % (session, handle),
                            {"janus": "trickle", "candidate": candidate}, timeout=timeout)

    def detach(self, session, handle, timeout=10):
        return self.request("/%d/%d" % (session, handle), {"janus": "detach"}, timeout=timeout)

    def poll_events(self, session, max_wait=5.0, want=None):
        """Long-poll SESSION's events until WANT(event) is true or MAX_WAIT passes."""
        deadline = time.time() + max_wait
        got = []
        for _ in range(50):
            left = deadline - time.time()
            if left <= 0:
                break
            try:
                ev = _get("%s/%d?maxev=1&rid=%s" % (self.url, session, tid()),
                          timeout=min(left, 35) + 1)
            except (URLError, OSError):
                break
            if ev.get("janus") != "keepalive":
                got.append(ev)
                if want is not None and want(ev):
                    return got
        return got

    def videoroom(self, session, handle, request, **kw):
        body = {"request": request}
        body.update(kw)
        resp = self.message(session, handle, body)
        return resp

    def list_rooms(self, session, handle, timeout=10):
        resp = self.message(session, handle, {"request": "list"}, timeout=timeout)
        return resp["plugindata"]["data"]["list"]

    def create_room(self, session, handle, room, description):
        resp = self.message(session, handle, {"request": "create", "room": room,
                                              "description": description, "publishers": 6})
        data = resp.get("plugindata", {}).get("data", {})
        if data.get("videoroom") != "created":
            raise JanusError("create room failed: %s" % resp)
        return data["room"]

    def join_publisher(self, session, handle, room, display):
        resp = self.message(session, handle, {"request": "join", "ptype": "publisher",
                                              "room": room, "display": display})
        self._ok(resp, "join")
        evs = self.poll_events(session, 5, want=lambda e: "plugindata" in e
                               and e.get("sender") == handle)
        for e in evs:
            data = e.get("plugindata", {}).get("data", {})
            if data.get("videoroom") == "joined":
                return data
        raise JanusError("join as %s got no 'joined' event: %s" % (display, evs))

    def admin(self, path, body, timeout=10):
        body = dict(body)
        body.setdefault("transaction", tid())
        body["admin_secret"] = ADMIN_SECRET
        return _post(self.admin_url + path, body, timeout)

    def admin_sessions(self):
        return self.admin("", {"janus": "list_sessions"})["sessions"]

    def admin_handles(self, session):
        return self.admin("/%d" % session, {"janus": "list_handles"})["handles"]

    def handle_info(self, session, handle, timeout=10):
        return self.admin("/%d/%d" % (session, handle), {"janus": "handle_info"},
                          timeout=timeout)


# --- Debian's packaged Janus ---------------------------------------------------------

DEBIAN_PACKAGE = "janus"


def debian_janus():
    """({"exe", "nosip", "http", "version"} of Debian's installed janus package,
    None) or (None, why it cannot be used).  Paths come from `dpkg -L`."""
    if shutil.which("dpkg-query") is None:
        return None, "not a Debian system (no dpkg-query)"
    res = subprocess.run(["dpkg-query", "-W", "-f", "${Status} ${Version}", DEBIAN_PACKAGE],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    status = res.stdout.split()
    if res.returncode != 0 or status[:3] != ["install", "ok", "installed"]:
        return None, ("Debian's janus package is not installed (scripts/install-prereqs "
                      "--tests installs it: apt-get install janus)")
    files = subprocess.run(["dpkg-query", "-L", DEBIAN_PACKAGE], stdout=subprocess.PIPE,
                           universal_newlines=True).stdout.split("\n")
    found = {"version": status[3] if len(status) > 3 else "?"}
    for path in files:
        base = os.path.basename(path)
        if path.endswith("/bin/janus"):
            found["exe"] = path
        elif base == "libjanus_nosip.so" and "/plugins/" in path:
            found["nosip"] = path
        elif base == "libjanus_http.so" and "/transports/" in path:
            found["http"] = path
    for key, what in (("exe", "/usr/bin/janus"), ("nosip", "the NoSIP plugin"),
                      ("http", "the HTTP transport")):
        if not os.path.exists(found.get(key) or "/nonexistent"):
            return None, "Debian's janus package has no %s" % what
    return found, None


class DebianJanus(JanusServer):
    """Debian's packaged (stripped) /usr/bin/janus with a configuration of
    its own in WORKDIR: the HTTP transport on 127.0.0.1 (free ports) and the
    NoSIP plugin only (the plugin and transport folders hold nothing else),
    no event handlers or loggers."""

    def __init__(self, package, workdir, session_timeout=120):
        self.package = package
        JanusServer.__init__(self, os.path.dirname(os.path.dirname(package["exe"])), workdir,
                             session_timeout=session_timeout, nosip=True)
        self.exe = package["exe"]
        self.plugin = os.path.realpath(package["nosip"])
        self.srcdir = None

    def _write_config(self):
        if not os.path.isdir(self.confdir):
            os.makedirs(self.confdir)
        folders = {}
        for kind in ("plugins", "transports", "events", "loggers"):
            folders[kind] = os.path.join(self.workdir, kind)
            if not os.path.isdir(folders[kind]):
                os.makedirs(folders[kind])
        for kind, key in (("plugins", "nosip"), ("transports", "http")):
            link = os.path.join(folders[kind], os.path.basename(self.package[key]))
            if not os.path.lexists(link):
                os.symlink(os.path.realpath(self.package[key]), link)
        write_janus_jcfg(self.confdir, folders, self.session_timeout, "", "")
        self._write_nosip_config()
        self._write_http_config()


JANUS_JCFG = """general: {
	configs_folder = "%(conf)s"
	plugins_folder = "%(plugins)s"
	transports_folder = "%(transports)s"
	events_folder = "%(events)s"
	loggers_folder = "%(loggers)s"
	debug_level = 4
	admin_secret = "%(secret)s"
	session_timeout = %(timeout)d
	protected_folders = [ "/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", "/sys", "/usr", "/var" ]
}
certificates: {
}
media: {
}
nat: {
	nice_debug = false
	full_trickle = true
	ice_ignore_list = "vmnet"
}
plugins: {
%(disable)s
}
transports: {
%(disable_transports)s
}
loggers: {
}
events: {
	broadcast = false
}
"""


def write_janus_jcfg(confdir, folders, session_timeout, disable, disable_transports):
    """janus.jcfg in CONFDIR: module FOLDERS ({plugins, transports, events,
    loggers: path}), the session timeout, DISABLE and DISABLE_TRANSPORTS (a
    `disable = ...` line for the plugins and transports sections, or "")."""
    with open(os.path.join(confdir, "janus.jcfg"), "w") as f:
        f.write(JANUS_JCFG % dict(folders, conf=confdir, secret=ADMIN_SECRET,
                                  timeout=session_timeout, disable=disable,
                                  disable_transports=disable_transports))


def disabled_line(folder, keep):
    """The `disable = "a.so,b.so"` line for every module in FOLDER not in KEEP
    ("" when there is none): a test Janus loads only what it needs (and no
    transport that would listen beyond 127.0.0.1)."""
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "*.so")))
    off = [n for n in names if n not in keep]
    return '\tdisable = "%s"' % ",".join(off) if off else ""


def has_plugin(prefix, name):
    """True when the build in PREFIX has plugin NAME ("audiobridge", ...)."""
    return os.path.exists(os.path.join(prefix, "lib", "janus", "plugins",
                                       "libjanus_%s.so" % name))


class Background(object):
    """Requests sent from daemon threads; their answers (or errors) collected."""

    def __init__(self):
        self.threads = []
        self.results = []
        self.lock = threading.Lock()

    def run(self, fn, *args, **kw):
        def body():
            try:
                r = fn(*args, **kw)
            except Exception as e:  # the target may be frozen or killed under us
                r = e
            with self.lock:
                self.results.append(r)
        t = threading.Thread(target=body)
        t.daemon = True
        t.start()
        self.threads.append(t)
        return t


def wait_until(pred, timeout, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


# --- source reading -----------------------------------------------------------------

def list_lock_line(source):
    """(function, line of janus_mutex_lock(&rooms_mutex) in the "list" branch)."""
    func = "janus_videoroom_process_synchronous_request"
    return func, lock_statement_line(source, func, "janus_mutex_lock(&rooms_mutex)",
                                     r'strcasecmp\(request_text, "list"\)')


# --- the stall ----------------------------------------------------------------------

class StallResult(object):
    def __init__(self):
        self.core = None
        self.frozen_lwp = None
        self.frozen_thread = None
        self.waiters = set()
        self.rooms_mutex = None
        self.bp_line = None
        self.lock_line = None
        self.function = None
        self.source = None
        self.mapped_files = []
        self.link_names = []
        self.transcript = ""


class GdbSession(object):
    """An interactive gdb driven with pexpect."""

    PROMPT = r"\(gdb\) "

    def __init__(self, logfile):
        import pexpect
        self.pexpect = pexpect
        self.log = open(logfile, "w")
        self.child = pexpect.spawn("gdb", ["-nx", "-q"], encoding="utf-8",
                                   codec_errors="replace", timeout=60, env=dict(
                                       os.environ, TERM="dumb", DEBUGINFOD_URLS=""))
        self.child.logfile_read = self.log
        self.child.setwinsize(50, 400)
        self.n = 0
        self.expect_prompt()

    def expect_prompt(self, timeout=60):
        self.child.expect(self.PROMPT, timeout=timeout)
        return self.child.before

    def cmd(self, line, timeout=60):
        """Run LINE; its output up to a marker echoed after it (async stop
        notices in non-stop mode make the prompt an unreliable delimiter)."""
        self.n += 1
        mark = "@@janusd-%d@@" % self.n
        self.child.sendline(line)
        self.child.sendline("echo %s\\n" % mark)
        self.child.expect(re.escape(mark) + r"\r?\n", timeout=timeout)
        return self.child.before

    def expect(self, pattern, timeout=60):
        self.child.expect(pattern, timeout=timeout)
        return self.child.match

    def close(self):
        try:
            if self.child.isalive():
                self.child.sendline("quit")
                self.child.expect(self.pexpect.EOF, timeout=10)
        except Exception:
            pass
        if self.child.isalive():
            self.child.terminate(force=True)
        self.log.close()


def _attach_and_break(gdb, janus, res, timeout):
    """Attach GDB to JANUS, record &rooms_mutex and the libraries' link names
    in RES, and break on the line after the `list` branch's lock of
    rooms_mutex (RES.lock_line); RES.bp_line is where gdb put it."""
    out = gdb.cmd("attach %d" % janus.pid, timeout=timeout)
    if "ptrace" in out and "not permitted" in out:
        raise JanusError("gdb cannot attach: %s" % out)
    out = gdb.cmd("print &rooms_mutex")
    m = re.search(r"\$\d+ = \([^)]*\) (0x[0-9a-f]+) <rooms_mutex>", out)
    if not m:
        raise JanusError("print &rooms_mutex: %s" % out)
    res.rooms_mutex = int(m.group(1), 16)
    out = gdb.cmd("info sharedlibrary")
    res.link_names = re.findall(r"^0x[0-9a-f]+\s+0x[0-9a-f]+\s+\S+\s+(?:\(\*\)\s+)?(/\S+)",
                                out, re.M)
    out = gdb.cmd("break janus_videoroom.c:%d" % (res.lock_line + 1))
    m = re.search(r"Breakpoint 1 at 0x[0-9a-f]+: file .*janus_videoroom\.c, line (\d+)\.", out)
    if not m:
        raise JanusError("breakpoint not set: %s" % out)
    res.bp_line = int(m.group(1))


def stall_rooms_mutex(janus, core_path, n_waiters=8, session=None, handle=None,
                      timeout=60):
    """Freeze one "list" request inside rooms_mutex, pile N_WAITERS behind it, gcore.

    JANUS is left stopped-and-detached: kill it afterwards (janus.stop()).
    """
    res = StallResult()
    res.source = os.path.join(janus.srcdir, "src", "plugins", "janus_videoroom.c")
    res.function, res.lock_line = list_lock_line(res.source)
    if session is None:
        session = janus.create_session()
    handles = [janus.attach(session) for _ in range(n_waiters + 1)]
    res.mapped_files = janus.mapped_files()
    gdb = GdbSession(core_path + ".gdb.log")
    bg = Background()
    try:
        gdb.cmd("set pagination off")
        gdb.cmd("set width 0")
        gdb.cmd("set confirm off")
        gdb.cmd("set non-stop on")
        _attach_and_break(gdb, janus, res, 120)
        gdb.cmd("continue -a &")
        baseline = janus.futex_waiters()
        # one "list" request: it hits the breakpoint with rooms_mutex held
        bg.run(janus.list_rooms, session, handles[0], timeout=timeout + 60)
        m = gdb.expect(r'Thread (\d+) "[^"]*" hit Breakpoint 1, [^\r\n]*?janus_videoroom\.c:(\d+)',
                       timeout=timeout)
        res.frozen_thread = int(m.group(1))
        res.bp_line = int(m.group(2))  # where the thread stopped (gdb may move the breakpoint)
        out = gdb.cmd("info threads %d" % res.frozen_thread)
        m = re.search(r"\(LWP (\d+)\)", out)
        if not m:
            raise JanusError("no LWP for thread %d: %s" % (res.frozen_thread, out))
        res.frozen_lwp = int(m.group(1))
        # N more "list" requests pile up on rooms_mutex
        for i in range(n_waiters):
            bg.run(janus.list_rooms, session, handles[i + 1], timeout=timeout + 60)
        got = wait_until(lambda: len(janus.futex_waiters(res.rooms_mutex)) >= n_waiters,
                         timeout)
        waiters = janus.futex_waiters(res.rooms_mutex)
        new = janus.futex_waiters() - baseline
        if len(waiters) != n_waiters or not got:
            raise JanusError("expected %d futex waiters on rooms_mutex 0x%x, have %s "
                             "(new futex waiters %s)" % (n_waiters, res.rooms_mutex,
                                                         sorted(waiters), sorted(new)))
        if len(new) < n_waiters:
            raise JanusError("only %d new futex waiters since the baseline" % len(new))
        time.sleep(0.3)  # let every waiter settle in the kernel
        res.waiters = janus.futex_waiters(res.rooms_mutex)
        if res.frozen_lwp in res.waiters:
            raise JanusError("the frozen thread waits for rooms_mutex itself")
        gdb.cmd("interrupt -a")
        def all_stopped():
            out = gdb.cmd("info threads")
            return "(running)" not in out
        if not wait_until(all_stopped, 30, step=0.2):
            raise JanusError("threads still running after interrupt -a")
        out = gdb.cmd("gcore %s" % core_path, timeout=180)
        if not os.path.exists(core_path):
            raise JanusError("gcore failed: %s" % out)
        gdb.cmd("delete")
        gdb.cmd("detach")
    finally:
        gdb.close()
        with open(core_path + ".gdb.log", errors="replace") as f:
            res.transcript = f.read()
    res.core = core_path
    return res


def freeze_rooms_mutex(janus, n_waiters, handles, core_path=None, timeout=120,
                       settle=0.5):
    """stall_rooms_mutex for thousands of threads, left frozen without a debugger.

    HANDLES: [(session, handle)], at least N_WAITERS + 1 VideoRoom handles
    (the first freezes, the next N_WAITERS pile up).  An all-stop gdb (a
    non-stop attach prints one stop notice per thread, minutes at 1,000+
    threads) breaks on the line after the "list" branch's
    janus_mutex_lock(&rooms_mutex); the thread that hits it is made to call
    pause() there, as if the function had called it (a fake call frame below
    its stack pointer, return address inside the breakpoint's line), and gdb
    detaches.  That thread now sleeps in pause(2) holding rooms_mutex, in a
    running Janus nobody is attached to: N_WAITERS "list" requests pile up
    behind it, the target can be attached to (or gcore'd) any number of
    times, and it stays hung until killed (janus.stop()).

    With CORE_PATH a core is taken (gdb -batch gcore, all-stop).  Returns a
    StallResult (its bp_line is the frozen frame's line; transcript: gdb's).
    """
    if len(handles) < n_waiters + 1:
        raise JanusError("freeze_rooms_mutex needs %d handles, got %d"
                         % (n_waiters + 1, len(handles)))
    res = StallResult()
    res.source = os.path.join(janus.srcdir, "src", "plugins", "janus_videoroom.c")
    res.function, res.lock_line = list_lock_line(res.source)
    res.mapped_files = janus.mapped_files()
    log = (core_path or os.path.join(janus.workdir, "freeze")) + ".gdb.log"
    gdb = GdbSession(log)
    bg = Background()
    try:
        for c in ("set pagination off", "set width 0", "set confirm off",
                  "set print thread-events off"):
            gdb.cmd(c)
        _attach_and_break(gdb, janus, res, timeout)
        baseline = janus.futex_waiters()
        gdb.child.sendline("continue")
        gdb.expect(r"Continuing\.", timeout=timeout)
        session, handle = handles[0]
        bg.run(janus.list_rooms, session, handle, timeout=timeout + 60)
        m = gdb.expect(r'Thread (\d+) "[^"]*" hit Breakpoint 1, [^\r\n]*?janus_videoroom\.c:(\d+)',
                       timeout=timeout)
        res.frozen_thread = int(m.group(1))
        res.bp_line = int(m.group(2))
        gdb.expect_prompt(timeout=timeout)
        out = gdb.cmd("info threads %d" % res.frozen_thread)
        m = re.search(r"\(LWP (\d+)\)", out)
        if not m:
            raise JanusError("no LWP for thread %d: %s" % (res.frozen_thread, out))
        res.frozen_lwp = int(m.group(1))
        # a call of pause() from here: below the red zone, 16-byte aligned at
        # the call, return address one byte into the breakpoint's instruction
        # (so the caller's line, looked up at return address - 1, is bp_line)
        for c in ("thread %d" % res.frozen_thread,
                  "set $jgdb_pc = $pc",
                  "set $sp = (($sp - 1024) & ~0xf) - 8",
                  "set *(unsigned long *)$sp = $jgdb_pc + 1",
                  "set $pc = (unsigned long)pause",
                  "delete"):
            out = gdb.cmd(c)
            if "rror" in out or "No symbol" in out:
                raise JanusError("%s: %s" % (c, out))
        out = gdb.cmd("bt 3")
        if not re.search(r"#1 .* janus_videoroom_process_synchronous_request .*janus_videoroom\.c:%d"
                         % res.bp_line, out):
            raise JanusError("frozen thread does not look like it called pause(): %s" % out)
        gdb.cmd("detach", timeout=timeout)
    finally:
        gdb.close()
        with open(log, errors="replace") as f:
            res.transcript = f.read()

    def in_pause():
        try:
            with open("/proc/%d/task/%d/syscall" % (janus.pid, res.frozen_lwp)) as f:
                return f.read().split()[0] == "34"
        except (OSError, IndexError):
            return False
    if not wait_until(in_pause, 10):
        raise JanusError("the frozen thread %d is not in pause(2)" % res.frozen_lwp)
    # N more "list" requests pile up on rooms_mutex
    for session, handle in handles[1:n_waiters + 1]:
        bg.run(janus.list_rooms, session, handle, timeout=timeout + 60)
    got = wait_until(lambda: len(janus.futex_waiters(res.rooms_mutex)) >= n_waiters,
                     timeout, step=0.2)
    time.sleep(settle)  # let every waiter settle in the kernel
    res.waiters = janus.futex_waiters(res.rooms_mutex)
    new = janus.futex_waiters() - baseline
    if len(res.waiters) != n_waiters or not got:
        raise JanusError("expected %d futex waiters on rooms_mutex 0x%x, have %d "
                         "(%d new futex waiters)" % (n_waiters, res.rooms_mutex,
                                                    len(res.waiters), len(new)))
    if res.frozen_lwp in res.waiters:
        raise JanusError("the frozen thread waits for rooms_mutex itself")
    if not in_pause():
        raise JanusError("the frozen thread %d left pause(2)" % res.frozen_lwp)
    res.background = bg
    if core_path:
        res.core = gcore_all_stop(janus, core_path, timeout=max(timeout, 300))
    return res


class ScaleSetup(object):
    """A real Janus at scale: N_HANDLES VideoRoom handles over N_SESSIONS
    sessions (one "hloop" thread each; session_timeout 0, nothing expires)
    and N_WAITERS "list" requests piled up on a rooms_mutex held by a frozen
    request thread (freeze_rooms_mutex), started with a small thread stack
    (STACK_KIB, through RLIMIT_STACK) and MALLOC_ARENA_MAX=2 so that 1,000+
    threads and their core stay small.  CORE_PATH: also write a core.

    Attributes: janus, sessions, handles [(session, handle)], stall
    (StallResult), timings {step: seconds}, stack_sizes {KiB: count}.
    Kill with close()."""

    def __init__(self, prefix, workdir, n_handles=1000, n_waiters=200, n_sessions=4,
                 stack_kib=256, core_path=None, timeout=300):
        self.timings = {}
        self.janus = JanusServer(prefix, workdir, session_timeout=0, stack_kib=stack_kib,
                                 env={"MALLOC_ARENA_MAX": "2"})
        t0 = time.time()
        self.janus.start()
        try:
            self.timings["start"] = time.time() - t0
            t0 = time.time()
            self.sessions = [self.janus.create_session() for _ in range(n_sessions)]
            self.handles = self.janus.attach_many(self.sessions, n_handles, workers=8,
                                                  timeout=timeout)
            self.timings["attach"] = time.time() - t0
            if not wait_until(lambda: self.hloop_count() >= n_handles, 60, step=0.2):
                raise JanusError("fewer than %d hloop threads after attaching" % n_handles)
            self.stack_sizes = self.janus.thread_stack_sizes()
            t0 = time.time()
            self.stall = freeze_rooms_mutex(self.janus, n_waiters, self.handles,
                                            core_path=None, timeout=min(timeout, 120))
            self.timings["freeze"] = time.time() - t0
            self.core = None
            if core_path:
                t0 = time.time()
                self.core = gcore_all_stop(self.janus, core_path, timeout=timeout)
                self.stall.core = self.core
                self.timings["gcore"] = time.time() - t0
        except BaseException:
            self.janus.stop()
            raise

    def handle_ids(self):
        return set(h for _s, h in self.handles)

    def hloop_count(self):
        return len([n for n in self.janus.thread_names().values() if n.startswith("hloop")])

    def close(self, remove_core=True):
        self.janus.stop()
        if remove_core and self.core and os.path.exists(self.core):
            os.unlink(self.core)


LEAK_SKIP_REASON = (
    "this Janus build has no NoSIP plugin (libjanus_nosip.so): the 1.1.2 'Invalid msid' "
    "leak of handle->mutex in janus_plugin_handle_sdp is only reachable through a plugin "
    "that answers with an SDP the client supplied (VideoRoom never puts msid in an "
    "answer); rebuild with scripts/build-janus")

# A WebRTC offer the core accepts (ICE credentials, DTLS fingerprint, one opus m-line,
# no candidates: nothing is ever sent anywhere).
WEBRTC_OFFER = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 127.0.0.1", "a=mid:0", "a=sendrecv",
    "a=rtcp-mux", "a=ice-ufrag:jgdb", "a=ice-pwd:janusgdbjanusgdbjanusgdb",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass",
    "a=rtpmap:111 opus/48000/2", ""])

# The peer's "barebone" answer NoSIP forwards verbatim as the plugin's JSEP answer:
# its a=msid has one token, so sscanf("%64s %64s") != 2 in janus_plugin_handle_sdp.
BAD_MSID_ANSWER = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "c=IN IP4 127.0.0.1",
    "m=audio 9 RTP/AVP 111", "a=rtpmap:111 opus/48000/2", "a=msid:janusgdb", "a=sendrecv", ""])


def has_nosip(prefix):
    return os.path.exists(os.path.join(prefix, "lib", "janus", "plugins", "libjanus_nosip.so"))


def handle_mutex_addresses(janus, timeout=120):
    """{handle id: &handle->mutex} read by a batch gdb from each hloop thread's
    janus_ice_handle_thread frame (Janus's debug info; no breakpoints)."""
    out = subprocess.run(["gdb", "-nx", "-batch", "-p", str(janus.pid), "-ex", "info threads"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=timeout).stdout
    nums = re.findall(r'^\*?\s+(\d+)\s+Thread 0x[0-9a-f]+ \(LWP \d+\) "hloop', out, re.M)
    cmds = []
    for n in nums:
        cmds += ["-ex", "thread %s" % n, "-ex", "frame function janus_ice_handle_thread",
                 "-ex", "printf \"HANDLE %lu %p\\n\", handle->handle_id, &handle->mutex"]
    if not cmds:
        return {}
    out = subprocess.run(["gdb", "-nx", "-batch", "-p", str(janus.pid)] + cmds,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=timeout).stdout
    return dict((int(h), int(a, 16)) for h, a in re.findall(r"^HANDLE (\d+) (0x[0-9a-f]+)$",
                                                             out, re.M))


def gcore_all_stop(janus, path, timeout=180):
    out = subprocess.run(["gdb", "-nx", "-batch", "-p", str(janus.pid), "-ex", "gcore %s" % path],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=timeout)
    if not os.path.exists(path):
        raise JanusError("gcore failed: %s" % out.stdout[-2000:])
    return path


def trigger_handle_mutex_leak(janus, session, handle, timeout=10):
    """Make Janus 1.1.2 return with HANDLE's mutex still locked, through its API.

    HANDLE must be attached to janus.plugin.nosip.  1) "generate" with a WebRTC
    offer (the core sets up ICE for the handle); 2) "process" with a barebone
    answer whose a=msid has a single token.  NoSIP's handler thread pushes that
    SDP back as the plugin's JSEP answer; janus_plugin_handle_sdp (janus.c, the
    answer branch) locks ice_handle->mutex, rejects the msid ("Invalid msid on
    m-line") and returns NULL without unlocking (fixed upstream in 1.3.1).
    Returns True once Janus logged the rejection."""
    resp = janus.message(session, handle, {"request": "generate"},
                         jsep={"type": "offer", "sdp": WEBRTC_OFFER})
    if resp.get("janus") != "ack":
        raise JanusError("generate: %s" % resp)
    evs = janus.poll_events(session, timeout, want=lambda e: "plugindata" in e)
    if not [e for e in evs if e.get("plugindata", {}).get("data", {}).get("result", {})
            .get("event") == "generated"]:
        raise JanusError("NoSIP generated no barebone offer: %s" % evs)
    resp = janus.message(session, handle, {"request": "process", "type": "answer",
                                           "sdp": BAD_MSID_ANSWER})
    if resp.get("janus") != "ack":
        raise JanusError("process: %s" % resp)
    return wait_until(lambda: "Invalid msid on m-line" in janus.log_tail(200), timeout, 0.1)


# --- a request frozen inside any plugin's global lock ----------------------------------

def function_start(lines, function):
    """Index of the line that defines FUNCTION (at column 0, not a prototype)."""
    pat = re.compile(r"^[A-Za-z_].*[\s*]%s\(" % re.escape(function))
    for i, l in enumerate(lines):
        if not pat.match(l):
            continue
        # a definition's parameter list ends in "{", a prototype's in ";"
        for k in range(i, min(i + 20, len(lines))):
            if "{" in lines[k]:
                return i
            if ";" in lines[k]:
                break
    return None


def lock_statement_line(source, function, statement, branch=None, after=None):
    """Line (1-based) of STATEMENT (e.g. ``janus_mutex_lock(&rooms_mutex)``)
    in FUNCTION of the C file SOURCE; with BRANCH (a regex, e.g. the
    ``strcasecmp(request_text, "list")`` of a request's branch) the first one
    after the branch, with AFTER (a regex) the first one after a line that
    matches it.  Read from the source: no line numbers are hard-coded."""
    with open(source, errors="replace") as f:
        lines = f.read().split("\n")
    start = function_start(lines, function)
    if start is None:
        raise JanusError("%s not found in %s" % (function, source))
    end = len(lines)
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("}"):
            end = i
            break
    i = start
    for pattern in (branch, after):
        if pattern is None:
            continue
        for k in range(i, end):
            if re.search(pattern, lines[k]):
                i = k
                break
        else:
            raise JanusError("%r not found in %s" % (pattern, function))
    for k in range(i, end):
        if statement in lines[k]:
            return k + 1
    raise JanusError("no %s in %s (after %r)" % (statement, function, branch or after))


class PluginLock(object):
    """Where a request freezes inside a plugin's global lock: the plugin's
    short name (``audiobridge``), its source file, the FUNCTION and the lock
    STATEMENT to stop after (BRANCH: a regex of the request's branch before
    it), the lock's SYMBOL, the request BODY the frozen thread serves and the
    BODY the piled-up ones send (PILE_BODY, default the same)."""

    def __init__(self, plugin, function, symbol, body, branch=None, pile_body=None,
                 statement=None, role=None, pile_role=None, package=None):
        self.plugin = plugin
        self.package = package or "janus.plugin.%s" % plugin
        self.source = "janus_%s.c" % plugin
        self.library = "libjanus_%s.so" % plugin
        self.function = function
        self.symbol = symbol
        self.statement = statement or "janus_mutex_lock(&%s)" % symbol
        self.branch = branch
        self.body = body
        self.pile_body = pile_body or body
        self.role = role              # the frozen thread's role in the report
        self.pile_role = pile_role    # the piled-up threads' role

    def __repr__(self):
        return "PluginLock(%s %s)" % (self.plugin, self.symbol)


def _lwp_of(gdb, num):
    out = gdb.cmd("info threads %d" % num)
    m = re.search(r"\(LWP (\d+)\)", out)
    if not m:
        raise JanusError("no LWP for thread %d: %s" % (num, out))
    return int(m.group(1))


def _gdb_value(gdb, expr):
    """The value of EXPR in gdb's current frame (an int), or JanusError."""
    out = gdb.cmd("printf \"@@value %%#lx@@\\n\", (unsigned long)(%s)" % expr)
    m = re.search(r"@@value (0x[0-9a-f]+|0)@@", out)
    if not m:
        raise JanusError("%s: %s" % (expr, out))
    return int(m.group(1), 0)


def _next_call_return(gdb):
    """The return address of the first call at or after $pc when the code up
    to it is straight (no jump, no return), else None."""
    out = gdb.cmd("x/32i $pc")
    insns = re.findall(r"^(?:=>)?\s+(0x[0-9a-f]+)(?: <[^>]*>)?:\s+(\S+)([^\n]*)", out, re.M)
    for k, (addr, mnem, rest) in enumerate(insns[:-1]):
        if mnem.startswith("call"):
            if "unlock" in rest:
                return None     # the lock's own unlock: it would not be held there
            return int(insns[k + 1][0], 16)
        if mnem.startswith("j") or mnem.startswith("ret"):
            return None
    return None


def freeze_thread_at(janus, res, source, line, trigger, call="pause", arg=None, values=(),
                     log=None, timeout=60, before=None, after_call=False):
    """Freeze the first thread that reaches SOURCE:LINE (a line of a Janus
    source file) in a call of CALL, as if the code there had called it, and
    leave JANUS running with no debugger attached.

    An all-stop gdb breaks on the line; TRIGGER() (run in the background)
    makes a thread reach it.  In that thread's frame the expressions VALUES
    are read into RES.values, ARG (an expression, e.g. ``participant->outbuf``)
    becomes CALL's first argument, and a fake call frame is pushed below the
    stack pointer (red zone kept, 16-byte aligned at the call, return address
    one byte into the breakpoint's instruction so the caller's line is the
    breakpoint's).  CALL is ``pause`` (the thread sleeps in pause(2)) or a
    function that blocks, e.g. ``g_async_queue_pop`` of an empty queue.
    BEFORE: (an earlier line, values): the thread stops there first and the
    values (expressions live only there) are read into RES.values too.
    AFTER_CALL: the return address is the one of the first call after the
    breakpoint (straight code only), as if that callee blocked: a real
    return address, which the machine-code analysis of a stripped build
    needs (the frame's line is then that call's).
    Fills RES.frozen_thread, frozen_lwp, bp_line, values, link_names,
    transcript; returns the Background that ran TRIGGER."""
    log = log or os.path.join(janus.workdir, "freeze-%d.gdb.log" % line)
    res.values = {}
    gdb = GdbSession(log)
    bg = Background()
    base = os.path.basename(source)
    try:
        for c in ("set pagination off", "set width 0", "set confirm off",
                  "set print thread-events off"):
            gdb.cmd(c)
        out = gdb.cmd("attach %d" % janus.pid, timeout=timeout)
        if "ptrace" in out and "not permitted" in out:
            raise JanusError("gdb cannot attach: %s" % out)
        out = gdb.cmd("info sharedlibrary")
        res.link_names = re.findall(r"^0x[0-9a-f]+\s+0x[0-9a-f]+\s+\S+\s+(?:\(\*\)\s+)?(/\S+)",
                                    out, re.M)
        stops = ([before] if before else []) + [(line, values)]
        for n, (at, vals) in enumerate(stops):
            where = "break %s:%d" % (base, at)
            if n:
                where += " thread %d" % res.frozen_thread
            out = gdb.cmd(where)
            m = re.search(r"Breakpoint %d at 0x[0-9a-f]+: file .*%s, line (\d+)\."
                          % (n + 1, re.escape(base)), out)
            if not m:
                raise JanusError("breakpoint not set: %s" % out)
            gdb.child.sendline("continue")
            gdb.expect(r"Continuing\.", timeout=timeout)
            if not n:
                bg.run(trigger)
            m = gdb.expect(r'Thread (\d+) "[^"]*" hit Breakpoint %d, [^\r\n]*?%s:(\d+)'
                           % (n + 1, re.escape(base)), timeout=timeout)
            if n and int(m.group(1)) != res.frozen_thread:
                raise JanusError("thread %s stopped, not %d" % (m.group(1), res.frozen_thread))
            res.frozen_thread = int(m.group(1))
            res.bp_line = int(m.group(2))
            gdb.expect_prompt(timeout=timeout)
            gdb.cmd("thread %d" % res.frozen_thread)
            if n + 1 < len(stops):
                for key, expr in vals:
                    res.values[key] = _gdb_value(gdb, expr)
                gdb.cmd("delete")
        res.frozen_lwp = _lwp_of(gdb, res.frozen_thread)
        gdb.cmd("thread %d" % res.frozen_thread)
        out = gdb.cmd("frame")
        m = re.search(r"#0\s+(?:0x[0-9a-f]+ in )?(\w+) ", out)
        res.bp_function = m.group(1) if m else None
        for key, expr in values:
            res.values[key] = _gdb_value(gdb, expr)
        ret = _next_call_return(gdb) if after_call else None
        res.ret_after_call = ret is not None
        cmds = []
        if arg is not None:
            cmds.append("set $jgdb_arg = (unsigned long)(%s)" % arg)
        cmds += ["set $jgdb_pc = $pc",
                 "set $sp = (($sp - 1024) & ~0xf) - 8",
                 "set *(unsigned long *)$sp = %s" % ("0x%x" % ret if ret else "$jgdb_pc + 1")]
        if arg is not None:
            cmds.append("set $rdi = $jgdb_arg")
        cmds += ["set $pc = (unsigned long)%s" % call, "delete"]
        for c in cmds:
            out = gdb.cmd(c)
            if "rror" in out or "No symbol" in out:
                raise JanusError("%s: %s" % (c, out))
        out = gdb.cmd("bt 4")
        # (function, line) of the frames in SOURCE; an inlined callee's frame
        # (no address) comes before its caller's
        res.frame_lines = [(f, int(n)) for f, n in re.findall(
            r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\w+) \(.*? at \S*?%s:(\d+)" % re.escape(base), out,
            re.M)]
        if ret:
            m = re.search(r"^#1 .* %s .*%s:(\d+)" % (res.bp_function, re.escape(base)), out, re.M)
            if not m:
                raise JanusError("frozen thread does not look like it called %s(): %s"
                                 % (call, out))
            res.bp_line = int(m.group(1))
        elif not re.search(r"#1 .* %s .*%s:%d" % (res.bp_function, re.escape(base),
                                                  res.bp_line), out):
            raise JanusError("frozen thread does not look like it called %s(): %s" % (call, out))
        gdb.cmd("detach", timeout=timeout)
    finally:
        gdb.close()
        with open(log, errors="replace") as f:
            res.transcript = f.read()
    return bg


def thread_syscall(janus, lwp):
    """The fields of /proc/PID/task/LWP/syscall ([] when unreadable)."""
    try:
        with open("/proc/%d/task/%d/syscall" % (janus.pid, lwp)) as f:
            return f.read().split()
    except OSError:
        return []


def freeze_plugin_lock(janus, spec, n_waiters, core_path=None, timeout=60, settle=0.3):
    """Freeze one request of SPEC (a PluginLock) inside its plugin's global
    lock and pile N_WAITERS more requests up behind it (the generalisation of
    freeze_rooms_mutex to any plugin).  The frozen thread sleeps in pause(2)
    with the lock held in a running Janus nobody is attached to; with
    CORE_PATH a core is written.  Returns a StallResult: lock_addr (the
    global's address, also rooms_mutex for the VideoRoom's callers),
    frozen_lwp, waiters (LWPs in futex(2) on the lock), source, function,
    lock_line, bp_line, handles, background."""
    res = StallResult()
    res.spec = spec
    res.source = os.path.join(janus.srcdir, "src", "plugins", spec.source)
    res.function = spec.function
    res.lock_line = lock_statement_line(res.source, spec.function, spec.statement, spec.branch)
    res.mapped_files = janus.mapped_files()
    session = janus.create_session()
    res.session = session
    res.handles = [janus.attach(session, spec.package) for _ in range(n_waiters + 1)]
    first = res.handles[0]
    baseline = janus.futex_waiters()
    bg = freeze_thread_at(
        janus, res, res.source, res.lock_line + 1,
        lambda: janus.message(session, first, spec.body, timeout=timeout + 60),
        values=[("lock", "&'%s'::%s" % (spec.source, spec.symbol))], timeout=timeout,
        after_call=True,
        log=(core_path or os.path.join(janus.workdir, "freeze-%s" % spec.plugin)) + ".gdb.log")
    res.lock_addr = res.rooms_mutex = res.values["lock"]
    if not wait_until(lambda: thread_syscall(janus, res.frozen_lwp)[:1] == ["34"], 10):
        raise JanusError("the frozen thread %d is not in pause(2)" % res.frozen_lwp)
    for h in res.handles[1:]:
        bg.run(janus.message, session, h, spec.pile_body, timeout=timeout + 60)
    got = wait_until(lambda: len(janus.futex_waiters(res.lock_addr)) >= n_waiters, timeout,
                     step=0.1)
    time.sleep(settle)  # let every waiter settle in the kernel
    res.waiters = janus.futex_waiters(res.lock_addr)
    if len(res.waiters) != n_waiters or not got:
        raise JanusError("expected %d futex waiters on %s 0x%x, have %s (new futex waiters %s)"
                         % (n_waiters, spec.symbol, res.lock_addr, sorted(res.waiters),
                            sorted(janus.futex_waiters() - baseline)))
    if res.frozen_lwp in res.waiters:
        raise JanusError("the frozen thread waits for %s itself" % spec.symbol)
    if thread_syscall(janus, res.frozen_lwp)[:1] != ["34"]:
        raise JanusError("the frozen thread %d left pause(2)" % res.frozen_lwp)
    res.background = bg
    if core_path:
        res.core = gcore_all_stop(janus, core_path, timeout=max(timeout, 120))
    return res


# --- a #3570-shaped hang of the AudioBridge --------------------------------------------

AB_SOURCE = "janus_audiobridge.c"
AB_HANGUP = "janus_audiobridge_hangup_media_internal"


def audiobridge_hangup_line(source):
    """Line of ``janus_mutex_unlock(&participant->qmutex)`` in
    janus_audiobridge_hangup_media_internal: the point where Janus 1.3.x
    calls janus_audiobridge_participant_clear_outbuf (the blocking
    g_async_queue_pop of #3570), with sessions_mutex (the caller's),
    rooms_mutex and the room's mutex held."""
    return lock_statement_line(source, AB_HANGUP, "janus_mutex_unlock(&participant->qmutex)")


def audiobridge_create_room(janus, session, handle, room, description):
    resp = janus.message(session, handle, {"request": "create", "room": room,
                                           "description": description})
    data = resp.get("plugindata", {}).get("data", {})
    if data.get("audiobridge") != "created":
        raise JanusError("create AudioBridge room failed: %s" % resp)
    return data["room"]


def audiobridge_join(janus, session, handle, room, display, user_id):
    resp = janus.message(session, handle, {"request": "join", "room": room, "id": user_id,
                                           "display": display})
    janus._ok(resp, "join")
    evs = janus.poll_events(session, 5, want=lambda e: "plugindata" in e
                            and e.get("sender") == handle)
    for e in evs:
        data = e.get("plugindata", {}).get("data", {})
        if data.get("audiobridge") == "joined":
            return data
    raise JanusError("join as %s got no 'joined' event: %s" % (display, evs))


class HangupStall(object):
    """A #3570-shaped hang of a real AudioBridge: see freeze_audiobridge_hangup."""

    def __init__(self):
        self.res = StallResult()
        self.room = None
        self.description = None
        self.user_id = None
        self.display = None
        self.locks = {}         # sessions_mutex, rooms_mutex, room_mutex -> address
        self.queue = None       # participant->outbuf (the GAsyncQueue it waits on)
        self.waiters = {}       # lock key -> set of LWPs in futex(2) on it
        self.roles = {}         # LWP -> what the test made it do
        self.core = None


def freeze_audiobridge_hangup(janus, room=4321, description="janus-gdb lobby",
                              n_messages=3, n_admin=2, core_path=None, timeout=60):
    """Reach the state of Janus #3570 on a real AudioBridge (Janus 1.1.2),
    through the API, and leave it hung.

    A room is created and a participant joins it (no WebRTC); detaching the
    participant's handle makes its handle loop call
    janus_audiobridge_destroy_session, which locks sessions_mutex and calls
    janus_audiobridge_hangup_media_internal: that locks rooms_mutex and the
    room's mutex.  A breakpoint on the line after its unlock of the
    participant's qmutex (where 1.3.x empties participant->outbuf with the
    blocking g_async_queue_pop of #3570; 1.1.2 has no such call there) stops
    the thread, which is then made to call g_async_queue_pop(participant->
    outbuf) on the empty queue, as 1.3.x does when the participant thread
    popped the last packet between its length check and its pop: it blocks
    for ever with the three locks held, and gdb detaches.  Then N_MESSAGES
    "list" messages (their request workers wait for sessions_mutex in
    janus_audiobridge_handle_message), N_ADMIN Admin API "list" requests
    (message_plugin: process_synchronous_request waits for rooms_mutex) pile
    up, and the room's mixer thread waits for the room's mutex.  With
    CORE_PATH a core is written.  Returns a HangupStall."""
    st = HangupStall()
    res = st.res
    res.source = os.path.join(janus.srcdir, "src", "plugins", AB_SOURCE)
    res.function = AB_HANGUP
    res.lock_line = audiobridge_hangup_line(res.source)
    res.mapped_files = janus.mapped_files()
    st.room, st.description = room, description
    st.user_id, st.display = 77, "bob"
    s = janus.create_session()
    h = janus.attach(s, "janus.plugin.audiobridge")
    st.session, st.handle = s, h
    audiobridge_create_room(janus, s, h, room, description)
    audiobridge_join(janus, s, h, room, st.display, st.user_id)
    s2 = janus.create_session()
    others = [janus.attach(s2, "janus.plugin.audiobridge") for _ in range(n_messages)]
    sym = "&'%s'::%%s" % AB_SOURCE
    # the room is only at hand (not optimized out) right after its lock
    room_line = lock_statement_line(res.source, AB_HANGUP,
                                    "janus_mutex_lock(&audiobridge->mutex)") + 1
    before = (room_line, [("room_mutex", "&audiobridge->mutex"),
                          ("room_id", "audiobridge->room_id")])
    values = [("sessions_mutex", sym % "sessions_mutex"), ("rooms_mutex", sym % "rooms_mutex"),
              ("user_id", "participant->user_id"), ("queue", "participant->outbuf")]
    baseline = janus.futex_waiters()
    bg = freeze_thread_at(janus, res, res.source, res.lock_line + 1,
                          lambda: janus.detach(s, h, timeout=timeout + 60),
                          call="g_async_queue_pop", arg="participant->outbuf", values=values,
                          timeout=timeout, before=before,
                          log=(core_path or os.path.join(janus.workdir, "hangup")) + ".gdb.log")
    if res.bp_function != AB_HANGUP:
        raise JanusError("stopped in %s, not %s" % (res.bp_function, AB_HANGUP))
    for key in ("sessions_mutex", "rooms_mutex", "room_mutex"):
        st.locks[key] = res.values[key]
    st.queue = res.values["queue"]
    if (res.values["room_id"], res.values["user_id"]) != (room, st.user_id):
        raise JanusError("stopped for room %d participant %d, not %d/%d" % (
            res.values["room_id"], res.values["user_id"], room, st.user_id))
    # the frozen thread blocks in futex(2) inside g_async_queue_pop (the
    # queue's GCond; the GMutex is released while it waits)
    if not wait_until(lambda: thread_syscall(janus, res.frozen_lwp)[:1] == [FUTEX], 10):
        raise JanusError("the frozen thread %d does not wait in futex(2): %s" % (
            res.frozen_lwp, thread_syscall(janus, res.frozen_lwp)))
    st.queue_wait = int(thread_syscall(janus, res.frozen_lwp)[1], 16)
    for other in others:
        bg.run(janus.message, s2, other, {"request": "list"}, timeout=timeout + 60)
    for _ in range(n_admin):
        bg.run(janus.admin, "", {"janus": "message_plugin", "plugin": "janus.plugin.audiobridge",
                                 "request": {"request": "list"}}, timeout=timeout + 60)
    want = {"sessions_mutex": n_messages, "rooms_mutex": n_admin, "room_mutex": 1}

    def piled():
        return all(len(janus.futex_waiters(st.locks[k])) >= n for k, n in want.items())
    got = wait_until(piled, timeout, step=0.1)
    time.sleep(0.3)
    for k in want:
        st.waiters[k] = janus.futex_waiters(st.locks[k])
    if not got or any(len(st.waiters[k]) != n for k, n in want.items()):
        raise JanusError("expected waiters %s, have %s (new futex waiters %s)" % (
            want, dict((k, sorted(v)) for k, v in st.waiters.items()),
            sorted(janus.futex_waiters() - baseline)))
    if thread_syscall(janus, res.frozen_lwp)[:2] != [FUTEX, "0x%x" % st.queue_wait]:
        raise JanusError("the frozen thread left its wait")
    res.waiters = set().union(*st.waiters.values())
    res.background = bg
    if core_path:
        st.core = res.core = gcore_all_stop(janus, core_path, timeout=max(timeout, 120))
    return st
