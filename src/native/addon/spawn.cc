// Starting uwrx-init without fork(). Node's spawn forks the whole Node process (some 60
// MB: its page tables copied, every writable page made copy-on-write) and waits for the
// exec: 5-8 ms of the main thread per run, and a fault on the first write to each page
// afterwards. vfork shares the memory until the exec instead. (Not posix_spawn: glibc's
// leaves its own signals, 32 and 33, ignored in the child when Node handles them, and
// the command would inherit that.) The child gets what Node's spawn gives it: the
// descriptors named (the others are close-on-exec in Node; 0-2 made blocking), default
// signal dispositions and an empty signal mask, an empty environment and the working
// directory asked for.
//
// Its exit is watched through a pidfd on the main event loop; the watch keeps the loop
// alive until the process is reaped, unless unref'd (Node's child.unref()).
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>
#include <vector>
#include "addon.h"

namespace {

// The child's side of SpawnHelper, between vfork and exec: it runs on the parent's
// memory and stack, so only raw system calls, and signals stay blocked until every
// handler of Node's is reset. Sets *err and exits when something fails.
[[noreturn]] void ChildInit(const char *file, char *const argv[], const int *slots, int nslots, const char *cwd, volatile int *err) {
  // every disposition back to the default (a handler would be Node's, and an ignored
  // signal stays ignored through exec), glibc's own signals included, as libuv does
  struct { __sighandler_t handler; unsigned long flags; void *restorer; uint64_t mask; } dfl = { SIG_DFL, 0, nullptr, 0 };
  for (int sig = 1; sig <= 64; sig++) syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
  for (int i = 0; i < nslots; i++) {
    int fd = slots[i];
    if (fd == i) {
      if (fcntl(i, F_SETFD, 0) != 0) goto fail;
    } else if (fd >= 0) {
      if (dup2(fd, i) < 0) goto fail;
    } else if (i < 3) {
      // Node's 'ignore': /dev/null for 0-2; above, the descriptor stays closed
      int null = open("/dev/null", i == 0 ? O_RDONLY : O_RDWR);
      if (null < 0 || (null != i && dup2(null, i) < 0)) goto fail;
      if (null != i) close(null);
    }
    // 0-2 blocking, as libuv leaves them (Node's own stdout may be a non-blocking pipe,
    // and the command's writes would fail with EAGAIN)
    if (i < 3) {
      int flags = fcntl(i, F_GETFL);
      if (flags >= 0 && (flags & O_NONBLOCK) && fcntl(i, F_SETFL, flags & ~O_NONBLOCK) != 0) goto fail;
    }
  }
  if (chdir(cwd) != 0) goto fail;
  {
    uint64_t none = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof none);
    char *envp[] = { nullptr };
    execve(file, argv, envp);
  }
fail:
  *err = errno;
  _exit(127);
}

// vfork and ChildInit: the child's pid (-1 and errno when vfork failed). Apart, without
// objects of its own, so that nothing in the caller lives across the vfork.
__attribute__((noinline)) pid_t VforkExec(const char *file, char *const argv[], const int *slots, int nslots, const char *cwd, int *childErr) {
  // every signal blocked (glibc's own too) until the child has reset their handlers
  uint64_t all = ~0ULL, before = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &before, sizeof all);
  pid_t pid = vfork();
  if (pid == 0) ChildInit(file, argv, slots, nslots, cwd, childErr);
  int saved = errno;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &before, nullptr, sizeof before);
  errno = saved;
  return pid;
}

// spawnHelper(file, argv, slots, cwd): { pid, pidfd }. slots[i] is the descriptor the
// child gets as i (-1: Node's 'ignore'). argv[0] is the file.
Napi::Value SpawnHelper(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string file = info[0].As<Napi::String>();
  Napi::Array argArray = info[1].As<Napi::Array>();
  Napi::Array slotArray = info[2].As<Napi::Array>();
  std::string cwd = info[3].As<Napi::String>();
  std::vector<std::string> args = { file };
  for (uint32_t i = 0; i < argArray.Length(); i++) args.push_back(argArray.Get(i).As<Napi::String>());
  std::vector<char *> argv;
  for (auto &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int top = static_cast<int>(slotArray.Length()) - 1;
  std::vector<int> slots(slotArray.Length());
  for (uint32_t i = 0; i < slotArray.Length(); i++) slots[i] = slotArray.Get(i).As<Napi::Number>().Int32Value();
  // The child's dup2s go in ascending order: a source below its slot could be overwritten
  // by an earlier one, so it is moved above every slot first (close-on-exec, closed
  // below), as libuv does; the others are left where they are (the last descriptor the
  // limit allows may be passed as itself).
  std::vector<int> moved;
  int err = 0;
  for (int i = 0; i <= top && err == 0; i++) {
    if (slots[i] < 0 || slots[i] >= i) continue;
    int fd = fcntl(slots[i], F_DUPFD_CLOEXEC, top + 1);
    if (fd < 0) err = errno;
    else {
      moved.push_back(fd);
      slots[i] = fd;
    }
  }
  pid_t pid = -1;
  int childErr = 0;
  if (err == 0) {
    pid = VforkExec(file.c_str(), argv.data(), slots.data(), static_cast<int>(slots.size()), cwd.c_str(), &childErr);
    if (pid < 0) err = errno;
  }
  for (int fd : moved) close(fd);
  if (err == 0 && childErr != 0) {
    err = childErr;
    waitpid(pid, nullptr, 0);
  }
  if (err != 0) return ThrowErrno(env, ("spawn " + file).c_str(), err);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    // a pid without its pidfd could not be waited for: not started, as far as we know
    int e = errno;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return ThrowErrno(env, "pidfd_open", e);
  }
  fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, pid));
  out.Set("pidfd", Napi::Number::New(env, pidfd));
  return out;
}

// The exit watch of one spawned process.
struct ExitWatch {
  uv_poll_t poll;
  napi_env env;
  Napi::FunctionReference callback;
  int pidfd;
  pid_t pid;
};

void OnExitReadable(uv_poll_t *poll, int, int) {
  ExitWatch *w = static_cast<ExitWatch *>(poll->data);
  int status = 0;
  pid_t got;
  while ((got = waitpid(w->pid, &status, WNOHANG)) < 0 && errno == EINTR) {}
  if (got == 0) return; // not yet (a stop, or a spurious wake-up)
  uv_poll_stop(&w->poll);
  Napi::Env env(w->env);
  Napi::FunctionReference callback = std::move(w->callback);
  close(w->pidfd);
  uv_close(reinterpret_cast<uv_handle_t *>(&w->poll), [](uv_handle_t *h) { delete static_cast<ExitWatch *>(h->data); });
  Napi::HandleScope scope(env);
  Napi::Value code = env.Null(), signal = env.Null();
  if (got > 0 && WIFEXITED(status)) code = Napi::Number::New(env, WEXITSTATUS(status));
  else if (got > 0 && WIFSIGNALED(status)) signal = Napi::Number::New(env, WTERMSIG(status));
  // An unref'd watch fires as well while Node tears its environment down (the program
  // ended before the process did): JavaScript cannot run then, the call fails with no
  // exception pending, and is dropped (MakeCallback would abort the process). An
  // exception the callback threw is the process's, as from any callback of the loop.
  napi_value argv[2] = {code, signal};
  napi_value result;
  if (napi_make_callback(env, nullptr, env.Global(), callback.Value(), 2, argv, &result) == napi_ok) return;
  bool pending = false;
  napi_value error;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending && napi_get_and_clear_last_exception(env, &error) == napi_ok)
    napi_fatal_exception(env, error);
}

// watchExit(pid, pidfd, callback(code, signalNumber)): reaps the process when it ends
// and calls back once; the pidfd is the watch's from then on. Returns a handle for
// unrefExit.
Napi::Value WatchExit(const Napi::CallbackInfo &info) {
  uv_loop_t *loop = nullptr;
  if (napi_get_uv_event_loop(info.Env(), &loop) != napi_ok) return ThrowErrno(info.Env(), "uv loop", EINVAL);
  ExitWatch *w = new ExitWatch();
  w->pid = info[0].As<Napi::Number>().Int32Value();
  w->pidfd = info[1].As<Napi::Number>().Int32Value();
  int rc = uv_poll_init(loop, &w->poll, w->pidfd);
  if (rc != 0) {
    delete w;
    return ThrowErrno(info.Env(), "uv_poll_init", -rc);
  }
  w->poll.data = w;
  w->env = info.Env();
  w->callback = Napi::Persistent(info[2].As<Napi::Function>());
  uv_poll_start(&w->poll, UV_READABLE, OnExitReadable);
  return Napi::External<ExitWatch>::New(info.Env(), w);
}

// unrefExit(handle): the watch no longer keeps the event loop alive. Only called before
// the exit callback ran (the handle is freed after it).
Napi::Value UnrefExit(const Napi::CallbackInfo &info) {
  ExitWatch *w = info[0].As<Napi::External<ExitWatch>>().Data();
  uv_unref(reinterpret_cast<uv_handle_t *>(&w->poll));
  return info.Env().Undefined();
}

}  // namespace

void InitSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnHelper", Napi::Function::New(env, SpawnHelper));
  exports.Set("watchExit", Napi::Function::New(env, WatchExit));
  exports.Set("unrefExit", Napi::Function::New(env, UnrefExit));
}
