/* A feature for uwrx's own tests: the control call UWRX_CTL_TEST_DEFER(ms, value,
 * timeout_ms) is deferred (VERDICT_PENDING) and answered when Node replies to a
 * "test.defer" request, `ms` later, or with EIO when Node has not replied after
 * timeout_ms (0: ms + 10 s). Only the calling thread waits meanwhile; the tests check that the rest of
 * the tree goes on, and that a caller interrupted or killed meanwhile leaves nothing
 * behind. Enabled only by the plan key testDeferral. It also answers UWRX_CTL_TEST_STUCK:
 * the handler thread held in the call, unannounced, before it answers. */
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "init.h"
#include "uwrx_control.h"
#include "uwrx_init_proto.h"

/* Node answers after `ms`: give it that long and some more before giving up. */
#define SLACK_MS 10000

static void on_reply(void *arg, struct mp_reader *body, const char *error) {
  uint64_t handle = (uint64_t)(uintptr_t)arg;
  int64_t value = 0;
  bool ok = false;
  uint32_t n;
  if (!error && body && mp_read_map(body, &n)) {
    while (n--) {
      const char *k;
      uint32_t klen;
      if (!mp_read_bytes(body, &k, &klen)) break;
      if (mp_key_is(k, klen, "value")) ok = mp_read_int(body, &value);
      else mp_skip(body);
    }
  }
  /* false when the caller is gone: nothing more to do, the answer is simply dropped */
  notify_reply(handle, value, ok ? 0 : EIO, false);
}

static enum verdict on_test_defer(struct notif_ctx *ctx) {
  const __u64 *a = ctx->req->data.args;
  if (a[5] != UWRX_CONTROL_MAGIC || !ctx->proc) return VERDICT_CONTINUE;
  uint64_t handle = notify_defer(ctx);
  if (!handle) return notify_answer_now(ctx, 0, ENOMEM);
  struct mp_writer w;
  mp_writer_init(&w);
  mp_write_map(&w, 3);
  mp_write_cstr(&w, "pid");
  mp_write_int(&w, ctx->proc->logical);
  mp_write_cstr(&w, "ms");
  mp_write_uint(&w, a[1]);
  mp_write_cstr(&w, "value");
  mp_write_int(&w, (int64_t)a[2]);
  unsigned timeout = a[3] ? (a[3] > 600000 ? 600000 : (unsigned)a[3])
                          : a[1] > 600000 ? 600000 + SLACK_MS : (unsigned)a[1] + SLACK_MS;
  if (!channel_request(MSG_TEST_DEFER, &w, timeout, on_reply, (void *)(uintptr_t)handle))
    notify_reply(handle, 0, ENOMEM, false);
  mp_writer_free(&w);
  return VERDICT_PENDING;
}

/* UWRX_CTL_TEST_STUCK: the handler holds on as a slow call nobody announced would */
static enum verdict on_test_stuck(struct notif_ctx *ctx) {
  const __u64 *a = ctx->req->data.args;
  if (a[5] != UWRX_CONTROL_MAGIC) return VERDICT_CONTINUE;
  uint64_t ms = a[1] < 5000 ? a[1] : 5000;
  struct timespec pause = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
  while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {}
  return notify_answer_now(ctx, (int64_t)a[2], 0);
}

static const struct arg_match test_op = { .arg = 0, .count = 1, .values = { UWRX_CTL_TEST_DEFER } };
static const struct arg_match stuck_op = { .arg = 0, .count = 1, .values = { UWRX_CTL_TEST_STUCK } };

static const struct subscription test_calls[] = {
  { UWRX_SYS_CONTROL, on_test_defer, &test_op, NULL },
  { UWRX_SYS_CONTROL, on_test_stuck, &stuck_op, NULL },
};

static bool requested(const struct plan *plan) { return plan->test_deferral; }

const struct feature feature_deferral_test = {
  .name = "deferral-test",
  .enabled = requested,
  .subs = SUBSCRIPTIONS(test_calls),
};
