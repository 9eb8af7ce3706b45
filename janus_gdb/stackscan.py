"""What each thread's frames say beyond registers: lock claims read from
the source, the objects the frames point to, and the handle of a handle
loop thread.  Runs while the thread is selected (gdb.Frame objects are
only valid then); stores plain data on the ``model.Snapshot``.
"""

import gdb  # pylint: disable=import-error

from . import lockset
from . import objects

# Application frames analysed per thread (the newest ones hold the most).
MAX_SCANNED_FRAMES = 48
# Frames whose variables are scanned for object references.
MAX_REF_FRAMES = 16
FUTEX_SYSCALL = 202  # x86_64; elsewhere every thread's references are read


class Scanner(object):
    """Callable for ``target.snapshot_threads``; one per analysis."""

    def __init__(self, kind_of_type):
        self.sources = lockset.Sources()
        self.types = objects.TypeCache(kind_of_type)
        self.kind_of_type = kind_of_type
        self.frame_cache = {}

    def __call__(self, snap, gframes):
        claims = []
        refs = {}
        scanned = 0
        # The objects a thread points to name the locks it waits for and
        # break ties between claimants: only threads in a futex wait (lock
        # waiters) or whose source holds a lock need them; a thousand idle
        # handle loops in poll do not.
        sysno = snap.regs.get("sysno")
        refs_wanted = sysno is None or sysno == FUTEX_SYSCALL
        ref_frames = []
        for info, frame in zip(snap.frames, gframes):
            if info.system or info.line is None:
                continue
            scanned += 1
            if scanned > MAX_SCANNED_FRAMES:
                break
            got = lockset.frame_claims(frame, info, self.sources, self.kind_of_type,
                                       self.frame_cache)
            if got is None:
                snap.unanalysed += 1
            else:
                snap.analysed = True
                snap.analysed_levels.add(info.level)
                claims.extend(got)
            if scanned <= MAX_REF_FRAMES:
                ref_frames.append((frame, info.level))
            if info.function == "janus_ice_handle_thread":
                snap.role_detail = self._handle_of(frame)
        if refs_wanted or claims:
            for frame, level in ref_frames:
                objects.frame_refs(frame, level, refs, self.types)
        snap.claims = claims
        snap.refs = refs

    def _handle_of(self, frame):
        """``handle 424242`` from the handle loop's argument."""
        t = self.types.get("janus_ice_handle")
        if t is None:
            return None
        for var in ("handle", "data"):
            try:
                v = frame.read_var(var)
                if v.is_optimized_out:
                    continue
                hid = int(v.cast(t.pointer()).dereference()["handle_id"])
                return "handle %d" % hid
            except (gdb.error, RuntimeError, ValueError, OverflowError, TypeError):
                continue
        return None
