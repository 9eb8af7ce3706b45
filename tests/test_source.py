"""Unit tests of janus_gdb.csource.locksets: which locks a C function holds at a line.

Each snippet starts with the function's declaration on line 1; the line
marked with the comment ``HERE`` is the current line.
"""

import os
import sys
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from janus_gdb.csource import locksets  # noqa: E402
from janus_gdb.csource.locksets import SourceFile, normalize_expr  # noqa: E402


def at(code, marker="HERE", start=1):
    """LockSet of the snippet's function at the line holding MARKER."""
    code = textwrap.dedent(code).lstrip("\n")
    lines = code.split("\n")
    cur = [n for n, line in enumerate(lines, 1) if marker in line]
    assert len(cur) == 1, "exactly one %s marker" % marker
    res = SourceFile(code).held_at(start, cur[0])
    return res


def held(code, **kw):
    res = at(code, **kw)
    assert res.valid, res.why
    return [(h.expr, h.conditional) for h in res.held]


def released(code, **kw):
    res = at(code, **kw)
    assert res.valid, res.why
    return [(h.expr, h.conditional) for h in res.released]


M = [("&m", False)]
M_COND = [("&m", True)]


# -- normalisation --------------------------------------------------------

def test_normalize_expr():
    assert normalize_expr("& participant -> streams_mutex") == "&participant->streams_mutex"
    assert normalize_expr("&(participant->streams_mutex)") == "&participant->streams_mutex"
    assert normalize_expr("((&(s->m)))") == "&s->m"
    assert normalize_expr("(a)->b") == "(a)->b"
    assert normalize_expr("(a)+(b)") == "(a)+(b)"
    assert normalize_expr("&(a)->b") == "&(a)->b"
    assert normalize_expr("") == ""
    assert normalize_expr(None) == ""


def test_held_fields_and_raw():
    res = at("""
        void f(janus_participant *participant) {
            janus_mutex_lock(& ( participant->streams_mutex ));
            work(); // HERE
        }
        """)
    assert res.valid and res.why == ""
    h = res.held[0]
    assert h.expr == "&participant->streams_mutex"
    assert h.raw == "& ( participant->streams_mutex )"
    assert h.line == 2 and h.call == "janus_mutex_lock"
    assert not h.conditional and not h.trylock


# -- straight line ----------------------------------------------------------

def test_lock_then_call_at_current_line():
    assert held("""
        void f(void) {
            janus_mutex_lock(&m);
            janus_ice_relay_rtcp(handle); // HERE
        }
        """) == M


def test_lock_on_current_line_is_in_progress():
    assert held("""
        void f(void) {
            work();
            janus_mutex_lock(&m); // HERE
        }
        """) == []


def test_lock_call_spanning_current_line_is_in_progress():
    assert held("""
        void f(void) {
            janus_mutex_lock(
                &m); // HERE
        }
        """) == []


def test_lock_unlock_not_held():
    assert held("""
        void f(void) {
            janus_mutex_lock(&m);
            janus_mutex_unlock(&m);
            work(); // HERE
        }
        """) == []


def test_locking_order_and_most_recent_unlock():
    assert held("""
        void f(void) {
            g_mutex_lock(&a);
            pthread_mutex_lock(&b);
            g_rec_mutex_lock(&a);
            g_rec_mutex_unlock(&a);
            work(); // HERE
        }
        """) == [("&a", False), ("&b", False)]


def test_unlock_without_lock_is_released():
    res = at("""
        void f(janus_session *s) {
            janus_mutex_unlock(&s->mutex);
            work(); // HERE
        }
        """)
    assert res.valid and res.held == []
    assert [(h.expr, h.call, h.line) for h in res.released] == [("&s->mutex", "janus_mutex_unlock", 2)]


def test_trylock():
    res = at("""
        void f(void) {
            if(janus_mutex_trylock(&m) != 0)
                return;
            work(); // HERE
        }
        """)
    assert [(h.expr, h.trylock, h.call, h.conditional) for h in res.held] == \
        [("&m", True, "janus_mutex_trylock", False)]


def test_all_call_names_recognised():
    for name in locksets.LOCK_CALLS + locksets.TRYLOCK_CALLS:
        assert held("void f(void) {\n %s(&m);\n work(); // HERE\n}\n" % name) == M, name
    for name in locksets.UNLOCK_CALLS:
        assert released("void f(void) {\n %s(&m);\n work(); // HERE\n}\n" % name) == M, name


def test_multi_argument_and_member_calls_ignored():
    assert held("""
        void f(void) {
            janus_mutex_lock(&a, 1);
            ops->janus_mutex_lock(&b);
            ops.g_mutex_lock(&c);
            janus_mutex_lock();
            work(); // HERE
        }
        """) == []


# -- jumps --------------------------------------------------------------------

def test_early_return_unlock_block():
    code = """
        int f(janus_session *s, int err) {
            janus_mutex_lock(&m);
            if(err) {
                janus_mutex_unlock(&m);
                JANUS_LOG(LOG_ERR, "oops\\n");   // A
                return -1;
            }
            work(); // HERE
        }
        """
    assert held(code) == M
    assert held(code, marker="A") == []


def test_return_in_nested_block_does_not_discard_outer_block():
    assert held("""
        void f(int a, int b) {
            janus_mutex_lock(&m);
            if(a) {
                if(b)
                    return;
                janus_mutex_unlock(&m);
            }
            work(); // HERE
        }
        """) == M_COND


def test_goto_error_path():
    code = """
        int f(janus_session *session, int a, int b) {
            janus_mutex_lock(&sessions_mutex);
            if(!session)
                goto error;
            janus_mutex_lock(&session->mutex);
            if(a) {
                janus_mutex_unlock(&session->mutex);
                goto error;
            }
            janus_mutex_unlock(&session->mutex);
            janus_mutex_unlock(&sessions_mutex);   // MAIN
            return 0;
        error:
            janus_mutex_unlock(&sessions_mutex);   // ERR
            return -1;
        }
        """
    assert held(code, marker="MAIN") == [("&sessions_mutex", False)]
    assert held(code, marker="ERR") == [("&sessions_mutex", False)]


def test_goto_label_mixes_paths():
    assert held("""
        int f(int a) {
            if(a) {
                janus_mutex_lock(&m);
                goto done;
            }
            work();
        done:
            more(); // HERE
        }
        """) == M_COND


def test_code_after_return_is_analysed_from_before_the_jump():
    res = at("""
        int f(void) {
            janus_mutex_lock(&m);
            return 0;
            dead(); // HERE
        }
        """)
    assert res.valid and [h.expr for h in res.held] == ["&m"]
    assert "jump" in res.why


# -- if/else --------------------------------------------------------------------

def test_else_branch_location():
    assert held("""
        void f(int a) {
            janus_mutex_lock(&m);
            if(a) {
                janus_mutex_unlock(&m);
                work();
            } else {
                other(); // HERE
            }
        }
        """) == M


def test_else_if_chain_location():
    code = """
        void f(int a) {
            if(a == 1) {
                janus_mutex_lock(&m);
            } else if(a == 2) {
                janus_mutex_lock(&n);
            } else if(a == 3) {
                work(); // HERE
            } else {
                janus_mutex_lock(&o);
            }
        }
        """
    assert held(code) == []


def test_brace_less_else_if_chain_location():
    assert held("""
        void f(int a) {
            if(a == 1)
                janus_mutex_lock(&m);
            else if(a == 2)
                janus_mutex_lock(&n);
            else
                work(); // HERE
        }
        """) == []


def test_closed_chain_events_conditional():
    assert held("""
        void f(int a) {
            if(a == 1) {
                janus_mutex_lock(&m);
            } else if(a == 2) {
                janus_mutex_lock(&n);
                return;
            }
            work(); // HERE
        }
        """) == M_COND


def test_closed_chain_same_effect_everywhere_is_unconditional():
    assert held("""
        void f(int a) {
            if(a) {
                janus_mutex_lock(&m);
            } else {
                log();
                janus_mutex_lock(&m);
            }
            work(); // HERE
        }
        """) == M


def test_if_without_else_may_not_run():
    assert held("""
        void f(int a) {
            if(a) {
                janus_mutex_lock(&m);
            }
            work(); // HERE
        }
        """) == M_COND


def test_brace_less_if_unlock_is_conditional():
    assert held("""
        void f(int a) {
            janus_mutex_lock(&m);
            if(a)
                janus_mutex_unlock(&m);
            work(); // HERE
        }
        """) == M_COND


def test_brace_less_if_unlock_of_foreign_lock_is_conditional_release():
    assert released("""
        void f(int a) {
            if(a)
                janus_mutex_unlock(&m);
            work(); // HERE
        }
        """) == M_COND


def test_current_line_in_brace_less_body():
    assert held("""
        void f(int a) {
            janus_mutex_lock(&m);
            if(a)
                work(); // HERE
            janus_mutex_unlock(&m);
        }
        """) == M


def test_current_line_at_else_if_condition():
    assert held("""
        void f(int a) {
            if(a == 1) {
                janus_mutex_lock(&m);
            } else if(check(a)) { // HERE
                janus_mutex_lock(&n);
            }
        }
        """) == []


def test_condition_events_count_in_branch():
    assert held("""
        void f(void) {
            if(janus_mutex_trylock(&m) == 0) {
                work(); // HERE
            }
        }
        """) == M


# -- loops ------------------------------------------------------------------------

def test_inside_loop_body_events_count():
    assert held("""
        void f(GList *l) {
            while(l) {
                janus_mutex_lock(&m);
                work(l); // HERE
                janus_mutex_unlock(&m);
                l = l->next;
            }
        }
        """) == M


def test_loop_with_continue():
    code = """
        void f(GList *l) {
            for(; l; l = l->next) {
                janus_mutex_lock(&m);
                if(skip(l)) {
                    janus_mutex_unlock(&m);
                    continue;
                }
                work(l); // HERE
                janus_mutex_unlock(&m);
            }
            done(); // AFTER
        }
        """
    assert held(code) == M
    assert held(code, marker="AFTER") == []


def test_closed_loop_events_conditional():
    assert held("""
        void f(int n) {
            int i;
            for(i = 0; i < n; i++) {
                janus_mutex_lock(&m);
            }
            work(); // HERE
        }
        """) == M_COND


def test_break_out_of_loop_with_lock_held_is_conditional():
    assert held("""
        void f(GList *l) {
            while(l) {
                janus_mutex_lock(&m);
                if(found(l))
                    break;
                janus_mutex_unlock(&m);
                l = l->next;
            }
            work(); // HERE
        }
        """) == M_COND


def test_endless_loop_left_by_break():
    assert held("""
        void f(void) {
            while(TRUE) {
                janus_mutex_lock(&m);
                if(ready())
                    break;
                janus_mutex_unlock(&m);
            }
            work(); // HERE
        }
        """) == M
    assert held("""
        void f(void) {
            for(;;) {
                janus_mutex_lock(&m);
                if(ready())
                    break;
                janus_mutex_unlock(&m);
            }
            work(); // HERE
        }
        """) == M


def test_do_while_zero_macro_is_plain_block():
    assert held("""
        void f(void) {
            do {
                janus_mutex_lock(&m);
            } while(0);
            work(); // HERE
        }
        """) == M


def test_statement_expression_is_plain_block():
    assert held("""
        void f(void) {
            int r = ({ janus_mutex_lock(&m); 1; });
            work(r); // HERE
        }
        """) == M


def test_break_in_nested_switch_belongs_to_switch():
    assert held("""
        void f(int a, int b) {
            janus_mutex_lock(&m);
            if(a) {
                switch(b) {
                    case 1:
                        break;
                }
                janus_mutex_unlock(&m);
            }
            work(); // HERE
        }
        """) == M_COND
    assert held("""
        void f(GList *l) {
            while(l) {
                janus_mutex_lock(&m);
                switch(kind(l)) {
                    case 1:
                        break;
                    default:
                        break;
                }
                work(); // HERE
            }
        }
        """) == M


# -- switch ---------------------------------------------------------------------------

def test_switch_case_after_break():
    assert held("""
        void f(int a) {
            switch(a) {
                case 1:
                    janus_mutex_lock(&m);
                    break;
                case 2:
                    work(); // HERE
                    break;
            }
        }
        """) == []


def test_switch_fall_through():
    assert held("""
        void f(int a) {
            switch(a) {
                case 1:
                    janus_mutex_lock(&m);
                    /* fall through */
                case 2:
                    work(); // HERE
                    break;
            }
        }
        """) == M_COND


def test_switch_events_before_it_count():
    assert held("""
        void f(int a) {
            janus_mutex_lock(&m);
            switch(a) {
                case 1:
                    janus_mutex_unlock(&m);
                    return;
                default:
                    work(); // HERE
            }
        }
        """) == M


def test_switch_closed():
    code = """
        void f(int a) {
            switch(a) {
                case 1: {
                    janus_mutex_lock(&m);
                    break;
                }
                default:
                    janus_mutex_lock(&m);
                    break;
            }
            work(); // HERE
        }
        """
    assert held(code) == M
    assert held(code.replace("default:", "case 2:")) == M_COND


# -- text that is not code ---------------------------------------------------------------

def test_comments_and_strings_ignored():
    assert held("""
        void f(void) {
            janus_mutex_lock(&m);
            /* janus_mutex_unlock(&m); } } */
            // janus_mutex_unlock(&m); }
            JANUS_LOG(LOG_INFO, "janus_mutex_unlock(&m); }\\"{");
            char c = '}', d = '\\'';
            work(c, d); // HERE
        }
        """) == M


def test_macros_spanning_lines():
    assert held("""
        void f(void) {
            janus_mutex_lock(&m);
        #define UNLOCK_ALL(x) \\
            janus_mutex_unlock(&m); \\
            }
            JANUS_LOG(LOG_VERB,
                "[%s] text with janus_mutex_unlock(&m)\\n",
                name);
            janus_mutex_lock(
                &n);
            work(); // HERE
        }
        """) == [("&m", False), ("&n", False)]


def test_preprocessor_conditionals_take_one_branch():
    assert held("""
        void f(void) {
        #ifdef HAVE_SCTP
            if(sctp) {
        #else
            if(nosctp) {
        #endif
                janus_mutex_lock(&m);
            }
        #if 0
            janus_mutex_unlock(&n);
        #else
            janus_mutex_lock(&n);
        #endif
            work(); // HERE
        }
        """) == [("&m", True), ("&n", False)]


# -- where the line is ----------------------------------------------------------------------

def test_signature_spanning_lines_and_body_range():
    code = textwrap.dedent("""
        static void *janus_videoroom_handler(
                void *data,
                int x)
        {
            janus_mutex_lock(&m);
            work();
        }

        static int other(void) {
            return 0;
        }
        """).lstrip("\n")
    sf = SourceFile(code)
    assert sf.function_body_range(1) == (4, 7)
    assert sf.function_body_range(9) == (9, 11)
    assert [h.expr for h in sf.held_at(1, 6).held] == ["&m"]
    for line in (2, 8, 10):
        res = sf.held_at(1, line)
        assert not res.valid and res.why and res.held == []
    assert sf.held_at(1, 7).valid  # the closing brace
    assert sf.function_body_range(100) is None
    assert not sf.held_at(100, 101).valid


def test_prototype_is_not_a_body():
    sf = SourceFile("void f(void);\nint x = 1;\n")
    assert sf.function_body_range(1) is None
    assert not sf.held_at(1, 2).valid
    assert sf.function_body_range(2) is None


def test_results_are_cached_but_independent():
    sf = SourceFile("void f(void) {\n janus_mutex_lock(&m);\n work();\n}\n")
    a = sf.held_at(1, 3)
    a.held.append("junk")
    b = sf.held_at(1, 3)
    assert [h.expr for h in b.held] == ["&m"]
    assert sf._held[(1, 3, None, None)].held is not b.held


def test_bytes_source():
    sf = SourceFile(b"void f(void) {\n janus_mutex_lock(&m); /* \xff */\n work();\n}\n")
    assert [h.expr for h in sf.held_at(1, 3).held] == ["&m"]


# -- odd input ------------------------------------------------------------------------------

def test_unbalanced_braces_never_raise():
    texts = [
        "void f(void) {\n janus_mutex_lock(&m);\n if(a) {\n work();\n",
        "void f(void) {\n janus_mutex_lock(&m);\n }}}\n work();\n}\n",
        "void f(void) {\n janus_mutex_lock(&m;\n work();\n}\n",
        "void f(void) {\n if(\n else while do switch ) case : goto ;\n work();\n}\n",
        "void f(void) {\n ({ janus_mutex_lock(&m);\n work();\n",
        "void f(void) { void g(void) { janus_mutex_lock(&m); } \n work();\n}\n",
        "{\n\n\n",
        "}\n{\n)\n(\n",
        "",
        "void f(void) {\n janus_mutex_unlock(\n",
        "void f(void) {\n \"unterminated\n work();\n /* unterminated\n",
    ]
    for text in texts:
        sf = SourceFile(text)
        for start in range(0, 4):
            for cur in range(0, 7):
                res = sf.held_at(start, cur)
                assert isinstance(res.held, list) and isinstance(res.released, list)
                assert res.valid in (True, False)
                sf.function_body_range(start)


def test_truncated_body_is_invalid_but_informative():
    res = SourceFile("void f(void) {\n janus_mutex_lock(&m);\n if(a) {\n work();\n").held_at(1, 4)
    assert not res.valid and "unbalanced" in res.why
    assert [h.expr for h in res.held] == ["&m"]


def test_deep_nesting_is_capped():
    depth = 300
    code = "void f(void) {\n janus_mutex_lock(&m);\n" + "if(a) {\n" * depth + "work();\n" \
        + "}\n" * depth + "}\n"
    res = SourceFile(code).held_at(1, depth + 3)
    assert not res.valid and "nesting" in res.why
    code = "void f(void) {\n janus_mutex_lock(&m);\n" + "if(a)\n" * depth + "work();\n}\n"
    res = SourceFile(code).held_at(1, depth + 3)
    assert not res.valid


def test_long_else_if_chain_is_not_deep():
    code = "void f(int a) {\n janus_mutex_lock(&m);\n if(a == 0) x();\n" \
        + "".join(" else if(a == %d) x();\n" % k for k in range(1, 2000)) + " work();\n}\n"
    res = SourceFile(code).held_at(1, 2003)
    assert res.valid and [h.expr for h in res.held] == ["&m"]


# -- speed ----------------------------------------------------------------------------------

def _function(name, lines):
    body = []
    for k in range(lines // 10):
        body.append("\tjanus_mutex_lock(&s->mutex_%d); /* comment %d */" % (k % 7, k))
        body.append("\tif(s->x[%d] > 0 && check(\"text %d\")) {" % (k, k))
        body.append("\t\tJANUS_LOG(LOG_ERR, \"[%%s] failed %%d\\n\", s->name, k);")
        body.append("\t\tjanus_mutex_unlock(&s->mutex_%d);" % (k % 7))
        body.append("\t\treturn -1;")
        body.append("\t}")
        body.append("\tswitch(s->kind) { case 1: s->y++; break; default: break; }")
        body.append("\tfor(i = 0; i < s->n; i++) { s->z[i] = i * 2; }")
        body.append("\tjanus_mutex_unlock(&s->mutex_%d);" % (k % 7))
        body.append("#define X_%d(a) \\\n\t\t(a + 1)" % k)
    return ["static int %s(janus_session *s, int k) {" % name] + body + ["\treturn 0;", "}", ""]


def test_speed_15k_lines_and_3k_line_function():
    lines = []
    starts = []
    while len(lines) < 15000:
        starts.append(len(lines) + 1)
        lines.extend(_function("f%d" % len(starts), 3000))
    text = "\n".join(lines)
    t0 = time.time()
    sf = SourceFile(text)
    t1 = time.time()
    assert t1 - t0 < 2.0
    first, last = sf.function_body_range(starts[0])
    res = sf.held_at(starts[0], last - 2)
    t2 = time.time()
    assert t2 - t1 < 0.5
    assert res.valid and res.held == []
    all_lines = text.split("\n")
    start = [n for n, line in enumerate(all_lines, 1) if line.startswith("static int f2(")][0]
    cur = [n for n, line in enumerate(all_lines, 1) if n > start and '"text 136"' in line][0]
    res = sf.held_at(start, cur + 1)
    assert res.valid and [h.expr for h in res.held] == ["&s->mutex_%d" % (136 % 7)]


# -- more corners ------------------------------------------------------------------------------

def test_call_names_are_configurable(monkeypatch):
    code = "void f(void) {\n my_lock(&m);\n janus_mutex_lock(&n);\n work();\n}\n"
    monkeypatch.setattr(locksets, "LOCK_CALLS", ("my_lock",))
    assert [h.expr for h in SourceFile(code).held_at(1, 4).held] == ["&m"]
    monkeypatch.undo()
    assert [h.expr for h in SourceFile(code).held_at(1, 4).held] == ["&n"]


def test_odd_arguments_never_raise():
    sf = SourceFile("void f(void) {\n janus_mutex_lock(&m);\n work();\n}\n")
    assert sf.function_body_range(None) is None
    res = sf.held_at("x", 3)
    assert not res.valid and res.why
    # None: no start line known (an inlined frame): the body around the line
    assert [h.expr for h in sf.held_at(None, 3).held] == ["&m"]
    assert SourceFile(None).held_at(1, 2).valid is False


def test_closing_brace_after_return_keeps_the_returning_state():
    res = at("""
        int f(int a) {
            janus_mutex_lock(&m);
            return a;
        } // HERE
        """)
    assert res.valid and res.why == "" and [h.expr for h in res.held] == ["&m"]


def test_label_reached_only_by_backward_goto():
    res = at("""
        void f(void) {
            janus_mutex_lock(&m);
            return;
        again:
            work(); // HERE
            goto again;
        }
        """)
    assert res.valid and [h.expr for h in res.held] == ["&m"] and "jump" in res.why


def test_do_while_left_by_break():
    assert held("""
        void f(void) {
            do {
                janus_mutex_lock(&m);
                if(bad())
                    break;
                janus_mutex_unlock(&m);
            } while(0);
            work(); // HERE
        }
        """) == M_COND


def test_switch_case_after_goto_and_return():
    code = """
        int f(int a) {
            switch(a) {
                case 1:
                    janus_mutex_lock(&m);
                    goto out;
                case 2:
                    janus_mutex_lock(&n);
                    return 1;
                case 3:
                    work(); // HERE
            }
        out:
            return 0; // OUT
        }
        """
    assert held(code) == []
    assert held(code, marker="OUT") == M_COND


def test_ifndef_have_reads_the_else_branch_and_notes_skipped_lines():
    code = """
        void f(void) {
        #ifndef HAVE_LIBNICE_TCP
            janus_mutex_lock(&old);
            old_work(); // SKIPPED
        #else
            janus_mutex_lock(&m);
        #endif
            work(); // HERE
        }
        """
    assert held(code) == M
    res = at(code, marker="SKIPPED")
    assert res.valid and "not read" in res.why


def test_statement_macro_without_semicolon_ends_before_if():
    assert held("""
        void f(int a) {
            JANUS_CHECK_SOMETHING(a)
            if(a) {
                janus_mutex_lock(&m);
                return;
            }
            work(); // HERE
        }
        """) == []


WRAPPERS = textwrap.dedent("""\
    static void take_lock(GMutex *m)
    {
        g_mutex_lock(m);
        work++;
    }
    static void give_back(GMutex *m) { g_mutex_unlock(m); }
    static void balanced(GMutex *m)
    {
        g_mutex_lock(m);
        g_mutex_unlock(m);
    }
    static void maybe(GMutex *m, int x)
    {
        g_mutex_lock(m);
    }
    static void *worker(void *arg)
    {
        take_lock(&room->mutex);
        balanced(&other);
        take_lock(&gm2);
        give_back(&gm2);
        maybe(&gm3, 1);
        block_here();
        return NULL;
    }
    """)


def test_same_file_lock_wrappers_count_as_lock_calls():
    src = SourceFile(WRAPPERS)
    assert src.wrappers() == {"take_lock": "lock", "give_back": "unlock"}
    assert src.functions()["worker"] == (16, ["arg"])
    ls = src.held_at(16, 23)
    assert ls.valid and ls.exprs() == ["&room->mutex"]
    assert ls.held[0].call == "take_lock" and ls.held[0].line == 18


def test_lazy_file_answers_like_the_whole_file():
    """LazySourceFile tokenizes only the functions asked about (and the
    one-parameter functions they call); its answers are the whole file's."""
    root = os.path.dirname(os.path.abspath(__file__))
    for path in (os.path.join(root, "fixtures", "scenarios.c"),
                 os.path.join(root, "fixtures", "janus_scenarios.c"),
                 os.path.join(os.path.dirname(root), "demo", "janus_demo.c")):
        with open(path) as f:
            text = f.read()
        full, lazy = SourceFile(text), locksets.LazySourceFile(text)
        checked = 0
        for name, (line, _params) in full.functions().items():
            rng = full.function_body_range(line)
            if rng is None:
                continue
            for cur in range(rng[0], rng[1] + 1):
                a, b = full.held_at(line, cur), lazy.held_at(line, cur)
                assert a.valid == b.valid, (path, name, cur)
                assert [(h.expr, h.line, h.conditional, h.call) for h in a.held + a.released] == \
                    [(h.expr, h.line, h.conditional, h.call) for h in b.held + b.released], \
                    (path, name, cur, a, b)
                checked += 1
        assert checked > 100
    lazy = locksets.LazySourceFile(WRAPPERS)
    assert lazy.held_at(16, 23).exprs() == ["&room->mutex"]
    assert lazy.held_at(16, 100).valid is False
