// Extended attributes and whiteouts: overlayfs marks opaque directories with an xattr and
// deleted files with a 0/0 character device; Node has no API for either.
#include <cerrno>
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

void InitXattr(Napi::Env env, Napi::Object exports) {
  exports.Set("getXattr", Napi::Function::New(env, GetXattr));
  exports.Set("setXattr", Napi::Function::New(env, SetXattr));
  exports.Set("makeWhiteout", Napi::Function::New(env, MakeWhiteout));
}
