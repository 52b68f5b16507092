// Ending uwrx's own process as its command ended, and whether a terminal's Ctrl-C
// reaches the command itself.
#include <csignal>
#include <sys/resource.h>
#include <unistd.h>
#include "addon.h"

// endBySignal(signo): dies of signal `signo`, as the command did, so that whoever waits
// for uwrx sees a death by that signal (a shell's "Segmentation fault", make's, Python's
// negative return code), not an exit status. Without a core dump of uwrx itself (the
// command's own was its to make), with the default action whatever Node installed (it
// ignores SIGPIPE, V8 handles SIGSEGV). Returns when the signal's default action does not
// end a process (then the caller exits with a status).
static Napi::Value EndBySignal(const Napi::CallbackInfo &info) {
  int signo = info[0].As<Napi::Number>().Int32Value();
  if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP) {
    if (signo == SIGKILL) raise(SIGKILL);
    return info.Env().Undefined();
  }
  struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none);
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(signo, &dfl, nullptr);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, signo);
  pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
  raise(signo);
  return info.Env().Undefined();
}

// inTerminalForeground(): whether this process's group is the foreground group of the
// terminal on one of its standard descriptors. A Ctrl-C there is then the terminal's
// SIGINT, sent to the whole group, so the command tree, which stays in it, got it too.
static Napi::Value InTerminalForeground(const Napi::CallbackInfo &info) {
  pid_t group = getpgrp();
  for (int fd = 0; fd <= 2; fd++)
    if (isatty(fd) && tcgetpgrp(fd) == group) return Napi::Boolean::New(info.Env(), true);
  return Napi::Boolean::New(info.Env(), false);
}

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("endBySignal", Napi::Function::New(env, EndBySignal));
  exports.Set("inTerminalForeground", Napi::Function::New(env, InTerminalForeground));
}
