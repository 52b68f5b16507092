/* Frames to and from Node: u32 little-endian length, then a msgpack Envelope. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "init.h"
#include "uwrx_init_proto.h"

static bool read_full(int fd, void *buf, size_t len) {
  uint8_t *p = buf;
  while (len) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= (size_t)n;
  }
  return true;
}

static bool write_full(int fd, const void *buf, size_t len) {
  const uint8_t *p = buf;
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= (size_t)n;
  }
  return true;
}

bool channel_read(int fd, uint8_t **data, size_t *len) {
  uint8_t hdr[4];
  if (!read_full(fd, hdr, 4)) return false;
  uint32_t n = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
  if (n > UWRX_INIT_MAX_FRAME) return false;
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return false;
  if (!read_full(fd, buf, n)) {
    free(buf);
    return false;
  }
  *data = buf;
  *len = n;
  return true;
}

/* ---- held notices ----
 * Process events come three per process (spawn, exec, exit); a write each costs a
 * syscall here and, in Node, a socket wake-up, a read and a stream push. They are held
 * and written together: before any other message (so the order is kept), once
 * HELD_MAX_BYTES are held, and by pid 1's main loop HELD_MAX_NS after the first. */
#define HELD_MAX_BYTES (32 * 1024)
#define HELD_MAX_NS (10 * 1000000ull)

static struct mp_writer held; /* framed envelopes; guarded by g.send_lock */
static uint64_t held_since;

/* Process notices held one after another share one MSG_PROCS envelope, open at the end
 * of `held`: Node decodes one message and a small array per notice instead of an
 * envelope and a map each, three times per short process, on its main thread. Its
 * frame length and entry count are filled in when it is closed: before another frame
 * is held, and before `held` is written. Guarded by g.send_lock. */
static size_t procs_at = SIZE_MAX; /* the open envelope's frame in `held` */
static uint32_t procs_count;
/* Frame length (filled in), {type: MSG_PROCS, body: array32 (count filled in)} */
static const uint8_t procs_head[] = {0, 0, 0, 0, 0x82, 0xa4, 't', 'y', 'p', 'e', 0xa5, 'p', 'r', 'o', 'c', 's',
                                     0xa4, 'b', 'o', 'd', 'y', 0xdd, 0, 0, 0, 0};

/* Fills in the frame length and entry count of the MSG_PROCS envelope at `at` of `w`. */
static void seal_procs(struct mp_writer *w, size_t at, uint32_t count) {
  uint8_t *p = w->data + at;
  uint32_t n = (uint32_t)(w->len - at - 4);
  p[0] = (uint8_t)n, p[1] = (uint8_t)(n >> 8), p[2] = (uint8_t)(n >> 16), p[3] = (uint8_t)(n >> 24);
  uint8_t *c = p + sizeof procs_head - 4;
  c[0] = (uint8_t)(count >> 24), c[1] = (uint8_t)(count >> 16), c[2] = (uint8_t)(count >> 8), c[3] = (uint8_t)count;
}

/* send_lock held. (A failed append changes nothing held: the envelope stays whole.) */
static void close_procs(void) {
  if (procs_at == SIZE_MAX) return;
  seal_procs(&held, procs_at, procs_count);
  procs_at = SIZE_MAX;
  procs_count = 0;
}

/* The socket's writes. A write of what is held (up to HELD_MAX_BYTES, and a wake-up of
 * Node) took tens of us, and made under g.send_lock it held up every handler thread
 * that posted meanwhile: about 4 us a post on average in a process storm, three posts a
 * process, each while the process waited (and spawn and exec posted under g.lock). So
 * the writer takes write_lock before it lets go of send_lock (the order of the frames
 * is the order of the locks), swaps what is held for an empty buffer, and writes with
 * write_lock alone. Lock order: send_lock, then write_lock; a thread holding write_lock
 * never takes send_lock. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mp_writer writing; /* an emptied buffer kept for its room; write_lock */

static uint64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- pid 1's loop waiting without a timeout ----
 * The loop wakes every 20 ms only for what needs time to pass: notices held
 * (HELD_MAX_NS), requests' deadlines, exits whose status is not known yet. With none of
 * them it waits for events alone (an idle tree: a long compile, a sleep), and the first
 * notice held or request sent meanwhile wakes it through wake_fd. */
static int wake_fd = -1;
static bool loop_waits; /* guarded by g.send_lock */

int channel_wake_fd(void) {
  if (wake_fd < 0) wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  return wake_fd;
}

/* send_lock held. */
static void wake_loop(void) {
  if (!loop_waits) return;
  loop_waits = false;
  uint64_t one = 1;
  if (write(wake_fd, &one, sizeof one) < 0) {}
}

/* Called with send_lock held, which it releases: writes what is held, then `extra`
 * (NULL: none), after every frame held before and before any held after. A failed
 * write means Node is gone; PDEATHSIG ends us shortly. */
static void write_held_unlock(const struct mp_writer *extra) {
  close_procs();
  pthread_mutex_lock(&write_lock);
  struct mp_writer out = held;
  held = writing;
  held.len = 0;
  held.failed = false;
  writing = out;
  pthread_mutex_unlock(&g.send_lock);
  if (g.sock >= 0 && writing.len) write_full(g.sock, writing.data, writing.len);
  if (g.sock >= 0 && extra) write_full(g.sock, extra->data, extra->len);
  writing.len = 0;
  pthread_mutex_unlock(&write_lock);
}

/* One envelope, framed: {type, id?, re?, error?, body?}; id and re 0 when absent. False
 * when out of memory (reported). */
static bool frame_envelope(struct mp_writer *w, const char *type, uint64_t id, uint64_t re, const char *error,
                           const struct mp_writer *body) {
  mp_writer_init(w);
  mp_write_raw(w, "\0\0\0\0", 4); /* length prefix, filled in below */
  mp_write_map(w, 1 + (id != 0) + (re != 0) + (error != NULL) + (body != NULL));
  mp_write_cstr(w, "type");
  mp_write_cstr(w, type);
  if (id) {
    mp_write_cstr(w, "id");
    mp_write_uint(w, id);
  }
  if (re) {
    mp_write_cstr(w, "re");
    mp_write_uint(w, re);
  }
  if (error) {
    mp_write_cstr(w, "error");
    mp_write_cstr(w, error);
  }
  if (body) {
    mp_write_cstr(w, "body");
    mp_write_raw(w, body->data, body->len);
  }
  if (w->failed) {
    problem(PROBLEM_NO_MEMORY);
    mp_writer_free(w);
    return false;
  }
  uint32_t n = (uint32_t)(w->len - 4);
  w->data[0] = (uint8_t)n;
  w->data[1] = (uint8_t)(n >> 8);
  w->data[2] = (uint8_t)(n >> 16);
  w->data[3] = (uint8_t)(n >> 24);
  return true;
}

static void send_envelope(const char *type, uint64_t id, uint64_t re, const char *error, const struct mp_writer *body) {
  struct mp_writer w;
  if (!frame_envelope(&w, type, id, re, error, body)) return;
  pthread_mutex_lock(&g.send_lock);
  write_held_unlock(&w);
  mp_writer_free(&w);
}

void channel_send(const char *type, const struct mp_writer *body) { send_envelope(type, 0, 0, NULL, body); }

void channel_post(const char *type, const struct mp_writer *body) {
  struct mp_writer w;
  if (!frame_envelope(&w, type, 0, 0, NULL, body)) return;
  pthread_mutex_lock(&g.send_lock);
  close_procs();
  if (!held.len) held_since = monotonic_ns();
  mp_write_raw(&held, w.data, w.len);
  wake_loop(); /* (the loop writes it HELD_MAX_NS from now) */
  /* a failed append left out this one: what was held goes now, with this one after */
  if (held.failed) write_held_unlock(&w);
  else if (held.len >= HELD_MAX_BYTES) write_held_unlock(NULL);
  else pthread_mutex_unlock(&g.send_lock);
  mp_writer_free(&w);
}

void channel_post_proc(const struct mp_writer *entry) {
  if (entry->failed) {
    problem(PROBLEM_NO_MEMORY);
    return;
  }
  pthread_mutex_lock(&g.send_lock);
  if (!held.len) held_since = monotonic_ns();
  if (procs_at == SIZE_MAX) {
    size_t at = held.len;
    mp_write_raw(&held, procs_head, sizeof procs_head);
    if (!held.failed) procs_at = at;
  }
  if (procs_at != SIZE_MAX) mp_write_raw(&held, entry->data, entry->len);
  wake_loop(); /* (the loop writes it HELD_MAX_NS from now) */
  if (!held.failed) {
    procs_count++;
    if (held.len >= HELD_MAX_BYTES) write_held_unlock(NULL);
    else pthread_mutex_unlock(&g.send_lock);
    return;
  }
  /* a failed append left out this one: what was held goes now, with this one after,
   * in an envelope of its own */
  struct mp_writer w;
  mp_writer_init(&w);
  mp_write_raw(&w, procs_head, sizeof procs_head);
  mp_write_raw(&w, entry->data, entry->len);
  if (w.failed) {
    write_held_unlock(NULL);
    problem(PROBLEM_NO_MEMORY);
  } else {
    seal_procs(&w, 0, 1);
    write_held_unlock(&w);
  }
  mp_writer_free(&w);
}

bool channel_flush(bool all) {
  pthread_mutex_lock(&g.send_lock);
  bool due = held.len && (all || monotonic_ns() - held_since >= HELD_MAX_NS);
  if (due) write_held_unlock(NULL);
  else pthread_mutex_unlock(&g.send_lock);
  return due;
}

/* ---- requests to Node ---- */

struct outgoing {
  uint64_t id;
  char *type;
  uint64_t deadline_ns;
  channel_reply_fn on_reply;
  void *arg;
  struct outgoing *next;
};

static pthread_mutex_t outgoing_lock = PTHREAD_MUTEX_INITIALIZER;
static struct outgoing *outgoing;
static uint64_t next_request_id = 1;

uint64_t channel_request(const char *type, const struct mp_writer *body, unsigned timeout_ms,
                         channel_reply_fn on_reply, void *arg) {
  struct outgoing *o = calloc(1, sizeof *o);
  char *name = strdup(type);
  if (!o || !name) {
    free(o);
    free(name);
    problem(PROBLEM_NO_MEMORY);
    return 0;
  }
  o->type = name;
  o->deadline_ns = monotonic_ns() + (uint64_t)timeout_ms * 1000000ull;
  o->on_reply = on_reply;
  o->arg = arg;
  pthread_mutex_lock(&outgoing_lock);
  o->id = next_request_id++;
  o->next = outgoing;
  outgoing = o;
  pthread_mutex_unlock(&outgoing_lock);
  uint64_t id = o->id;
  /* `o` may be answered (and freed) by the main loop as soon as this is sent */
  send_envelope(type, id, 0, NULL, body);
  pthread_mutex_lock(&g.send_lock);
  wake_loop(); /* (the loop expires it at its deadline) */
  pthread_mutex_unlock(&g.send_lock);
  return id;
}

void channel_wake(void) {
  pthread_mutex_lock(&g.send_lock);
  wake_loop();
  pthread_mutex_unlock(&g.send_lock);
}

bool channel_wait_begin(void) {
  if (wake_fd < 0) return false;
  pthread_mutex_lock(&g.send_lock);
  pthread_mutex_lock(&outgoing_lock);
  loop_waits = !held.len && !outgoing;
  pthread_mutex_unlock(&outgoing_lock);
  bool untimed = loop_waits;
  pthread_mutex_unlock(&g.send_lock);
  return untimed;
}

void channel_wait_end(void) {
  pthread_mutex_lock(&g.send_lock);
  loop_waits = false;
  pthread_mutex_unlock(&g.send_lock);
  uint64_t n;
  if (read(wake_fd, &n, sizeof n) < 0) {}
}

static struct outgoing *take_outgoing(uint64_t id, uint64_t expired_before) {
  pthread_mutex_lock(&outgoing_lock);
  struct outgoing **pp = &outgoing, *o = NULL;
  for (; *pp; pp = &(*pp)->next) {
    if ((id && (*pp)->id == id) || (!id && (*pp)->deadline_ns <= expired_before)) {
      o = *pp;
      *pp = o->next;
      break;
    }
  }
  pthread_mutex_unlock(&outgoing_lock);
  return o;
}

void channel_expire(void) {
  uint64_t now = monotonic_ns();
  struct outgoing *o;
  while ((o = take_outgoing(0, now))) {
    problem(PROBLEM_REQUEST_TIMEOUT);
    o->on_reply(o->arg, NULL, "timed out");
    free(o->type);
    free(o);
  }
}

size_t channel_requests_open(void) {
  size_t n = 0;
  pthread_mutex_lock(&outgoing_lock);
  for (struct outgoing *o = outgoing; o; o = o->next) n++;
  pthread_mutex_unlock(&outgoing_lock);
  return n;
}

/* ---- messages from Node ---- */

struct handler {
  const char *type;
  channel_request_fn on_request; /* a request (carries an id) */
  channel_notice_fn on_notice;   /* a notification */
};

static struct handler handlers[16];
static size_t nhandlers;

void channel_handle(const char *type, channel_request_fn on_request) {
  if (nhandlers < sizeof handlers / sizeof handlers[0])
    handlers[nhandlers++] = (struct handler){ type, on_request, NULL };
}

void channel_on(const char *type, channel_notice_fn on_notice) {
  if (nhandlers < sizeof handlers / sizeof handlers[0])
    handlers[nhandlers++] = (struct handler){ type, NULL, on_notice };
}

void channel_dispatch(const uint8_t *data, size_t len) {
  struct mp_reader r;
  mp_reader_init(&r, data, len);
  uint32_t n;
  char *type = NULL, *error = NULL;
  int64_t id = 0, re = 0;
  const uint8_t *body = NULL;
  size_t body_len = 0;
  bool ok = mp_read_map(&r, &n);
  while (ok && n--) {
    const char *k;
    uint32_t klen;
    if (!mp_read_bytes(&r, &k, &klen)) ok = false;
    else if (mp_key_is(k, klen, "type")) ok = mp_read_strdup(&r, &type);
    else if (mp_key_is(k, klen, "id")) ok = mp_read_int(&r, &id);
    else if (mp_key_is(k, klen, "re")) ok = mp_read_int(&r, &re);
    else if (mp_key_is(k, klen, "error")) ok = mp_read_strdup(&r, &error);
    else if (mp_key_is(k, klen, "body")) {
      body = r.p;
      ok = mp_skip(&r);
      body_len = (size_t)(r.p - body);
    } else ok = mp_skip(&r);
  }
  if (!ok || !type) {
    problem(PROBLEM_BAD_MESSAGE);
    fprintf(stderr, "uwrx-init: malformed message from uwrx\n");
  } else if (re > 0) {
    /* an answer to one of our requests; one that timed out already is dropped */
    struct outgoing *o = take_outgoing((uint64_t)re, 0);
    if (o) {
      struct mp_reader br;
      mp_reader_init(&br, body ? body : (const uint8_t *)"\xc0", body ? body_len : 1);
      o->on_reply(o->arg, error ? NULL : &br, error);
      free(o->type);
      free(o);
    }
  } else {
    const struct handler *h = NULL;
    for (size_t i = 0; i < nhandlers && !h; i++)
      if (!strcmp(handlers[i].type, type) && (id > 0 ? handlers[i].on_request != NULL : handlers[i].on_notice != NULL))
        h = &handlers[i];
    struct mp_reader br;
    mp_reader_init(&br, body ? body : (const uint8_t *)"\xc0", body ? body_len : 1);
    if (!h) {
      problem(PROBLEM_BAD_MESSAGE);
      fprintf(stderr, "uwrx-init: unknown %s \"%s\" from uwrx\n", id > 0 ? "request" : "message", type);
      if (id > 0) {
        char why[160];
        snprintf(why, sizeof why, "uwrx-init: no handler for \"%s\"", type);
        send_envelope(type, 0, (uint64_t)id, why, NULL);
      }
    } else if (id > 0) {
      struct mp_writer out;
      mp_writer_init(&out);
      const char *why = h->on_request(&br, &out);
      send_envelope(type, 0, (uint64_t)id, why, why ? NULL : &out);
      mp_writer_free(&out);
    } else {
      h->on_notice(&br);
    }
  }
  free(type);
  free(error);
}

void channel_fail(int step, const char *op, const char *path, int errno_value, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (errno_value && (size_t)n < sizeof msg)
    snprintf(msg + n, sizeof msg - (size_t)n, ": %s", strerror(errno_value));
  struct mp_writer body;
  mp_writer_init(&body);
  mp_write_map(&body, 5);
  mp_write_cstr(&body, "message");
  mp_write_cstr(&body, msg);
  mp_write_cstr(&body, "step");
  mp_write_int(&body, step);
  mp_write_cstr(&body, "op");
  mp_write_cstr(&body, op ? op : "");
  mp_write_cstr(&body, "path");
  mp_write_cstr(&body, path ? path : "");
  mp_write_cstr(&body, "errno");
  mp_write_int(&body, errno_value);
  send_envelope(MSG_FAILED, 0, 0, msg, &body);
  mp_writer_free(&body);
  if (g.sock < 0) fprintf(stderr, "uwrx-init: %s\n", msg);
}
