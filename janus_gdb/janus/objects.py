"""Janus objects on the stacks, and the names of the locks inside them.

While each thread is selected, ``frame_refs`` records the structs its frame
variables point to (only their type and address).  After the locks are
known, ``name_locks`` follows Janus's links between objects a bounded
number of hops, finds the struct that contains each lock and labels it
from its identifying fields (``handle 424242``, ``publisher 5678 "alice"
in room 1234``).  Strings are read with a length cap; callers escape them.
"""

import os

import gdb  # pylint: disable=import-error

from . import janusdb
from ..target import gdbtarget
from ..target import layouts
from . import names
from ..model import ObjectRef

MAX_SYMBOLS_PER_FRAME = 64
MAX_OBJECTS = 20000
MAX_HOPS = 2
MAX_STRING = 256


class TypeCache(object):
    """gdb types seen on the stacks by name, and the lock fields of each."""

    def __init__(self, kind_of_type):
        self.types = {}
        self._lock_fields = {}
        self._queue_fields = {}
        self.kind_of_type = kind_of_type
        # a handle's ``app`` address -> the struct of its plugin's sessions
        # (or None), looked up once per analysis: thousands of handles
        # share a dozen plugins
        self.plugin_sessions = {}
        # a request's ``transport`` address -> its title (or None), likewise
        self.transports = {}

    def note(self, name, gtype):
        if name not in self.types:
            self.types[name] = gtype

    def get(self, name):
        t = self.types.get(name)
        if t is None:
            try:
                t = gdb.lookup_type("struct " + name)
            except (gdb.error, RuntimeError):
                try:
                    t = gdb.lookup_type(name)
                except (gdb.error, RuntimeError):
                    t = None
            self.types[name] = t
        return t

    def _fields_where(self, name, cache, pick):
        """[(offset,) + PICK(field)] of the fields of struct NAME for which
        PICK is not None, cached in CACHE by NAME."""
        if name in cache:
            return cache[name]
        fields = []
        t = self.get(name)
        try:
            if t is not None:
                for f in t.strip_typedefs().fields():
                    if f.bitpos is None or f.type is None:
                        continue
                    got = pick(f)
                    if got is not None:
                        fields.append((f.bitpos // 8,) + got)
        except (gdb.error, RuntimeError, TypeError):
            fields = []
        cache[name] = fields
        return fields

    def lock_fields(self, name):
        """[(offset, field name, lock kind)] of struct NAME."""
        def pick(f):
            kind = self.kind_of_type(f.type)
            return None if kind is None else (f.name, kind)
        return self._fields_where(name, self._lock_fields, pick)

    def queue_fields(self, name):
        """[(offset, field name)] of the GAsyncQueue pointers in struct NAME."""
        return self._fields_where(
            name, self._queue_fields,
            lambda f: (f.name,) if f.name and gdbtarget.is_queue_pointer(f.type) else None)

    def interesting(self, name, gtype):
        """A struct worth remembering: a Janus object or one that holds locks."""
        if name in janusdb.OBJECT_TYPES:
            self.note(name, gtype)
            return True
        if name in self._lock_fields:
            return bool(self._lock_fields[name])
        self.note(name, gtype)
        return bool(self.lock_fields(name))


def _pointee_struct(t):
    """(name, struct type) when T is a pointer to a struct, else (None, None)."""
    s = t.strip_typedefs()
    if s.code != gdb.TYPE_CODE_PTR:
        return None, None
    target = s.target()
    st = target.strip_typedefs()
    if st.code != gdb.TYPE_CODE_STRUCT:
        return None, None
    return st.tag or target.name, st


def frame_refs(frame, level, refs, types):
    """Add {(struct name, address): level} for the frame's pointer variables."""
    try:
        block = frame.block()
    except (gdb.error, RuntimeError):
        return
    budget = MAX_SYMBOLS_PER_FRAME
    while block is not None and budget > 0:
        for sym in block:
            budget -= 1
            if budget < 0:
                break
            try:
                if not (sym.is_variable or sym.is_argument):
                    continue
                name, st = _pointee_struct(sym.type)
                if name is None or not types.interesting(name, st):
                    continue
                value = sym.value(frame)
                if value.is_optimized_out:
                    continue
                addr = int(value) & ((1 << 64) - 1)
            except (gdb.error, RuntimeError, ValueError, OverflowError, TypeError):
                continue
            if addr:
                refs.setdefault((name, addr), level)
        try:
            if block.function is not None:
                break
            block = block.superblock
        except (gdb.error, RuntimeError):
            break


def _read_string(mem, addr):
    if not addr:
        return None
    data = mem.read(addr, MAX_STRING)
    if data is None:
        # the string may end closer to an unmapped page: try short reads
        for size in (64, 16):
            data = mem.read(addr, size)
            if data is not None:
                break
    if data is None:
        return None
    end = data.find(b"\0")
    cut = data if end < 0 else data[:end]
    text = cut.decode("utf-8", "replace")
    return text + "..." if end < 0 else text


def _struct_value(types, name, addr):
    t = types.get(name)
    if t is None:
        return None
    try:
        return gdb.Value(addr).cast(t.pointer()).dereference()
    except (gdb.error, RuntimeError, OverflowError):
        return None


def read_fields(types, mem, name, addr):
    """Identifying fields of the object (per janusdb.OBJECT_TYPES)."""
    spec = janusdb.OBJECT_TYPES.get(name)
    if spec is None:
        return {}
    value = _struct_value(types, name, addr)
    if value is None:
        return {}
    out = {}
    for f in spec["ids"]:
        is_str = f.startswith("*")
        fname = f.lstrip("*")
        try:
            v = value
            for part in fname.split("."):  # "account.identity": a nested struct's field
                v = v[part]
            if is_str:
                out[fname] = _read_string(mem, int(v))
            else:
                out[fname] = int(v)
        except (gdb.error, RuntimeError, ValueError, OverflowError, TypeError):
            continue
    return out


def _transport_title(types, value):
    """``WebSockets``: the transport the janus_request VALUE came through,
    from the ``janus_transport`` variable its ``transport`` points to (its
    symbol, or the library it is in); None when neither names one."""
    ptr = _pointer_field(value, "transport")
    if not ptr:
        return None
    return _by_symbol(types.transports, ptr, janusdb.transport_title)


def _links(types, name, addr, fields):
    """[(link field, struct name, address)] to follow from an object."""
    spec = janusdb.OBJECT_TYPES.get(name)
    if spec is None or not spec["links"]:
        return []
    value = _struct_value(types, name, addr)
    if value is None:
        return []
    out = []
    for field, target in spec["links"].items():
        if target is None and name == "janus_plugin_session" and field == "plugin_handle":
            target = _plugin_session_type(types, value, addr)
        elif target is None:
            target = _dynamic_link(name, field, fields)
        if target is None:
            continue
        ptr = _pointer_field(value, field)
        if ptr:
            out.append((field, target, ptr))
    return out


def _dynamic_link(name, field, fields):
    if name == "janus_videoroom_session" and field == "participant":
        return janusdb.PARTICIPANT_TYPES.get(fields.get("participant_type"))
    if name == "janus_streaming_mountpoint" and field == "source":
        return janusdb.STREAMING_SOURCES.get(fields.get("streaming_source"))
    return None


def _plugin_session_type(types, value, addr):
    """The struct the plugin session VALUE (at ADDR) points to with
    ``plugin_handle``, by the plugin its handle belongs to: the handle's
    ``app`` is the plugin's ``janus_plugin`` variable (its symbol, or the
    library it is in).  None unless the handle points back to this plugin
    session and the plugin is known: never a guess."""
    gw = _pointer_field(value, "gateway_handle")
    handle = _struct_value(types, "janus_ice_handle", gw) if gw else None
    if handle is None or _pointer_field(handle, "app_handle") != addr:
        return None
    app = _pointer_field(handle, "app")
    if not app:
        return None
    return _by_symbol(types.plugin_sessions, app, janusdb.plugin_session_type)


def _by_symbol(cache, addr, lookup):
    """LOOKUP(symbol, library basename) of the variable at ADDR (its data
    symbol, or the library it lies in), remembered in CACHE by address:
    thousands of objects point to a dozen plugins and transports."""
    if addr not in cache:
        try:
            lib = gdb.solib_name(addr)
        except (gdb.error, RuntimeError, OverflowError):
            lib = None
        cache[addr] = lookup(names.data_symbol(addr), os.path.basename(lib) if lib else None)
    return cache[addr]


class Objects(object):
    """Objects reachable from the stacks, with their fields read once."""

    def __init__(self, types, mem):
        self.types = types
        self.mem = mem
        self.fields = {}       # (name, addr) -> fields
        self.links = {}        # (name, addr) -> [(field, name, addr)]
        self.truncated = False

    def expand(self, roots):
        """Every object within MAX_HOPS links of ROOTS ({(name, addr): level})."""
        seen = set(roots)
        frontier = list(roots)
        for _ in range(MAX_HOPS):
            nxt = []
            for key in frontier:
                name, addr = key
                if name not in janusdb.OBJECT_TYPES:
                    continue
                fields = self._fields(key)
                links = _links(self.types, name, addr, fields)
                self.links[key] = links
                for _field, tname, taddr in links:
                    k = (tname, taddr)
                    if k in seen:
                        continue
                    if len(seen) >= MAX_OBJECTS:
                        self.truncated = True
                        return seen
                    seen.add(k)
                    nxt.append(k)
            frontier = nxt
        return seen

    def _fields(self, key):
        if key not in self.fields:
            self.fields[key] = read_fields(self.types, self.mem, key[0], key[1])
            if key[0] == "janus_request":
                value = _struct_value(self.types, key[0], key[1])
                title = _transport_title(self.types, value) if value is not None else None
                if title:
                    self.fields[key]["transport"] = title
        return self.fields[key]

    def linked(self, key, depth=3):
        """{link field: (name, fields, linked)} for janusdb.label."""
        out = {}
        if depth <= 0:
            return out
        links = self.links.get(key)
        if links is None and key[0] in janusdb.OBJECT_TYPES:
            links = _links(self.types, key[0], key[1], self._fields(key))
            self.links[key] = links
        for field, tname, taddr in links or ():
            k = (tname, taddr)
            out[field] = (tname, self._fields(k), self.linked(k, depth - 1))
        return out

    def parent(self, key):
        """(struct, address) of the object whose link points to KEY, for
        types named by their owner (janusdb "parent"), among the objects
        expanded; else None."""
        spec = janusdb.OBJECT_TYPES.get(key[0], {}).get("parent")
        if spec is None:
            return None
        ptype, pfield = spec
        found = []
        for pkey, links in self.links.items():
            if pkey[0] != ptype:
                continue
            for field, tname, taddr in links:
                if field == pfield and (tname, taddr) == key:
                    found.append(pkey)
        # an owner that is itself named by its owner (a session's source
        # request, not a request on a stack): one whose owner is found
        for pkey in found:
            if "parent" not in janusdb.OBJECT_TYPES.get(pkey[0], {}) or \
                    self.parent(pkey) is not None:
                return pkey
        return found[0] if found else None

    def label(self, key):
        if key[0] not in janusdb.OBJECT_TYPES:
            return None
        linked = self.linked(key)
        pkey = self.parent(key)
        if pkey is not None:
            var = janusdb.OBJECT_TYPES[pkey[0]]["var"]
            plinked = self.linked(pkey, 1)
            gkey = self.parent(pkey)    # its own owner (a request's session)
            if gkey is not None:
                plinked[janusdb.OBJECT_TYPES[gkey[0]]["var"]] = (gkey[0], self._fields(gkey), {})
            linked[var] = (pkey[0], self._fields(pkey), plinked)
        return janusdb.label(key[0], self._fields(key), linked)


def _global_address(filename, name):
    """Address of the file-static or global variable NAME of FILENAME (any
    file when FILENAME is None, except the files that have an entry of their
    own for NAME in janusdb.GLOBAL_TABLES)."""
    own = set(f for (f, var) in janusdb.GLOBAL_TABLES if f is not None and var == name)
    for sym in names.variables(name):
        if sym.symtab is None:
            continue
        base = os.path.basename(sym.symtab.filename)
        if (filename is None and base not in own) or base == filename:
            addr = names.variable_address(sym)
            if addr is not None:
                return addr
    return None


def _pointer_field(value, field):
    """The pointer FIELD of the struct VALUE as an integer, or None."""
    try:
        return int(value[field]) & ((1 << 64) - 1)
    except (gdb.error, RuntimeError, ValueError, OverflowError, TypeError):
        return None


def table_roots(types, mem, warnings, budget=MAX_OBJECTS):
    """{(struct, address): None} of the objects in Janus's global tables
    (sessions and their handles, rooms and their publishers)."""
    roots = {}

    def walk(table_addr, vtype, what, owner=None, back=None):
        vals, why = layouts.ghashtable_values(mem, table_addr, budget - len(roots))
        if why and why.startswith("cut"):
            warnings.append("%s: %s" % (what, why))
        kept = []
        for v in vals:
            if v and back is not None:
                value = _struct_value(types, vtype, v)
                if value is None or _pointer_field(value, back) != owner:
                    continue
            if v:
                roots.setdefault((vtype, v), None)
                kept.append(v)
        if len(kept) < len([v for v in vals if v]):
            warnings.append("%s: %d entries that do not point back (%s) ignored"
                            % (what, len([v for v in vals if v]) - len(kept), back))
        return kept

    for (filename, var), vtype in sorted(janusdb.GLOBAL_TABLES.items(),
                                         key=lambda kv: (kv[0][1], kv[0][0] or "")):
        addr = _global_address(filename, var)
        if addr is None:
            continue
        table = mem.u64(addr)
        if not table:
            continue
        for obj in walk(table, vtype, "%s: %s" % (filename, var)):
            for field, etype in janusdb.TABLE_FIELDS.get(vtype, {}).items():
                value = _struct_value(types, vtype, obj)
                if value is None or len(roots) >= budget:
                    continue
                sub = _pointer_field(value, field)
                if sub:
                    walk(sub, etype, "%s of %s 0x%x" % (field, vtype, obj), obj,
                         janusdb.TABLE_BACK_LINKS.get((vtype, field)))
    return roots


def _match(keys, types, wanted, found):
    for key in sorted(keys, key=lambda k: (k[0] not in janusdb.OBJECT_TYPES, k)):
        name, addr = key
        for off, field, _kind in types.lock_fields(name):
            lock = wanted.get(addr + off)
            if lock is not None and lock.addr not in found:
                found[lock.addr] = (key, field)


def table_locks(types, roots):
    """[(address, kind, None)] of every lock field of the objects ROOTS (from
    ``table_roots``): held ones are reported even when nobody waits."""
    out = []
    for name, addr in roots:
        for off, _field, kind in types.lock_fields(name):
            out.append((addr + off, kind, None))
    return out


def name_locks(locks, refs, types, mem, warnings, tables=None):
    """Set ``lock.obj`` and ``lock.name_text`` for the locks not named yet
    (not variables): first through the objects the frames point to, then, for locks still
    unnamed, through the objects of Janus's global tables (TABLES, from
    ``table_roots``).  Returns the Objects used."""
    objects = Objects(types, mem)
    wanted = dict((l.addr, l) for l in locks if l.obj is None and l.name_text is None)
    if not wanted:
        return objects
    found = {}
    _match(objects.expand(refs), types, wanted, found)
    if len(found) < len(wanted) and tables:
        _match(objects.expand(tables), types, wanted, found)
    # objects named by their owner (an RTP source by its mountpoint): the
    # owner may be reachable only through the global tables
    if tables and any("parent" in janusdb.OBJECT_TYPES.get(key[0], {}) and
                      objects.label(key) is None for key, _f in found.values()):
        objects.expand(tables)
    if objects.truncated:
        warnings.append("object naming stopped after %d objects" % MAX_OBJECTS)
    for laddr, (key, field) in found.items():
        lock = wanted[laddr]
        lab = objects.label(key)
        lock.obj = ObjectRef(key[0], key[1], field, janusdb.OBJECT_TYPES.get(key[0], {})
                             .get("var"), lab)
        lock.name_text = janusdb.object_name(key[0], field, lab, key[1])
    return objects



def name_queues(queues, refs, types, mem, warnings, tables=None, global_queues=(),
                objects=None):
    """Name the GAsyncQueues QUEUES (``model.QueueRef``) by what points to
    them: a global variable (GLOBAL_QUEUES, [(address, name, file)] from
    ``gdbtarget.global_locks``: ``janus_videoroom.c: messages``), else a
    GAsyncQueue pointer field of a Janus object reachable from the frames
    (REFS) or Janus's global tables (TABLES): ``participant->outbuf of
    participant 77 "bob" in AudioBridge room 4321``.  Pointers are read
    once per object and field, within the bounds of ``Objects.expand``;
    a queue nothing known points to keeps no name.  OBJECTS: the Objects
    ``name_locks`` used (its fields are read already)."""
    wanted = {}
    for q in queues:
        if q.name is None:
            wanted.setdefault(q.addr, []).append(q)
    if not wanted:
        return
    for vaddr, var, filename in global_queues:
        value = layouts.read_pointer(mem, vaddr)
        for q in wanted.pop(value, []) if value else ():
            q.name = q.variable = janusdb.global_name(var, filename)
    if not wanted:
        return
    objects = objects if objects is not None else Objects(types, mem)
    found = {}
    _match_queues(objects.expand(refs), types, mem, wanted, found)
    if len(found) < len(wanted) and tables:
        # the tables' objects themselves (table_roots walked the nested
        # tables: handles, participants): their links are not followed, so
        # thousands of handles cost one pointer read per queue field
        _match_queues(tables, types, mem, wanted, found)
    if objects.truncated:
        warnings.append("object naming stopped after %d objects" % MAX_OBJECTS)
    for qaddr, (key, field) in found.items():
        lab = objects.label(key)
        for q in wanted[qaddr]:
            q.obj = ObjectRef(key[0], key[1], field,
                              janusdb.OBJECT_TYPES.get(key[0], {}).get("var"), lab)
            q.name = janusdb.object_name(key[0], field, lab, key[1])


def _match_queues(keys, types, mem, wanted, found):
    """Add {queue address: (object key, field)} to FOUND for the objects KEYS
    whose GAsyncQueue pointer fields point to a queue WANTED."""
    for key in sorted(keys, key=lambda k: (k[0] not in janusdb.OBJECT_TYPES, k)):
        if len(found) >= len(wanted):
            return
        name, addr = key
        for off, field in types.queue_fields(name):
            value = layouts.read_pointer(mem, addr + off)
            if value in wanted and value not in found:
                found[value] = (key, field)
