/* Where the recorder redirects libc's entries (uwrx_recorder.h, redirect_skip), and
 * where the recorder library is loaded at all (UWRX_REC_NO_LIBRARY).
 *
 * The recorder writes jumps over a few of libc's system call wrappers in every image it
 * starts in (recorder/redirect.c), so that libc's own fstat, opens, getrandom and writes
 * to stdout and stderr are answered in process. Doing so costs a short process more
 * than a notification or two (the wrappers' pages made writable and copied, the symbol
 * lookups: 8 of a /bin/true's 66 page faults), and many programs make none of those
 * calls: /bin/true, test, expr. So the images of each program, known by the path it was
 * executed by, are watched here: the recorder counts in its header the calls its
 * redirected entries answered. A program none of whose redirected images made
 * REDIRECT_PAYS such calls has its next images left alone, but for every
 * REPROBE_EVERY-th, redirected again to see whether that still holds (a program's calls
 * depend on its arguments). What is recorded is the same either way: a call not
 * redirected is notified.
 *
 * Loading the library itself (ld.so opens and maps it, relocates it, runs its
 * constructor) costs a short process more again: on 500 /bin/true, about 0.4-0.9 ms of
 * CPU per process on a paravirtualized guest, where the calls it saves there are none. A
 * program whose images with the library made at most LIBRARY_IDLE_CALLS calls into it
 * (file calls, clock reads, waits, output; its own constructor makes one) gets none in
 * its next images, with the same re-probing: the shim's hook hands ld.so the sandbox's
 * /etc/ld.so.preload alone (as for a listing), and every call of the program takes the
 * notification path, which records the same.
 *
 * Everything here runs with g.lock held. */
#include <stdint.h>
#include <string.h>

#include "init.h"
#include "uwrx_hash.h"
#include "uwrx_recorder.h"

/* Calls through redirected entries that make redirecting worth its cost: each saves a
 * notification (about 14 us), the redirect costs about two. */
#define REDIRECT_PAYS 2
#define REPROBE_EVERY 16
/* Calls into the library that do not make loading it worth its cost: each saves a
 * notification, loading the library costs several. */
#define LIBRARY_IDLE_CALLS 3
/* Programs remembered; beyond that a new program is redirected as before. */
#define PROGRAM_SLOTS 4096

static struct program {
  uint64_t key;    /* image key of its path; 0: free */
  uint32_t calls;  /* the most any redirected image of it made */
  uint32_t images; /* its images started since it was first seen */
  uint32_t library_calls; /* the most calls into the library any image with it made */
} programs[PROGRAM_SLOTS];

static struct program *program(uint64_t key, bool add) {
  for (unsigned i = 0; i < 32; i++) {
    struct program *e = &programs[(key + i) % PROGRAM_SLOTS];
    if (e->key == key) return e;
    if (e->key == 0) {
      if (!add) return NULL;
      *e = (struct program){ .key = key };
      return e;
    }
  }
  return NULL;
}

static uint64_t image_key_of(const char *path) {
  uint64_t key = path ? uwrx_hash_bytes(0x7265646972656374ull, path, strlen(path)) : 0;
  return key ? key : 1;
}

void redirects_exec(struct proc *p, const char *path) {
  redirects_image_ended(p);
  /* the header's counts were the last image's (a program without the shim never resets them) */
  if (p->repro.lease_hdr) {
    __atomic_store_n(&p->repro.lease_hdr->redirect_calls, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->repro.lease_hdr->library_calls, 0, __ATOMIC_RELAXED);
  }
  p->image_key = image_key_of(path);
  p->image_left_alone = false;
  p->image_no_library = false;
  p->image_forked = false;
}

void redirects_spawned(struct proc *p, const struct proc *parent) {
  /* a forked child runs its parent's program, redirected or not as the parent is */
  p->image_key = parent ? parent->image_key : 0;
  p->image_left_alone = parent && parent->image_left_alone;
  p->image_no_library = parent && parent->image_no_library;
  p->image_forked = true;
}

/* What the next image of the program `key` gets: libc left alone, no library. */
static void decide(uint64_t key, bool *skip, bool *no_library) {
  struct program *e = key ? program(key, false) : NULL;
  bool probe = !e || ++e->images % REPROBE_EVERY == 0;
  *no_library = !probe && e->library_calls <= LIBRARY_IDLE_CALLS;
  *skip = *no_library || (!probe && e->calls < REDIRECT_PAYS);
}

static void image_starts(struct uwrx_rec_header *h, bool skip) {
  __atomic_store_n(&h->redirect_calls, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->library_calls, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->redirect_skip, skip ? 1u : 0u, __ATOMIC_RELEASE);
}

void redirects_image_started(struct proc *p, struct uwrx_rec_header *h) {
  bool skip, no_library;
  decide(p->image_key, &skip, &no_library);
  image_starts(h, skip);
  p->image_left_alone = skip;
  p->image_no_library = no_library;
}

void redirects_exec_prepare(const char *path, struct uwrx_rec_header *h, bool *skip, bool *no_library) {
  decide(image_key_of(path), skip, no_library);
  image_starts(h, *skip);
}

void redirects_exec_adopt(struct proc *p, const char *path, bool skip, bool no_library) {
  redirects_image_ended(p);
  p->image_key = image_key_of(path);
  p->image_left_alone = skip;
  p->image_no_library = no_library;
  p->image_forked = false;
}

void redirects_image_ended(struct proc *p) {
  const struct uwrx_rec_header *h = p->repro.lease_hdr;
  /* an image left alone (without the library), or one whose recorder never started,
   * says nothing of that. A fork's stretch of its parent's image speaks only when it
   * used the library (a subshell writing a file): the few calls of a fork that exits or
   * execs a helper at once (a browser's, before any image of the browser ended) would
   * leave the program's next images (its zygotes) without the library. */
  if (p->image_key && h && !p->image_no_library) {
    uint32_t library_calls = __atomic_load_n(&h->library_calls, __ATOMIC_RELAXED);
    bool says = !p->image_forked || library_calls > LIBRARY_IDLE_CALLS;
    struct program *e = says ? program(p->image_key, true) : NULL;
    if (e && library_calls > e->library_calls) e->library_calls = library_calls;
    uint32_t calls = __atomic_load_n(&h->redirect_calls, __ATOMIC_RELAXED);
    if (e && !p->image_left_alone && calls > e->calls) e->calls = calls;
  }
  p->image_key = 0;
}
