/* Calls the file-access functions the recorder answers in process with a NULL or an
 * unmapped path (and NULL result buffers), printing each result and errno. The kernel
 * answers EFAULT; a program must see the same under uwrx. Rust's standard library makes
 * the first call in every program that stats a missing file: statx(0, NULL, 0, mask,
 * NULL), expecting EFAULT, to learn whether statx works. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPORT(name, call)                                       \
  do {                                                           \
    errno = 0;                                                   \
    long r_ = (long)(call);                                      \
    printf("%s %ld %d\n", name, r_ < 0 ? -1L : r_, errno);       \
  } while (0)

int main(void) {
  /* volatile: the compiler must not see the NULLs (nonnull attributes would warn) */
  const char *volatile null_path = NULL;
  const char *volatile unmapped = (const char *)16;
  struct stat *volatile null_stat = NULL;
  struct statx *volatile null_statx = NULL;
  struct stat st;
  struct statx sx;
  char buf[64];

  REPORT("statx-rust-probe", statx(0, null_path, 0, STATX_BASIC_STATS | STATX_BTIME, null_statx));
  REPORT("statx-null", statx(AT_FDCWD, null_path, 0, STATX_BASIC_STATS, &sx));
  REPORT("statx-unmapped", statx(AT_FDCWD, unmapped, 0, STATX_BASIC_STATS, &sx));
  REPORT("statx-null-buffer", statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, null_statx));
  REPORT("stat-null", stat(null_path, &st));
  REPORT("stat-unmapped", stat(unmapped, &st));
  REPORT("lstat-null", lstat(null_path, &st));
  REPORT("fstatat-null", fstatat(AT_FDCWD, null_path, &st, 0));
  REPORT("fstatat-unmapped", fstatat(AT_FDCWD, unmapped, &st, AT_SYMLINK_NOFOLLOW));
  REPORT("stat-null-buffer", stat("/", null_stat));
  REPORT("open-null", open(null_path, O_RDONLY));
  REPORT("open-unmapped", open(unmapped, O_RDONLY));
  REPORT("openat-null", openat(AT_FDCWD, null_path, O_RDONLY | O_CLOEXEC));
  REPORT("access-null", access(null_path, R_OK));
  REPORT("access-unmapped", access(unmapped, F_OK));
  REPORT("faccessat-null", faccessat(AT_FDCWD, null_path, R_OK, AT_EACCESS));
  REPORT("readlink-null", readlink(null_path, buf, sizeof buf));
  REPORT("readlink-unmapped", readlink(unmapped, buf, sizeof buf));
  errno = 0;
  FILE *f = fopen(null_path, "r");
  printf("fopen-null %d %d\n", f ? 1 : 0, errno);
  /* still alive, and an ordinary call still works */
  REPORT("stat-root", stat("/", &st));
  return 0;
}
