"""Run inside gdb attached to (or with a core of) a real Janus: for every
handle in the core's ``sessions`` table, the struct janus-gdb reads its
plugin session's ``plugin_handle`` as (by the handle's plugin) and that
object's label.  Prints ``DISPATCH <handle id> <struct or None> <label>``
lines (JSON).  Reads memory only.
"""

import json

import gdb  # pylint: disable=import-error

from janus_gdb.janus import objects
from janus_gdb.target import gdbtarget


def probe():
    mem = gdbtarget.Memory(gdb.selected_inferior())
    types = objects.TypeCache(lambda t: None)
    warnings = []
    roots = objects.table_roots(types, mem, warnings)
    objs = objects.Objects(types, mem)
    objs.expand(roots)
    for key in sorted(k for k in roots if k[0] == "janus_ice_handle"):
        handle_id = objs.fields.get(key, {}).get("handle_id")
        for field, tname, taddr in objs.links.get(key, ()):
            if field != "app_handle":
                continue
            got = [(n, a) for f, n, a in objects._links(types, tname, taddr, {})
                   if f == "plugin_handle"]
            label = objs.label(got[0]) if got else None
            print("DISPATCH " + json.dumps([handle_id, got[0][0] if got else None, label]))
    print("DISPATCH-WARNINGS " + json.dumps(warnings))


probe()
