"""Walk one C function body once and record its lock events for the
whole-program analysis: every acquisition (with the locks held then), every
call (with the locks held then), every exit that still holds a lock, and
every release of a lock the function did not take.

The control-flow model is the one of source.py's walker (structured C over
tokens: if/else, loops, switch, return, goto to a later label, break,
continue, ``({ })``), extended for precision:

- a path state is the tuple of held acquisitions plus the set of
  acquisitions already released on that path;
- where paths meet, a lock is *definite* when every incoming path holds it
  definitely or has released it (it was taken there too: a path that
  skipped the unlock is a leak), and *conditional* when some path never
  took it (``if (x) lock(m)``): conditional locks are never reported leaked;
- ``if (trylock(m))`` / ``if (!trylock(m))`` / ``pthread_mutex_trylock(m)
  == 0``: the branch where the trylock succeeded holds the lock
  definitely, the other does not hold it; elsewhere a trylock's lock is
  conditional;
- an unlock matches the latest held lock of the same expression, else of
  the same *key* (the expression with its root variable replaced by the
  variable's declared type and local ``m = &x->mutex`` aliases resolved):
  ``&session->mutex`` and ``&s->mutex`` of two ``janus_session *`` match.

Expressions are keyed here (file-local facts only); lockorder.py turns keys
into lock classes with the struct definitions of every file.
Pure module: no gdb import.
"""

import re

from . import locksets

_RW_LOCK_RE = re.compile(r"janus_rwlock_(?:rd|wr)?lock(?:_nodebug|_debug)?\Z")
_RW_UNLOCK_RE = re.compile(r"janus_rwlock_(?:rd|wr)?unlock(?:_nodebug|_debug)?\Z")
_CAST_RE = re.compile(r"^\((?:const)?[A-Za-z_]\w*\**\)")
_INDEX_RE = re.compile(r"\[[^\[\]]*\]")
_CHAIN_RE = re.compile(r"[A-Za-z_]\w*(?:(?:->|\.)[A-Za-z_]\w*)*\Z")
# trylocks that return 0 on success (the others return TRUE on success)
ZERO_ON_SUCCESS = frozenset(("pthread_mutex_trylock", "pthread_rwlock_tryrdlock",
                             "pthread_rwlock_trywrlock"))
NOT_CALLS = frozenset(("if", "while", "for", "switch", "return", "sizeof", "do", "case",
                       "typeof", "__typeof__", "defined", "__attribute__", "alignof",
                       "_Alignof", "offsetof", "__builtin_offsetof", "G_N_ELEMENTS"))
STATEMENT_WORDS = ("if", "else", "for", "while", "do", "switch", "case", "default", "return",
                   "goto", "break", "continue")
_INIT_PREV = frozenset(("=", ",", "return", "(", "[", "?", ":"))
MAX_DEPTH = 200
MAX_CALLS = 4000


class WalkError(Exception):
    pass


def op_of(name):
    """'lock' | 'trylock' | 'unlock' | None for a call named NAME."""
    if name in locksets.TRYLOCK_CALLS:
        return "trylock"
    if name in locksets.LOCK_CALLS:
        return "lock"
    if name in locksets.UNLOCK_CALLS:
        return "unlock"
    if name.startswith("janus_rwlock_"):
        if _RW_LOCK_RE.match(name):
            return "lock"
        if _RW_UNLOCK_RE.match(name):
            return "unlock"
    return None


def type_at(types, name, line):
    """Declared type of variable NAME at LINE: the last declaration before
    LINE (TYPES: {name: [[line, type], ...]}), else the first one."""
    decls = types.get(name)
    if not decls:
        return None
    best = decls[0][1]
    for dline, typ in decls:
        if dline <= line:
            best = typ
    return best


def key_of(expr, types, aliases, line=0):
    """File-local key of a lock expression: ``@type|field|field`` when the
    root variable's type is declared, ``$name|field..`` otherwise (a global
    or an unknown), ``!expr`` when the expression is not a plain chain."""
    s = locksets.normalize_expr(expr)
    for _ in range(3):
        s = s.lstrip("&*")
        s = _CAST_RE.sub("", s)
        s = locksets.normalize_expr(s)
        s = _INDEX_RE.sub("", s)
        if s in aliases:
            s = locksets.normalize_expr(aliases[s])
            continue
        break
    if not _CHAIN_RE.match(s):
        return "!" + s
    parts = re.split(r"->|\.", s)
    root = parts[0]
    typ = type_at(types, root, line)
    head = ("@" + typ) if typ else ("$" + root)
    return "|".join([head] + parts[1:])


class Walker(object):
    """One walk of the function body between OPEN_IDX and CLOSE_IDX."""

    def __init__(self, tv, tl, open_idx, close_idx, types, aliases, scope=None):
        self.tv = tv
        self.tl = tl
        self.open = open_idx
        self.n = close_idx + 1
        self.types = types
        self.aliases = aliases
        # (structs, typedefs, globals) of the file so far: an unlock through
        # another path to the same field (``&publisher->room->mutex`` for
        # ``&videoroom->mutex``) matches by the class they resolve to
        self.scope = scope
        self.acqs = []          # [expr, key, line, op, snapshot]
        self.calls = []         # [callee, line, snapshot, arg key or None]
        self.exits = []         # [line, how, [[aid, definite, via], ...], returned name]
        self.nexits = 0
        self.releases = []      # [expr, key, line]: releases of locks not taken here
        self.unlocked = set()   # keys of the locks this function releases itself
        self.implicit = []      # [line of an if, [aids held]]: only its implicit else goes on
        self.guards = []        # per enclosing if branch: variables known non-NULL there
        self.threads = []       # [function, line, creating call]
        self.refinits = []      # [key of the refcount, free function, line]
        self.gotos = {}
        self.ctx = []
        self.notes = []
        self._seen_calls = set()
        self._after = None      # guards an early-exit if leaves for the rest of its block

    def run(self):
        try:
            _i, st = self._block(self.open, ((), frozenset(), frozenset()), 0)
            if st is not None:
                self._exit(self.tl[self.n - 1], "return", st)
        except (WalkError, IndexError, RecursionError, ValueError, TypeError, KeyError) as exc:
            self.notes.append("walk stopped: %s" % (str(exc) or exc.__class__.__name__))
        return {"acqs": self.acqs, "calls": self.calls, "exits": self.exits,
                "nexits": self.nexits, "releases": self.releases, "threads": self.threads,
                "unlocked": sorted(self.unlocked), "implicit": self.implicit[:64],
                "refinits": self.refinits, "notes": self.notes}

    # -- states: (held, released, skipped); held = ((aid, definite, via), ...);
    # skipped: acquisitions this path went past without taking them (the
    # other branch of an if or switch, a failed trylock) --

    @staticmethod
    def _join(states):
        live = [s for s in states if s is not None]
        if not live:
            return None
        if len(live) == 1:
            return live[0]
        first = live[0]
        if all(s is first or s == first for s in live[1:]):
            return first
        released = frozenset().union(*[s[1] for s in live])
        skipped = frozenset().union(*[s[2] for s in live])
        order = []
        info = {}
        jumped = {}   # aid -> via of a path that jumped here holding it definitely
        for s in live:
            for aid, definite, via in s[0]:
                if definite and via:
                    jumped[aid] = _merge_via(jumped.get(aid), via)
                if aid not in info:
                    order.append(aid)
                    info[aid] = [definite, via]
                else:
                    info[aid][0] = info[aid][0] and definite
                    info[aid][1] = info[aid][1] or via
        held = []
        for aid in order:
            definite, via = info[aid]
            if definite:
                for s in live:
                    if aid in s[2] and not any(h[0] == aid for h in s[0]) and aid not in s[1]:
                        definite = False
                        break
            if aid in jumped:
                # a goto/break left the locked region holding it on every
                # path to the jump: that jump leaks it, whatever the paths
                # that meet it at the label never took
                definite, via = True, jumped[aid]
            held.append((aid, definite, via))
        return (tuple(held), released, skipped)

    def _snapshot(self, st):
        # a lock held only on some paths and already released on others
        # (``if (x) lock(m); ... if (x) unlock(m);`` with x unchanged) is
        # not held any more: no order from it
        rel = st[1]
        return [[aid, definite] for aid, definite, _via in st[0]
                if definite or aid not in rel]

    def _exit(self, line, how, st, ret=None):
        self.nexits += 1
        held = [[aid, d, via] for aid, d, via in st[0]]
        if held:
            self.exits.append([line, how, held, ret])

    # -- statements ----------------------------------------------------

    def _block(self, i, st, depth):
        if depth > MAX_DEPTH:
            raise WalkError("nesting too deep")
        tv, n = self.tv, self.n
        i += 1
        base = len(self.guards)
        try:
            while i < n:
                if tv[i] == "}":
                    return i + 1, st
                if len(self.guards) > base and (
                        tv[i] in ("case", "default") or
                        (i + 1 < n and tv[i + 1] == ":" and locksets._IDENT_RE.match(tv[i]))):
                    del self.guards[base:]   # a label: other paths come in here
                self._after = None
                j, st = self._stmt(i, st, depth)
                if self._after:
                    self.guards.append(self._after)
                    self._after = None
                i = j if j > i else i + 1
            return i, st
        finally:
            del self.guards[base:]

    def _body(self, i, st, depth):
        if i < self.n and self.tv[i] == "{":
            return self._block(i, st, depth + 1)
        return self._stmt(i, st, depth + 1)

    def _stmt(self, i, st, depth):
        tv, n = self.tv, self.n
        if depth > MAX_DEPTH:
            raise WalkError("nesting too deep")
        while i < n:  # labels
            v = tv[i]
            if v == "case" or v == "default":
                j = i + 1
                while j < n and tv[j] not in (":", ";", "{", "}"):
                    j += 1
                if j >= n or tv[j] != ":":
                    break
                for ctx in reversed(self.ctx):
                    if not ctx["loop"]:
                        st = self._join([st, ctx["entry"]])
                        if v == "default":
                            ctx["default"] = True
                        break
            elif i + 1 < n and tv[i + 1] == ":" and v not in locksets._KEYWORDS and \
                    locksets._IDENT_RE.match(v) and (i == 0 or tv[i - 1] in (";", "{", "}", ":")):
                j = i + 1
                st = self._join([st] + self.gotos.pop(v, []))
            else:
                break
            i = j + 1
            if i < n and tv[i] == "}":
                return i, st
        if i >= n:
            return i, st
        v = tv[i]
        if st is None:
            # unreachable code (after a jump): skip it, but keep its structure
            st_dead = True
        else:
            st_dead = False
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
            i, cur = self._paren(i + 1, st)
            first = len(self.acqs)
            ctx = {"loop": False, "entry": cur, "breaks": [], "default": False}
            self.ctx.append(ctx)
            i, out = self._body(i, cur, depth)
            self.ctx.pop()
            return i, self._join(self._skip([out] + ctx["breaks"] +
                                            ([] if ctx["default"] else [cur]), first))
        if v == "return":
            line = self.tl[i]
            ret = tv[i + 1] if i + 2 < n and tv[i + 2] == ";" else None
            i, st = self._scan(i + 1, st, False)
            if st is not None and not st_dead:
                self._exit(line, "return", st, ret=ret)
            return i, None
        if v == "goto":
            label = tv[i + 1] if i + 1 < n else ""
            line = self.tl[i]
            i, st = self._scan(i + 1, st, False)
            if st is not None:
                st = (tuple((a, d, via or [line, "goto"]) for a, d, via in st[0]), st[1], st[2])
                self.gotos.setdefault(label, []).append(st)
            return i, None
        if v == "break" or v == "continue":
            line = self.tl[i]
            for ctx in reversed(self.ctx):
                if v == "break":
                    if st is not None and ctx["loop"]:
                        st = (tuple((a, d, via or ([line, "break"] if a >= ctx["first"] else None))
                                    for a, d, via in st[0]), st[1], st[2])
                    ctx["breaks"].append(st)
                    break
                if ctx["loop"]:
                    if st is not None:
                        leaked = [h for h in st[0] if h[0] >= ctx["first"] and h[1]]
                        if leaked:
                            self.exits.append([line, "continue", [[a, d, via] for a, d, via in leaked],
                                               None])
                            # reported here: not again where the loop's paths end
                            gone = frozenset(h[0] for h in leaked)
                            st = (tuple(h for h in st[0] if h[0] not in gone), st[1] | gone,
                                  st[2])
                    ctx["conts"].append(st)
                    break
            i, _st = self._scan(i + 1, st, False)
            return i, None
        if v == "else":
            return self._body(i + 1, st, depth)
        return self._scan(i, st, False)

    def _skip(self, states, first):
        """STATES where the branches meet: each marks the acquisitions made
        since FIRST (in the other branches) that it neither holds nor
        released as skipped."""
        new = frozenset(range(first, len(self.acqs)))
        if not new:
            return states
        out = []
        for s in states:
            if s is None:
                out.append(s)
                continue
            have = set(h[0] for h in s[0]) | s[1]
            miss = frozenset(a for a in new if a not in have)
            out.append((s[0], s[1], s[2] | miss) if miss else s)
        return out

    def _if(self, i, st, depth):
        tv, n = self.tv, self.n
        start = i
        first = len(self.acqs)
        outs = []
        cur = st
        pushed = 0
        try:
            while True:
                head = i + 1
                before = len(self.acqs)
                i, cur = self._paren(head, cur)
                i_cond = i
                pos, neg = self._guards_of(head, i)
                then_st, else_st = self._split_try(head, i, before, cur)
                self.guards.append(pos)
                try:
                    i, then = self._body(i, then_st, depth)
                finally:
                    self.guards.pop()
                outs.append(then)
                self.guards.append(neg)
                pushed += 1
                if i < n and tv[i] == "else":
                    if i + 1 < n and tv[i + 1] == "if":
                        i += 1
                        cur = else_st
                        continue
                    i, other = self._body(i + 1, else_st, depth)
                    outs.append(other)
                else:
                    if len(outs) == 1 and outs[0] is None and else_st is not None:
                        # if (!x || y == NULL) return;  x and y are non-NULL after it
                        after = self._early_exit_guards(head, i_cond)
                        if after:
                            self._after = after
                    if len(outs) >= 2 and all(o is None for o in outs) and else_st is not None:
                        # if/else-if chain whose every branch jumps: only the
                        # implicit else goes on, a path the code may exclude
                        self.implicit.append([self.tl[start], [h[0] for h in else_st[0] if h[1]]])
                    outs.append(else_st)
                return i, self._join(self._skip(outs, first))
        finally:
            del self.guards[len(self.guards) - pushed:]

    def _guards_of(self, head, end):
        """Variables an if's condition (tokens between HEAD's '(' and END's
        ')') shows to be non-NULL in its then branch (POS) and in its else
        branch (NEG): ``x``, ``x != NULL``, ``!x``, ``x == NULL``; none when
        the condition has ``||``."""
        tv = self.tv
        toks = tv[head + 1:end - 1] if end - 1 > head + 1 else []
        if "||" in toks or "|" in toks or len(toks) > 64:
            return frozenset(), frozenset()
        pos, neg = set(), set()
        for k, v in enumerate(toks):
            if not locksets._IDENT_RE.match(v) or v in ("NULL", "TRUE", "FALSE"):
                continue
            prev = toks[k - 1] if k > 0 else ""
            nxt = toks[k + 1] if k + 1 < len(toks) else ""
            nxt2 = toks[k + 2] if k + 2 < len(toks) else ""
            if prev in ("->", ".") or nxt in ("(", "->", ".", "["):
                continue
            if (prev == "!" and (k < 2 or toks[k - 2] != "!")) or (nxt == "=" and nxt2 == "="):
                neg.add(v)   # !x, x == NULL ('==' and '!=' are two tokens each)
            elif nxt in ("", ")", "&") or (nxt == "!" and nxt2 == "=") or \
                    (nxt == "&" and nxt2 == "&"):
                pos.add(v)
        return frozenset(pos), frozenset(neg)

    def _early_exit_guards(self, head, end):
        """Variables non-NULL (or true) after ``if (COND) <jump>;``: the
        terms ``!x`` and ``x == NULL`` of COND's top-level ``||``."""
        tv = self.tv
        toks = tv[head + 1:end - 1] if end - 1 > head + 1 else []
        if len(toks) > 96:
            return frozenset()
        terms, cur, depth = [], [], 0
        k = 0
        while k < len(toks):
            t = toks[k]
            if t in ("(", "["):
                depth += 1
            elif t in (")", "]"):
                depth -= 1
            if depth == 0 and (t == "||" or (t == "|" and k + 1 < len(toks) and
                                             toks[k + 1] == "|")):
                terms.append(cur)
                cur = []
                k += 1 if t == "||" else 2
                continue
            cur.append(t)
            k += 1
        terms.append(cur)
        out = set()
        for t in terms:
            if len(t) == 2 and t[0] == "!" and locksets._IDENT_RE.match(t[1]):
                out.add(t[1])
            elif len(t) == 4 and t[1:] == ["=", "=", "NULL"] and locksets._IDENT_RE.match(t[0]):
                out.add(t[0])
        out.discard("NULL")
        return frozenset(out)

    def _guard_list(self):
        if not self.guards:
            return []
        g = set()
        for x in self.guards:
            g.update(x)
        return sorted(g)[:16]

    def _split_try(self, head, end, before, st):
        """States of the then and else branches of an if whose head is
        tokens [HEAD, END): a trylock in the head holds in one of them."""
        if st is None or len(self.acqs) != before + 1 or self.acqs[-1][3] != "trylock":
            return st, st
        tv = self.tv
        toks = list(tv[head + 1:end - 1])
        aid = before
        name = self.acqs[-1][5]
        neg = False
        while toks and toks[0] == "!":
            neg = not neg
            toks = toks[1:]
        if not toks or toks[0] != name:
            return st, st
        close = 1 + _close(toks, 1, len(toks))
        rest = toks[close:]
        success_true = name not in ZERO_ON_SUCCESS
        if rest in (["==", "0"], ["==", "FALSE"]):
            neg = not neg
        elif rest in (["!=", "0"], ["!=", "FALSE"], []):
            pass
        else:
            return st, st
        then_holds = success_true != neg
        holding = (tuple((a, True if a == aid else d, via) for a, d, via in st[0]), st[1], st[2])
        without = (tuple(h for h in st[0] if h[0] != aid), st[1], st[2] | frozenset((aid,)))
        return (holding, without) if then_holds else (without, holding)

    def _loop(self, i, st, depth):
        tv = self.tv
        head = i + 1
        i, cur = self._paren(head, st)
        infinite = locksets._Walker._infinite(
            tv[head + 1:i - 1] if tv[i - 1] == ")" else (), tv[head - 1] == "for")
        ctx = {"loop": True, "breaks": [], "conts": [], "first": len(self.acqs)}
        self.ctx.append(ctx)
        i, out = self._body(i, cur, depth)
        self.ctx.pop()
        if infinite:
            return i, self._join(ctx["breaks"])
        return i, self._join([cur, out] + ctx["conts"] + ctx["breaks"])

    def _do(self, i, st, depth):
        tv, n = self.tv, self.n
        ctx = {"loop": True, "breaks": [], "conts": [], "first": len(self.acqs)}
        self.ctx.append(ctx)
        i, out = self._body(i + 1, st, depth)
        self.ctx.pop()
        out = self._join([out] + ctx["conts"])
        infinite = False
        if i < n and tv[i] == "while":
            head = i + 1
            i, out = self._paren(head, out)
            infinite = locksets._Walker._infinite(
                tv[head + 1:i - 1] if tv[i - 1] == ")" else (), False)
            if i < n and tv[i] == ";":
                i += 1
        return i, self._join(ctx["breaks"] + ([] if infinite else [out]))

    # -- expressions ---------------------------------------------------

    def _paren(self, i, st):
        if i < self.n and self.tv[i] == "(":
            return self._scan(i + 1, st, True)
        return i, st

    def _scan(self, i, st, paren):
        tv, n = self.tv, self.n
        bd = 0
        while i < n:
            v = tv[i]
            if v == ";":
                if not paren and bd == 0:
                    return i + 1, st
            elif v == "(":
                if i + 1 < n and tv[i + 1] == "{":  # GNU statement expression
                    i, st = self._block(i + 1, st, 1 + len(self.ctx))
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
            elif v in STATEMENT_WORDS:
                if bd == 0 and not paren:
                    return i, st
            elif i + 1 < n and tv[i + 1] == "(" and locksets._IDENT_RE.match(v) and \
                    v not in NOT_CALLS:
                i, st = self._call(i, st)
                continue
            i += 1
        return i, st

    def _args(self, i):
        """(index of the call's ')', [(start, end)] of its arguments)."""
        tv, n = self.tv, self.n
        close = _close(tv, i + 1, min(n, i + 4000))
        args = []
        depth = 0
        s = i + 2
        for k in range(i + 2, close):
            t = tv[k]
            if t in "([{":
                depth += 1
            elif t in ")]}":
                depth -= 1
            elif t == "," and depth == 0:
                args.append((s, k))
                s = k + 1
        if s < close:
            args.append((s, close))
        return close, args

    def _call(self, i, st):
        tv, tl = self.tv, self.tl
        name = tv[i]
        prev = tv[i - 1] if i > 0 else ""
        line = tl[i]
        ptr = prev in (".", "->")
        op = None if ptr else op_of(name)
        if op is None:
            if st is not None and len(self.calls) < MAX_CALLS:
                argkey = None
                callee = ("->" + name) if ptr else name
                if ptr:
                    j = i - 2
                    while j - 2 >= 0 and tv[j - 1] in ("->", ".") and \
                            locksets._IDENT_RE.match(tv[j - 2]) and locksets._IDENT_RE.match(tv[j]):
                        j -= 2
                    if locksets._IDENT_RE.match(tv[j]):
                        argkey = self._key("".join(tv[j:i - 1]), line)
                if not ptr and name in THREAD_ENTRY_ARG:
                    close, args = self._args(i)
                    k = THREAD_ENTRY_ARG[name]
                    if k < len(args):
                        fn = [t for t in tv[args[k][0]:args[k][1]]
                              if locksets._IDENT_RE.match(t) and t not in ("gpointer", "void")]
                        if fn:
                            self.threads.append([fn[-1], line, name])
                elif not ptr and name in ("janus_refcount_init",):
                    close, args = self._args(i)
                    if len(args) == 2:
                        fn = "".join(tv[args[1][0]:args[1][1]])
                        self.refinits.append([self._key("".join(tv[args[0][0]:args[0][1]]), line),
                                              fn, line])
                elif not ptr and name.startswith("janus_refcount_decrease"):
                    close, args = self._args(i)
                    if args:
                        argkey = self._key("".join(tv[args[0][0]:args[0][1]]), line)
                snap = self._snapshot(st)
                close, args = self._args(i)
                nulls = [k for k, (a, b) in enumerate(args)
                         if b == a + 1 and tv[a] in ("NULL", "FALSE", "false")]
                guards = self._guard_list()
                sig = (callee, tuple(a for a, _d in snap), argkey, tuple(nulls), tuple(guards))
                if sig not in self._seen_calls:
                    self._seen_calls.add(sig)
                    self.calls.append([callee, line, snap, argkey, nulls, guards])
            return i + 1, st
        close, args = self._args(i)
        if not args or st is None:
            return close + 1, st
        expr = locksets.normalize_expr("".join(tv[args[0][0]:args[0][1]]))
        key = self._key(expr, line)
        held, released = st[0], st[1]
        if op == "unlock":
            cls = []

            def same_class(a):
                if not cls:
                    cls.append(self._local_class(key))
                return cls[0] is not None and self._local_class(self.acqs[a][1]) == cls[0]
            for match in (lambda a: self.acqs[a][0] == expr, lambda a: self.acqs[a][1] == key,
                          same_class):
                for idx in range(len(held) - 1, -1, -1):
                    if match(held[idx][0]):
                        self.unlocked.add(self.acqs[held[idx][0]][1])
                        return close + 1, (held[:idx] + held[idx + 1:],
                                           released | frozenset((held[idx][0],)), st[2])
            self.releases.append([expr, key, line])
            return close + 1, st
        aid = len(self.acqs)
        self.acqs.append([expr, key, line, op, self._snapshot(st), name, self._guard_list()])
        return close + 1, (held + ((aid, op == "lock", None),), released, st[2])

    def _local_class(self, key):
        """``type.field`` of KEY from this file's own struct definitions, or None."""
        if self.scope is None or key.startswith("!"):
            return None
        structs, typedefs, gvars = self.scope
        parts = key.split("|")
        if len(parts) < 2:
            return None
        head = parts[0]
        typ = head[1:] if head.startswith("@") else gvars.get(head[1:])
        for f in parts[1:-1]:
            for _ in range(4):
                if typ in structs or typ not in typedefs:
                    break
                typ = typedefs[typ]
            typ = (structs.get(typ) or {}).get(f)
            if not typ:
                return None
        for _ in range(4):
            if typ in structs or typ not in typedefs:
                break
            typ = typedefs[typ]
        return "%s.%s" % (typ, parts[-1]) if typ else None

    def _key(self, expr, line):
        return key_of(expr, self.types, self.aliases, line)


MAX_ALSO = 16


def _merge_via(a, b):
    """Two jumps that leave holding one lock and meet at a label: the first
    (lowest line) is the exit reported, the others are listed in a third
    element ``also``."""
    if a is None or a == b:
        return b
    lines = set([a[0], b[0]])
    lines.update(a[2] if len(a) > 2 else ())
    lines.update(b[2] if len(b) > 2 else ())
    first = a if a[0] <= b[0] else b
    rest = sorted(lines - set([first[0]]))[:MAX_ALSO]
    return [first[0], first[1], rest] if rest else [first[0], first[1]]


THREAD_ENTRY_ARG = {"g_thread_try_new": 1, "g_thread_new": 1, "g_thread_pool_new": 0,
                    "pthread_create": 2, "g_thread_create": 0, "g_thread_create_full": 0}


def _close(toks, start, end):
    """Index in TOKS of the bracket closing the one at START (before END)."""
    depth = 0
    for k in range(start, end):
        v = toks[k]
        if v in "([{":
            depth += 1
        elif v in ")]}":
            depth -= 1
            if depth == 0:
                return k
    return end - 1
