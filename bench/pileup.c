/*
 * pileup.c - a Janus-shaped pile-up at scale, for bench/run.py.
 *
 *   pileup NTHREADS [TICKLOG]
 *
 * NTHREADS threads besides main: one "vroom handler" holds rooms_mutex and
 * sleeps in a loop inside the critical section; about 2/3 are request
 * workers of a GThreadPool (as Janus's "tasks" pool) piled on rooms_mutex
 * through three Janus call chains; the rest are handle loops ("hloop ID",
 * janus_ice_handle_thread): three of four run a GMainLoop (poll), one of four
 * waits on a GCond.  Two more threads belong to glib: the pool's spawner
 * (idle in g_async_queue_pop).  With TICKLOG a "ticker" thread wakes every
 * millisecond and appends "GAP_NS END_NS" (CLOCK_MONOTONIC) to TICKLOG for
 * every gap over 20 ms: how long the process was stopped (by an attached
 * debugger).
 *
 * Every thread has a 64 KiB stack (pthread_setattr_default_np, so glib's
 * threads too): 10,000 threads fit in ~700 MB of address space.
 *
 * Ground truth on stdout, one write(2) per line (as tests/fixtures):
 *   lock rooms_mutex 0xADDR
 *   thread holder LWP
 *   count workers N / count hloops N / count chain_K N
 *   expect_futex N      threads that sit in futex(2) when settled
 *   ready               every thread has started
 *
 * Build (GMutex, Janus's default; or pthread mutexes as --enable-pthread-mutex):
 *   gcc -g -O2 -fno-omit-frame-pointer -pthread -o pileup bench/pileup.c \
 *       [-DUSE_PTHREAD_MUTEX] $(pkg-config --cflags --libs glib-2.0)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../tests/fixtures/fixture_io.h"
#include "../tests/fixtures/janus_mini.h"

#define STACK_SIZE (64 * 1024)

int lock_debug = 0;

void janus_lock_print(const char *fmt, ...)
{
	(void)fmt;
}

/* Started threads; main spins on it (no futex before the pile-up). */
static volatile int started;
static volatile int holding;
static volatile int stop;
static volatile long protected_work;

static void mark_started(void)
{
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
}

/* ------------------------------------------------------------------ */
/* VideoRoom                                                           */
/* ------------------------------------------------------------------ */

static janus_mutex rooms_mutex = JANUS_MUTEX_INITIALIZER;
static GHashTable *rooms;

static APP_FN char *janus_videoroom_process_synchronous_request(janus_request *request)
{
	char *response = NULL;
	/* "list" */
	janus_mutex_lock(&rooms_mutex);
	response = g_strdup_printf("{\"rooms\": %u, \"request\": \"%s\"}", g_hash_table_size(rooms),
			request->request_text);
	janus_mutex_unlock(&rooms_mutex);
	KEEP_FRAME();
	return response;
}

static APP_FN char *janus_videoroom_handle_message(janus_plugin_session *handle, janus_request *request)
{
	(void)handle;
	char *response = NULL;
	if (!strcmp(request->request_text, "list")) {
		response = janus_videoroom_process_synchronous_request(request);
	} else {
		/* "exists", "create": rooms_mutex taken right here */
		janus_mutex_lock(&rooms_mutex);
		protected_work++;
		response = g_strdup("{\"videoroom\": \"success\"}");
		janus_mutex_unlock(&rooms_mutex);
	}
	KEEP_FRAME();
	return response;
}

static APP_FN char *janus_videoroom_query_session(janus_plugin_session *handle)
{
	(void)handle;
	char *info = NULL;
	janus_mutex_lock(&rooms_mutex);
	info = g_strdup_printf("{\"rooms\": %u}", g_hash_table_size(rooms));
	janus_mutex_unlock(&rooms_mutex);
	KEEP_FRAME();
	return info;
}

/* The holder: a "kick_all" that never finishes (sleeps holding rooms_mutex). */
static APP_FN void *janus_videoroom_handler(void *data)
{
	(void)data;
	say("thread holder %ld", gettid_now());
	janus_mutex_lock(&rooms_mutex);
	__atomic_store_n(&holding, 1, __ATOMIC_SEQ_CST);
	mark_started();
	while (!stop) {
		g_usleep(100 * 1000);
		protected_work++;
	}
	janus_mutex_unlock(&rooms_mutex);
	KEEP_FRAME();
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static APP_FN int janus_process_incoming_request(janus_request *request)
{
	char *response = janus_videoroom_handle_message(NULL, request);
	g_free(response);
	KEEP_FRAME();
	return 0;
}

static APP_FN int janus_process_incoming_admin_request(janus_request *request)
{
	(void)request;
	char *info = janus_videoroom_query_session(NULL);
	g_free(info);
	KEEP_FRAME();
	return 0;
}

static APP_FN void janus_transport_task(gpointer data, gpointer user_data)
{
	(void)user_data;
	janus_request *request = (janus_request *)data;
	mark_started();
	if (!request->admin)
		janus_process_incoming_request(request);
	else
		janus_process_incoming_admin_request(request);
	KEEP_FRAME();
}

/* ------------------------------------------------------------------ */
/* Handle loops                                                        */
/* ------------------------------------------------------------------ */

static GMutex hloop_mutex;
static GCond hloop_cond;

static APP_FN void *janus_ice_handle_thread(void *data)
{
	janus_ice_handle *handle = (janus_ice_handle *)data;
	mark_started();
	if (handle->mainloop != NULL) {
		g_main_loop_run(handle->mainloop);
	} else {
		/* Waiting for a (never coming) setup, as an idle loop would */
		g_mutex_lock(&hloop_mutex);
		while (!stop)
			g_cond_wait(&hloop_cond, &hloop_mutex);
		g_mutex_unlock(&hloop_mutex);
	}
	KEEP_FRAME();
	return NULL;
}

static void start_hloop(guint64 handle_id, gboolean with_loop)
{
	janus_ice_handle *handle = g_malloc0(sizeof(janus_ice_handle));
	handle->handle_id = handle_id;
	janus_mutex_init(&handle->mutex);
	if (with_loop) {
		handle->mainctx = g_main_context_new();
		handle->mainloop = g_main_loop_new(handle->mainctx, FALSE);
	}
	char tname[16];
	g_snprintf(tname, sizeof(tname), "hloop %" G_GUINT64_FORMAT, handle_id);
	GError *error = NULL;
	handle->thread = g_thread_try_new(tname, janus_ice_handle_thread, handle, &error);
	if (handle->thread == NULL) {
		fprintf(stderr, "g_thread_try_new: %s\n", error ? error->message : "?");
		exit(1);
	}
}

/* ------------------------------------------------------------------ */
/* Ticker: how long the process was stopped                            */
/* ------------------------------------------------------------------ */

static int tick_fd = -1;

static gint64 now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (gint64)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *ticker(void *data)
{
	(void)data;
	mark_started();
	gint64 last = now_ns();
	for (;;) {
		struct timespec d = { 0, 1000000 };
		nanosleep(&d, NULL);
		gint64 t = now_ns();
		if (t - last > 20000000LL) {
			char buf[64];
			int n = snprintf(buf, sizeof buf, "%lld %lld\n", (long long)(t - last), (long long)t);
			write_all(tick_fd, buf, (size_t)n);
		}
		last = t;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */

static void raise_limit(int resource)
{
	struct rlimit rl;
	if (getrlimit(resource, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(resource, &rl);
	}
}

static void wait_started(int n)
{
	while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < n)
		usleep(1000);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s NTHREADS [TICKLOG]\n", argv[0]);
		return 2;
	}
	int total = atoi(argv[1]);
	if (total < 4) {
		fprintf(stderr, "NTHREADS must be at least 4\n");
		return 2;
	}
	raise_limit(RLIMIT_NOFILE);
	raise_limit(RLIMIT_NPROC);

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, STACK_SIZE);
	if (pthread_setattr_default_np(&attr) != 0) {
		fprintf(stderr, "pthread_setattr_default_np failed\n");
		return 1;
	}

	int workers = (total * 2 + 1) / 3;
	int hloops = total - 1 - workers;
	int expect = 0;
	rooms = g_hash_table_new(g_int64_hash, g_int64_equal);
	say("lock rooms_mutex %p", (void *)&rooms_mutex);

	if (argc > 2) {
		tick_fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
		if (tick_fd < 0) {
			perror(argv[2]);
			return 1;
		}
		pthread_t tt;
		if (pthread_create(&tt, NULL, ticker, NULL) != 0) {
			perror("pthread_create");
			return 1;
		}
		pthread_setname_np(tt, "ticker");
		wait_started(1);
		started = 0;
	}

	/* The holder first: the lock is held before any worker arrives. */
	pthread_t ht;
	if (pthread_create(&ht, NULL, janus_videoroom_handler, NULL) != 0) {
		perror("pthread_create");
		return 1;
	}
	pthread_setname_np(ht, "vroom handler");
	wait_started(1);

	int with_loop = 0, with_cond = 0;
	for (int i = 0; i < hloops; i++) {
		gboolean loop = (i % 4) != 3;
		start_hloop(1000000 + (guint64)i, loop);
		if (loop)
			with_loop++;
		else
			with_cond++;
	}
	expect += with_cond;

	/* Janus's request pool; each push finds no idle thread and starts one. */
	GError *error = NULL;
	GThreadPool *tasks = g_thread_pool_new(janus_transport_task, NULL, -1, FALSE, &error);
	if (tasks == NULL) {
		fprintf(stderr, "g_thread_pool_new: %s\n", error ? error->message : "?");
		return 1;
	}
	static const char *texts[] = { "list", "create", "exists" };
	int chain[3] = { 0, 0, 0 };
	for (int i = 0; i < workers; i++) {
		janus_request *request = g_malloc0(sizeof(janus_request));
		int k = i % 3;
		/* chain 0: ... handle_message -> process_synchronous_request (list)
		 * chain 1: ... handle_message (create/exists)
		 * chain 2: admin request -> query_session */
		request->request_text = texts[k == 2 ? 1 : (k == 0 ? 0 : 2)];
		request->admin = k == 2;
		chain[k]++;
		g_thread_pool_push(tasks, request, &error);
		if (error != NULL) {
			fprintf(stderr, "g_thread_pool_push: %s\n", error->message);
			return 1;
		}
	}
	expect += workers;
	wait_started(1 + hloops + workers);

	say("count workers %d", workers);
	say("count hloops %d", hloops);
	say("count hloops_poll %d", with_loop);
	say("count hloops_cond %d", with_cond);
	say("count chain_list %d", chain[0]);
	say("count chain_create %d", chain[1]);
	say("count chain_admin %d", chain[2]);
	say("expect_futex %d", expect);
	say("ready");
	for (;;)
		pause();
	return 0;
}
