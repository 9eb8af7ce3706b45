"""Which locks does a C function still hold at a given line?  Read its source.

A GMutex records no owner, so janus-gdb infers owners from the code: walk
the function body from its opening brace to the line a frame stopped at,
following the lock and unlock calls along the path that reached that line.

The walk is a small abstract interpretation of structured C over tokens
(comments, literals and preprocessor lines removed):

- a branch or block that ends in ``return``/``goto``/``break``/``continue``
  does not reach what follows it, so its events are dropped there (a
  ``break``/``continue`` takes its state to the loop's or switch's exit,
  a ``goto`` to its label);
- paths meet after an if/else chain, a loop or a switch: a lock held on
  only some of them is reported with ``conditional`` True;
- inside an ``else`` branch the earlier branches of the chain did not run;
  inside a loop body the events earlier in the body count normally (the
  first iteration; there is no fixpoint over the back edge);
- a ``case``/``default`` label is reached from the switch head (and by
  falling through from the previous case when that one did not jump);
- a ``label:`` is reached by falling through and from the gotos before it
  (backward gotos are not followed);
- ``do { } while(0)`` and ``({ })`` are plain blocks.

Only events on lines before the current line count: the call on the
current line is in progress.  Of ``#if``/``#else`` groups only one branch is
read, which keeps braces balanced: the first, but the ``#else`` of ``#if 0``
and of ``#ifndef HAVE_...`` (a build most likely has the feature).
Pure module: no gdb import.
"""

import array
import bisect
import re
import sys

LOCK_CALLS = ("janus_mutex_lock", "janus_mutex_lock_nodebug", "janus_mutex_lock_debug",
              "g_mutex_lock", "pthread_mutex_lock", "g_rec_mutex_lock")
TRYLOCK_CALLS = ("janus_mutex_trylock", "janus_mutex_trylock_nodebug",
                 "janus_mutex_trylock_debug", "g_mutex_trylock", "pthread_mutex_trylock")
UNLOCK_CALLS = ("janus_mutex_unlock", "janus_mutex_unlock_nodebug", "janus_mutex_unlock_debug",
                "g_mutex_unlock", "pthread_mutex_unlock", "g_rec_mutex_unlock")

# Reader/writer locks (pthread, glib).  A read lock is shared: its claims
# carry mode "read".  The timed calls take the lock as their first argument
# and may fail (like a trylock).
RWLOCK_LOCK_CALLS = ("pthread_rwlock_rdlock", "pthread_rwlock_wrlock", "g_rw_lock_reader_lock",
                     "g_rw_lock_writer_lock")
RWLOCK_TRYLOCK_CALLS = ("pthread_rwlock_tryrdlock", "pthread_rwlock_trywrlock",
                        "g_rw_lock_reader_trylock", "g_rw_lock_writer_trylock",
                        "pthread_rwlock_timedrdlock", "pthread_rwlock_timedwrlock",
                        "pthread_rwlock_clockrdlock", "pthread_rwlock_clockwrlock")
RWLOCK_UNLOCK_CALLS = ("pthread_rwlock_unlock", "g_rw_lock_reader_unlock",
                       "g_rw_lock_writer_unlock")
READ_LOCK_CALLS = frozenset(("pthread_rwlock_rdlock", "g_rw_lock_reader_lock",
                             "pthread_rwlock_tryrdlock", "g_rw_lock_reader_trylock",
                             "pthread_rwlock_timedrdlock", "pthread_rwlock_clockrdlock"))
FIRST_ARG_CALLS = frozenset(("pthread_rwlock_timedrdlock", "pthread_rwlock_timedwrlock",
                             "pthread_rwlock_clockrdlock", "pthread_rwlock_clockwrlock"))
LOCK_CALLS += RWLOCK_LOCK_CALLS
TRYLOCK_CALLS += RWLOCK_TRYLOCK_CALLS
UNLOCK_CALLS += RWLOCK_UNLOCK_CALLS

MAX_TOKENS = 200000     # tokens of one function body that are looked at
MAX_LINES = 20000       # lines of one function body that are looked at
MAX_DEPTH = 256         # nesting of blocks and statement bodies
MAX_SIGNATURE_LINES = 200   # how far after the declaration line the body's '{' may be
CACHE_SIZE = 4096

# Comments, string and char literals, preprocessor lines (with continuations).
_STRIP_RE = re.compile(
    r"(?m)(?P<pp>^[ \t]*#(?:/\*[\s\S]*?\*/|[^\n\\]|\\(?:\r?\n|.))*)"
    r"|(?P<bc>/\*[\s\S]*?(?:\*/|\Z))"
    r"|(?P<lc>//(?:[^\n\\]|\\(?:\r?\n|.))*)"
    r"|(?P<s>\"(?:[^\"\\\n]|\\(?:\r?\n|.))*\"?)"
    r"|(?P<c>'(?:[^'\\\n]|\\.)*'?)")
_TOKEN_RE = re.compile(r"[A-Za-z_]\w*|\.?\d(?:[eEpP][+-]|[\w.])*|->|\"\"|''|\S")
_DIRECTIVE_RE = re.compile(r"\s*#\s*(\w*)(.*)", re.S)
_COMMENT_RE = re.compile(r"/\*.*?\*/|//.*", re.S)
_IDENT_RE = re.compile(r"[A-Za-z_]\w*\Z")

STRING_TOKEN = '""'
CHAR_TOKEN = "''"

_KEYWORDS = frozenset((
    "if", "else", "for", "while", "do", "switch", "case", "default", "return", "goto",
    "break", "continue", "sizeof", "typedef", "struct", "union", "enum", "static",
    "const", "volatile", "extern", "register", "auto", "inline", "void", "int", "char",
    "long", "short", "unsigned", "signed", "float", "double"))
_TRUE_CONDS = (("1",), ("TRUE",), ("true",), ("(", "1", ")"))


def normalize_expr(text):
    """Canonical text of a lock expression: ``& ( p->m )`` -> ``&p->m``.

    Removes all whitespace, strips redundant outer parentheses and turns
    ``&(x)`` into ``&x``.
    """
    s = "".join((text or "").split())
    while True:
        if s.startswith("(") and _closing(s, 0) == len(s) - 1:
            s = s[1:-1]
        elif s.startswith("&(") and _closing(s, 1) == len(s) - 1:
            s = "&" + s[2:-1]
        else:
            return s


def _closing(s, start):
    """Index of the ')' matching the '(' at START in S, or -1."""
    depth = 0
    for k in range(start, len(s)):
        ch = s[k]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return k
    return -1


class Held(object):
    """One lock or unlock call: what, where, and how sure."""

    __slots__ = ("expr", "raw", "line", "call", "conditional", "trylock")

    def __init__(self, expr, raw, line, call, conditional=False, trylock=False):
        self.expr = expr
        self.raw = raw
        self.line = line
        self.call = call
        self.conditional = conditional
        self.trylock = trylock

    def as_conditional(self):
        if self.conditional:
            return self
        return Held(self.expr, self.raw, self.line, self.call, True, self.trylock)

    def __repr__(self):
        return "Held(%r, line %d, %s%s%s)" % (
            self.expr, self.line, self.call,
            ", conditional" if self.conditional else "", ", trylock" if self.trylock else "")


class LockSet(object):
    """What held_at found: ``held`` and ``released`` lists of Held.

    ``valid`` is False when the line is not inside the function or the
    source could not be followed (``why`` says which); the lists then hold
    what was found before giving up.  ``why`` may carry a note when valid.
    """

    def __init__(self, held=(), released=(), valid=True, why=""):
        self.held = list(held)
        self.released = list(released)
        self.valid = valid
        self.why = why

    def exprs(self):
        return [h.expr for h in self.held]

    def __repr__(self):
        return "LockSet(held=%r, released=%r, valid=%r, why=%r)" % (
            self.held, self.released, self.valid, self.why)


class SourceFile(object):
    """One C file, tokenized once; answers held_at() for its functions."""

    def __init__(self, text):
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self._tv, self._tl, self._lines, self._skipped = _tokenize(text or "")
        self._bodies = {}
        self._held = {}
        self._wrappers = None   # {function name: "lock" | "trylock" | "unlock"}
        self._functions = None
        self._in_wrapper_scan = False

    @property
    def tokens(self):
        """(token, line) pairs, for debugging."""
        return list(zip(self._tv, self._tl))

    def function_body_range(self, start_line):
        """(line of the body's '{', line of its '}') or None."""
        try:
            open_idx, close_idx, _why = self._body(start_line)
        except Exception:  # odd arguments: no range rather than an error
            return None
        if open_idx is None or close_idx is None:
            return None
        return self._tl[open_idx], self._tl[close_idx]

    def lock_call_at(self, line, names):
        """The first call of one of NAMES whose name is on LINE: (name,
        first-argument expression, as written) or None.  The call a frame
        stopped at is the lock it is waiting for."""
        tv, tl = self._tv, self._tl
        i = bisect.bisect_left(tl, line)
        n = len(tv)
        while i < n - 1 and tl[i] == line:
            if tv[i] in names and tv[i + 1] == "(" and (i == 0 or tv[i - 1] not in (".", "->")):
                depth = 0
                for k in range(i + 1, min(n, i + 400)):
                    v = tv[k]
                    if v in "([{":
                        depth += 1
                    elif v in ")]}":
                        depth -= 1
                        if depth == 0:
                            break
                    elif v == "," and depth == 1:
                        break
                else:
                    return None
                if k == i + 2:
                    return None
                arg = "".join(tv[i + 2:k])
                return tv[i], normalize_expr(arg), arg
            i += 1
        return None

    def held_at(self, start_line, current_line):
        """LockSet of the function declared at START_LINE when at CURRENT_LINE."""
        key = (start_line, current_line)
        res = self._held.get(key)
        if res is None:
            try:
                res = self._held_at(start_line, current_line)
            except Exception as exc:  # never let odd source break a diagnosis
                res = LockSet(valid=False, why="source analysis failed: %s" % exc.__class__.__name__)
            if len(self._held) >= CACHE_SIZE:
                self._held.clear()
            self._held[key] = res
        return LockSet(res.held, res.released, res.valid, res.why)

    def functions(self):
        """{name: (declaration line, [parameter names])} of the functions
        defined in the file (``name (...) {`` at brace depth 0)."""
        if self._functions is None:
            self._functions = self._find_functions()
        return self._functions

    def _find_functions(self):
        tv, tl = self._tv, self._tl
        out = {}
        depth = 0
        n = len(tv)
        i = 0
        while i < n:
            v = tv[i]
            if v == "{":
                depth += 1
            elif v == "}":
                depth = max(0, depth - 1)
            elif (depth == 0 and i + 1 < n and tv[i + 1] == "(" and _IDENT_RE.match(v)
                  and v not in _KEYWORDS):
                k = i + 1
                pd = 0
                params = []
                last_ident = None
                while k < n:
                    t = tv[k]
                    if t == "(":
                        pd += 1
                    elif t == ")":
                        pd -= 1
                        if pd == 0:
                            break
                    elif t == "," and pd == 1:
                        params.append(last_ident)
                        last_ident = None
                    elif pd == 1 and _IDENT_RE.match(t):
                        last_ident = t
                    k += 1
                if k + 1 < n and tv[k + 1] == "{":
                    params.append(last_ident)
                    out.setdefault(v, (tl[i], [p for p in params if p]))
                    i = k + 1
                    continue
                i = k
            i += 1
        return out

    def wrappers(self):
        """Functions of this file with one parameter that lock it and return
        holding it (``lock``/``trylock``) or unlock it (``unlock``): a call
        ``take_lock(&m)`` then counts as a lock of ``&m`` in the caller."""
        if self._wrappers is not None:
            return self._wrappers
        self._wrappers = {}
        found = {}
        for name, (line, params) in self.functions().items():
            op = self._wrapper_kind(name, line, params)
            if op:
                found[name] = op
        self._wrappers = found
        return found

    def wrapper_kind(self, name):
        """``lock``, ``trylock``, ``unlock`` or None for the function NAME
        defined in this file (see wrappers())."""
        got = self.functions().get(name)
        return self._wrapper_kind(name, got[0], got[1]) if got else None

    def _wrapper_kind(self, name, line, params):
        if len(params) != 1 or name in LOCK_CALLS + TRYLOCK_CALLS + UNLOCK_CALLS:
            return None
        rng = self.function_body_range(line)
        if rng is None:
            return None
        self._in_wrapper_scan = True
        try:
            ls = self._held_at(line, rng[1], at_end=True)
        except Exception:  # odd source: not a wrapper
            return None
        finally:
            self._in_wrapper_scan = False
        if not ls.valid:
            return None
        param = params[0]
        held = [h for h in ls.held if h.expr == param and not h.conditional]
        if held:
            return "trylock" if held[-1].trylock else "lock"
        if any(h.expr == param for h in ls.released):
            return "unlock"
        return None

    def _body(self, start_line):
        got = self._bodies.get(start_line)
        if got is None:
            got = self._find_body(start_line)
            self._bodies[start_line] = got
        return got

    def _find_body(self, start_line):
        tv, tl = self._tv, self._tl
        n = len(tv)
        i = bisect.bisect_left(tl, start_line)
        parens = 0
        while i < n and tl[i] - start_line <= MAX_SIGNATURE_LINES:
            v = tv[i]
            if v == "(":
                parens += 1
            elif v == ")":
                parens -= 1
            elif v == "{":
                break
            elif v == "}" or (parens <= 0 and v in (";", "=")):
                return None, None, "no function body starts at line %d" % start_line
            i += 1
        else:
            return None, None, "no function body starts at line %d" % start_line
        open_idx = i
        depth = 0
        last = min(n, open_idx + MAX_TOKENS)
        max_line = tl[open_idx] + MAX_LINES
        while i < last and tl[i] <= max_line:
            v = tv[i]
            if v == "{":
                depth += 1
            elif v == "}":
                depth -= 1
                if depth == 0:
                    return open_idx, i, ""
            i += 1
        if i >= n:
            return open_idx, None, "the function body does not end (unbalanced braces or truncated file)"
        return open_idx, None, "the function body is longer than the scan limit"

    def _held_at(self, start_line, current_line, at_end=False):
        open_idx, close_idx, why = self._body(start_line)
        if open_idx is None:
            return LockSet(valid=False, why=why)
        tl = self._tl
        first = tl[open_idx]
        if current_line < first:
            return LockSet(valid=False, why="line %d is before the body of the function at line %d"
                           % (current_line, start_line))
        if close_idx is not None:
            if current_line > tl[close_idx]:
                return LockSet(valid=False, why="line %d is after the end of the function at line %d"
                               % (current_line, start_line))
            end = close_idx + 1
        else:
            end = min(len(tl), open_idx + MAX_TOKENS,
                      bisect.bisect_right(tl, first + MAX_LINES))
        stop = close_idx if at_end else bisect.bisect_left(tl, current_line, open_idx)
        extra = {} if self._in_wrapper_scan else self.wrappers()
        walker = _Walker(self._tv, tl, self._lines, end, stop, extra)
        old_limit = sys.getrecursionlimit()
        if old_limit < 4000:
            sys.setrecursionlimit(4000)
        try:
            st, valid, why = walker.run(open_idx)
        finally:
            if old_limit < 4000:
                sys.setrecursionlimit(old_limit)
        if close_idx is None:
            valid = False
            why = "; ".join(x for x in (why, self._body(start_line)[2]) if x)
        if current_line in self._skipped:
            why = "; ".join(x for x in (why, "line %d is in a preprocessor branch that was not read"
                                        % current_line) if x)
        if st is None:
            st = _EMPTY
        return LockSet(st.held, st.released, valid, why)


def _tokenize(text):
    """Token values, their line numbers, the stripped lines of TEXT, and the
    set of line numbers in preprocessor branches that were not read."""
    directives = {}
    pos = [0, 1]  # scanned offset, its line number

    def strip(m):
        s = m.group()
        nl = s.count("\n")
        kind = m.lastgroup
        if kind == "pp":
            start = m.start()
            pos[1] += text.count("\n", pos[0], start)
            pos[0] = start
            d = _DIRECTIVE_RE.match(s)
            if d:
                directives[pos[1]] = (d.group(1), _COMMENT_RE.sub(" ", d.group(2)).strip())
            return "\n" * nl
        if kind == "s":
            return STRING_TOKEN + "\n" * nl
        if kind == "c":
            return CHAR_TOKEN
        return " " + "\n" * nl

    lines = _STRIP_RE.sub(strip, text).split("\n")
    tv = []
    tl = array.array("l")   # a machine int per token, not a Python int object
    findall = _TOKEN_RE.findall
    names = {}              # one string object per distinct token
    share = names.setdefault
    stack = []      # per #if level: 0 taking, 1 waiting for a branch (#if 0), 2 done
    skipping = 0    # levels not taking
    skipped = set()  # non-blank lines in branches not read
    for idx, line in enumerate(lines):
        lineno = idx + 1
        if lineno in directives:
            word, rest = directives[lineno]
            if word in ("if", "ifdef", "ifndef"):
                if skipping:
                    state = 2
                elif (word == "if" and rest in ("0", "(0)")) or \
                        (word == "ifndef" and rest.startswith("HAVE_")):
                    state = 1  # a build most likely has the feature: read the #else
                else:
                    state = 0
                stack.append(state)
                skipping += state != 0
            elif word in ("else", "elif", "elifdef", "elifndef") and stack:
                top = stack[-1]
                if top == 0:
                    stack[-1] = 2
                    skipping += 1
                elif top == 1 and skipping == 1:
                    stack[-1] = 0
                    skipping -= 1
            elif word == "endif" and stack:
                skipping -= stack.pop() != 0
            continue
        if skipping:
            if line.strip():
                skipped.add(lineno)
            lines[idx] = ""
            continue
        toks = findall(line)
        if toks:
            tv.extend([share(t, t) for t in toks])
            tl.extend([lineno] * len(toks))
    return tv, tl, lines, skipped


class _State(object):
    """Locks held and foreign locks released on one path (immutable)."""

    __slots__ = ("held", "released")

    def __init__(self, held=(), released=()):
        self.held = held
        self.released = released


_EMPTY = _State()


def _merge(x, y):
    if x == y:
        return x
    used = [False] * len(y)
    out = []
    for h in x:
        for k, g in enumerate(y):
            if not used[k] and g.expr == h.expr:
                used[k] = True
                out.append(h.as_conditional() if g.conditional else h)
                break
        else:
            out.append(h.as_conditional())
    for k, g in enumerate(y):
        if not used[k]:
            out.append(g.as_conditional())
    out.sort(key=lambda h: h.line)
    return tuple(out)


def _join(states):
    """The state where the paths in STATES meet (None: no path gets there)."""
    acc = None
    for s in states:
        if s is None:
            continue
        if acc is None or acc is s:
            acc = s
        else:
            acc = _State(_merge(acc.held, s.held), _merge(acc.released, s.released))
    return acc


class _Found(Exception):
    def __init__(self, state):
        Exception.__init__(self)
        self.state = state


class _Bail(Exception):
    def __init__(self, state, why):
        Exception.__init__(self, why)
        self.state = state
        self.why = why


class _Ctx(object):
    __slots__ = ("loop", "entry", "breaks", "conts", "has_default")

    def __init__(self, loop, entry=None):
        self.loop = loop
        self.entry = entry
        self.breaks = []
        self.conts = []
        self.has_default = False


# Words that start a statement: an expression missing its ';' ends before them.
_STATEMENT_WORDS = ("if", "else", "for", "while", "do", "switch", "case", "default", "return",
                    "goto", "break", "continue")
_special_cache = {}


def _special(extra=()):
    """Tokens _scan() stops at: brackets, ';' and the call names (read now: configurable),
    plus the names of EXTRA (a file's lock wrappers)."""
    key = (LOCK_CALLS, TRYLOCK_CALLS, UNLOCK_CALLS, tuple(sorted(extra)))
    got = _special_cache.get(key)
    if got is None:
        if len(_special_cache) > 64:
            _special_cache.clear()
        got = _special_cache[key] = frozenset(("(", ")", "{", "}", ";") + _STATEMENT_WORDS
                                              + LOCK_CALLS + TRYLOCK_CALLS + UNLOCK_CALLS
                                              + tuple(extra))
    return got


_INIT_PREV = frozenset(("=", ",", "return", "(", "[", "?", ":"))


class _Walker(object):
    """One held_at() run over tokens [.., end), stopping at token index STOP."""

    def __init__(self, tv, tl, lines, end, stop, extra=None):
        self.extra = extra or {}
        self.tv = tv
        self.tl = tl
        self.lines = lines
        self.n = end
        self.stop = stop
        self.lim = min(stop, end)
        self.special = _special(self.extra)
        self.ctx = []
        self.gotos = {}
        self.last_live = _EMPTY
        self.notes = []

    def run(self, open_idx):
        try:
            self._block(open_idx, _EMPTY, 0)
        except _Found as found:
            st = found.state
            if st is None:
                st = self._revive()
            return st, True, "; ".join(self.notes)
        except _Bail as bail:
            return bail.state, False, bail.why
        return None, False, "the current line was not reached (unbalanced braces?)"

    def _revive(self):
        note = "code after a jump was analysed from the state before the jump"
        if note not in self.notes:
            self.notes.append(note)
        return self.last_live

    # -- statements ----------------------------------------------------

    def _block(self, i, st, depth):
        """Block at the '{' at I; returns (index after its '}', state)."""
        if depth > MAX_DEPTH:
            raise _Bail(st, "nesting deeper than %d" % MAX_DEPTH)
        tv, tl, n = self.tv, self.tl, self.n
        i += 1
        while True:
            if i >= n:
                if i >= self.stop:
                    raise _Found(st)
                return i, st
            if tv[i] == "}":
                if i >= self.stop:
                    if i + 1 < n and tv[i + 1] == "else" and tl[i + 1] == tl[i]:
                        return i + 1, st  # at "} else ...": the else part is being evaluated
                    # At a closing brace just after a jump: still the jump's state.
                    raise _Found(st if st is not None else self.last_live)
                return i + 1, st
            j, st = self._stmt(i, st, depth)  # checks the stop after labels
            i = j if j > i else i + 1

    def _body(self, i, st, depth):
        if i < self.n and self.tv[i] == "{":
            return self._block(i, st, depth + 1)
        if depth + 1 > MAX_DEPTH:
            raise _Bail(st, "nesting deeper than %d" % MAX_DEPTH)
        return self._stmt(i, st, depth + 1)

    def _stmt(self, i, st, depth):
        tv, n = self.tv, self.n
        while i < n:  # labels
            v = tv[i]
            if v == "case" or v == "default":
                j = i + 1
                while j < n and tv[j] not in (":", ";", "{", "}"):
                    j += 1
                if j >= n or tv[j] != ":":
                    break
                for ctx in reversed(self.ctx):
                    if not ctx.loop:
                        st = _join((st, ctx.entry))
                        if v == "default":
                            ctx.has_default = True
                        break
            elif i + 1 < n and tv[i + 1] == ":" and v not in _KEYWORDS and _IDENT_RE.match(v):
                j = i + 1
                st = _join([st] + self.gotos.get(v, []))
                if st is None:  # reached only by a backward goto or unknown means
                    st = self._revive()
            else:
                break
            i = j + 1
            if i < n and tv[i] == "}":
                if i >= self.stop:
                    raise _Found(st)
                return i, st
        if i >= self.stop:
            raise _Found(st)
        if i >= n:
            return i, st
        v = tv[i]
        if v == "{":
            return self._block(i, st, depth + 1)
        if v == ";":
            return i + 1, st
        if v == "if":
            return self._if(i, st, depth)
        if v == "while" or v == "for":
            return self._loop(i, st, depth)
        if v == "do":
            return self._do(i, st, depth)
        if v == "switch":
            i, cur = self._parens(i + 1, st, depth)
            ctx = _Ctx(False, cur)
            self.ctx.append(ctx)
            i, out = self._body(i, cur, depth)
            self.ctx.pop()
            return i, _join([out] + ctx.breaks + ([] if ctx.has_default else [cur]))
        if v == "return":
            i, st = self._scan(i + 1, st, depth, False)
            return i, self._jump(st)
        if v == "goto":
            label = tv[i + 1] if i + 1 < n else ""
            i, st = self._scan(i + 1, st, depth, False)
            if st is not None:
                self.gotos.setdefault(label, []).append(st)
            return i, self._jump(st)
        if v == "break" or v == "continue":
            for ctx in reversed(self.ctx):
                if v == "break":
                    ctx.breaks.append(st)
                    break
                if ctx.loop:
                    ctx.conts.append(st)
                    break
            i, st = self._scan(i + 1, st, depth, False)
            return i, self._jump(st)
        if v == "else":  # stray: read what follows
            return self._body(i + 1, st, depth)
        return self._scan(i, st, depth, False)

    def _jump(self, st):
        if st is not None:
            self.last_live = st
        return None

    def _if(self, i, st, depth):
        tv, n = self.tv, self.n
        outs = []
        cur = st
        while True:
            i, cur = self._parens(i + 1, cur, depth)
            i, then = self._body(i, cur, depth)
            outs.append(then)
            if i < n and tv[i] == "else":
                if i >= self.stop:
                    raise _Found(cur)
                if i + 1 < n and tv[i + 1] == "if":
                    i += 1
                    if i >= self.stop:
                        raise _Found(cur)
                    continue
                i, other = self._body(i + 1, cur, depth)
                outs.append(other)
            else:
                outs.append(cur)
            return i, _join(outs)

    def _loop(self, i, st, depth):
        tv = self.tv
        head = i + 1
        i, cur = self._parens(head, st, depth)
        infinite = self._infinite(tv[i - 1] == ")" and tv[head + 1:i - 1] or (), tv[head - 1] == "for")
        ctx = _Ctx(True)
        self.ctx.append(ctx)
        i, out = self._body(i, cur, depth)
        self.ctx.pop()
        if infinite:
            return i, _join(ctx.breaks)
        return i, _join([cur, out] + ctx.conts + ctx.breaks)

    def _do(self, i, st, depth):
        tv, n = self.tv, self.n
        ctx = _Ctx(True)
        self.ctx.append(ctx)
        i, out = self._body(i + 1, st, depth)
        self.ctx.pop()
        out = _join([out] + ctx.conts)
        infinite = False
        if i < n and tv[i] == "while":
            if i >= self.stop:
                raise _Found(out)
            head = i + 1
            i, out = self._parens(head, out, depth)
            infinite = self._infinite(tv[i - 1] == ")" and tv[head + 1:i - 1] or (), False)
            if i < n and tv[i] == ";":
                i += 1
        return i, _join(ctx.breaks + ([] if infinite else [out]))

    @staticmethod
    def _infinite(head, is_for):
        """True for the head tokens (inside the parentheses) of an endless loop."""
        head = tuple(head)
        if not is_for:
            return head in _TRUE_CONDS
        parts = []
        depth = 0
        start = 0
        for k, v in enumerate(head):
            if v in "([{":
                depth += 1
            elif v in ")]}":
                depth -= 1
            elif v == ";" and depth == 0:
                parts.append(head[start:k])
                start = k + 1
        return len(parts) == 2 and (parts[1] == () or parts[1] in _TRUE_CONDS)

    # -- expressions ---------------------------------------------------

    def _parens(self, i, st, depth):
        """A parenthesised head at I (if/while/for/switch): (index after ')', state)."""
        if i >= self.stop:
            raise _Found(st)
        if i < self.n and self.tv[i] == "(":
            return self._scan(i + 1, st, depth, True)
        return i, st

    def _scan(self, i, st, depth, paren):
        """An expression from I up to its ';' (PAREN False) or its ')' (PAREN True).

        Returns the index after the terminator (or at an unmatched '}', or
        at a '{' that starts a block after a macro call) and the state.
        """
        tv = self.tv
        lim = self.lim
        special = self.special
        bd = 0
        while i < lim:
            v = tv[i]
            if v not in special:
                i += 1
                continue
            if v == ";":
                if not paren:
                    return i + 1, st
            elif v == "(":
                if i + 1 < lim and tv[i + 1] == "{":  # GNU statement expression
                    if depth + 1 > MAX_DEPTH:
                        raise _Bail(st, "nesting deeper than %d" % MAX_DEPTH)
                    i, st = self._block(i + 1, st, depth + 1)
                    bd += 1
                    continue
                bd += 1
            elif v == ")":
                if bd == 0:
                    if paren:
                        return i + 1, st
                else:
                    bd -= 1
            elif v == "{":
                if bd == 0 and not paren and (i == 0 or tv[i - 1] not in _INIT_PREV):
                    return i, st
                bd += 1
            elif v == "}":
                if bd == 0:
                    return i, st
                bd -= 1
            elif v in _STATEMENT_WORDS:
                if bd == 0 and not paren:
                    return i, st
            elif i + 1 < lim and tv[i + 1] == "(" and (i == 0 or tv[i - 1] not in (".", "->")):
                i, st = self._call(i, st)
                continue
            i += 1
        if i >= self.stop:
            raise _Found(st)
        return i, st

    def _call(self, i, st):
        """A lock/unlock call named at I: (index after its ')', state)."""
        tv, n = self.tv, self.n
        depth = 0
        commas = 0
        first = None        # the first argument's end
        k = i + 1
        while k < n:
            v = tv[k]
            if v in "([{":
                depth += 1
            elif v in ")]}":
                depth -= 1
                if depth == 0:
                    break
            elif v == "," and depth == 1:
                commas += 1
                if first is None:
                    first = k
            k += 1
        if k >= self.stop:  # the call is still in progress at the current line
            raise _Found(st)
        name = tv[i]
        end = k
        if commas and name in FIRST_ARG_CALLS:
            end = first
            commas = 0
        if k >= n or commas or end == i + 2 or st is None:
            return min(k + 1, n), st
        expr = normalize_expr("".join(tv[i + 2:end]))
        line = self.tl[i]
        op = self.extra.get(name)
        if name in UNLOCK_CALLS or op == "unlock":
            held = st.held
            for idx in range(len(held) - 1, -1, -1):
                if held[idx].expr == expr:
                    return k + 1, _State(held[:idx] + held[idx + 1:], st.released)
            ev = Held(expr, self._raw(i, k), line, name)
            return k + 1, _State(st.held, st.released + (ev,))
        raw = self._raw(i, k) if end == k else "".join(tv[i + 2:end])
        ev = Held(expr, raw, line, name, False, name in TRYLOCK_CALLS or op == "trylock")
        return k + 1, _State(st.held + (ev,), st.released)

    def _raw(self, i, k):
        """The argument text of the call named at I whose ')' is at K, as written."""
        tv, tl = self.tv, self.tl
        first, last = tl[i], tl[k]
        if last - first > 50:
            return "".join(tv[i + 2:k])
        # Which occurrence of the name on its line is this one?
        nth = 0
        j = i - 1
        while j >= 0 and tl[j] == first:
            if tv[j] == tv[i]:
                nth += 1
            j -= 1
        text = "\n".join(self.lines[first - 1:last])
        pos = -1
        name_re = re.compile(r"\b%s\b" % re.escape(tv[i]))
        for _ in range(nth + 1):
            m = name_re.search(text, pos + 1)
            if not m:
                return "".join(tv[i + 2:k])
            pos = m.start()
        start = text.find("(", pos)
        depth = 0
        for c in range(start, len(text)):
            ch = text[c]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    return " ".join(text[start + 1:c].split())
        return "".join(tv[i + 2:k])


# A function definition's first line: at column 0, a name and its
# parameter list (group 2: the parameters when they fit on the line).
_DEF_RE = re.compile(r"(?m)^(?![#/\s{}])[^\n;=(]*?\b([A-Za-z_]\w*)\s*\((?:([^;()\n]*)\)\s*(?:\{[^\n]*)?$)?")
REGION_LINES = 256      # first guess at a function's length when reading a region


class LazySourceFile(object):
    """A C file read one function at a time: only the functions on the
    stacks (and the one-parameter functions they call, to recognise lock
    wrappers) are tokenized.  Answers held_at() like SourceFile."""

    def __init__(self, text):
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self._text = text or ""
        self._lines = self._text.split("\n")
        self._regions = {}
        self._defs = None       # {name: line} of one-parameter function definitions
        self._def_lines = []
        self._wrapper_op = {}   # name -> "lock" | "trylock" | "unlock" | None
        self._def_names = None  # {name: [lines]} of all definitions, when asked

    def _region(self, start_line):
        """A SourceFile holding only the function that starts at START_LINE
        (lines before it are blank, so line numbers are the file's)."""
        got = self._regions.get(start_line)
        if got is not None:
            return got
        n = len(self._lines)
        self._definitions()
        # the next definition at column 0 most likely ends this function
        nxt = bisect.bisect_right(self._def_lines, start_line)
        size = (self._def_lines[nxt] - start_line if nxt < len(self._def_lines)
                else n - start_line + 1)
        size = max(size, 16)
        while True:
            end = min(n, start_line - 1 + size)
            text = "\n" * max(0, start_line - 1) + "\n".join(self._lines[start_line - 1:end])
            region = SourceFile(text)
            if end >= n or region.function_body_range(start_line) is not None:
                break
            size *= 4
        if len(self._regions) >= CACHE_SIZE:
            self._regions.clear()
        self._regions[start_line] = region
        return region

    def _definitions(self):
        """{name: line} of one-parameter function definitions (wrapper
        candidates); also sets _def_lines, the lines of all definitions."""
        if self._defs is None:
            self._defs = {}
            lines = []
            last, line = 0, 1
            for m in _DEF_RE.finditer(self._text):
                if m.group(1) in _KEYWORDS:
                    continue
                line += self._text.count("\n", last, m.start())
                last = m.start()
                lines.append(line)
                params = m.group(2)
                if params is not None and "," not in params and \
                        params.strip() not in ("", "void"):
                    self._defs.setdefault(m.group(1), line)
            self._def_lines = lines
        return self._defs

    def definition_line(self, name, near):
        """Line of the definition of function NAME at column 0 that is the
        last one before line NEAR (gdb gives an inlined function's call line
        as its line), or None."""
        self._definitions()
        if self._def_names is None:
            self._def_names = {}
            last, line = 0, 1
            for m in _DEF_RE.finditer(self._text):
                line += self._text.count("\n", last, m.start())
                last = m.start()
                self._def_names.setdefault(m.group(1), []).append(line)
        best = None
        for line in self._def_names.get(name, ()):
            if line <= near and (best is None or line > best):
                best = line
        return best

    def _wrapper(self, name):
        if name in self._wrapper_op:
            return self._wrapper_op[name]
        self._wrapper_op[name] = None       # while computing (recursion)
        line = self._definitions().get(name)
        op = None
        if line is not None:
            op = self._region(line).wrapper_kind(name)
        self._wrapper_op[name] = op
        return op

    def lock_call_at(self, line, names):
        """SourceFile.lock_call_at, reading only LINE and the few after it."""
        if not 0 < line <= len(self._lines):
            return None
        try:
            text = "\n" * (line - 1) + "\n".join(self._lines[line - 1:line + 7])
            return SourceFile(text).lock_call_at(line, names)
        except Exception:  # never let odd source break a diagnosis
            return None

    def held_at(self, start_line, current_line):
        """LockSet of the function declared at START_LINE when at CURRENT_LINE."""
        try:
            region = self._region(start_line)
            if region._wrappers is None:
                defs = self._definitions()
                calls = set(v for i, v in enumerate(region._tv[:-1])
                            if region._tv[i + 1] == "(" and v in defs)
                region._wrappers = dict((n, op) for n, op in
                                        ((n, self._wrapper(n)) for n in sorted(calls)) if op)
            return region.held_at(start_line, current_line)
        except Exception as exc:  # never let odd source break a diagnosis
            return LockSet(valid=False,
                           why="source analysis failed: %s" % exc.__class__.__name__)
