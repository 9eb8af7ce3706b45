"""Unit tests of janus_gdb.csource.locksets on C++: member lock calls, RAII guards
released at the end of their block, std::lock, reader locks, lambdas; and
of the std::thread labels (janus_gdb.analysis.classify).

As in test_source.py, each snippet's function starts on line 1 and the line
marked ``HERE`` is the current line.
"""

import os
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from janus_gdb.analysis import classify  # noqa: E402
from janus_gdb.model import FrameInfo  # noqa: E402
from janus_gdb.csource.locksets import LazySourceFile, SourceFile  # noqa: E402


def at(code, marker="HERE", start=1, lazy=False):
    code = textwrap.dedent(code).lstrip("\n")
    lines = code.split("\n")
    cur = [n for n, line in enumerate(lines, 1) if marker in line]
    assert len(cur) == 1, "exactly one %s marker" % marker
    return (LazySourceFile if lazy else SourceFile)(code).held_at(start, cur[0])


def held(code, **kw):
    res = at(code, **kw)
    assert res.valid, res.why
    return [h.expr for h in res.held]


def line_of(code, needle):
    code = textwrap.dedent(code).lstrip("\n")
    hits = [n for n, line in enumerate(code.split("\n"), 1) if needle in line]
    assert len(hits) == 1
    return hits[0]


# -- guards ---------------------------------------------------------------

def test_lock_guard_holds_until_its_block_ends():
    code = """
        void f() {
            {
                std::lock_guard<std::mutex> g(a);   // A
                work();                             // IN
            }
            std::lock_guard g{b};                   // CTAD, braces
            wait(); // HERE
        }
    """
    assert held(code) == ["b"]
    assert held(code, marker="IN") == ["a"]
    res = at(code, marker="IN")
    assert res.held[0].line == line_of(code, "// A") and res.held[0].guard == "g"


def test_guard_construction_on_the_current_line_is_in_progress():
    assert held("""
        void f() {
            std::lock_guard<std::mutex> first(a);
            std::lock_guard<std::mutex> second(b); // HERE
        }
    """) == ["a"]


def test_unique_lock_variants():
    code = """
        void f() {
            std::unique_lock<std::mutex> d(m1, std::defer_lock);
            std::unique_lock<std::mutex> t(m2, std::try_to_lock);
            std::unique_lock<std::timed_mutex> w(m3, std::chrono::seconds(1));
            std::unique_lock<std::recursive_mutex> lk(m4);
            lk.unlock();
            d.lock();
            auto x = std::unique_lock<std::mutex>(m5);
            std::unique_lock<std::mutex> moved(std::move(x));
            wait(); // HERE
        }
    """
    res = at(code)
    assert [(h.expr, h.trylock) for h in res.held] == [
        ("m2", True), ("m3", True), ("m1", False), ("m5", False)]


def test_guard_release_keeps_the_mutex_locked_after_the_block():
    assert held("""
        void f() {
            {
                std::unique_lock<std::mutex> lk(m);
                lk.release();
            }
            wait(); // HERE
        }
    """) == ["m"]


def test_scoped_lock_takes_several_and_adopts():
    assert held("""
        void f() {
            std::scoped_lock both(a, this->b);
            std::scoped_lock adopted(std::adopt_lock, c);
            wait(); // HERE
        }
    """) == ["a", "this->b", "c"]


def test_std_lock_then_adopted_guards_released_at_block_end():
    code = """
        void f() {
            {
                std::lock(a, b);                                 // L
                std::lock_guard<std::mutex> ga(a, std::adopt_lock);
                std::lock_guard<std::mutex> gb(b, std::adopt_lock);
                work(); // IN
            }
            wait(); // HERE
        }
    """
    res = at(code, marker="IN")
    assert [(h.expr, h.line) for h in res.held] == [("a", line_of(code, "// L")),
                                                    ("b", line_of(code, "// L"))]
    assert held(code) == []


def test_cppreference_patterns():
    # guards named `lock`, const guards, std::lock of deferred unique_locks
    code = """
        void assign_lunch_partner(Employee &e1, Employee &e2) {
            const std::lock_guard<std::mutex> lock(g_i_mutex);
            {
                std::unique_lock<std::mutex> lk1(e1.m, std::defer_lock);
                std::unique_lock<std::mutex> lk2(e2.m, std::defer_lock);
                std::lock(lk1, lk2);                             // L
                work(); // IN
            }
            std::scoped_lock lk(e1.m, e2.m);
            wait(); // HERE
        }
    """
    res = at(code, marker="IN")
    assert [(h.expr, h.line, h.guard) for h in res.held] == [
        ("g_i_mutex", 2, "lock"), ("e1.m", line_of(code, "// L"), "lk1"),
        ("e2.m", line_of(code, "// L"), "lk2")]
    assert held(code) == ["g_i_mutex", "e1.m", "e2.m"]


def test_break_out_of_a_guarded_loop_body_releases():
    assert held("""
        void f() {
            for (;;) {
                std::lock_guard<std::mutex> g(m);
                if (done)
                    break;
            }
            wait(); // HERE
        }
    """) == []


def test_return_releases_and_guards_are_not_lock_wrappers():
    sf = SourceFile(textwrap.dedent("""
        void locked_work(std::mutex *m) {
            std::lock_guard<std::mutex> g(*m);
            work();
        }
        void take(std::mutex *m) {
            m->lock();
        }
    """).lstrip("\n"))
    assert sf.wrapper_kind("locked_work") is None
    assert sf.wrapper_kind("take") == "lock"


# -- member calls ----------------------------------------------------------

def test_member_lock_unlock_through_objects_and_pointers():
    code = """
        void Account::f(Account &to) {
            mtx_.lock();
            this->mtx_.unlock();
            to.mtx_.lock();
            p->lock();
            (*q).lock();
            s.m.try_lock();
            sm.lock_shared();
            wait(); // HERE
        }
    """
    res = at(code)
    assert [(h.expr, h.trylock, h.mode) for h in res.held] == [
        ("to.mtx_", False, None), ("*p", False, None), ("*q", False, None),
        ("s.m", True, None), ("sm", False, "read")]


def test_unlock_of_a_callers_lock_is_released():
    res = at("""
        void f(std::mutex *m) {
            m->unlock();
            wait(); // HERE
        }
    """)
    assert res.held == [] and [h.expr for h in res.released] == ["*m"]


def test_not_mutex_calls_are_ignored():
    assert held("""
        void f() {
            auto sp = wp.lock();
            return_value = q.lock();
            get()->lock();
            a.lock(1);
            lock(x);
            unlock(y);
            wait(); // HERE
        }
    """) == []


def test_shared_lock_is_a_reader_lock():
    res = at("""
        void f() {
            std::shared_lock<std::shared_mutex> r(table);
            std::unique_lock<std::shared_mutex> w(other);
            wait(); // HERE
        }
    """)
    assert [(h.expr, h.mode) for h in res.held] == [("table", "read"), ("other", None)]


# -- lambdas ----------------------------------------------------------------

LAMBDAS = """
    int main() {
        std::lock_guard<std::mutex> outer(m);
        std::thread t([&] {
            std::lock_guard<std::mutex> g(inner);
            wait(); // IN_THREAD
        });
        auto f = [&](int x) mutable -> void {
            other.lock();
            wait(); // IN_F
        };
        t.join(); // MAIN
    }
"""


def test_the_enclosing_function_skips_lambda_bodies():
    assert held(LAMBDAS, marker="MAIN") == ["m"]


def test_a_frame_in_a_lambda_walks_the_lambda():
    res = at(LAMBDAS, marker="IN_THREAD")
    assert [h.expr for h in res.held] == ["inner"]
    assert res.lambda_line == line_of(LAMBDAS, "std::thread t(")
    # gdb's line of a lambda: its '[' line (not a function head: `auto f =`)
    f_line = line_of(LAMBDAS, "auto f =")
    for lazy in (False, True):
        res = at(LAMBDAS, marker="IN_F", start=f_line, lazy=lazy)
        assert res.valid and [h.expr for h in res.held] == ["other"], res
        assert res.lambda_line == f_line


def test_inlined_frame_without_a_start_line_walks_the_body_around_it():
    for lazy in (False, True):
        assert held(LAMBDAS, marker="MAIN", start=None, lazy=lazy) == ["m"]
        assert held(LAMBDAS, marker="IN_F", start=None, lazy=lazy) == ["other"]


def test_in_class_member_function_found_by_line():
    code = """
        class Account {
        public:
            void transfer(Account &to) {
                std::lock_guard<std::mutex> mine(this->mtx_);
                std::lock_guard<std::mutex> theirs(to.mtx_); // HERE
            }
            std::mutex mtx_;
        };
    """
    assert held(code, start=None, lazy=True) == ["this->mtx_"]


def test_c_macro_blocks_are_not_functions():
    # a C macro followed by a block inside a function is no function of its own
    assert held("""
        void f(void) {
            janus_mutex_lock(&m);
            FOREACH(item, list) {
                work(); // HERE
            }
        }
    """, start=None) == ["&m"]


def test_subscripts_and_attributes_are_not_lambdas():
    assert held("""
        void f() {
            [[maybe_unused]] int x = arr[i];
            std::lock_guard<std::mutex> g(locks[i]);
            int y[] = {[0] = 1};
            wait(); // HERE
        }
    """) == ["locks[i]"]


def test_try_catch():
    code = """
        void f() {
            try {
                std::lock_guard<std::mutex> g(a);
                risky();
            } catch (const std::exception &e) {
                b.lock();
            }
            wait(); // HERE
        }
    """
    res = at(code)
    assert [(h.expr, h.conditional) for h in res.held] == [("b", True)]


def test_c_code_is_unchanged_by_cxx_words():
    # identifiers named like C++ members in C
    assert held("""
        void f(struct ops *o) {
            o->lock(o);
            lock(&m);
            pthread_mutex_lock(&m);
            wait(); // HERE
        }
    """) == ["&m"]


# -- std::thread labels ------------------------------------------------------

def frames(*specs):
    out = []
    for level, (name, fname, line, lib, system) in enumerate(specs):
        out.append(FrameInfo(level, 0x1000 + level, name, fname, line, lib, system))
    return out


LIBC = ("__libc_pause", None, None, "libc.so.6", True)
STD_RUN = ("std::thread::_State_impl<std::thread::_Invoker<std::tuple<main()::<lambda(int)>, "
           "int> > >::_M_run", "std_thread.h", 210, None, True)
NATIVE = (None, None, None, "libstdc++.so.6", True)
START = ("start_thread", "pthread_create.c", 442, "libc.so.6", True)


def test_label_of_a_lambda_thread():
    f = frames(LIBC, ("operator()", "deadlock.cpp", 21, None, False), STD_RUN, NATIVE, START)
    assert classify.entry_function(f, False) == "std::thread lambda in main() (deadlock.cpp:21)"


def test_label_of_a_function_thread():
    f = frames(LIBC, ("helper", "w.cpp", 9, None, False), ("worker", "w.cpp", 30, None, False),
               NATIVE, START)
    assert classify.entry_function(f, False) == "std::thread worker"


def test_label_names_where_the_lambda_starts_when_known():
    f = frames(LIBC, ("operator()", "deadlock.cpp", 24, None, False), STD_RUN, NATIVE, START)
    assert classify.entry_function(f, False, {1: 21}) == \
        "std::thread lambda in main() (deadlock.cpp:21)"


def test_label_when_the_lambda_frame_is_gone():
    assert classify.entry_function(frames(LIBC, STD_RUN, NATIVE, START), False) == \
        "std::thread lambda in main()"
    assert classify.entry_function(frames(LIBC, NATIVE, START), False).startswith("std::thread")


def test_label_is_bounded():
    huge = ("std::thread::_State_impl<std::thread::_Invoker<std::tuple<%s()::<lambda()> > >"
            "::_M_run" % ("n" * 5000), "std_thread.h", 210, None, True)
    f = frames(LIBC, ("operator()", "x" * 500 + ".cpp", 3, None, False), huge, NATIVE, START)
    assert len(classify.entry_function(f, False)) <= classify.MAX_LABEL


def test_c_threads_keep_their_entry():
    f = frames(LIBC, ("cycle_thread_a", "s.c", 3, None, False), START)
    assert classify.entry_function(f, False) == "cycle_thread_a"


# -- the call in progress on the current line --------------------------------

def test_callee_token():
    from janus_gdb.csource.locksets import callee_token
    assert callee_token("std::lock_guard<std::mutex>::lock_guard") == "lock_guard"
    assert callee_token("Account::transfer(Account&, long)") == "transfer"
    assert callee_token("__GI___pthread_mutex_lock") == "pthread_mutex_lock"
    assert callee_token("std::vector<std::pair<int, int> >::push_back") == "push_back"
    assert callee_token("operator()") is None
    assert callee_token(None) is None and callee_token("x" * 10000) is None


ONE_LINERS = """
    int main() {
        std::thread u([] { std::unique_lock<std::mutex> lk(a); hold_part(lk); });
        std::lock_guard<std::mutex> g(m); hold_part(x);
        std::thread v([] { hold_part(y); }); hold_part(z);
    }
"""


def test_statements_before_the_call_in_progress_count():
    sf = SourceFile(textwrap.dedent(ONE_LINERS).lstrip("\n"))
    # main's frame at line 3, inside hold_part(x): the guard before it is taken
    assert [h.expr for h in sf.held_at(1, 3, "hold_part", False).held] == ["m"]
    # without knowing the call: the whole line is in progress
    assert [h.expr for h in sf.held_at(1, 3).held] == []
    # a call that is not on the line: the whole line is in progress
    assert [h.expr for h in sf.held_at(1, 3, "elsewhere", False).held] == []


def test_one_line_lambda_frame():
    sf = SourceFile(textwrap.dedent(ONE_LINERS).lstrip("\n"))
    for start in (None, 1):
        res = sf.held_at(start, 2, "hold_part", True)
        assert [h.expr for h in res.held] == ["a"] and res.lambda_line == 2, res
    # main's own frame on a line that also holds a lambda: the lambda is skipped
    assert [h.expr for h in sf.held_at(1, 4, "hold_part", False).held] == ["m"]
    assert [h.expr for h in sf.held_at(None, 4, "hold_part", False).held] == ["m"]


def test_condition_wait_in_progress_releases_its_mutex():
    code = textwrap.dedent("""
        void consumer() {
            std::unique_lock<std::mutex> lk(queue_mutex);
            std::lock_guard<std::mutex> other(stats);
            cv.wait(lk, [] { return ready; });
        }
        void c_consumer(void) {
            pthread_mutex_lock(&m);
            janus_mutex_lock(&n);
            while (!ready)
                pthread_cond_wait(&cond, &m);
        }
        void any(void) {
            std::unique_lock<std::mutex> lk(queue_mutex);
            work(lk);
        }
    """).lstrip("\n")
    sf = SourceFile(code)
    assert [h.expr for h in sf.held_at(1, 4, "wait", False).held] == ["stats"]
    assert [h.expr for h in sf.held_at(1, 4).held] == ["queue_mutex", "stats"]
    assert [h.expr for h in sf.held_at(6, 10, "pthread_cond_wait", False).held] == ["&n"]
    # a wait elsewhere (not this line's call) releases nothing
    assert [h.expr for h in sf.held_at(12, 14, "wait", False).held] == ["queue_mutex"]
    # the wait releases a lock the caller took, while it waits
    sf = SourceFile("void wait_for_it(GCond *c, GMutex *m) {\n    g_cond_wait(c, m);\n}\n")
    res = sf.held_at(1, 2, "g_cond_wait", False)
    assert res.held == [] and [h.expr for h in res.released] == ["m"]
    # Janus's macro around it
    sf = SourceFile("void f(void) {\n    janus_mutex_lock(&s->mutex);\n"
                    "    janus_condition_wait(&s->cond, &s->mutex);\n}\n")
    assert sf.held_at(1, 3, "g_cond_wait", False).held == []
    assert [h.expr for h in sf.held_at(1, 3).held] == ["&s->mutex"]


def test_hostile_lambda_soup_is_fast():
    import time
    for soup in ("[](" * 30000, "[]{" * 30000, "x = [&](int a) { [](){ " * 5000):
        sf = SourceFile("void f() {\n" + soup + "\nwait();\n}\n")
        t0 = time.time()
        sf.held_at(1, 3)
        sf.held_at(None, 3)
        from janus_gdb.csource.locksets import LazySourceFile
        LazySourceFile("void f() {\n" + soup + "\nwait();\n}\n").held_at(1, 3, "wait", True)
        assert time.time() - t0 < 5, soup[:20]
