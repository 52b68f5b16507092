// Removing a directory tree in one thread-pool job. fs.rm makes a round trip to the
// thread pool for each call on each entry (lstat, rmdir, readdir, rmdir again), which for
// a run directory's hundred-odd directories costs more CPU than the removal itself and
// queues before the record's own calls. Here one job walks the tree with the *at calls.
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include "addon.h"
#include "../common/remove_tree.h"

// The job: removes `path` on a thread-pool thread; the promise rejects with an Error
// carrying errno, like the other calls of the addon.
class RemoveTreeJob : public Napi::AsyncWorker {
 public:
  RemoveTreeJob(Napi::Env env, std::string path)
      : Napi::AsyncWorker(env, "uwrx.removeTree"), path_(std::move(path)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { err_ = uwrx_remove_at(AT_FDCWD, path_.c_str(), DT_UNKNOWN); }
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
