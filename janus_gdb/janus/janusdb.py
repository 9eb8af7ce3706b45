"""What janus-gdb knows about Janus: its objects, their locks, its threads.

Pure tables and formatting, no gdb.  Checked against Janus 1.1.2 and 1.4.1
(src/ice.h, src/janus.h, src/plugins/plugin.h, the VideoRoom, AudioBridge and
Streaming plugins): tests/test_janus_versions.py compares these tables with
the DWARF of both builds.
"""

import re

# struct type -> how a person calls it (the label itself: ``label()``)
#   var:    the variable name Janus's code uses for it (``handle->mutex``)
#   ids:    fields that identify it, strongest first ("*" marks a string field)
#   links:  pointer fields to follow to reach related objects:
#           field -> struct type (None: decided by a rule below)
OBJECT_TYPES = {
    "janus_session": {
        "var": "session", "ids": ("session_id",), "links": {"source": "janus_request"},
    },
    # janus.h: a session's ``source``, the request that created (or
    # claimed) it: its transport and that transport's connection
    # (``instance``); the transport is read from ``transport`` by objects.py
    "janus_request": {
        "var": "request", "ids": (), "links": {"instance": "janus_transport_session"},
        "parent": ("janus_session", "source"),
    },
    "janus_ice_handle": {
        "var": "handle", "ids": ("handle_id", "*opaque_id"),
        "links": {"session": "janus_session", "app_handle": "janus_plugin_session"},
    },
    "janus_plugin_session": {
        "var": "plugin_session", "ids": (),
        "links": {"gateway_handle": "janus_ice_handle", "plugin_handle": None},
    },
    "janus_videoroom": {
        "var": "room", "ids": ("room_id", "*room_id_str", "*room_name"), "links": {},
    },
    "janus_videoroom_session": {
        "var": "session", "ids": ("participant_type",),
        "links": {"handle": "janus_plugin_session", "participant": None},
    },
    "janus_videoroom_publisher": {
        "var": "participant", "ids": ("user_id", "*user_id_str", "*display", "room_id",
                                      "*room_id_str"),
        "links": {"room": "janus_videoroom", "session": "janus_videoroom_session"},
    },
    "janus_videoroom_subscriber": {
        "var": "subscriber", "ids": ("room_id", "*room_id_str", "pvt_id"),
        "links": {"room": "janus_videoroom", "session": "janus_videoroom_session"},
    },
    "janus_videoroom_publisher_stream": {
        "var": "ps", "ids": ("mindex", "*mid"),
        "links": {"publisher": "janus_videoroom_publisher"},
    },
    # 1.2.3+: a VideoRoom room's helper threads (room setting "threads")
    "janus_videoroom_helper": {
        "var": "helper", "ids": ("id",), "links": {"room": "janus_videoroom"},
    },
    "janus_streaming_mountpoint": {
        "var": "mountpoint", "ids": ("id", "*id_str", "*name", "streaming_source"),
        "links": {"source": None},
    },
    # mountpoint->source when mountpoint->streaming_source is RTP; named by
    # the mountpoint that points to it ("parent": struct, its link field)
    "janus_streaming_rtp_source": {
        "var": "source", "ids": (), "links": {},
        "parent": ("janus_streaming_mountpoint", "source"),
    },
    "janus_streaming_helper": {
        "var": "helper", "ids": ("id",), "links": {"mp": "janus_streaming_mountpoint"},
    },
    "janus_streaming_session": {
        "var": "session", "ids": (),
        "links": {"handle": "janus_plugin_session", "mountpoint": "janus_streaming_mountpoint"},
    },
    # janus_audiobridge.c (1.1.x): the code calls a room ``audiobridge``
    "janus_audiobridge_room": {
        "var": "audiobridge", "ids": ("room_id", "*room_id_str", "*room_name"), "links": {},
    },
    "janus_audiobridge_participant": {
        "var": "participant", "ids": ("user_id", "*user_id_str", "*display"),
        "links": {"room": "janus_audiobridge_room", "session": "janus_audiobridge_session"},
    },
    "janus_audiobridge_session": {
        "var": "session", "ids": (),
        "links": {"handle": "janus_plugin_session",
                  "participant": "janus_audiobridge_participant"},
    },
    # janus_textroom.c (1.1.x-1.4.x): the code calls a room ``textroom``
    "janus_textroom_room": {
        "var": "textroom", "ids": ("room_id", "*room_id_str", "*room_name"), "links": {},
    },
    "janus_textroom_participant": {
        "var": "participant", "ids": ("*username", "*display"),
        "links": {"room": "janus_textroom_room", "session": "janus_textroom_session"},
    },
    "janus_textroom_session": {
        "var": "session", "ids": (), "links": {"handle": "janus_plugin_session"},
    },
    # janus_sip.c: a session is its account (``account.identity``, the SIP
    # URI it registers); its sofia-sip stack (struct ssip_s, ``ssip_t``)
    # points back to it
    "janus_sip_session": {
        "var": "session", "ids": ("*account.identity", "*account.username"),
        "links": {"handle": "janus_plugin_session", "stack": "ssip_s"},
    },
    "ssip_s": {
        "var": "stack", "ids": (), "links": {"session": "janus_sip_session"},
    },
    "janus_nosip_session": {
        "var": "session", "ids": (), "links": {"handle": "janus_plugin_session"},
    },
    "janus_videocall_session": {
        "var": "session", "ids": ("*username",), "links": {"handle": "janus_plugin_session"},
    },
    "janus_echotest_session": {
        "var": "session", "ids": (), "links": {"handle": "janus_plugin_session"},
    },
    # janus_recordplay.c: the code calls a recording ``rec``
    "janus_recordplay_recording": {
        "var": "rec", "ids": ("id", "*name"), "links": {},
    },
    "janus_recordplay_session": {
        "var": "session", "ids": (),
        "links": {"handle": "janus_plugin_session", "recording": "janus_recordplay_recording"},
    },
    # janus_lua_data.h / janus_duktape_data.h: the script's session id
    "janus_lua_session": {
        "var": "session", "ids": ("id",), "links": {"handle": "janus_plugin_session"},
    },
    "janus_duktape_session": {
        "var": "session", "ids": ("id",), "links": {"handle": "janus_plugin_session"},
    },
    # the argument of a "pushevent" helper thread: names the thread by its session
    "janus_lua_async_event": {
        "var": "asev", "ids": (), "links": {"session": "janus_lua_session"},
    },
    "janus_duktape_async_event": {
        "var": "asev", "ids": (), "links": {"session": "janus_duktape_session"},
    },
    # janus_http.c: a long-poll session, by the core session's id
    "janus_http_session": {
        "var": "session", "ids": ("session_id",), "links": {},
    },
    # transport.h: the core-transport mapping (``ts->mutex``; WebSockets
    # locks it as ``transport->mutex`` and ``ws_client->ts->mutex``); it has
    # no id of its own: named by the Janus session whose source request
    # points to it (its transport's connection), else by its address
    "janus_transport_session": {
        "var": "ts", "ids": (), "links": {},
        "parent": ("janus_request", "instance"),
    },
}

# The plugin a janus_plugin_session belongs to, from the handle's ``app``
# (the plugin's static ``janus_plugin`` variable, e.g.
# ``janus_videoroom_plugin``, or its library libjanus_videoroom.so) ->
# the struct its ``plugin_handle`` points to.
PLUGIN_SESSIONS = {
    "janus_videoroom": "janus_videoroom_session",
    "janus_audiobridge": "janus_audiobridge_session",
    "janus_streaming": "janus_streaming_session",
    "janus_textroom": "janus_textroom_session",
    "janus_sip": "janus_sip_session",
    "janus_nosip": "janus_nosip_session",
    "janus_videocall": "janus_videocall_session",
    "janus_echotest": "janus_echotest_session",
    "janus_recordplay": "janus_recordplay_session",
    "janus_lua": "janus_lua_session",
    "janus_duktape": "janus_duktape_session",
}

# How a plugin's sessions are named in labels.
PLUGIN_TITLES = {
    "janus_textroom_session": "TextRoom", "janus_sip_session": "SIP",
    "janus_nosip_session": "NoSIP", "janus_videocall_session": "VideoCall",
    "janus_echotest_session": "EchoTest", "janus_recordplay_session": "Record&Play",
    "janus_lua_session": "Lua", "janus_duktape_session": "Duktape",
}

_LIB_RE = re.compile(r"^lib(janus_[a-z0-9]+)\.so")

# How a transport is named in labels: its module (the ``janus_transport``
# variable ``janus_websockets_transport``, or libjanus_websockets.so).
TRANSPORT_TITLES = {
    "janus_http": "HTTP", "janus_websockets": "WebSockets", "janus_pfunix": "Unix-socket",
    "janus_mqtt": "MQTT", "janus_rabbitmq": "RabbitMQ", "janus_nanomsg": "Nanomsg",
}


def transport_title(symbol, lib):
    """``WebSockets`` from the data SYMBOL a request's ``transport`` points
    to (``janus_websockets_transport``, exactly the variable) or else the
    basename LIB of the library it is in; None when neither names one."""
    return _module_entry(symbol, lib, "_transport", TRANSPORT_TITLES)


def plugin_session_type(symbol, lib):
    """The struct a plugin session's ``plugin_handle`` points to, from the
    data SYMBOL the handle's ``app`` points to (``janus_sip_plugin``, exactly
    the variable, not inside one) or else the basename LIB of the library it
    is in (``libjanus_sip.so.1``); None when neither names a known plugin."""
    return _module_entry(symbol, lib, "_plugin", PLUGIN_SESSIONS)


def _module_entry(symbol, lib, suffix, table):
    """TABLE's entry for the Janus module whose variable SYMBOL (exactly it:
    ``janus_sip`` + SUFFIX) or, failing that, whose library LIB
    (``libjanus_sip.so.1``) it is; None when neither is in TABLE."""
    if symbol and "+" not in symbol and symbol.endswith(suffix):
        got = table.get(symbol[:-len(suffix)])
        if got:
            return got
    m = _LIB_RE.match(lib or "")
    if m:
        return table.get(m.group(1))
    return None

# Global hash tables of Janus objects: (source file or None for any file,
# variable) -> value type.  They name locks of objects no frame points to
# (a leaked room->mutex).  VideoRoom's own ``sessions`` maps handles to
# janus_videoroom_session, hence the file for the core's.
GLOBAL_TABLES = {
    ("janus.c", "sessions"): "janus_session",
    (None, "rooms"): "janus_videoroom",
    # AudioBridge's own ``rooms``: a (None, var) entry never takes a file
    # that has an entry of its own
    ("janus_audiobridge.c", "rooms"): "janus_audiobridge_room",
    (None, "mountpoints"): "janus_streaming_mountpoint",
    ("janus_textroom.c", "rooms"): "janus_textroom_room",
    ("janus_recordplay.c", "recordings"): "janus_recordplay_recording",
    # each plugin's own sessions (keyed by the janus_plugin_session)
    ("janus_textroom.c", "sessions"): "janus_textroom_session",
    ("janus_sip.c", "sessions"): "janus_sip_session",
    ("janus_nosip.c", "sessions"): "janus_nosip_session",
    ("janus_videocall.c", "sessions"): "janus_videocall_session",
    ("janus_echotest.c", "sessions"): "janus_echotest_session",
    ("janus_recordplay.c", "sessions"): "janus_recordplay_session",
    ("janus_lua.c", "lua_sessions"): "janus_lua_session",
    ("janus_duktape.c", "duktape_sessions"): "janus_duktape_session",
    ("janus_http.c", "sessions"): "janus_http_session",
}

# Hash-table fields of objects: struct -> {field: value type}.
TABLE_FIELDS = {
    "janus_session": {"ice_handles": "janus_ice_handle"},
    "janus_videoroom": {"participants": "janus_videoroom_publisher"},
    "janus_audiobridge_room": {"participants": "janus_audiobridge_participant"},
    "janus_textroom_room": {"participants": "janus_textroom_participant"},
}

# The field of a table's value that points back to the table's owner (Janus
# sets handle->session and participant->room before inserting): a value that
# does not point back is garbage (a corrupt or foreign table), not an object.
TABLE_BACK_LINKS = {
    ("janus_session", "ice_handles"): "session",
    ("janus_videoroom", "participants"): "room",
    ("janus_audiobridge_room", "participants"): "room",
    ("janus_textroom_room", "participants"): "room",
}

# janus_streaming_mountpoint.streaming_source -> struct of .source
# (janus_streaming_source_rtp; a file source has no lock)
STREAMING_SOURCES = {2: "janus_streaming_rtp_source"}

# janus_videoroom_session.participant_type -> struct of .participant
PARTICIPANT_TYPES = {1: "janus_videoroom_subscriber", 2: "janus_videoroom_publisher"}

# Entry functions of Janus's threads -> role (core files carry no thread names).
ENTRY_ROLES = {
    "janus_ice_handle_thread": "hloop",
    "janus_ice_static_event_loop_thread": "event loop",
    "janus_transport_task": "request worker",
    "janus_transport_requests": "sessions requests",
    "janus_sessions_watchdog": "session watchdog",
    "janus_videoroom_handler": "videoroom handler",
    "janus_videoroom_rtp_forwarder_rtcp_thread": "videoroom rtcp forwarder",
    # the RTP forwarders' RTCP loop moved to the core (rtpfwd.c, 1.1.4), and
    # VideoRoom rooms may run helper threads (room setting "threads", 1.2.3)
    "janus_rtp_forwarder_rtcp_thread": "rtcp forwarder",
    "janus_videoroom_helper_thread": "videoroom helper",
    "janus_videoroom_remote_publisher_thread": "videoroom remote publisher",
    "janus_log_thread": "log",
    "janus_events_thread": "events",
    "janus_http_timer": "http timer",
    "janus_streaming_relay_thread": "streaming relay",
    "janus_streaming_handler": "streaming handler",
    "janus_streaming_ondemand_thread": "streaming on-demand",
    "janus_streaming_filesource_thread": "streaming file source",
    "janus_streaming_helper_thread": "streaming helper",
    "janus_audiobridge_handler": "audiobridge handler",
    "janus_audiobridge_mixer_thread": "audiobridge mixer",
    "janus_audiobridge_participant_thread": "audiobridge participant",
    "janus_audiobridge_plainrtp_relay_thread": "audiobridge plain rtp relay",
    "janus_textroom_handler": "textroom handler",
    "janus_sip_handler": "sip handler",
    "janus_sip_sofia_thread": "sip sofia loop",
    "janus_sip_relay_thread": "sip relay",
    "janus_nosip_handler": "nosip handler",
    "janus_nosip_relay_thread": "nosip relay",
    "janus_videocall_handler": "videocall handler",
    "janus_echotest_handler": "echotest handler",
    "janus_recordplay_handler": "recordplay handler",
    "janus_recordplay_playout_thread": "recordplay playout",
    "janus_lua_scheduler": "lua scheduler",
    "janus_lua_timer": "lua timer",
    "janus_lua_async_event_helper": "lua pushevent",
    "janus_duktape_scheduler": "duktape scheduler",
    "janus_duktape_timer": "duktape timer",
    "janus_duktape_async_event_helper": "duktape pushevent",
    "janus_websockets_thread": "websockets",
    "janus_pfunix_thread": "unix sockets",
    "main": "main",
}

# Entry functions whose argument is the object the thread serves -> (struct,
# variables that hold it, strongest first; ``data`` is the entry's argument,
# link field to follow or None): the role's detail is the object's label
# (``audiobridge mixer (AudioBridge room 4321 "lobby")``).  As in
# janus_audiobridge.c and janus_streaming.c (1.1.x).
THREAD_OBJECTS = {
    "janus_audiobridge_mixer_thread": ("janus_audiobridge_room", ("audiobridge", "data"), None),
    "janus_audiobridge_participant_thread": ("janus_audiobridge_participant",
                                             ("participant", "data"), None),
    "janus_audiobridge_plainrtp_relay_thread": ("janus_audiobridge_participant",
                                                ("participant", "data"), None),
    "janus_streaming_relay_thread": ("janus_streaming_mountpoint", ("mountpoint", "data"), None),
    "janus_streaming_filesource_thread": ("janus_streaming_mountpoint",
                                          ("mountpoint", "data"), None),
    "janus_streaming_ondemand_thread": ("janus_streaming_session", ("session", "data"),
                                        "mountpoint"),
    "janus_streaming_helper_thread": ("janus_streaming_helper", ("helper", "data"), None),
    "janus_videoroom_helper_thread": ("janus_videoroom_helper", ("helper", "data"), None),
    # janus_sip.c, janus_nosip.c, janus_recordplay.c, janus_lua.c, janus_duktape.c
    "janus_sip_sofia_thread": ("janus_sip_session", ("session", "user_data"), None),
    "janus_sip_relay_thread": ("janus_sip_session", ("session", "data"), None),
    "janus_nosip_relay_thread": ("janus_nosip_session", ("session", "data"), None),
    "janus_recordplay_playout_thread": ("janus_recordplay_session", ("session", "sessiondata"),
                                        "recording"),
    "janus_lua_async_event_helper": ("janus_lua_async_event", ("asev", "data"), "session"),
    "janus_duktape_async_event_helper": ("janus_duktape_async_event", ("asev", "data"),
                                         "session"),
}

# Thread names Janus and glib give (live processes only) -> role.  Not the
# program's own name ("janus"): every thread whose name glib could not set
# (16+ characters before glib 2.86: "sessions requests", "timeout watchdog")
# keeps it; only the process's first thread (LWP == PID) is "main".
NAME_ROLES = (
    (re.compile(r"^hloop\b"), "hloop"),
    (re.compile(r"^timeout watchdog"), "session watchdog"),
    (re.compile(r"^sessions requests"), "sessions requests"),
    (re.compile(r"^pool-"), "request worker"),
    (re.compile(r"^videoroom handler"), "videoroom handler"),
    (re.compile(r"^videoroom rtcpfw"), "videoroom rtcp forwarder"),
    (re.compile(r"^rtcpfwd$"), "rtcp forwarder"),
    (re.compile(r"^vhelp \d"), "videoroom helper"),
    # 16+ characters: unset before glib 2.86, cut to 15 after
    (re.compile(r"^audiobridge han"), "audiobridge handler"),
    (re.compile(r"^streaming handl"), "streaming handler"),
    (re.compile(r"^textroom handle"), "textroom handler"),
    (re.compile(r"^sip handler"), "sip handler"),
    (re.compile(r"^siprtp "), "sip relay"),
    (re.compile(r"^sip "), "sip sofia loop"),
    (re.compile(r"^nosip handler"), "nosip handler"),
    (re.compile(r"^nosiprtp "), "nosip relay"),
    (re.compile(r"^videocall handl"), "videocall handler"),
    (re.compile(r"^echotest handle"), "echotest handler"),
    (re.compile(r"^recordplay hand"), "recordplay handler"),
    (re.compile(r"^recordplay play"), "recordplay playout"),
    (re.compile(r"^lua scheduler"), "lua scheduler"),
    (re.compile(r"^lua timer"), "lua timer"),
    (re.compile(r"^lua pushevent"), "lua pushevent"),
    (re.compile(r"^duktape schedul"), "duktape scheduler"),
    (re.compile(r"^duktape timer"), "duktape timer"),
    (re.compile(r"^duktape pushev"), "duktape pushevent"),
    (re.compile(r"^ws thread"), "websockets"),
    (re.compile(r"^pfunix thread"), "unix sockets"),
    (re.compile(r"^janus events"), "events"),
    (re.compile(r"^http timer"), "http timer"),
    (re.compile(r"^(log|janus-log)$"), "log"),
    (re.compile(r"^MHD-"), "http"),
    (re.compile(r"^SCTP\b"), "sctp"),
    (re.compile(r"^gmain$"), "glib main context"),
    (re.compile(r"^gdbus$"), "glib dbus"),
    (re.compile(r"^pool-spawner$"), "glib pool spawner"),
)

# Libraries whose threads inherit a name that is not theirs (Linux threads
# start with their creator's name: libsofia-sip-ua's own threads are called
# "sip <user>" like the sofia loop that starts them): their library decides
# before the name.
LIB_ROLES_FIRST = (
    ("libsofia-sip", "sofia-sip"),
)

# Libraries whose own threads have a role of their own.
LIB_ROLES = (
    ("libmicrohttpd", "http"),
    ("libglib", "glib"),
    ("libnice", "ice"),
    ("libcurl", "curl"),
    ("libwebsockets", "websockets"),
    ("libusrsctp", "sctp"),
)


def role_of(entry, name, entry_lib=None, all_system=False, idle_pool=False, is_main=False):
    """The thread's role, from its entry function, its library or its name;
    IS_MAIN: it is the process's first thread (its LWP is the PID)."""
    if is_main:
        return "main"
    if entry in ENTRY_ROLES:
        return ENTRY_ROLES[entry]
    if idle_pool:
        return "request worker"  # an idle GThreadPool worker: its task returned
    if entry_lib:
        for prefix, role in LIB_ROLES_FIRST:
            if entry_lib.startswith(prefix):
                return role
    if name:
        for rx, role in NAME_ROLES:
            if rx.search(name):
                return role
    if entry_lib:
        for prefix, role in LIB_ROLES:
            if entry_lib.startswith(prefix):
                return role
    if entry and entry.startswith("MHD_"):
        return "http"
    if all_system:
        return "glib"
    return None


# Janus functions that serve one API request (exported: named even in a
# stripped janus).  Called straight from a thread's entry function (Janus's
# static janus_transport_requests, unnamed when stripped), they run in the
# one thread that dispatches every request; from janus_transport_task, in a
# request worker of the GThreadPool.
REQUEST_FUNCTIONS = ("janus_process_incoming_request", "janus_process_incoming_admin_request")


def role_from_stack(app_frames):
    """(role, "from its stack") from the application frames of a complete
    stack, newest first, each (function or None, library or None for the
    executable): a request function called by the entry function itself is
    the dispatcher, called by janus_transport_task a worker; else (None,
    None)."""
    for i, (function, _lib) in enumerate(app_frames):
        if function not in REQUEST_FUNCTIONS:
            continue
        callers = app_frames[i + 1:]
        if any(c[0] == "janus_transport_task" for c in callers):
            return "request worker", "from its stack"
        if len(callers) == 1 and callers[0][1] is None:
            return "sessions requests", "from its stack"
        return None, None
    return None, None


def handle_from_name(name):
    """``handle 424242 (from the thread name)`` from an hloop thread's name,
    or with its id cut short (``hloop 371669259`` for handle 3716692597610646:
    the kernel keeps 15 characters of a name) ``handle 371669259… (from the
    thread name, truncated)``; None when the name holds no id."""
    if not name or not name.startswith("hloop "):
        return None
    digits = name[6:].strip()
    if not digits.isdigit():
        return None
    if len(name) >= 15:
        return "handle %s\u2026 (from the thread name, truncated)" % digits
    return "handle %s (from the thread name)" % digits


def lock_path(type_name, field):
    """``participant->streams_mutex``: how Janus's code writes the lock."""
    spec = OBJECT_TYPES.get(type_name)
    var = spec["var"] if spec else "obj"
    if type_name == "janus_videoroom_session":
        var = "videoroom session"
    elif type_name == "janus_audiobridge_session":
        var = "audiobridge session"
    elif type_name == "janus_streaming_session":
        var = "streaming session"
    return "%s->%s" % (var, field)


def _q(text, limit=64):
    if text is None:
        return ""
    text = text if len(text) <= limit else text[:limit] + "..."
    return ' "%s"' % text


def label(type_name, fields, linked):
    """Label of an object from the FIELDS read from it and the labels of LINKED
    objects ({field: (type, fields)}), e.g. ``publisher 5678 "alice" in room 1234``."""
    f = fields
    if type_name == "janus_ice_handle":
        return "handle %s%s" % (_id(f.get("handle_id")),
                                " (opaque_id%s)" % _q(f.get("opaque_id"))
                                if f.get("opaque_id") else "")
    if type_name == "janus_session":
        return "session %s" % _id(f.get("session_id"))
    if type_name == "janus_videoroom":
        return "room %s%s" % (_room(f), _q(f.get("room_name")))
    if type_name == "janus_videoroom_publisher":
        user = f.get("user_id_str") or _id(f.get("user_id"))
        return "publisher %s%s%s" % (user, _q(f.get("display")), _in_room(f, linked))
    if type_name == "janus_videoroom_subscriber":
        pvt = " (private id %s)" % f["pvt_id"] if f.get("pvt_id") else ""
        return "subscriber%s%s" % (pvt, _in_room(f, linked))
    if type_name == "janus_videoroom_publisher_stream":
        text = "stream #%s" % _id(f.get("mindex"))
        if f.get("mid"):
            text += " (mid%s)" % _q(f.get("mid"), 16)
        pub = linked.get("publisher")
        if pub:
            text += " of " + label(pub[0], pub[1], pub[2] if len(pub) > 2 else {})
        return text
    if type_name == "janus_videoroom_session":
        h = linked.get("handle")
        if h and h[2] and h[2].get("gateway_handle"):
            gw = h[2]["gateway_handle"]
            return "videoroom session of " + label(gw[0], gw[1], {})
        return "videoroom session"
    if type_name == "janus_streaming_mountpoint":
        return "mountpoint %s%s" % (f.get("id_str") or _id(f.get("id")), _q(f.get("name")))
    if type_name == "janus_streaming_rtp_source":
        mp = linked.get("mountpoint")
        if mp:
            return "RTP source of " + label(mp[0], mp[1], {})
        return None
    if type_name == "janus_streaming_helper":
        text = "helper #%s" % _id(f.get("id"))
        mp = linked.get("mp")
        if mp:
            text += " of " + label(mp[0], mp[1], {})
        return text
    if type_name == "janus_videoroom_helper":
        text = "VideoRoom helper #%s" % _id(f.get("id"))
        room = linked.get("room")
        if room:
            text += " of " + label(room[0], room[1], {})
        return text
    if type_name == "janus_audiobridge_room":
        return "AudioBridge room %s%s" % (_room(f), _q(f.get("room_name")))
    if type_name == "janus_audiobridge_participant":
        user = f.get("user_id_str") or _id(f.get("user_id"))
        room = linked.get("room")
        where = ""
        if room and (room[1].get("room_id") or room[1].get("room_id_str")):
            where = " in AudioBridge room %s" % _room(room[1])
        return "participant %s%s%s" % (user, _q(f.get("display")), where)
    if type_name == "janus_textroom_room":
        return "TextRoom room %s%s" % (_room(f), _q(f.get("room_name")))
    if type_name == "janus_textroom_participant":
        text = "participant%s" % (_q(f.get("username")) or " ?")
        if f.get("display") and f.get("display") != f.get("username"):
            text += " (display%s)" % _q(f.get("display"))
        room = linked.get("room")
        if room and (room[1].get("room_id") or room[1].get("room_id_str")):
            text += " in TextRoom room %s" % _room(room[1])
        return text
    if type_name == "janus_recordplay_recording":
        return "Record&Play recording %s%s" % (_id(f.get("id")), _q(f.get("name")))
    if type_name == "ssip_s":
        s = linked.get("session")
        if s:
            return "SIP stack of " + label(s[0], s[1], s[2] if len(s) > 2 else {})
        return None
    if type_name == "janus_http_session":
        return "HTTP session %s" % _id(f.get("session_id"))
    if type_name == "janus_transport_session":
        # through its owner: the source request of a Janus session
        req = linked.get("request")
        sess = req[2].get("session") if req and len(req) > 2 else None
        if not sess or sess[1].get("session_id") is None:
            return None
        title = req[1].get("transport")
        return "%stransport session of session %s" % (
            title + " " if title else "", _id(sess[1].get("session_id")))
    if type_name in PLUGIN_TITLES:
        text = "%s session" % PLUGIN_TITLES[type_name]
        if type_name in ("janus_lua_session", "janus_duktape_session") and f.get("id"):
            text += " %s" % f["id"]
        h = linked.get("handle")
        if h and h[2] and h[2].get("gateway_handle"):
            text += " of handle %s" % _id(h[2]["gateway_handle"][1].get("handle_id"))
        who = (f.get("account.identity") or f.get("account.username")
               if type_name == "janus_sip_session" else f.get("username"))
        return text + _q(who)
    if type_name in ("janus_audiobridge_session", "janus_streaming_session"):
        what = "audiobridge" if type_name == "janus_audiobridge_session" else "streaming"
        h = linked.get("handle")
        if h and h[2] and h[2].get("gateway_handle"):
            gw = h[2]["gateway_handle"]
            return "%s session of %s" % (what, label(gw[0], gw[1], {}))
        return "%s session" % what
    return None


def _id(value):
    return "?" if value is None else str(value)


def _room(f):
    return f.get("room_id_str") or _id(f.get("room_id"))


def _in_room(f, linked):
    room = linked.get("room")
    if room and (room[1].get("room_id") or room[1].get("room_id_str")):
        return " in room %s" % _room(room[1])
    if f.get("room_id") or f.get("room_id_str"):
        return " in room %s" % _room(f)
    return ""


def object_name(obj_type, field, obj_label, addr):
    """``participant->streams_mutex of publisher 5678 "alice" in room 1234``."""
    path = lock_path(obj_type, field)
    if obj_label:
        return "%s of %s" % (path, obj_label)
    return "%s of %s 0x%x" % (path, obj_type, addr)


def global_name(symbol, filename):
    """``janus_videoroom.c: rooms_mutex`` (the core and each plugin have their own
    ``sessions_mutex``: the file tells them apart)."""
    return "%s: %s" % (filename, symbol) if filename else symbol
