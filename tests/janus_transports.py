"""Clients of a real Janus's WebSockets and Unix-socket transports, and what
a process listens on (for tests/test_janus_transports_real.py).

WsClient: a minimal WebSocket client (RFC 6455) with the standard library:
the HTTP Upgrade handshake with the subprotocol ``janus-protocol``, masked
text frames out, frames in (ping answered, fragments joined).  UnixClient:
a SOCK_SEQPACKET client of the pfunix transport, one JSON message per
packet.  Both speak the Janus API (create, attach, message) and keep the
events that arrive between answers.  Everything stays on 127.0.0.1 or in
the test's own directory; every read is bounded in time.
"""

import base64
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import time
import uuid

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class TransportError(Exception):
    pass


def tid():
    return uuid.uuid4().hex[:12]


class _ApiClient(object):
    """The Janus API over one connection; subclasses send and receive one
    JSON message (send_text / recv_text)."""

    def __init__(self):
        self.events = []        # messages that answered no request we waited for

    def send_json(self, body):
        self.send_text(json.dumps(body))

    def recv_json(self, timeout):
        text = self.recv_text(timeout)
        try:
            return json.loads(text)
        except ValueError:
            raise TransportError("not JSON: %r" % text[:200])

    def request(self, body, timeout=10, ack=False):
        """Send BODY (a transaction added) and return its answer: the first
        message of that transaction that is not an "ack" (with ACK, the ack
        too)."""
        body = dict(body)
        body.setdefault("transaction", tid())
        self.send_json(body)
        deadline = time.time() + timeout
        for _ in range(1000):
            left = deadline - time.time()
            if left <= 0:
                break
            msg = self.recv_json(left)
            if msg.get("transaction") == body["transaction"] and (
                    ack or msg.get("janus") != "ack"):
                return msg
            if msg.get("transaction") != body["transaction"]:
                self.events.append(msg)
        raise TransportError("no answer to %s within %ds" % (body.get("janus"), timeout))

    def _ok(self, resp, what):
        if resp.get("janus") not in ("success", "ack", "event"):
            raise TransportError("%s failed: %s" % (what, resp))
        return resp

    def create_session(self, timeout=10):
        return self._ok(self.request({"janus": "create"}, timeout), "create")["data"]["id"]

    def attach(self, session, plugin="janus.plugin.videoroom", timeout=10):
        return self._ok(self.request({"janus": "attach", "session_id": session,
                                      "plugin": plugin}, timeout), "attach")["data"]["id"]

    def message(self, session, handle, body, timeout=10):
        return self.request({"janus": "message", "session_id": session, "handle_id": handle,
                             "body": body}, timeout)

    def send_message(self, session, handle, body):
        """Send a message without waiting for its answer; its transaction."""
        t = tid()
        self.send_json({"janus": "message", "session_id": session, "handle_id": handle,
                        "body": body, "transaction": t})
        return t


class WsClient(_ApiClient):
    """A WebSocket connection to ws://HOST:PORT/ with the janus-protocol."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        _ApiClient.__init__(self)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.protocol = None
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: janus-protocol"
                           "\r\n\r\n" % (host, port, key)).encode())
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
            if len(self.buf) > 65536:
                raise TransportError("handshake answer too long")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if not re.match(r"HTTP/1\.1 101\b", lines[0]):
            raise TransportError("WebSocket handshake refused: %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            name, _sep, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != want:
            raise TransportError("bad Sec-WebSocket-Accept: %r" % headers)
        self.protocol = headers.get("sec-websocket-protocol")
        if self.protocol != "janus-protocol":
            raise TransportError("subprotocol %r, not janus-protocol" % self.protocol)

    def _fill(self, deadline):
        left = deadline - time.time()
        if left <= 0:
            raise TransportError("WebSocket read timed out")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TransportError("WebSocket read timed out")
        if not data:
            raise TransportError("WebSocket closed by the server")
        self.buf += data

    def _take(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        n = len(payload)
        head = struct.pack("!B", 0x80 | opcode)
        if n < 126:
            head += struct.pack("!B", 0x80 | n)
        elif n < 65536:
            head += struct.pack("!BH", 0x80 | 126, n)
        else:
            head += struct.pack("!BQ", 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_text(self, text):
        self._send_frame(0x1, text.encode())

    def recv_text(self, timeout=10):
        """The next text message (fragments joined; pings answered)."""
        deadline = time.time() + timeout
        parts = []
        for _ in range(10000):
            b0, b1 = struct.unpack("!BB", self._take(2, deadline))
            fin, opcode, n = b0 & 0x80, b0 & 0x0f, b1 & 0x7f
            if n == 126:
                n = struct.unpack("!H", self._take(2, deadline))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._take(8, deadline))[0]
            if n > 16 * 1024 * 1024:
                raise TransportError("WebSocket frame of %d bytes" % n)
            mask = self._take(4, deadline) if b1 & 0x80 else None
            payload = self._take(n, deadline)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                raise TransportError("WebSocket closed by the server: %r" % payload[:125])
            parts.append(payload)
            if fin:
                return b"".join(parts).decode("utf-8", "replace")
        raise TransportError("too many WebSocket frames")

    def close(self):
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


class UnixClient(_ApiClient):
    """A SOCK_SEQPACKET connection to the pfunix transport's socket PATH."""

    def __init__(self, path, timeout=10):
        _ApiClient.__init__(self)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(timeout)
        self.sock.connect(path)

    def send_text(self, text):
        self.sock.send(text.encode())

    def recv_text(self, timeout=10):
        self.sock.settimeout(max(timeout, 0.01))
        try:
            data = self.sock.recv(1024 * 1024)
        except socket.timeout:
            raise TransportError("Unix socket read timed out")
        if not data:
            raise TransportError("Unix socket closed by the server")
        return data.decode("utf-8", "replace")

    def close(self):
        self.sock.close()


# --- what a process listens on -------------------------------------------------------

def listening(pid):
    """[(kind, local address)] of the sockets process PID listens on, from
    ss(8): kind "tcp", "udp" (bound, any state) or "unix"; the address as ss
    prints it (``127.0.0.1:8188``, ``[::1]:8188``, a socket path)."""
    out = []
    for kind, flags in (("tcp", "-ltnpH"), ("udp", "-uanpH"), ("unix", "-xlpH")):
        res = subprocess.run(["ss", flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=30)
        if res.returncode != 0:
            raise TransportError("ss %s: %s" % (flags, res.stderr.strip()))
        for line in res.stdout.splitlines():
            if "pid=%d," % pid not in line:
                continue
            fields = line.split()
            if kind == "unix":
                # Netid State Recv-Q Send-Q Local-Address Port Peer Port users
                out.append((kind, fields[4] if len(fields) > 4 else "?"))
            elif kind == "udp":
                out.append((kind, fields[3] if len(fields) > 3 else "?"))
            else:
                out.append((kind, fields[3] if len(fields) > 3 else "?"))
    return out


def loopback(address):
    """True when the TCP/UDP ADDRESS (``host:port`` as ss prints it) is on
    the loopback interface only."""
    host = address.rsplit(":", 1)[0]
    return host in ("127.0.0.1", "[::1]") or host.startswith("127.") or \
        host.startswith("127.0.0.1%") or host.startswith("[::1]%")


# --- a request frozen inside a transport's lock ---------------------------------------

class TransportFreeze(object):
    """What freeze_transport_send saw: res (a janusd.StallResult: frozen_lwp,
    lock_line, bp_line, values, frame_lines, source, function, core), the
    LOCKS it holds ({key: address}), the transport session ``ts`` of the
    frozen send, and the WAITERS that piled up ({key: set of LWPs})."""

    def __init__(self):
        self.res = None
        self.locks = {}
        self.ts = None
        self.waiters = {}
        self.core = None


def freeze_transport_send(janus, transport, trigger, statement, values, pile, want,
                          ts="client->ts", core_path=None, timeout=60, settle=0.3):
    """Freeze the request worker that sends the answer of one request back
    over TRANSPORT ("pfunix": janus_pfunix.c, "websockets":
    janus_websockets.c) on the line after STATEMENT (a lock statement of
    janus_<transport>_send_message), made to sleep in pause(2) there as if
    the call after it blocked, with no debugger attached (TS: an expression
    for the frame's transport session; ``transport``, the argument, is
    optimised out at -O2).  TRIGGER() sends
    the request (and returns at once).  VALUES: [(key, expression)] read in
    the frozen frame; the keys of WANT name the locks among them.  PILE():
    makes threads pile up behind those locks; WANT: {key: how many futex
    waiters on that lock} (within TIMEOUT).  With CORE_PATH a core is
    written.  Returns a TransportFreeze."""
    import janusd
    fr = TransportFreeze()
    res = fr.res = janusd.StallResult()
    base = "janus_%s.c" % transport
    res.source = os.path.join(janus.srcdir, "src", "transports", base)
    res.function = "janus_%s_send_message" % transport
    res.lock_line = janusd.lock_statement_line(res.source, res.function, statement)
    res.mapped_files = janus.mapped_files()
    baseline = janus.futex_waiters()
    bg = janusd.freeze_thread_at(
        janus, res, res.source, res.lock_line + 1, trigger,
        values=list(values) + [("ts", ts)], timeout=timeout, after_call=True,
        log=(core_path or os.path.join(janus.workdir, "freeze-%s" % transport)) + ".gdb.log")
    if res.bp_function != res.function:
        raise janusd.JanusError("stopped in %s, not %s" % (res.bp_function, res.function))
    fr.ts = res.values["ts"]
    for key in want:
        fr.locks[key] = res.values[key]
    if not janusd.wait_until(
            lambda: janusd.thread_syscall(janus, res.frozen_lwp)[:1] == ["34"], 10):
        raise janusd.JanusError("the frozen thread %d is not in pause(2)" % res.frozen_lwp)
    pile(bg)

    def piled():
        return all(len(janus.futex_waiters(fr.locks[k])) >= n for k, n in want.items())
    got = janusd.wait_until(piled, timeout, step=0.1)
    time.sleep(settle)  # let every waiter settle in the kernel
    for k in want:
        fr.waiters[k] = janus.futex_waiters(fr.locks[k])
    if not got or any(len(fr.waiters[k]) != n for k, n in want.items()):
        raise janusd.JanusError("expected waiters %s, have %s (new futex waiters %s)" % (
            want, dict((k, sorted(v)) for k, v in fr.waiters.items()),
            sorted(janus.futex_waiters() - baseline)))
    if janusd.thread_syscall(janus, res.frozen_lwp)[:1] != ["34"]:
        raise janusd.JanusError("the frozen thread %d left pause(2)" % res.frozen_lwp)
    res.waiters = set().union(*fr.waiters.values())
    res.background = bg
    if core_path:
        fr.core = res.core = janusd.gcore_all_stop(janus, core_path,
                                                   timeout=max(timeout, 120))
    return fr
