/* uwrx-remove PATH...: removes each path (a whole tree), in its own session. A finished
 * run hands it what is left of its run directory (src/sandbox/run-dir-removal.ts), renamed aside
 * first, so that uwrx need not wait for the kernel's removal of a few hundred
 * directories before it exits. Started by the addon's posix_spawn with /dev/null as its
 * stdio; an error leaves the rest for the next run's removal of the same leftovers.
 * Exit status: 0, or 1 when a path could not be removed. */
#include <fcntl.h>
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>
#include "../common/remove_tree.h"

/* Below the build's processes: the removal waits on the kernel mostly, and what runs
 * next (the build's next step) should not wait for its CPU. */
#define REMOVE_NICENESS 10

int main(int argc, char **argv) {
  /* out of the caller's process group: a Ctrl-C meant for what runs after uwrx, or the
   * end of its terminal session, does not stop the removal halfway */
  setsid();
  setpriority(PRIO_PROCESS, 0, REMOVE_NICENESS);
  int status = 0;
  for (int i = 1; i < argc; i++) {
    if (uwrx_remove_at(AT_FDCWD, argv[i], DT_UNKNOWN) != 0) status = 1;
  }
  return status;
}
