// File descriptor primitives Node lacks: socket pairs for talking to uwrx-init.
#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_map>
#include <uv.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "addon.h"

Napi::Value ThrowErrno(Napi::Env env, const char *op, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(op) + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, op));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC): returns [a, b].
static Napi::Value SocketPair(const Napi::CallbackInfo &info) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return ThrowErrno(info.Env(), "socketpair", errno);
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), sv[0]));
  out.Set(1u, Napi::Number::New(info.Env(), sv[1]));
  return out;
}

// socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC): returns [a, b]. Carries fds from
// uwrx-init (Node's stream sockets drop SCM_RIGHTS).
static Napi::Value SeqpacketPair(const Napi::CallbackInfo &info) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return ThrowErrno(info.Env(), "socketpair", errno);
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), sv[0]));
  out.Set(1u, Napi::Number::New(info.Env(), sv[1]));
  return out;
}

// recvFd(sock): one message {id: u32, fd} without waiting; null when none is queued.
static Napi::Value RecvFd(const Napi::CallbackInfo &info) {
  int sock = info[0].As<Napi::Number>().Int32Value();
  uint32_t id = 0;
  struct iovec iov = { &id, sizeof id };
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = u.buf;
  msg.msg_controllen = sizeof u.buf;
  ssize_t n;
  while ((n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return info.Env().Null();
    return ThrowErrno(info.Env(), "recvmsg", errno);
  }
  if (n == 0) return info.Env().Null();
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) return ThrowErrno(info.Env(), "recvmsg (no fd)", EBADMSG);
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("id", Napi::Number::New(info.Env(), id));
  out.Set("fd", Napi::Number::New(info.Env(), fd));
  return out;
}

static Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (close(fd) != 0) return ThrowErrno(info.Env(), "close", errno);
  return info.Env().Undefined();
}

// whenReadable(fd, callback): calls callback() once, on the main event loop, when fd
// becomes readable (a datagram or a connection waits), without reading anything; the
// watch does not keep the loop alive. Returns an id for cancelReadable(id), which is a
// no-op once the callback ran. Lets a run start an actor only when its socket is used.
struct ReadableWatch {
  uv_poll_t poll;
  napi_env env;
  Napi::FunctionReference callback;
  uint32_t id;
};
static std::unordered_map<uint32_t, ReadableWatch *> readable_watches;
static uint32_t next_watch_id = 1;

static void CloseWatch(ReadableWatch *w) {
  readable_watches.erase(w->id);
  uv_poll_stop(&w->poll);
  uv_close(reinterpret_cast<uv_handle_t *>(&w->poll), [](uv_handle_t *h) { delete static_cast<ReadableWatch *>(h->data); });
}

static void OnReadable(uv_poll_t *poll, int, int) {
  ReadableWatch *w = static_cast<ReadableWatch *>(poll->data);
  Napi::FunctionReference callback = std::move(w->callback);
  Napi::Env env(w->env);
  CloseWatch(w);
  Napi::HandleScope scope(env);
  callback.MakeCallback(env.Global(), {});
}

static Napi::Value WhenReadable(const Napi::CallbackInfo &info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  uv_loop_t *loop = nullptr;
  if (napi_get_uv_event_loop(info.Env(), &loop) != napi_ok) return ThrowErrno(info.Env(), "uv loop", EINVAL);
  ReadableWatch *w = new ReadableWatch();
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) {
    delete w;
    return ThrowErrno(info.Env(), "uv_poll_init", -rc);
  }
  w->poll.data = w;
  w->env = info.Env();
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  w->id = next_watch_id++;
  readable_watches[w->id] = w;
  uv_unref(reinterpret_cast<uv_handle_t *>(&w->poll));
  uv_poll_start(&w->poll, UV_READABLE, OnReadable);
  return Napi::Number::New(info.Env(), w->id);
}

static Napi::Value CancelReadable(const Napi::CallbackInfo &info) {
  auto it = readable_watches.find(info[0].As<Napi::Number>().Uint32Value());
  if (it != readable_watches.end()) CloseWatch(it->second);
  return info.Env().Undefined();
}

void InitFds(Napi::Env env, Napi::Object exports) {
  exports.Set("socketPair", Napi::Function::New(env, SocketPair));
  exports.Set("seqpacketPair", Napi::Function::New(env, SeqpacketPair));
  exports.Set("recvFd", Napi::Function::New(env, RecvFd));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("whenReadable", Napi::Function::New(env, WhenReadable));
  exports.Set("cancelReadable", Napi::Function::New(env, CancelReadable));
}
