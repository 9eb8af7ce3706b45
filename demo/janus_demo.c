/*
 * janus_demo.c - a tiny program that deadlocks the way the Janus WebRTC
 * server does (meetecho/janus-gateway issue #3510 shape), using Janus's
 * own names for the threads, functions, structs and locks.
 *
 *   videoroom handler : rooms_mutex -> publisher->streams_mutex
 *                       -> janus_videoroom_reqpli -> janus_ice_send_pli_stream
 *                       -> janus_ice_relay_rtcp: wants handle->mutex
 *   sessions requests : janus_process_incoming_admin_request (handle_info)
 *                       holds handle->mutex
 *                       -> janus_videoroom_query_session: wants
 *                          publisher->streams_mutex
 *
 * Then 6 transport tasks handling a videoroom "list" request pile up on
 * rooms_mutex, while the ICE loops and the session watchdog stay healthy.
 *
 * Build with GMutex (Janus's default):
 *   gcc -g -O2 -pthread -o janus_demo demo/janus_demo.c \
 *       $(pkg-config --cflags --libs glib-2.0)
 * Build with pthread mutexes (like Janus --enable-pthread-mutex):
 *   ... -DUSE_PTHREAD_MUTEX ...
 *
 * Prints the ground-truth protocol used by the tests:
 *   thread ROLE LWP / lock NAME ADDR / expect_futex N / ready
 */
#define _GNU_SOURCE
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__clang__)
#define JANUS_NOINLINE __attribute__((noinline, used))
#else
#define JANUS_NOINLINE __attribute__((noinline, noclone, no_icf, used))
#endif
/* Keeps blocking calls out of tail position so every frame stays visible. */
#define KEEP_FRAME() __asm__ __volatile__("" ::: "memory")

/* ------------------------------------------------------------------ */
/* mutex.h (as in Janus)                                               */
/* ------------------------------------------------------------------ */

static gboolean lock_debug = FALSE;
#define JANUS_PRINT printf

#ifdef USE_PTHREAD_MUTEX
/* Janus built with --enable-pthread-mutex */
typedef pthread_mutex_t janus_mutex;
#define JANUS_MUTEX_INITIALIZER PTHREAD_MUTEX_INITIALIZER
#define janus_mutex_init(a) pthread_mutex_init(a, NULL)
#define janus_mutex_destroy(a) pthread_mutex_destroy(a)
#define janus_mutex_lock_nodebug(a) pthread_mutex_lock(a)
#define janus_mutex_lock_debug(a) { JANUS_PRINT("[%s:%s:%d:lock] %p\n", __FILE__, __func__, __LINE__, (void *)(a)); pthread_mutex_lock(a); }
#define janus_mutex_unlock_nodebug(a) pthread_mutex_unlock(a)
#define janus_mutex_unlock_debug(a) { JANUS_PRINT("[%s:%s:%d:unlock] %p\n", __FILE__, __func__, __LINE__, (void *)(a)); pthread_mutex_unlock(a); }
#else
/* Janus default: GMutex */
typedef GMutex janus_mutex;
#define JANUS_MUTEX_INITIALIZER {0}
#define janus_mutex_init(a) g_mutex_init(a)
#define janus_mutex_destroy(a) g_mutex_clear(a)
#define janus_mutex_lock_nodebug(a) g_mutex_lock(a)
#define janus_mutex_lock_debug(a) { JANUS_PRINT("[%s:%s:%d:lock] %p\n", __FILE__, __func__, __LINE__, (void *)(a)); g_mutex_lock(a); }
#define janus_mutex_unlock_nodebug(a) g_mutex_unlock(a)
#define janus_mutex_unlock_debug(a) { JANUS_PRINT("[%s:%s:%d:unlock] %p\n", __FILE__, __func__, __LINE__, (void *)(a)); g_mutex_unlock(a); }
#endif
#define janus_mutex_lock(a) { if(!lock_debug) { janus_mutex_lock_nodebug(a); } else { janus_mutex_lock_debug(a); } }
#define janus_mutex_unlock(a) { if(!lock_debug) { janus_mutex_unlock_nodebug(a); } else { janus_mutex_unlock_debug(a); } }

/* ------------------------------------------------------------------ */
/* Ground-truth protocol                                               */
/* ------------------------------------------------------------------ */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, (size_t)n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (int)w;
    }
}

static int announced;
static int deadlock_formed;

/* Janus's generated src/version.c: the demo plays Janus 1.3.0, a release
 * #3510 affects, so janus-gdb can say which known bug this is. */
const char *janus_version_string = "1.3.0";
int janus_version = 1300;

static void announce(const char *role)
{
    say("thread %s %ld", role, (long)syscall(SYS_gettid));
    __atomic_add_fetch(&announced, 1, __ATOMIC_SEQ_CST);
}

static void wait_count(int *counter, int n)
{
    while (__atomic_load_n(counter, __ATOMIC_SEQ_CST) < n)
        g_usleep(1000);
}

/* ------------------------------------------------------------------ */
/* Janus objects                                                       */
/* ------------------------------------------------------------------ */

typedef struct janus_ice_handle {
    guint64 handle_id;
    char *opaque_id;
    gpointer app_handle;            /* plugin session (the publisher here) */
    GMainContext *mainctx;
    GMainLoop *mainloop;
    GThread *thread;
    janus_mutex mutex;
} janus_ice_handle;

typedef struct janus_videoroom {
    guint64 room_id;
    char *room_name;
    janus_mutex mutex;
    GHashTable *participants;
} janus_videoroom;

typedef struct janus_videoroom_publisher {
    guint64 user_id;
    char *display;
    struct janus_videoroom *room;
    struct janus_ice_handle *handle;
    janus_mutex streams_mutex;
    guint32 pli_requests;
} janus_videoroom_publisher;

typedef struct janus_request {
    const char *request;
    guint64 transaction;
} janus_request;

static janus_mutex rooms_mutex = JANUS_MUTEX_INITIALIZER;
static GHashTable *rooms;

static pthread_barrier_t deadlock_barrier;
static volatile guint64 rtcp_packets;
static volatile guint64 rooms_listed;

/* ------------------------------------------------------------------ */
/* ice.c                                                               */
/* ------------------------------------------------------------------ */

static JANUS_NOINLINE void janus_ice_relay_rtcp(janus_ice_handle *handle)
{
    janus_mutex_lock(&handle->mutex);       /* <-- deadlock */
    rtcp_packets++;
    janus_mutex_unlock(&handle->mutex);
    KEEP_FRAME();
}

static JANUS_NOINLINE void janus_ice_send_pli_stream(janus_ice_handle *handle)
{
    janus_ice_relay_rtcp(handle);
    KEEP_FRAME();
}

static JANUS_NOINLINE gpointer janus_ice_handle_thread(gpointer data)
{
    janus_ice_handle *handle = data;
    announce("hloop");
    g_main_loop_run(handle->mainloop);      /* no sources: idle in poll */
    KEEP_FRAME();
    return NULL;
}

/* ------------------------------------------------------------------ */
/* plugins/janus_videoroom.c                                           */
/* ------------------------------------------------------------------ */

static JANUS_NOINLINE void janus_videoroom_reqpli(janus_videoroom_publisher *publisher)
{
    publisher->pli_requests++;
    janus_ice_send_pli_stream(publisher->handle);
    KEEP_FRAME();
}

static JANUS_NOINLINE void janus_videoroom_query_session(janus_videoroom_publisher *publisher)
{
    janus_mutex_lock(&publisher->streams_mutex);    /* <-- deadlock */
    publisher->pli_requests += 0;
    janus_mutex_unlock(&publisher->streams_mutex);
    KEEP_FRAME();
}

static JANUS_NOINLINE gpointer janus_videoroom_handler(gpointer data)
{
    janus_videoroom_publisher *publisher = data;
    announce("videoroom_handler");
    /* "configure"/"publish": */
    janus_mutex_lock(&rooms_mutex);
    janus_mutex_lock(&publisher->streams_mutex);
    pthread_barrier_wait(&deadlock_barrier);
    __atomic_add_fetch(&deadlock_formed, 1, __ATOMIC_SEQ_CST);
    janus_videoroom_reqpli(publisher);
    janus_mutex_unlock(&publisher->streams_mutex);
    janus_mutex_unlock(&rooms_mutex);
    KEEP_FRAME();
    return NULL;
}

static JANUS_NOINLINE void janus_videoroom_handle_message(janus_request *req)
{
    if (strcmp(req->request, "list") == 0) {
        janus_mutex_lock(&rooms_mutex);     /* <-- piles up here */
        rooms_listed += g_hash_table_size(rooms);
        janus_mutex_unlock(&rooms_mutex);
    }
    KEEP_FRAME();
}

/* ------------------------------------------------------------------ */
/* janus.c                                                             */
/* ------------------------------------------------------------------ */

static JANUS_NOINLINE void janus_process_incoming_admin_request(janus_ice_handle *handle)
{
    /* "handle_info" */
    janus_mutex_lock(&handle->mutex);
    pthread_barrier_wait(&deadlock_barrier);
    __atomic_add_fetch(&deadlock_formed, 1, __ATOMIC_SEQ_CST);
    janus_videoroom_query_session(handle->app_handle);
    janus_mutex_unlock(&handle->mutex);
    KEEP_FRAME();
}

static JANUS_NOINLINE gpointer janus_transport_requests(gpointer data)
{
    janus_ice_handle *handle = data;
    announce("sessions_requests");
    janus_process_incoming_admin_request(handle);
    KEEP_FRAME();
    return NULL;
}

static JANUS_NOINLINE void janus_process_incoming_request(janus_request *req)
{
    janus_videoroom_handle_message(req);
    KEEP_FRAME();
}

static JANUS_NOINLINE gpointer janus_transport_task(gpointer data)
{
    janus_request *req = data;
    announce("request");
    janus_process_incoming_request(req);
    KEEP_FRAME();
    return NULL;
}

static JANUS_NOINLINE gpointer janus_sessions_watchdog(gpointer data)
{
    (void)data;
    announce("watchdog");
    for (;;) {
        g_usleep(500000);
        KEEP_FRAME();
    }
    return NULL;
}

/* ------------------------------------------------------------------ */

static janus_ice_handle *new_handle(guint64 id, const char *opaque)
{
    janus_ice_handle *handle = g_new0(janus_ice_handle, 1);
    handle->handle_id = id;
    handle->opaque_id = g_strdup(opaque);
    janus_mutex_init(&handle->mutex);
    handle->mainctx = g_main_context_new();
    handle->mainloop = g_main_loop_new(handle->mainctx, FALSE);
    return handle;
}

static void start_hloop(janus_ice_handle *handle)
{
    char tname[16];
    g_snprintf(tname, sizeof tname, "hloop %" G_GUINT64_FORMAT, handle->handle_id);
    handle->thread = g_thread_new(tname, janus_ice_handle_thread, handle);
}

int main(void)
{
    say("thread main %ld", (long)syscall(SYS_gettid));

    rooms = g_hash_table_new(g_int64_hash, g_int64_equal);

    janus_videoroom *room = g_new0(janus_videoroom, 1);
    room->room_id = 1234;
    room->room_name = g_strdup("Demo Room");
    janus_mutex_init(&room->mutex);
    room->participants = g_hash_table_new(g_int64_hash, g_int64_equal);
    g_hash_table_insert(rooms, &room->room_id, room);

    janus_ice_handle *handle = new_handle(424242, "videoroomtest-alice");
    janus_ice_handle *handle2 = new_handle(424243, "videoroomtest-bob");

    janus_videoroom_publisher *publisher = g_new0(janus_videoroom_publisher, 1);
    publisher->user_id = 5678;
    publisher->display = g_strdup("alice");
    publisher->room = room;
    publisher->handle = handle;
    janus_mutex_init(&publisher->streams_mutex);
    handle->app_handle = publisher;
    g_hash_table_insert(room->participants, &publisher->user_id, publisher);

    say("lock rooms_mutex %p", (void *)&rooms_mutex);
    say("lock handle_mutex %p", (void *)&handle->mutex);
    say("lock streams_mutex %p", (void *)&publisher->streams_mutex);

    pthread_barrier_init(&deadlock_barrier, NULL, 2);

    /* Healthy background threads. */
    g_thread_unref(g_thread_new("sess watchdog", janus_sessions_watchdog, NULL));
    start_hloop(handle);
    start_hloop(handle2);

    /* The two threads that deadlock. */
    g_thread_unref(g_thread_new("vroom handler", janus_videoroom_handler, publisher));
    g_thread_unref(g_thread_new("sess requests", janus_transport_requests, handle));
    wait_count(&deadlock_formed, 2);
    g_usleep(50000);

    /* Incoming "list" requests pile up on rooms_mutex. */
    static janus_request list_requests[6];
    for (int i = 0; i < 6; i++) {
        char tname[16];
        list_requests[i].request = "list";
        list_requests[i].transaction = (guint64)(i + 1);
        g_snprintf(tname, sizeof tname, "task %d", i + 1);
        g_thread_unref(g_thread_new(tname, janus_transport_task, &list_requests[i]));
    }

    /* watchdog + 2 hloop + handler + sessions_requests + 6 requests */
    wait_count(&announced, 11);
    /* futex: videoroom_handler, sessions_requests, 6 requests */
    say("expect_futex %d", 8);
    say("ready");

    for (;;)
        pause();
    return 0;
}
