// Ending uwrx's own process as its command ended.
#include <csignal>
#include <sys/resource.h>
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

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("endBySignal", Napi::Function::New(env, EndBySignal));
}
