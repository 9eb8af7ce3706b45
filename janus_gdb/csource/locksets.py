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

C++ (see ``_Walker._method``, ``_guard``, ``_std_lock``): ``m.lock()``,
``p->unlock()``, ``try_lock``, ``lock_shared`` (a reader lock); guards
``std::lock_guard``/``unique_lock``/``scoped_lock``/``shared_lock`` take their
mutexes when constructed (not with ``std::defer_lock``; by a trylock with
``std::try_to_lock``; ``std::adopt_lock`` adopts a lock already taken) and
release them at the ``}`` of their block; ``lk.unlock()``/``lk.lock()``/
``lk.release()`` on a guard; ``std::lock(a, b)``.  A lambda's body is a
function of its own: the walk of the enclosing function skips it, and a
frame stopped inside it is walked from the lambda's ``{``
(``enclosing_body``).  ``try``/``catch``: a handler may run from the state
before the ``try``.

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

# C++ member calls on a mutex or a guard: name -> (operation, reader lock)
CXX_METHODS = {"lock": ("lock", False), "try_lock": ("trylock", False),
               "try_lock_for": ("trylock", False), "try_lock_until": ("trylock", False),
               "unlock": ("unlock", False), "lock_shared": ("lock", True),
               "try_lock_shared": ("trylock", True), "try_lock_shared_for": ("trylock", True),
               "try_lock_shared_until": ("trylock", True), "unlock_shared": ("unlock", True),
               "release": ("release", False)}
CXX_GUARDS = ("lock_guard", "unique_lock", "scoped_lock", "shared_lock")
_CXX_TAGS = ("defer_lock", "try_to_lock", "adopt_lock")
MAX_LAMBDA_HEAD = 64    # tokens between a lambda's '[' ... ']' and its '{'
MAX_LAMBDA_PARAMS = 4096    # tokens of a lambda's parameter list
# Condition waits that release a mutex while in progress: name -> argument
# holding it (0: the guard of C++'s cv.wait(lk), 1: C's mutex argument)
WAIT_CALLS = {"wait": 0, "wait_for": 0, "wait_until": 0,
              "pthread_cond_wait": 1, "pthread_cond_timedwait": 1, "pthread_cond_clockwait": 1,
              "g_cond_wait": 1, "g_cond_wait_until": 1, "g_cond_timed_wait": 1}
_WAIT_ALIASES = {"g_cond_wait": ("janus_condition_wait",),
                 "pthread_cond_wait": ("janus_condition_wait",),
                 "g_cond_wait_until": ("janus_condition_wait_until",),
                 "pthread_cond_timedwait": ("janus_condition_wait_until",),
                 "pthread_cond_clockwait": ("janus_condition_wait_until",)}

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
_TOKEN_RE = re.compile(r"[A-Za-z_]\w*|\.?\d(?:[eEpP][+-]|[\w.])*|->|::|\"\"|''|\S")
_DIRECTIVE_RE = re.compile(r"\s*#\s*(\w*)(.*)", re.S)
_COMMENT_RE = re.compile(r"/\*.*?\*/|//.*", re.S)
_IDENT_RE = re.compile(r"[A-Za-z_]\w*\Z")
# A C++ lock expression the walker keeps: names, '.', '->', '*', '&', '[const]'.
_CXX_EXPR_RE = re.compile(r"[&*]*\(?[&*]*[A-Za-z_]\w*(?:(?:->|\.)[A-Za-z_]\w*|\[\w+\]|\))*\Z")

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
    """One lock or unlock call: what, where, and how sure.

    ``mode`` is "read" for a reader lock (``lock_shared``, ``std::shared_lock``);
    ``scope`` the block whose ``}`` releases it (a C++ guard; None: an explicit
    unlock is needed) and ``guard`` the guard's variable name."""

    __slots__ = ("expr", "raw", "line", "call", "conditional", "trylock", "mode", "scope",
                 "guard")

    def __init__(self, expr, raw, line, call, conditional=False, trylock=False, mode=None,
                 scope=None, guard=None):
        self.expr = expr
        self.raw = raw
        self.line = line
        self.call = call
        self.conditional = conditional
        self.trylock = trylock
        self.mode = mode
        self.scope = scope
        self.guard = guard

    def as_conditional(self):
        if self.conditional:
            return self
        return Held(self.expr, self.raw, self.line, self.call, True, self.trylock, self.mode,
                    self.scope, self.guard)

    def scoped(self, scope, guard):
        """The same lock, now owned by GUARD (released at the end of SCOPE)."""
        return Held(self.expr, self.raw, self.line, self.call, self.conditional, self.trylock,
                    self.mode, scope, guard)

    def __repr__(self):
        return "Held(%r, line %d, %s%s%s%s%s)" % (
            self.expr, self.line, self.call,
            ", conditional" if self.conditional else "", ", trylock" if self.trylock else "",
            ", read" if self.mode == "read" else "",
            ", guard %s" % self.guard if self.guard else "")


class LockSet(object):
    """What held_at found: ``held`` and ``released`` lists of Held.

    ``valid`` is False when the line is not inside the function or the
    source could not be followed (``why`` says which); the lists then hold
    what was found before giving up.  ``why`` may carry a note when valid.
    """

    def __init__(self, held=(), released=(), valid=True, why="", lambda_line=None):
        self.held = list(held)
        self.released = list(released)
        self.valid = valid
        self.why = why
        self.lambda_line = lambda_line  # the current line is in the lambda starting here

    def exprs(self):
        return [h.expr for h in self.held]

    def __repr__(self):
        return "LockSet(held=%r, released=%r, valid=%r, why=%r%s)" % (
            self.held, self.released, self.valid, self.why,
            ", lambda_line=%d" % self.lambda_line if self.lambda_line else "")


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
        self._enclosing = None  # (open, close, lambda '[' or None) token indexes of bodies
        self._lambdas = {}      # function body's '{' index -> its lambda bodies
        self._paren_table = None

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

    def held_at(self, start_line, current_line, callee=None, lambda_frame=None):
        """LockSet of the function declared at START_LINE when at CURRENT_LINE.

        Events on the current line are in progress, unless CALLEE (the token
        naming the call in progress, see callee_token) is found on it: then
        the statements that end on that line before it count.  LAMBDA_FRAME
        True: the frame is a lambda's (gdb's ``operator()``): the lambda
        around the CALLEE token is walked, also on one line; False: the
        frame is no lambda's, lambdas are never walked; None: unknown.

        A frame inside a C++ lambda is walked from the lambda's ``{``.  When
        START_LINE is None (an inlined frame: gdb gives the line of the call,
        not of the function) or names no body holding the line while a lambda
        does, the innermost function or lambda body around CURRENT_LINE is
        walked (``enclosing_body``)."""
        key = (start_line, current_line, callee, lambda_frame)
        res = self._held.get(key)
        if res is None:
            try:
                res = self._held_at(start_line, current_line, callee=callee,
                                    lambda_frame=lambda_frame)
            except Exception as exc:  # never let odd source break a diagnosis
                res = LockSet(valid=False, why="source analysis failed: %s" % exc.__class__.__name__)
            if len(self._held) >= CACHE_SIZE:
                self._held.clear()
            self._held[key] = res
        return LockSet(res.held, res.released, res.valid, res.why, res.lambda_line)

    def _position(self, line, callee):
        """Index of the first CALLEE token on LINE, else of LINE's first token."""
        tv, tl = self._tv, self._tl
        idx = bisect.bisect_left(tl, line)
        if callee:
            for k in range(idx, bisect.bisect_right(tl, line, idx)):
                if tv[k] == callee:
                    return k
        return idx

    def _parens(self):
        """{index of '(': index of its ')'} for the whole file (one pass, on
        first use): lambda heads are matched in constant time."""
        if self._paren_table is None:
            table = {}
            stack = []
            for k, v in enumerate(self._tv):
                if v == "(":
                    stack.append(k)
                elif v == ")" and stack:
                    table[stack.pop()] = k
            self._paren_table = table
        return self._paren_table

    def enclosing_body(self, line, callee=None, lambda_frame=None):
        """(open index, close index, line of the lambda's '[' or None for a
        function) of the innermost function or lambda body holding LINE, or
        None (only functions when LAMBDA_FRAME is False; see held_at).  Top-level ``name(...) ... {`` are
        function bodies; inside a function only lambdas count (a C macro
        followed by a block is not a function)."""
        if self._enclosing is None:
            self._enclosing = _bodies(self._tv, 0, len(self._tv), True, self._parens())
        # a one-line lambda: where its call is
        idx = self._position(line, callee if lambda_frame else None)
        if idx >= len(self._tl) or self._tl[idx] != line:
            return None
        got = _innermost_body(self._enclosing, idx)
        if got is None or (lambda_frame is False and got[2] is not None):
            return None     # a frame that is no lambda's, on a lambda's line: unsure
        return got[0], got[1], (self._tl[got[2]] if got[2] is not None else None)

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
        names = (params[0], "*" + params[0])    # C++: m.lock() on a reference, p->lock()
        held = [h for h in ls.held if h.expr in names and not h.conditional and h.scope is None]
        if held:
            return "trylock" if held[-1].trylock else "lock"
        if any(h.expr in names for h in ls.released):
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

    def _stop(self, open_idx, end, current_line, callee):
        """Token index where the walk stops: the current line's first token,
        or just after the last ';', '{' or '}' (outside parentheses) before
        the first CALLEE token on that line."""
        tv, tl = self._tv, self._tl
        stop = bisect.bisect_left(tl, current_line, open_idx)
        if not callee:
            return stop
        last = stop
        depth = 0
        for k in range(stop, min(end, bisect.bisect_right(tl, current_line, stop))):
            v = tv[k]
            if v == callee:
                return last
            if v == "(":
                depth += 1
            elif v == ")":
                depth -= 1
            elif v in (";", "{", "}") and depth == 0:
                last = k + 1
        return stop

    def _held_at(self, start_line, current_line, at_end=False, callee=None, lambda_frame=None):
        if start_line is None:
            open_idx, close_idx, why = None, None, "no function start line"
        else:
            open_idx, close_idx, why = self._body(start_line)
        tl = self._tl
        inside = (open_idx is not None and close_idx is not None
                  and tl[open_idx] <= current_line <= tl[close_idx])
        if not inside and not at_end:
            got = self.enclosing_body(current_line, callee, lambda_frame)
            if got is not None and (got[2] or start_line is None):
                return self._walk(got[0], got[1], current_line, got[2], callee)
        if open_idx is None:
            return LockSet(valid=False, why=why)
        if inside and not at_end:
            lambdas = self._lambdas.get(open_idx)
            if lambdas is None:
                lambdas = self._lambdas[open_idx] = _bodies(self._tv, open_idx + 1, close_idx,
                                                            False, self._parens())
            pos = max(open_idx, self._position(current_line, callee if lambda_frame else None))
            lam = _innermost_body(lambdas, pos)
            if lam is not None and lambda_frame is False:
                return LockSet(valid=False, why="line %d is in a lambda, but the frame is not "
                               "a lambda's" % current_line)
            if lam is not None:
                return self._walk(lam[0], lam[1], current_line, tl[lam[2]], callee)
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
        stop = close_idx if at_end else self._stop(open_idx, end, current_line, callee)
        extra = {} if self._in_wrapper_scan else self.wrappers()
        walker = _Walker(self._tv, tl, self._lines, end, stop, extra, self._parens)
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
        if callee in WAIT_CALLS and not at_end:
            st = self._waiting(st, open_idx, end, current_line, callee)
        return LockSet(st.held, st.released, valid, why)

    def _walk(self, open_idx, close_idx, current_line, lambda_line, callee=None):
        """LockSet of the body at OPEN_IDX..CLOSE_IDX (a lambda's or a
        function's found by enclosing_body) at CURRENT_LINE."""
        tl = self._tl
        stop = self._stop(open_idx, close_idx + 1, current_line, callee)
        extra = {} if self._in_wrapper_scan else self.wrappers()
        walker = _Walker(self._tv, tl, self._lines, close_idx + 1, stop, extra, self._parens)
        old_limit = sys.getrecursionlimit()
        if old_limit < 4000:
            sys.setrecursionlimit(4000)
        try:
            st, valid, why = walker.run(open_idx)
        finally:
            if old_limit < 4000:
                sys.setrecursionlimit(old_limit)
        if current_line in self._skipped:
            why = "; ".join(x for x in (why, "line %d is in a preprocessor branch that was not read"
                                        % current_line) if x)
        if st is None:
            st = _EMPTY
        if callee in WAIT_CALLS:
            st = self._waiting(st, open_idx, close_idx + 1, current_line, callee)
        return LockSet(st.held, st.released, valid, why, lambda_line)

    def _waiting(self, st, open_idx, end, current_line, callee):
        """A condition wait in progress on the current line releases its
        mutex until it returns: ``cv.wait(lk)`` (the guard's, or the mutex
        of a condition_variable_any), ``pthread_cond_wait(&c, &m)``,
        ``g_cond_wait(&c, &m)``."""
        tv = self._tv
        pos = self._position(current_line, callee)
        if pos < len(tv) and tv[pos] != callee:     # Janus's macros around them
            for alias in _WAIT_ALIASES.get(callee, ()):
                pos = self._position(current_line, alias)
                if pos < len(tv) and tv[pos] == alias:
                    break
        if pos + 1 >= min(end, len(tv)) or tv[pos + 1] != "(" or \
                (tv[pos] != callee and tv[pos] not in _WAIT_ALIASES.get(callee, ())):
            return st
        method = WAIT_CALLS[callee] == 0
        if method != (pos > 0 and tv[pos - 1] in (".", "->")):
            return st
        args, cur, depth = [], [], 0
        for k in range(pos + 2, min(end, pos + 4096)):    # a predicate lambda may follow
            v = tv[k]
            if v in "([{":
                depth += 1
            elif v in ")]}":
                depth -= 1
                if depth < 0:
                    break
            elif v == "," and depth == 0:
                args.append(cur)
                cur = []
                continue
            cur.append(v)
        else:
            return st
        args.append(cur)
        n = WAIT_CALLS[callee]
        if len(args) <= n:
            return st
        expr = normalize_expr("".join(args[n]))
        key = _key(expr)
        held = tuple(h for h in st.held
                     if not (h.guard == expr if method and h.guard else _key(h.expr) == key))
        if len(held) == len(st.held):   # a caller's lock (or guard) is released meanwhile
            return _State(st.held, st.released + (
                Held(expr, expr, current_line, callee),))
        return _State(held, st.released)


_TEMPLATE_ARGS_RE = re.compile(r"<[^<>]*>")
_CALLEE_RE = re.compile(r"(?:_*GI_+)?_*([A-Za-z]\w*)$")


def is_lambda_name(name):
    """Is NAME (a gdb frame or function name) a C++ lambda's operator()?"""
    # a lambda's closure type has no name: gdb shows ``operator()`` or
    # ``operator()() const``; a functor's is ``Functor::operator()``
    return bool(name) and (name.startswith("operator()") or "{lambda(" in name
                           or "<lambda(" in name)


def callee_token(name):
    """The token that names a call to the function NAME (a gdb frame name)
    in its caller's source: ``std::lock_guard<std::mutex>::lock_guard`` ->
    ``lock_guard``, ``Account::transfer(int)`` -> ``transfer``,
    ``__GI___pthread_mutex_lock`` -> ``pthread_mutex_lock``; None for
    operators and odd names."""
    if not name or len(name) > 4096:
        return None
    s = name
    for _ in range(32):     # innermost template arguments first
        t = _TEMPLATE_ARGS_RE.sub("", s)
        if t == s:
            break
        s = t
    if "(" in s:
        s = s[:s.index("(")]
    s = s.split("@")[0].rsplit("::", 1)[-1].strip()
    m = _CALLEE_RE.match(s)
    if not m or m.group(1).startswith("operator"):
        return None
    return m.group(1)


def _match(tv, i, end, limit=MAX_TOKENS):
    """Index of the bracket closing the one at I, or None (not found before
    END or LIMIT tokens; a '(', '[' or '<' group never holds ';', '{', '}')."""
    opening = tv[i]
    closing = _CLOSING[opening]
    depth = 0
    for k in range(i, min(end, i + limit)):
        v = tv[k]
        if v == opening:
            depth += 1
        elif v == closing:
            depth -= 1
            if depth == 0:
                return k
        elif opening != "{" and v in (";", "{", "}"):
            return None
    return None


_CLOSING = {"(": ")", "[": "]", "{": "}", "<": ">"}
_LAMBDA_PREV_WORDS = frozenset(("return", "case", "co_return", "co_yield", "throw", "else", "do"))
_LAMBDA_SPEC = frozenset(("mutable", "constexpr", "consteval", "noexcept", "static", "const",
                          "->", "::", "<", ">", "*", "&", ",", "(", ")"))
_FUNC_SPEC = frozenset(("const", "volatile", "noexcept", "override", "final", "&", "&&",
                        "throw", "mutable", "constexpr"))
_NOT_FUNC = frozenset(("if", "while", "for", "switch", "catch", "return", "sizeof", "do",
                       "else", "decltype", "alignas", "__attribute__", "defined"))


def lambda_body(tv, i, end, need_close=True, parens=None):
    """(index of '{', index of '}') of the lambda whose '[' is at I, or None
    (the '}' is None when not NEED_CLOSE: _bodies matches braces itself).
    PARENS: SourceFile._parens(), the ')' of each '('."""
    if i + 1 >= end or tv[i + 1] == "[":
        return None         # an attribute [[...]]
    prev = tv[i - 1] if i > 0 else ";"
    if prev in (")", "]", ">", STRING_TOKEN, CHAR_TOKEN) or (
            _IDENT_RE.match(prev) and prev not in _LAMBDA_PREV_WORDS) or prev[0].isdigit():
        return None         # a subscript, new T[n], operator[]
    k = _match(tv, i, end, MAX_LAMBDA_HEAD)
    if k is None:
        return None
    k += 1
    if k < end and tv[k] == "<":
        k = _match(tv, k, end, MAX_LAMBDA_HEAD)
        if k is None:
            return None
        k += 1
    if k < end and tv[k] == "(":
        k = parens.get(k) if parens is not None else _match(tv, k, end, MAX_LAMBDA_PARAMS)
        if k is None or k >= end:
            return None
        k += 1
    last = min(end, k + MAX_LAMBDA_HEAD)
    while k < last and tv[k] != "{":
        if tv[k] not in _LAMBDA_SPEC and not _IDENT_RE.match(tv[k]):
            return None
        k += 1
    if k >= last:
        return None
    if not need_close:
        return k, None
    close = _match(tv, k, end)
    if close is None:
        return None
    return k, close


def _is_function_brace(tv, k, start):
    """Is the '{' at K the body of a function (``name(...) specifiers {``)?"""
    j = k - 1
    lo = max(start, k - MAX_LAMBDA_HEAD)
    while j >= lo:
        v = tv[j]
        if v in _FUNC_SPEC:
            j -= 1
            continue
        if v == ")":
            depth = 0
            m = j
            while m >= lo:
                if tv[m] == ")":
                    depth += 1
                elif tv[m] == "(":
                    depth -= 1
                    if depth == 0:
                        break
                elif tv[m] in (";", "{", "}"):
                    return False
                m -= 1
            if m < lo or m == 0:
                return False
            name = tv[m - 1]
            if name in ("noexcept", "throw", "__attribute__", "alignas"):
                j = m - 2
                continue
            return bool(_IDENT_RE.match(name)) and name not in _NOT_FUNC
        return False
    return False


def _bodies(tv, start, end, top, parens=None):
    """[(open, close, lambda '[' index or None)] of the function bodies (only
    outside other functions, and only when TOP) and lambda bodies in tokens
    [START, END), ordered by their '{'."""
    out = []
    stack = []      # [index into out, or None for a plain block]
    lambdas = {}    # index of a lambda's '{' -> index of its '['
    in_func = 0 if top else 1
    for k in range(start, end):
        v = tv[k]
        if v == "[":
            got = lambda_body(tv, k, end, False, parens)
            if got is not None:
                lambdas[got[0]] = k
        elif v == "{":
            intro = lambdas.pop(k, None)
            if intro is not None or (not in_func and _is_function_brace(tv, k, start)):
                stack.append(len(out))
                out.append([k, None, intro])
                in_func += 1
            else:
                stack.append(None)
        elif v == "}" and stack:
            top_entry = stack.pop()
            if top_entry is not None:
                out[top_entry][1] = k
                in_func -= 1
    return [tuple(b) for b in out if b[1] is not None]


def _innermost_body(bodies, idx):
    """The innermost (open, close, intro) of BODIES whose braces enclose token IDX."""
    best = None
    for b in bodies:
        if b[0] >= idx:
            break
        if idx <= b[1]:
            best = b  # later bodies that hold it are nested in earlier ones
    return best


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
        if not line and lineno not in directives:
            continue    # blank (a function's region is padded with blank lines)
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
        got = _special_cache[key] = frozenset(("(", ")", "{", "}", ";", "[") + _STATEMENT_WORDS
                                              + LOCK_CALLS + TRYLOCK_CALLS + UNLOCK_CALLS
                                              + tuple(extra) + tuple(_CXX_NAMES))
    return got


_INIT_PREV = frozenset(("=", ",", "return", "(", "[", "?", ":"))
_CXX_NAMES = frozenset(tuple(CXX_METHODS) + CXX_GUARDS + ("lock", "try_lock"))
_THIS_RE = re.compile(r"(^|[&*(])this->")


def _key(expr):
    """EXPR for matching a lock with its unlock: ``this->m_`` is ``m_``."""
    return _THIS_RE.sub(r"\1", expr)


class _Walker(object):
    """One held_at() run over tokens [.., end), stopping at token index STOP."""

    def __init__(self, tv, tl, lines, end, stop, extra=None, parens=None):
        self.extra = extra or {}
        self.parens = parens or (lambda: None)
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
        self.scopes = []        # open blocks: [(scope id, {guard name: (exprs, mode)})]
        self.next_scope = 0
        self.c_calls = frozenset(LOCK_CALLS + TRYLOCK_CALLS + UNLOCK_CALLS + tuple(self.extra))

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

    def _pj(self, states):
        """_join, then drop the locks of C++ guards whose block has ended
        (a break or goto out of the guard's block releases it)."""
        return self._prune(_join(states))

    def _prune(self, st):
        if st is None or not any(h.scope is not None for h in st.held):
            return st
        live = set(sid for sid, _g in self.scopes)
        held = tuple(h for h in st.held if h.scope is None or h.scope in live)
        if len(held) == len(st.held):
            return st
        return _State(held, st.released)

    # -- statements ----------------------------------------------------

    def _block(self, i, st, depth):
        """Block at the '{' at I; returns (index after its '}', state).  The
        locks of the guards declared in it are released at its '}'."""
        self.next_scope += 1
        self.scopes.append((self.next_scope, {}))
        try:
            i, st = self._block_inner(i, st, depth)
        finally:
            self.scopes.pop()
        return i, self._prune(st)

    def _block_inner(self, i, st, depth):
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
                        st = self._pj((st, ctx.entry))
                        if v == "default":
                            ctx.has_default = True
                        break
            elif i + 1 < n and tv[i + 1] == ":" and v not in _KEYWORDS and _IDENT_RE.match(v):
                j = i + 1
                st = self._pj([st] + self.gotos.get(v, []))
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
            return i, self._pj([out] + ctx.breaks + ([] if ctx.has_default else [cur]))
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
        if v == "try" and i + 1 < n and tv[i + 1] == "{":
            return self._try(i, st, depth)
        return self._scan(i, st, depth, False)

    def _try(self, i, st, depth):
        """``try { } catch (...) { } ...``: a handler may run from the state
        before the try (where in the try block the exception came from is
        not known)."""
        tv, n = self.tv, self.n
        i, out = self._block(i + 1, st, depth + 1)
        outs = [out]
        while i < n and tv[i] == "catch":
            if i >= self.stop:
                raise _Found(out)
            i, cur = self._parens(i + 1, st, depth)
            if i < n and tv[i] == "{":
                i, other = self._block(i, cur, depth + 1)
                outs.append(other)
        return i, self._pj(outs)

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
            return i, self._pj(outs)

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
            return i, self._pj(ctx.breaks)
        return i, self._pj([cur, out] + ctx.conts + ctx.breaks)

    def _do(self, i, st, depth):
        tv, n = self.tv, self.n
        ctx = _Ctx(True)
        self.ctx.append(ctx)
        i, out = self._body(i + 1, st, depth)
        self.ctx.pop()
        out = self._pj([out] + ctx.conts)
        infinite = False
        if i < n and tv[i] == "while":
            if i >= self.stop:
                raise _Found(out)
            head = i + 1
            i, out = self._parens(head, out, depth)
            infinite = self._infinite(tv[i - 1] == ")" and tv[head + 1:i - 1] or (), False)
            if i < n and tv[i] == ";":
                i += 1
        return i, self._pj(ctx.breaks + ([] if infinite else [out]))

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
            elif v == "[":
                got = lambda_body(tv, i, self.n, True, self.parens())
                if got is not None:  # a lambda's body runs elsewhere, later
                    if got[1] >= self.stop:
                        raise _Found(st)
                    i = got[1] + 1
                    continue
            elif v in _CXX_NAMES and v not in self.c_calls:
                got = self._cxx(i, st, lim)
                if got is not None:
                    i, st = got
                    continue
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

    # -- C++ -----------------------------------------------------------

    def _cxx(self, i, st, lim):
        """A C++ lock operation named at I: (index after it, state), or None."""
        tv = self.tv
        v = tv[i]
        prev = tv[i - 1] if i > 0 else ""
        if i + 1 >= lim:
            return None
        if prev in (".", "->") and v in CXX_METHODS and tv[i + 1] == "(":
            return self._method(i, st)
        if v in CXX_GUARDS:
            return self._guard(i, st)
        if v in ("lock", "try_lock") and prev == "::" and i >= 2 and tv[i - 2] == "std" \
                and tv[i + 1] == "(":
            return self._std_lock(i, st)
        return None

    def _args(self, open_idx, close_idx):
        """Top-level comma-separated arguments between the brackets at
        OPEN_IDX and CLOSE_IDX: [token lists]."""
        tv = self.tv
        args, cur, depth = [], [], 0
        for k in range(open_idx + 1, close_idx):
            v = tv[k]
            if v in "([{":
                depth += 1
            elif v in ")]}":
                depth -= 1
            elif v == "," and depth == 0:
                args.append(cur)
                cur = []
                continue
            cur.append(v)
        if cur or args:
            args.append(cur)
        return args

    def _closing(self, k, st):
        """Index of the bracket closing the one at K; raises _Found when the
        construct reaches the current line (it is in progress there)."""
        close = _match(self.tv, k, self.n, 4096)
        if close is None:
            return None
        if close >= self.stop:
            raise _Found(st)
        return close

    def _take(self, st, expr, raw, line, call, trylock, mode, scope=None, guard=None):
        return _State(st.held + (Held(expr, raw, line, call, False, trylock, mode, scope,
                                      guard),), st.released)

    def _untake(self, st, expr, raw, line, call, mode):
        """An unlock of EXPR: drops the newest matching lock, or records the
        release of a lock a caller took."""
        key = _key(expr)
        held = st.held
        for idx in range(len(held) - 1, -1, -1):
            if _key(held[idx].expr) == key and (held[idx].mode == mode or mode is None):
                return _State(held[:idx] + held[idx + 1:], st.released)
        return _State(st.held, st.released + (Held(expr, raw, line, call, mode=mode),))

    def _method(self, i, st):
        """``obj.lock()``, ``p->unlock()``, ``lk.unlock()`` on a guard, ..."""
        tv = self.tv
        name = tv[i]
        k = self._closing(i + 1, st)
        if k is None:
            return i + 1, st
        if st is None:
            return k + 1, st
        op, read = CXX_METHODS[name]
        timed = name.endswith(("_for", "_until"))
        if (k != i + 2) != timed:   # lock()/unlock() take no argument, try_lock_for one
            return k + 1, st
        obj = self._object_before(i - 1)
        if obj is None:
            return k + 1, st
        before = self._before_object(obj, i - 1)
        if op != "trylock" and before in ("=", "return"):
            return k + 1, st    # its value is used: not a mutex (weak_ptr::lock)
        line = self.tl[i]
        arrow = tv[i - 1] == "->"
        guard = None if arrow else self._find_guard(obj)
        if guard is not None:
            return k + 1, self._guard_op(guard, op, line, st)
        if op == "release":
            return k + 1, st
        expr = normalize_expr(("*" + obj) if arrow else obj)
        raw = obj + tv[i - 1] + name + "()"
        mode = "read" if read else None
        if op == "unlock":
            return k + 1, self._untake(st, expr, raw, line, raw, mode)
        return k + 1, self._take(st, expr, raw, line, raw, op == "trylock", mode)

    def _object_before(self, j):
        """Text of the object expression ending before the '.' or '->' at J
        (names, '.', '->', subscripts, a parenthesised primary), or None."""
        tv = self.tv
        lo = max(0, j - 48)
        k = j - 1
        start = None
        while k >= lo:
            v = tv[k]
            if v == "]" or v == ")":
                opening = "[" if v == "]" else "("
                depth = 0
                m = k
                while m >= lo:
                    if tv[m] == v:
                        depth += 1
                    elif tv[m] == opening:
                        depth -= 1
                        if depth == 0:
                            break
                    m -= 1
                if m < lo:
                    return None
                if v == ")":
                    if m > 0 and (_IDENT_RE.match(tv[m - 1]) or tv[m - 1] in (")", "]")):
                        return None     # a call's result: not a plain object
                    start = m
                    break
                k = m - 1               # a subscript: its array comes before
                continue
            if _IDENT_RE.match(v) and v not in _KEYWORDS:
                start = k
                if k - 1 >= lo and tv[k - 1] in (".", "->"):
                    k -= 2
                    continue
                break
            return None
        if start is None:
            return None
        text = "".join(tv[start:j])
        return text if _CXX_EXPR_RE.match(text) else None

    def _before_object(self, obj, j):
        """The token before the object expression OBJ that ends before J."""
        k = j - 1
        text = ""
        while k >= 0 and len(text) < len(obj):
            text = self.tv[k] + text
            k -= 1
        return self.tv[k] if k >= 0 and text == obj else ""

    def _find_guard(self, name):
        """(name, exprs, mode, scope id) of the guard variable NAME visible here."""
        for sid, guards in reversed(self.scopes):
            got = guards.get(name)
            if got is not None:
                return (name, got[0], got[1], sid)
        return None

    def _guard_op(self, guard, op, line, st):
        name, exprs, mode, sid = guard
        if op == "unlock":
            return _State(tuple(h for h in st.held if h.guard != name), st.released)
        if op == "release":     # the mutex stays locked; the guard forgets it
            return _State(tuple(h.scoped(None, None) if h.guard == name else h
                                for h in st.held), st.released)
        for expr in exprs:
            st = self._take(st, expr, expr, line, "%s.%s()" % (name, "try_lock" if op == "trylock"
                                                               else "lock"),
                            op == "trylock", mode, sid, name)
        return st

    def _guard(self, i, st):
        """``std::lock_guard<std::mutex> g(m);``, ``std::scoped_lock lk{a, b};``,
        ``auto lk = std::unique_lock(m, std::defer_lock);`` at I: the guard's
        construction takes its mutexes (released at the end of the block)."""
        tv, n = self.tv, self.n
        kind = tv[i]
        k = i + 1
        if k < n and tv[k] == "<":
            k = _match(tv, k, n, MAX_LAMBDA_HEAD)
            if k is None:
                return None
            k += 1
        name = None
        if k < n and _IDENT_RE.match(tv[k]) and tv[k] not in _KEYWORDS:
            name = tv[k]
            k += 1
        else:   # auto lk = std::unique_lock<...>(m)
            j = i - 1
            if j >= 1 and tv[j] == "::" and tv[j - 1] == "std":
                j -= 2
            if j >= 1 and tv[j] == "=" and _IDENT_RE.match(tv[j - 1]):
                name = tv[j - 1]
        if name is None or k >= n or tv[k] not in ("(", "{"):
            return None
        close = self._closing(k, st)
        if close is None:
            return None
        if st is None or not self.scopes:
            return close + 1, st
        args = self._args(k, close)
        tags = [a[-1] for a in args if a and a[-1] in _CXX_TAGS]
        locks = [a for a in args if not (a and a[-1] in _CXX_TAGS)]
        if kind == "scoped_lock":
            extra = []
        else:
            locks, extra = locks[:1], locks[1:]     # the rest: a timeout
        exprs = [normalize_expr("".join(a)) for a in locks if a]
        if not exprs or any(e.startswith("std::move") or self._find_guard(e) for e in exprs):
            return close + 1, st
        sid, guards = self.scopes[-1]
        mode = "read" if kind == "shared_lock" else None
        guards[name] = (exprs, mode)
        if "defer_lock" in tags:
            return close + 1, st
        line = self.tl[i]
        call = "std::" + kind
        for expr in exprs:
            if "adopt_lock" in tags:    # taken before (std::lock, m.lock()): now the guard's
                key = _key(expr)
                held = st.held
                for idx in range(len(held) - 1, -1, -1):
                    if _key(held[idx].expr) == key and held[idx].guard is None:
                        st = _State(held[:idx] + (held[idx].scoped(sid, name),) + held[idx + 1:],
                                    st.released)
                        break
                else:
                    st = self._take(st, expr, expr, line, call, False, mode, sid, name)
                continue
            st = self._take(st, expr, expr, line, call, "try_to_lock" in tags or bool(extra),
                            mode, sid, name)
        return close + 1, st

    def _std_lock(self, i, st):
        """``std::lock(a, b, ...)`` / ``std::try_lock(a, b)``: takes them all."""
        k = self._closing(i + 1, st)
        if k is None:
            return i + 1, st
        args = self._args(i + 1, k)
        if st is None or len(args) < 2:
            return k + 1, st
        line = self.tl[i]
        for a in args:
            expr = normalize_expr("".join(a))
            guard = self._find_guard(expr)
            if guard is not None:   # std::lock(lk1, lk2) of deferred unique_locks
                st = self._guard_op(guard, "trylock" if self.tv[i] == "try_lock" else "lock",
                                    line, st)
                continue
            st = self._take(st, expr, expr, line, "std::" + self.tv[i], self.tv[i] == "try_lock",
                            None)
        return k + 1, st

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
        c = _closing(text, start)
        if c >= 0:
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
        self._whole = None      # SourceFile of the whole text, for bodies found by line
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

    def held_at(self, start_line, current_line, callee=None, lambda_frame=None):
        """LockSet of the function declared at START_LINE when at CURRENT_LINE
        (see SourceFile.held_at; START_LINE None: the body around the line)."""
        try:
            res = None
            if start_line is not None:
                region = self._region(start_line)
                self._add_wrappers(region, 0, len(region._tv))
                res = region.held_at(start_line, current_line, callee, lambda_frame)
                if res.valid:
                    return res
            # a lambda whose line gdb gives is not a function head, or an
            # inlined frame: the innermost body around the line, in the whole file
            whole = self._whole_file()
            got = whole.enclosing_body(current_line, callee, lambda_frame)
            if got is None or (start_line is not None and got[2] is None):
                return res if res is not None else LockSet(
                    valid=False, why="no function body holds line %d" % current_line)
            self._add_wrappers(whole, got[0], got[1])
            return whole.held_at(None, current_line, callee, lambda_frame)
        except Exception as exc:  # never let odd source break a diagnosis
            return LockSet(valid=False,
                           why="source analysis failed: %s" % exc.__class__.__name__)

    def _whole_file(self):
        if self._whole is None:
            self._whole = SourceFile(self._text)
            self._whole._wrappers = {}
        return self._whole

    def _add_wrappers(self, sf, first, last):
        """Give SF the lock wrappers among the functions called in tokens
        [FIRST, LAST) (only those are read)."""
        if sf._wrappers is None:
            sf._wrappers = {}
        defs = self._definitions()
        tv = sf._tv
        calls = set(tv[i] for i in range(first, min(last, len(tv) - 1))
                    if tv[i + 1] == "(" and tv[i] in defs and tv[i] not in sf._wrappers)
        for name in sorted(calls):
            op = self._wrapper(name)
            if op:
                sf._wrappers[name] = op
