// A list of directory-making calls carried out in one thread-pool job, in order: the run
// directory's uppers and work directories (src/sandbox/launch.ts). Made synchronously on
// the main thread they cost it some 10 ms per run (ext4's inode allocation), on the path
// to uwrx-init's start; as one job they run while the main thread spawns uwrx-init.
// Each call is what Node's synchronous call of the same name does (mkdir with mode 0777,
// chmod, chown and utimes following symlinks, utimes from seconds as a double), so the
// tree is the same; the first failure stops the job and is reported with the call's
// index and errno, for the caller to word as Node would.
#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <vector>
#include "addon.h"

namespace {

// The calls; the numbers are DirCalls' in src/fs.ts.
enum Op { MKDIR = 0, MKDIR_P = 1, CHMOD = 2, CHOWN = 3, UTIMES = 4, WHITEOUT = 5 };

struct Call {
  int op;
  std::string path;
  double a = 0, b = 0;
};

// Node's conversion of a time in seconds (uv__fs_to_timespec).
struct timespec ToTimespec(double t) {
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(t);
  ts.tv_nsec = static_cast<long>((t - static_cast<double>(ts.tv_sec)) * 1e9);
  ts.tv_nsec -= ts.tv_nsec % 1000; // libuv keeps microseconds only
  if (ts.tv_nsec < 0) {
    ts.tv_sec -= 1;
    ts.tv_nsec += 1000000000;
  }
  return ts;
}

// mkdir -p: 0 or an errno. An existing directory is success, an existing other file is
// EEXIST (ENOTDIR below it), as Node's recursive mkdir says.
int MakeParents(const std::string &path) {
  if (mkdir(path.c_str(), 0777) == 0) return 0;
  int err = errno;
  if (err == EEXIST) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? 0 : EEXIST;
  }
  if (err != ENOENT) return err;
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return err;
  int up = MakeParents(path.substr(0, slash));
  if (up != 0) return up;
  if (mkdir(path.c_str(), 0777) == 0 || errno == EEXIST) return 0;
  return errno;
}

class DirJob : public Napi::AsyncWorker {
 public:
  DirJob(Napi::Env env, std::vector<Call> calls)
      : Napi::AsyncWorker(env, "uwrx.makeDirs"), calls_(std::move(calls)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    for (size_t i = 0; i < calls_.size(); i++) {
      int err = Do(calls_[i]);
      if (err != 0) {
        failed_ = static_cast<int64_t>(i);
        err_ = err;
        return;
      }
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object result = Napi::Object::New(env);
    // the whiteouts' identities (inode and change time in ns), in call order
    Napi::Array ids = Napi::Array::New(env, identities_.size());
    for (size_t i = 0; i < identities_.size(); i++) ids.Set(i, Napi::String::New(env, identities_[i]));
    result.Set("whiteouts", ids);
    result.Set("failed", Napi::Number::New(env, static_cast<double>(failed_)));
    result.Set("errno", Napi::Number::New(env, err_));
    deferred_.Resolve(result);
  }

 private:
  int Do(const Call &c) {
    const char *p = c.path.c_str();
    switch (c.op) {
      case MKDIR:
        return mkdir(p, 0777) == 0 ? 0 : errno;
      case MKDIR_P:
        return MakeParents(c.path);
      case CHMOD:
        return chmod(p, static_cast<mode_t>(c.a)) == 0 ? 0 : errno;
      case CHOWN:
        return chown(p, static_cast<uid_t>(c.a), static_cast<gid_t>(c.b)) == 0 ? 0 : errno;
      case UTIMES: {
        struct timespec ts[2] = { ToTimespec(c.a), ToTimespec(c.b) };
        return utimensat(AT_FDCWD, p, ts, 0) == 0 ? 0 : errno;
      }
      case WHITEOUT: {
        if (mknod(p, S_IFCHR, makedev(0, 0)) != 0) return errno;
        struct stat st;
        if (lstat(p, &st) != 0) return errno;
        long long ctime_ns = static_cast<long long>(st.st_ctim.tv_sec) * 1000000000LL + st.st_ctim.tv_nsec;
        identities_.push_back(std::to_string(static_cast<unsigned long long>(st.st_ino)) + ":" + std::to_string(ctime_ns));
        return 0;
      }
      default:
        return EINVAL;
    }
  }

  std::vector<Call> calls_;
  std::vector<std::string> identities_;
  int64_t failed_ = -1;
  int err_ = 0;
  Napi::Promise::Deferred deferred_;
};

// makeDirs(ops: number[], paths: string[], args: number[]): Promise<{ whiteouts, failed,
// errno }>: call i is ops[i] on paths[i] with args[2i], args[2i+1].
Napi::Value MakeDirs(const Napi::CallbackInfo &info) {
  Napi::Array ops = info[0].As<Napi::Array>();
  Napi::Array paths = info[1].As<Napi::Array>();
  Napi::Array args = info[2].As<Napi::Array>();
  std::vector<Call> calls(ops.Length());
  for (uint32_t i = 0; i < ops.Length(); i++) {
    calls[i].op = ops.Get(i).As<Napi::Number>().Int32Value();
    calls[i].path = paths.Get(i).As<Napi::String>();
    calls[i].a = args.Get(2 * i).As<Napi::Number>().DoubleValue();
    calls[i].b = args.Get(2 * i + 1).As<Napi::Number>().DoubleValue();
  }
  auto *job = new DirJob(info.Env(), std::move(calls));
  Napi::Promise promise = job->Promise();
  job->Queue();
  return promise;
}

// renameat2(from, to, RENAME_NOREPLACE): 0 or an errno, nothing thrown (the store
// layout takes its spare directories this way, src/record/spare-dirs.ts, and meets
// EEXIST where a directory is already there as often as it succeeds). A plain rename
// would silently replace an empty directory at `to`. Paths are raw bytes (Buffer) or
// strings.
std::string PathArg(const Napi::Value &v) {
  if (v.IsBuffer()) {
    Napi::Buffer<char> b = v.As<Napi::Buffer<char>>();
    return std::string(b.Data(), b.Length());
  }
  return v.As<Napi::String>();
}

Napi::Value RenameNoReplace(const Napi::CallbackInfo &info) {
  std::string from = PathArg(info[0]);
  std::string to = PathArg(info[1]);
  int err = renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0 ? 0 : errno;
  return Napi::Number::New(info.Env(), err);
}

// Sets the top-directory flag (chattr +T) on a directory: 0 or an errno (ENOTTY,
// EOPNOTSUPP where the filesystem has no such flag). ext4 spreads the subdirectories of
// such a directory over its block groups (Orlov), where it puts another's near its parent.
Napi::Value SetTopDir(const Napi::CallbackInfo &info) {
  std::string path = PathArg(info[0]);
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Napi::Number::New(info.Env(), errno);
  int flags = 0;
  int err = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) err = errno;
  else if (!(flags & FS_TOPDIR_FL)) {
    flags |= FS_TOPDIR_FL;
    if (ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0) err = errno;
  }
  close(fd);
  return Napi::Number::New(info.Env(), err);
}

}  // namespace

void InitDirs(Napi::Env env, Napi::Object exports) {
  exports.Set("makeDirs", Napi::Function::New(env, MakeDirs));
  exports.Set("renameNoReplace", Napi::Function::New(env, RenameNoReplace));
  exports.Set("setTopDir", Napi::Function::New(env, SetTopDir));
}
