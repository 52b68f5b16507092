// Extended attributes, whiteouts and exact times: overlayfs marks opaque directories with
// an xattr and deleted files with a 0/0 character device, and a layer's directories keep
// times to the nanosecond; Node has no API for the first two and sets times only to the
// microsecond, through a double that can be off by one more.
#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include "addon.h"

// lgetxattr(path, name): Buffer, or null when the attribute is absent.
static Napi::Value GetXattr(const Napi::CallbackInfo &info) {
  std::string path = info[0].As<Napi::String>();
  std::string name = info[1].As<Napi::String>();
  char buf[4096];
  ssize_t n = lgetxattr(path.c_str(), name.c_str(), buf, sizeof buf);
  if (n < 0) {
    if (errno == ENODATA || errno == ENOTSUP) return info.Env().Null();
    return ThrowErrno(info.Env(), ("lgetxattr " + path).c_str(), errno);
  }
  return Napi::Buffer<char>::Copy(info.Env(), buf, static_cast<size_t>(n));
}

static Napi::Value SetXattr(const Napi::CallbackInfo &info) {
  std::string path = info[0].As<Napi::String>();
  std::string name = info[1].As<Napi::String>();
  Napi::Buffer<char> value = info[2].As<Napi::Buffer<char>>();
  if (lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), 0) != 0)
    return ThrowErrno(info.Env(), ("lsetxattr " + path).c_str(), errno);
  return info.Env().Undefined();
}

// mknod(path, S_IFCHR|0000, makedev(0, 0)): an overlayfs whiteout.
static Napi::Value MakeWhiteout(const Napi::CallbackInfo &info) {
  std::string path = info[0].As<Napi::String>();
  if (mknod(path.c_str(), S_IFCHR, makedev(0, 0)) != 0)
    return ThrowErrno(info.Env(), ("mknod " + path).c_str(), errno);
  return info.Env().Undefined();
}

// lutimensat(path, atimeNs, mtimeNs) with BigInt nanoseconds since the epoch.
static Napi::Value SetTimesNs(const Napi::CallbackInfo &info) {
  std::string path = info[0].As<Napi::String>();
  bool lossless = true;
  int64_t times_ns[2] = { info[1].As<Napi::BigInt>().Int64Value(&lossless), info[2].As<Napi::BigInt>().Int64Value(&lossless) };
  struct timespec ts[2];
  for (int i = 0; i < 2; i++) {
    ts[i].tv_sec = times_ns[i] / 1000000000;
    ts[i].tv_nsec = times_ns[i] % 1000000000;
    if (ts[i].tv_nsec < 0) {
      ts[i].tv_sec -= 1;
      ts[i].tv_nsec += 1000000000;
    }
  }
  if (utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
    return ThrowErrno(info.Env(), ("utimensat " + path).c_str(), errno);
  return info.Env().Undefined();
}

void InitXattr(Napi::Env env, Napi::Object exports) {
  exports.Set("getXattr", Napi::Function::New(env, GetXattr));
  exports.Set("setXattr", Napi::Function::New(env, SetXattr));
  exports.Set("makeWhiteout", Napi::Function::New(env, MakeWhiteout));
  exports.Set("setTimesNs", Napi::Function::New(env, SetTimesNs));
}
