// File descriptor primitives Node lacks: socket pairs for talking to uwrx-init.
#include <cerrno>
#include <cstring>
#include <string>
#include <sys/socket.h>
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

static Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (close(fd) != 0) return ThrowErrno(info.Env(), "close", errno);
  return info.Env().Undefined();
}

void InitFds(Napi::Env env, Napi::Object exports) {
  exports.Set("socketPair", Napi::Function::New(env, SocketPair));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
}
