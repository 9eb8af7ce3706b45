"""The wait-for graph: edges, cycles (deadlocks) and who is stuck behind what.

Pure Python over ``model.Thread`` and ``model.Lock``; no gdb here.
Nodes are thread numbers.  ``t -> u`` means thread t cannot go on until
thread u does something: u owns the lock t waits for, or t joins u.
"""

from ..model import RWLOCK_KINDS


class Edge(object):
    """t waits for u, through a lock (``lock`` id) or a join."""
    __slots__ = ("src", "dst", "kind", "lock")

    def __init__(self, src, dst, kind, lock=None):
        self.src = src
        self.dst = dst
        self.kind = kind      # "lock" or "join"
        self.lock = lock      # Lock for kind "lock"

    def to_dict(self):
        return {"from": self.src, "to": self.dst, "kind": self.kind,
                "lock": self.lock.id if self.lock is not None else None}


def build_edges(threads, locks):
    """Wait-for edges from each blocked thread to the thread it waits for."""
    by_lwp = dict((t.lwp, t) for t in threads)
    edges = []
    for t in threads:
        w = t.wait
        if w is None:
            continue
        if w.is_lock:
            lock = locks.get(w.lock_addr)
            if lock is not None and lock.kind in RWLOCK_KINDS:
                for dst in rwlock_blockers(w, lock):
                    edges.append(Edge(t.num, dst, "lock", lock))
            elif lock is not None and lock.owner_num is not None:
                edges.append(Edge(t.num, lock.owner_num, "lock", lock))
        elif w.kind == "join" and w.target_lwp in by_lwp:
            edges.append(Edge(t.num, by_lwp[w.target_lwp].num, "join"))
    return edges


def rwlock_blockers(wait, lock):
    """Thread numbers a rwlock waiter waits for, by its wait path: a writer
    waiting for readers waits for every reader shown (itself too, when it
    read-locked first); a writer behind a writer and a reader behind a
    pending writer wait for the writer that holds it or, in a read phase,
    for the writer waiting for the readers; a reader in a write phase for
    the writer that holds it."""
    path = wait.rwlock
    if path == "write-for-readers":
        return sorted(set(i.num for i in lock.reader_infs if i.num is not None))
    if lock.owner_num is not None:
        return [lock.owner_num]
    if path in ("write-for-writer", "read-for-pending-writer"):
        return list(lock.pending)
    return []


def successors(edges):
    succ = {}
    for e in edges:
        succ.setdefault(e.src, []).append(e)
    return succ


def strongly_connected(nodes, succ):
    """Tarjan's algorithm, iterative (no recursion limit on long chains)."""
    index = {}
    low = {}
    on_stack = set()
    stack = []
    result = []
    counter = [0]
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, pos = work.pop()
            if pos == 0:
                index[node] = low[node] = counter[0]
                counter[0] += 1
                stack.append(node)
                on_stack.add(node)
            outs = succ.get(node, [])
            recurse = False
            for i in range(pos, len(outs)):
                nxt = outs[i].dst
                if nxt not in index:
                    work.append((node, i + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                result.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return result


def find_cycles(nodes, edges):
    """Deadlocks: strongly connected groups of waiting threads.

    Returns a list of cycles, each a list of Edges in wait order starting at
    the lowest thread number; cycles are sorted by their first thread.
    """
    succ = successors(edges)
    cycles = []
    for comp in strongly_connected(sorted(nodes), succ):
        members = set(comp)
        if len(comp) == 1:
            self_edges = [e for e in succ.get(comp[0], []) if e.dst == comp[0]]
            if self_edges:
                cycles.append([self_edges[0]])
            continue
        cycles.append(_order_cycle(min(members), members, succ))
    cycles.sort(key=lambda c: c[0].src)
    return cycles


def _order_cycle(start, members, succ):
    """Shortest path of edges inside MEMBERS from START back to START.

    Members of the group that are not on that path (possible only when a
    thread waits for several threads at once) are appended with their first
    edge inside the group, so the whole deadlock is reported.
    """
    prev = {start: None}
    frontier = [start]
    closing = None
    while frontier and closing is None:
        nxt = []
        for node in frontier:
            for e in succ.get(node, []):
                if e.dst not in members:
                    continue
                if e.dst == start:
                    closing = e
                    break
                if e.dst not in prev:
                    prev[e.dst] = e
                    nxt.append(e.dst)
            if closing is not None:
                break
        frontier = nxt
    path = []
    if closing is not None:
        path.append(closing)
        node = closing.src
        while prev.get(node) is not None:
            path.append(prev[node])
            node = prev[node].src
        path.reverse()
    on_path = set(e.src for e in path)
    for node in sorted(members - on_path):
        inside = [e for e in succ.get(node, []) if e.dst in members]
        if inside:
            path.append(inside[0])
    return path


class Root(object):
    """What ends a chain of waits: a deadlock, a running holder, a dead owner."""
    __slots__ = ("kind", "thread", "lock", "cycle")

    def __init__(self, kind, thread=None, lock=None, cycle=None):
        self.kind = kind      # "cycle", "thread", "dead-owner", "leaked", "unknown-owner", "free"
        self.thread = thread  # thread number, for "thread"
        self.lock = lock      # Lock, for "dead-owner" / "unknown-owner" / "free"
        self.cycle = cycle    # index into the cycle list

    def key(self):
        return (self.kind, self.thread, self.lock.addr if self.lock is not None else None,
                self.cycle)


def trace_roots(threads, locks, edges, cycles):
    """For every blocked thread outside a cycle, what its chain of waits ends at:
    a cycle, a lock with no owner to follow, or a thread that waits for no
    lock (when the chain ends with joins, the last lock holder on it).

    Returns {thread num: Root}.  Walks are bounded by the thread count.
    """
    in_cycle = {}
    for i, cyc in enumerate(cycles):
        for e in cyc:
            in_cycle[e.src] = i
    succ = dict((e.src, e) for e in edges)
    by_num = dict((t.num, t) for t in threads)
    roots = {}
    limit = len(threads) + 1
    for t in threads:
        if t.num in in_cycle or t.wait is None:
            continue
        if not (t.wait.is_lock or t.wait.kind == "join"):
            continue
        node = t.num
        seen = set()
        root = None
        last_holder = None    # the last thread reached through a lock edge
        for _ in range(limit):
            if node in in_cycle:
                root = Root("cycle", cycle=in_cycle[node])
                break
            if node in seen:
                break
            seen.add(node)
            e = succ.get(node)
            if e is None:
                cur = by_num[node]
                if cur.wait is not None and cur.wait.is_lock:
                    # the chain ends at a lock with no owner to follow: it is the root
                    # (a thread behind it is one more of the crowd, not the cause)
                    lock = locks.get(cur.wait.lock_addr)
                    if lock is not None and lock.owner_alive is False:
                        root = Root("dead-owner", lock=lock)
                    elif lock is not None and lock.leaked and lock.owner_num is None:
                        root = Root("leaked", lock=lock)
                    elif lock is not None and lock.state == "free":
                        root = Root("free", lock=lock)
                    elif lock is not None:
                        root = Root("unknown-owner", lock=lock)
                elif node != t.num:
                    # a chain that ends in joins (a holder joins a thread that
                    # sleeps) is blocked by the holder the locks lead to
                    root = Root("thread", thread=last_holder if last_holder is not None
                                else node)
                break
            if e.kind == "lock":
                last_holder = e.dst
            node = e.dst
        if root is not None:
            roots[t.num] = root
    return roots


def stack_signature(thread, depth=3):
    """The first DEPTH application frames' function names, for grouping."""
    frames = thread.frames
    start = thread.site if thread.site is not None else 0
    names = []
    for fr in frames[start:]:
        if fr.system:
            continue
        names.append(fr.function or (fr.log_name + "?" if fr.log_name else "??"))
        if len(names) >= depth:
            break
    return tuple(names)


def group_threads(threads, key):
    """Group threads by KEY(thread), keeping first-seen order; returns lists."""
    groups = {}
    order = []
    for t in threads:
        k = key(t)
        if k not in groups:
            groups[k] = []
            order.append(k)
        groups[k].append(t)
    return [(k, groups[k]) for k in order]
