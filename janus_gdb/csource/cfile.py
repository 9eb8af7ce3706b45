"""One C file read for the whole-program lock analysis: its struct fields,
typedefs, file-scope variables, designated initializers (``.field = func``),
refcount free functions, thread entry points and, for every function, the
events of a walk of its body (walk.py).

The result of ``parse_text`` is plain data (dicts, lists, strings, ints) so
that it can be cached per file as JSON (see lockorder.py); nothing in it
depends on another file.  Pure module: no gdb import.
"""

import re

from . import locksets
from . import walk

_IDENT_RE = re.compile(r"[A-Za-z_]\w*\Z")
_DEFINE_RE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)\(([^)]*)\)((?:.*\\\n)*.*)", re.M)
_CALL_RE = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_QUALIFIERS = frozenset(("const", "volatile", "struct", "union", "enum", "static", "extern",
                         "register", "inline", "unsigned", "signed", "restrict", "__restrict",
                         "G_GNUC_UNUSED", "__attribute__", "_Atomic", "typedef"))
_NOT_TYPE = frozenset(("return", "goto", "case", "else", "do", "sizeof", "if", "while", "for",
                       "switch", "break", "continue", "default", "typedef"))
_DECL_PREV = frozenset((";", "{", "}", "(", ",", "const", "static", "struct", "volatile",
                        "union", "unsigned", "signed", "register"))
_DECL_NEXT = frozenset(("=", ";", ",", "[", ")"))
MAX_FIELDS = 4096


def _ident(v):
    return bool(_IDENT_RE.match(v))


def _decl_type(toks):
    """(type name, declared name) of the declaration tokens TOKS, e.g.
    ``const janus_ice_handle *handle`` -> ("janus_ice_handle", "handle");
    a function pointer ``void (*cb)(int)`` -> ("fnptr", "cb")."""
    toks = [t for t in toks if t not in ("*", "&")]
    if "(" in toks:
        k = toks.index("(")
        if k + 1 < len(toks) and _ident(toks[k + 1]) and toks[k + 1] not in _QUALIFIERS:
            return "fnptr", toks[k + 1]
        return None, None
    depth = 0
    plain = []
    for t in toks:
        if t == "[":
            depth += 1
        elif t == "]":
            depth -= 1
        elif depth == 0:
            plain.append(t)
    names = [t for t in plain if _ident(t) and t not in _QUALIFIERS]
    if len(names) < 2:
        return None, (names[-1] if names else None)
    return names[0], names[-1]


def _split_top(tv, start, end, sep):
    """[(start, end)] of the pieces of tokens [START, END) split at SEP on depth 0."""
    out = []
    depth = 0
    s = start
    for k in range(start, end):
        v = tv[k]
        if v in "([{":
            depth += 1
        elif v in ")]}":
            depth -= 1
        elif v == sep and depth == 0:
            out.append((s, k))
            s = k + 1
    if s < end:
        out.append((s, end))
    return out


def _match_close(tv, k, n):
    """Index of the bracket closing the one at K (or N)."""
    depth = 0
    while k < n:
        v = tv[k]
        if v in "([{":
            depth += 1
        elif v in ")]}":
            depth -= 1
            if depth == 0:
                return k
        k += 1
    return n


def _struct_fields(tv, open_idx, close_idx, fields):
    """Fill FIELDS {name: type} from the struct body between the braces
    (members of nested anonymous structs/unions included)."""
    for s, e in _split_top(tv, open_idx + 1, close_idx, ";"):
        if len(fields) >= MAX_FIELDS:
            return
        if s >= e:
            continue
        # nested struct/union body: its members count, then the declarator
        if "{" in tv[s:e]:
            o = s + list(tv[s:e]).index("{")
            c = _match_close(tv, o, e)
            _struct_fields(tv, o, c, fields)
            s2 = c + 1
            for ds, de in _split_top(tv, s2, e, ","):
                _t, name = _decl_type(["x"] + list(tv[ds:de]))
                if name and tv[s] in ("struct", "union") and o > s + 1 and _ident(tv[s + 1]):
                    fields[name] = tv[s + 1]
            continue
        pieces = _split_top(tv, s, e, ",")
        first_type, first_name = _decl_type(list(tv[pieces[0][0]:pieces[0][1]]))
        if first_name:
            fields[first_name] = first_type or "?"
        for ds, de in pieces[1:]:
            _t, name = _decl_type(["x"] + list(tv[ds:de]))
            if name:
                fields[name] = first_type or "?"


def _params(tv, open_idx, close_idx):
    out = []
    for s, e in _split_top(tv, open_idx + 1, close_idx, ","):
        typ, name = _decl_type(list(tv[s:e]))
        if name and name != "void":
            out.append([name, typ])
    return out


def _locals(tv, tl, open_idx, close_idx):
    """{variable: [[line, type name], ...]} of the declarations in a body, and {variable:
    expression} of the ``v = &expr`` aliases (the last one wins)."""
    types = {}
    aliases = {}
    derived = {}    # variable -> identifiers of its declaration's initializer
    k = open_idx + 1
    while k < close_idx:
        v = tv[k]
        if _ident(v) and v not in _NOT_TYPE and tv[k - 1] in _DECL_PREV:
            j = k + 1
            while j < close_idx and tv[j] == "*":
                j += 1
            if j < close_idx and _ident(tv[j]) and tv[j + 1] in _DECL_NEXT and \
                    tv[j] not in _QUALIFIERS and v not in _QUALIFIERS:
                decls = types.setdefault(tv[j], [])
                if len(decls) < 16:
                    decls.append([tl[j], v])
                if tv[j + 1] == "=":
                    e = j + 2
                    while e < close_idx and tv[e] not in (";", ",") and e < j + 64:
                        e += 1
                    src = set(t for t in tv[j + 2:e] if _ident(t))
                    if src:
                        derived.setdefault(tv[j], set()).update(src)
                k = j
        elif v == "=" and tv[k + 1] == "&" and _ident(tv[k - 1]) and tv[k - 2] not in (".", "->"):
            e = k + 2
            while e < close_idx and tv[e] not in (";", ",", ")"):
                e += 1
            if tv[e] == ";":
                aliases[tv[k - 1]] = "".join(tv[k + 2:e])
        k += 1
    return types, aliases, dict((v, sorted(x)[:32]) for v, x in derived.items())


def parse_text(path, text):
    """Everything the whole-program analysis needs from one file (plain data)."""
    tv, tl, _lines, _skipped = locksets._tokenize(text)
    n = len(tv)
    structs = {}     # struct/typedef name -> {field: type}
    typedefs = {}    # alias -> type
    gvars = {}       # file-scope variable -> type
    statics = []     # file-scope names declared static
    inits = []       # [field, function, line]
    functions = []
    depth = 0
    stmt = 0         # first token of the current file-scope statement
    externc = 0      # open extern "C" { blocks
    k = 0
    while k < n:
        v = tv[k]
        if v == "{":
            if depth == 0 and k >= 2 and tv[k - 2] == "extern" and tv[k - 1].startswith('"'):
                # extern "C" { (a C++ guard read as taken): its body is file scope
                externc += 1
                k += 1
                stmt = k
                continue
            if depth == 0 and locksets._is_function_brace(tv, k, stmt):
                close = _match_close(tv, k, n)
                functions.append(_function(path, tv, tl, stmt, k, close,
                                           (structs, typedefs, gvars)))
                _initializers(tv, tl, k, close, inits)
                k = close + 1
                stmt = k
                continue
            if depth == 0 and k > 0:
                # struct X { ... } or typedef struct X { ... } Y
                j = k - 1
                tag = None
                if _ident(tv[j]) and j > 0 and tv[j - 1] in ("struct", "union"):
                    tag = tv[j]
                    j -= 1
                if tv[j] in ("struct", "union"):
                    close = _match_close(tv, k, n)
                    fields = {}
                    _struct_fields(tv, k, close, fields)
                    e = close + 1
                    while e < n and tv[e] != ";" and tv[e] != "{":
                        e += 1
                    after = [t for t in tv[close + 1:e] if _ident(t) and t not in _QUALIFIERS]
                    names = [tag] if tag else []
                    is_typedef = "typedef" in tv[stmt:k]
                    if is_typedef:
                        names += after
                    for nm in names:
                        structs[nm] = fields
                    if not is_typedef:
                        for nm in after:
                            gvars[nm] = tag or "?"
                    k = e + 1
                    stmt = k
                    continue
            depth += 1
        elif v == "}":
            if depth == 0 and externc:
                externc -= 1
                stmt = k + 1
            depth = max(0, depth - 1)
        elif v == ";" and depth == 0:
            typ = _file_scope(tv, stmt, k, typedefs, gvars, statics)
            _initializers(tv, tl, stmt, k, inits, typ)
            stmt = k + 1
        k += 1
    return {"path": path, "structs": structs, "typedefs": typedefs, "globals": gvars,
            "statics": statics, "inits": inits, "functions": functions,
            "lock_macros": lock_macros(text)}


def lock_macros(text):
    """[name, line, op] of the function-like macros defined in TEXT whose
    body locks or unlocks and that the walk does not know by name: the
    preprocessor lines are not read, so their calls are not followed."""
    out = []
    for m in _DEFINE_RE.finditer(text):
        name = m.group(1)
        if walk.op_of(name):
            continue
        ops = set(walk.op_of(c) for c in _CALL_RE.findall(m.group(3))) - set([None])
        if ops:
            out.append([name, text.count("\n", 0, m.start()) + 1, "/".join(sorted(ops))])
    return out


def _file_scope(tv, s, e, typedefs, gvars, statics):
    """A file-scope declaration [S, E) (not a function body)."""
    if s >= e:
        return
    toks = list(tv[s:e])
    if toks[0] == "typedef":
        if "(" in toks or "{" in toks:
            return
        names = [t for t in toks[1:] if _ident(t) and t not in _QUALIFIERS]
        if len(names) >= 2:
            typedefs[names[-1]] = names[0]
        return
    if toks[0] == "extern":
        return
    eq = len(toks)
    depth = 0
    for i, t in enumerate(toks):
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
        elif t == "=" and depth == 0:
            eq = i
            break
    decl = toks[:eq]
    if "(" in decl and not ("(" in decl and decl[decl.index("(") + 1:decl.index("(") + 2] == ["*"]):
        return None  # a prototype
    typ, name = _decl_type(decl)
    if name and typ:
        gvars[name] = typ
        if "static" in decl:
            statics.append(name)
    return typ


def _initializers(tv, tl, s, e, inits, typ=None):
    """``.field = function`` designated initializers in tokens [S, E) (of a
    variable of type TYP when known): [field, function, line, type]."""
    for k in range(s + 1, e - 3):
        if tv[k] == "." and tv[k + 2] == "=" and tv[k - 1] in (",", "{", "(") and \
                _ident(tv[k + 1]) and _ident(tv[k + 3]) and tv[k + 4] in (",", "}", ")"):
            inits.append([tv[k + 1], tv[k + 3], tl[k], typ])


def _function(path, tv, tl, stmt, open_idx, close_idx, scope=None):
    """One function definition: name, params, locals and its walk's events."""
    # the parameter list: the last ')' before the '{'
    j = open_idx - 1
    while j > stmt and tv[j] != ")":
        j -= 1
    depth = 0
    m = j
    while m > stmt:
        if tv[m] == ")":
            depth += 1
        elif tv[m] == "(":
            depth -= 1
            if depth == 0:
                break
        m -= 1
    name = tv[m - 1]
    head = list(tv[stmt:m - 1])
    params = _params(tv, m, j)
    types, aliases, derived = _locals(tv, tl, open_idx, close_idx)
    for pname, ptype in params:
        if ptype:
            types.setdefault(pname, []).insert(0, [0, ptype])
    ret = [t for t in head if _ident(t) and t not in _QUALIFIERS]
    fn = {"name": name, "line": tl[m - 1], "end": tl[close_idx],
          "static": "static" in head, "params": params, "types": types,
          "returns": ret[-1] if ret else None, "derived": derived}
    w = walk.Walker(tv, tl, open_idx, close_idx, types, aliases, scope)
    fn.update(w.run())
    return fn
