// Removing a directory tree in one thread-pool job. fs.rm makes a round trip to the
// thread pool for each call on each entry (lstat, rmdir, readdir, rmdir again), which for
// a run directory's hundred-odd directories costs more CPU than the removal itself and
// queues before the record's own calls. Here one job walks the tree with the *at calls.
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include "addon.h"

// Removes `name` in `parent` (a file, a symlink or a whole directory); 0 or an errno.
// Absent is success. A directory that denies its owner reading or writing (overlayfs
// leaves work/work with mode 000) is given 0700 first. `type`: the entry's d_type where
// readdir told it, so a directory is not first tried as a file (a run directory is
// mostly directories).
static int RemoveAt(int parent, const char *name, unsigned char type = DT_UNKNOWN) {
  if (type != DT_DIR) {
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT) return 0;
    if (errno != EISDIR && errno != EPERM) return errno;
  }
  // a directory (Linux says EISDIR; POSIX allows EPERM): empty ones go at once
  if (unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT) return 0;
  if (errno == ENOTDIR && type == DT_DIR) return RemoveAt(parent, name); // replaced meanwhile
  if (errno != ENOTEMPTY && errno != EEXIST) return errno;
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == EACCES) {
    if (fchmodat(parent, name, 0700, 0) != 0) return errno;
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (fd < 0) return errno;
  struct stat st;
  // without write and search permission its entries cannot be removed
  if (fstat(fd, &st) == 0 && (st.st_mode & 0300) != 0300) fchmod(fd, (st.st_mode & 07777) | 0700);
  DIR *dir = fdopendir(fd);
  if (!dir) {
    int err = errno;
    close(fd);
    return err;
  }
  int err = 0;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(dir);
    if (!e) {
      if (errno != 0) err = errno;
      break;
    }
    if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0))) continue;
    err = RemoveAt(dirfd(dir), e->d_name, e->d_type);
    if (err != 0) break;
  }
  closedir(dir);
  if (err != 0) return err;
  if (unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT) return 0;
  return errno;
}

// The job: removes `path` on a thread-pool thread; the promise rejects with an Error
// carrying errno, like the other calls of the addon.
class RemoveTreeJob : public Napi::AsyncWorker {
 public:
  RemoveTreeJob(Napi::Env env, std::string path)
      : Napi::AsyncWorker(env, "uwrx.removeTree"), path_(std::move(path)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { err_ = RemoveAt(AT_FDCWD, path_.c_str()); }
  void OnOK() override {
    Napi::Env env = Env();
    if (err_ == 0) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    Napi::Error e = Napi::Error::New(env, "remove " + path_ + ": " + strerror(err_));
    e.Set("errno", Napi::Number::New(env, err_));
    deferred_.Reject(e.Value());
  }

 private:
  std::string path_;
  Napi::Promise::Deferred deferred_;
  int err_ = 0;
};

// removeTree(path): Promise<void>.
static Napi::Value RemoveTree(const Napi::CallbackInfo &info) {
  auto *job = new RemoveTreeJob(info.Env(), info[0].As<Napi::String>());
  Napi::Promise promise = job->Promise();
  job->Queue();
  return promise;
}

void InitRemove(Napi::Env env, Napi::Object exports) {
  exports.Set("removeTree", Napi::Function::New(env, RemoveTree));
}
