"""Run inside gdb (``python exec(...)``) with one Janus binary loaded: which
of the names in a spec exist in its DWARF.

The spec (JSON, path in the environment variable DWARF_NAMES_SPEC) is
{"structs": {struct: [field or "a.b" path, ...]}, "globals": [[file or
null, variable], ...], "functions": {function: [variables, ...]},
"variables": [variable, ...], "locks": ["struct.field", ...], "lock_globals":
[[file, variable], ...]} (locks: of type janus_mutex); prints one line ``DWARF-NAMES <json>`` with
{"missing": [what, ...], "checked": N}.  Only reads symbols and types.
"""

import json
import os

import gdb  # pylint: disable=import-error


def _struct(name):
    for spelling in ("struct " + name, name):
        try:
            t = gdb.lookup_type(spelling).strip_typedefs()
        except gdb.error:
            continue
        if t.code == gdb.TYPE_CODE_STRUCT:
            return t
    return None


def _has_path(t, path):
    for part in path.split("."):
        if t is None or t.code != gdb.TYPE_CODE_STRUCT:
            return False
        found = None
        for f in t.fields():
            if f.name == part:
                found = f
                break
        if found is None:
            return False
        t = found.type.strip_typedefs()
    return True


def _field_type_name(t, field):
    for f in t.fields():
        if f.name == field:
            return f.type.name
    return None


def _symbols(name):
    syms = []
    if hasattr(gdb, "lookup_static_symbols"):
        syms.extend(gdb.lookup_static_symbols(name))
    glob = gdb.lookup_global_symbol(name)
    if glob is not None:
        syms.append(glob)
    return syms


def _in_file(sym, filename):
    return filename is None or (sym.symtab is not None and
                                os.path.basename(sym.symtab.filename) == filename)


def check(spec):
    missing = []
    checked = 0
    for name, fields in sorted(spec.get("structs", {}).items()):
        checked += 1
        t = _struct(name)
        if t is None:
            missing.append("struct %s" % name)
            continue
        for path in fields:
            checked += 1
            if not _has_path(t, path):
                missing.append("%s.%s" % (name, path))
    for filename, var in spec.get("globals", []):
        checked += 1
        syms = [s for s in _symbols(var) if s.is_variable and _in_file(s, filename)]
        if not syms:
            missing.append("variable %s in %s" % (var, filename or "any file"))
    for path in spec.get("locks", []):
        checked += 1
        struct, field = path.split(".", 1)
        t = _struct(struct)
        if t is None or not _has_path(t, field) or _field_type_name(t, field) != "janus_mutex":
            missing.append("lock %s" % path)
    for filename, var in spec.get("lock_globals", []):
        checked += 1
        syms = [s for s in _symbols(var) if s.is_variable and _in_file(s, filename)
                and s.type.name == "janus_mutex"]
        if not syms:
            missing.append("lock %s in %s" % (var, filename))
    for var in spec.get("variables", []):
        checked += 1
        if not [s for s in _symbols(var) if s.is_variable]:
            missing.append("variable %s" % var)
    for function, variables in sorted(spec.get("functions", {}).items()):
        checked += 1
        syms = [s for s in _symbols(function) if s.is_function]
        if not syms:
            missing.append("function %s" % function)
            continue
        if not variables:
            continue
        checked += 1
        try:
            scope = gdb.execute("info scope %s" % function, to_string=True)
        except gdb.error as e:
            missing.append("scope of %s (%s)" % (function, e))
            continue
        if not any("Symbol %s is " % v in scope for v in variables):
            missing.append("%s: none of the variables %s" % (function, ", ".join(variables)))
    return {"missing": missing, "checked": checked}


with open(os.environ["DWARF_NAMES_SPEC"]) as _f:
    _spec = json.load(_f)
print("DWARF-NAMES " + json.dumps(check(_spec)))
