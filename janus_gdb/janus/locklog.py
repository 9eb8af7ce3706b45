"""Read Janus's lock-debug log: who locked which mutex last, and where.

With lock debugging on (``--debug-locks`` or ``debug_locks = true``), mutex.h
prints one line per janus_mutex_lock/trylock/unlock call::

    [plugins/janus_videoroom.c:janus_videoroom_handler:9155:lock] 0x55d0c3e5a1c0

(``__FILE__``, ``__FUNCTION__``, ``__LINE__``, the mutex address as
``%p``, which is ``(nil)`` for NULL).  Lines may carry a timestamp,
log-level tags or ANSI colours before the record, and unrelated lines
come in between.

The line is printed *before* the lock is taken, so a thread that blocks on
a held mutex has printed its lock line too.  A janus_mutex is not
recursive, so an unlock is matched with the oldest pending lock of that
address (the owner's), and of several pending lock lines the oldest is the
probable owner and the later ones are waiters.  ``outstanding()`` reports
that oldest one; ``pending()`` gives them all.

Only per-address state is kept, so memory does not grow with the log.
Pure module: no gdb import.
"""

import os
import re

MAX_LINE = 4096                 # longer lines are skipped (and counted as bad)
MAX_BYTES = 256 * 1024 * 1024   # read_file() reads at most the last this many bytes
MAX_PENDING = 64                # pending lock sites remembered per address

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")
_RECORD_RE = re.compile(
    r"\[(?P<path>[^\[\]:\n]+):(?P<func>[A-Za-z_$][\w$]*):(?P<line>\d+)"
    r":(?P<op>lock|unlock|trylock)\][ \t]*(?P<addr>0[xX][0-9a-fA-F]+|\(nil\)|[0-9a-fA-F]+)(?=\s|$)")
_MARK_RE = re.compile(r":(?:try|un)?lock\]")


class LockLogError(Exception):
    """The log could not be read (one-line message)."""


class Site(object):
    """Where one lock-log record was printed from."""

    __slots__ = ("path", "file", "function", "line", "op", "lineno")

    def __init__(self, path, function, line, op, lineno):
        self.path = path
        self.file = path.replace("\\", "/").rsplit("/", 1)[-1]
        self.function = function
        self.line = line
        self.op = op
        self.lineno = lineno

    @property
    def trylock(self):
        return self.op == "trylock"

    def __repr__(self):
        return "Site(%s:%d %s %s, log line %d)" % (self.path, self.line, self.function, self.op,
                                                  self.lineno)


class _Addr(object):
    __slots__ = ("depth", "pending", "last")

    def __init__(self):
        self.depth = 0      # locks minus unlocks, never below 0
        self.pending = []   # oldest first, at most MAX_PENDING
        self.last = None


class LockLog(object):
    """What parse() found.

    ``events``: lock records read; ``bad``: lines that looked like lock
    records but were malformed, and lines longer than MAX_LINE (skipped); ``lines``: lines read;
    ``unmatched``: unlocks with no pending lock (the log started later);
    ``truncated``: read_file() read only the end of a larger file.
    """

    def __init__(self):
        self.events = 0
        self.bad = 0
        self.lines = 0
        self.unmatched = 0
        self.truncated = False
        self._addrs = {}

    def add(self, addr, site):
        """Account one record for ADDR (int) printed at SITE."""
        self.events += 1
        st = self._addrs.get(addr)
        if st is None:
            st = self._addrs[addr] = _Addr()
        st.last = site
        if site.op == "unlock":
            if st.depth > 0:
                st.depth -= 1
                if st.pending:
                    del st.pending[0]
            else:
                self.unmatched += 1
        else:
            st.depth += 1
            if len(st.pending) < MAX_PENDING:
                st.pending.append(site)

    def outstanding(self, latest=False):
        """{address: Site} of the addresses locked more often than unlocked.

        The Site is the oldest pending lock (the probable owner, see the
        module docstring), or with LATEST the newest one.
        """
        out = {}
        for addr, st in self._addrs.items():
            if st.depth > 0 and st.pending:
                out[addr] = st.pending[-1] if latest else st.pending[0]
        return out

    def pending(self, addr):
        """Lock sites of ADDR without a matching unlock, oldest first."""
        st = self._addrs.get(addr)
        return list(st.pending) if st is not None and st.depth > 0 else []

    def last(self, addr):
        """The last record (any op) for ADDR, or None."""
        st = self._addrs.get(addr)
        return st.last if st is not None else None

    def addresses(self):
        """Every address seen, sorted."""
        return sorted(self._addrs)

    def __repr__(self):
        return "LockLog(%d events, %d addresses, %d outstanding, %d bad)" % (
            self.events, len(self._addrs), len(self.outstanding()), self.bad)


def parse_addr(text):
    """``0x55d0c3e5a1c0`` / ``(nil)`` / bare hex -> int."""
    if text == "(nil)":
        return 0
    return int(text, 16)


def parse(lines, log=None):
    """LockLog of LINES: an iterable of str or bytes lines (or one str/bytes text)."""
    if isinstance(lines, (str, bytes)):
        lines = lines.splitlines()
    if log is None:
        log = LockLog()
    lineno = log.lines
    for raw in lines:
        lineno += 1
        if isinstance(raw, bytes):
            if len(raw) > MAX_LINE:
                log.bad += 1
                continue
            if b"lock]" not in raw:
                continue
            text = raw.decode("utf-8", "replace")
        elif isinstance(raw, str):
            if len(raw) > MAX_LINE:
                log.bad += 1
                continue
            if "lock]" not in raw:
                continue
            text = raw
        else:
            continue
        if "\x1b" in text:
            text = _ANSI_RE.sub("", text)
        found = False
        for m in _RECORD_RE.finditer(text):
            found = True
            try:
                addr = parse_addr(m.group("addr"))
                line = int(m.group("line"))
            except ValueError:
                log.bad += 1
                continue
            log.add(addr, Site(m.group("path").strip(), m.group("func"), line, m.group("op"),
                               lineno))
        if not found and _MARK_RE.search(text):
            log.bad += 1
    log.lines = lineno
    return log


def _bounded_lines(f):
    """Binary lines of F; a line longer than MAX_LINE yields one over-long chunk only."""
    while True:
        chunk = f.readline(MAX_LINE + 1)
        if not chunk:
            return
        if len(chunk) > MAX_LINE and not chunk.endswith(b"\n"):
            while True:  # drop the rest of the line
                rest = f.readline(1 << 16)
                if not rest or rest.endswith(b"\n"):
                    break
        yield chunk


def read_file(path, max_bytes=MAX_BYTES):
    """LockLog of the file at PATH; at most its last MAX_BYTES are read.

    A larger file is read from its first whole line within the last
    MAX_BYTES (``truncated`` set; ``Site.lineno`` then counts from there).
    Raises LockLogError when the file cannot be read.
    """
    log = LockLog()
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if max_bytes is not None and size > max_bytes:
                f.seek(size - max_bytes)
                f.readline()  # a partial line
                log.truncated = True
            parse(_bounded_lines(f), log)
    except (OSError, IOError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
        raise LockLogError("cannot read lock log %s: %s" % (path, " ".join(reason.split())))
    return log
