/* libc's own stats of descriptors, which programs never call by name: opendir, stdio's
 * buffer set-up (fopen + getc) and libc's fstat reached through its own symbol table.
 * Usage: libc_fstat_probe LOOPS FILE...
 * Makes LOOPS rounds of opendir+readdir of each FILE's directory and fopen+getc of each
 * FILE, then prints one line per FILE: whether libc's fstat of an open descriptor shows
 * what the raw system call (which always takes uwrx's notification path) shows, with
 * both results. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef int (*fstat_fn)(int, struct stat *);

static void show(const struct stat *s) {
  printf(" [%lu %lu %o %ld %ld.%09ld %ld.%09ld %ld.%09ld]", (unsigned long)s->st_dev, (unsigned long)s->st_ino,
         (unsigned)s->st_mode, (long)s->st_size, (long)s->st_atim.tv_sec, s->st_atim.tv_nsec, (long)s->st_mtim.tv_sec,
         s->st_mtim.tv_nsec, (long)s->st_ctim.tv_sec, s->st_ctim.tv_nsec);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: libc_fstat_probe LOOPS FILE...\n");
    return 2;
  }
  /* libc's fstat itself, not the preloaded recorder's (which the dynamic linker binds
   * this program's calls to): the same code opendir and stdio run */
  void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  fstat_fn libc_fstat = libc ? (fstat_fn)dlsym(libc, "fstat") : NULL;
  if (!libc_fstat) {
    fprintf(stderr, "libc's fstat not found\n");
    return 1;
  }
  int loops = atoi(argv[1]);
  for (int i = 0; i < loops; i++) {
    for (int f = 2; f < argc; f++) {
      char copy[4096];
      snprintf(copy, sizeof copy, "%s", argv[f]);
      DIR *d = opendir(dirname(copy));
      if (d) {
        while (readdir(d)) {
        }
        closedir(d);
      }
      FILE *fp = fopen(argv[f], "r");
      if (fp) {
        (void)getc(fp);
        fclose(fp);
      }
    }
  }
  for (int f = 2; f < argc; f++) {
    int fd = open(argv[f], O_RDONLY | O_CLOEXEC);
    struct stat mine, raw;
    memset(&mine, 0, sizeof mine);
    memset(&raw, 0, sizeof raw);
    int a = fd >= 0 ? libc_fstat(fd, &mine) : -1;
    long b = fd >= 0 ? syscall(SYS_newfstatat, fd, "", &raw, AT_EMPTY_PATH) : -1;
    int same = a == 0 && b == 0 && mine.st_dev == raw.st_dev && mine.st_ino == raw.st_ino &&
               mine.st_mode == raw.st_mode && mine.st_size == raw.st_size && mine.st_nlink == raw.st_nlink &&
               mine.st_atim.tv_sec == raw.st_atim.tv_sec && mine.st_atim.tv_nsec == raw.st_atim.tv_nsec &&
               mine.st_mtim.tv_sec == raw.st_mtim.tv_sec && mine.st_mtim.tv_nsec == raw.st_mtim.tv_nsec &&
               mine.st_ctim.tv_sec == raw.st_ctim.tv_sec && mine.st_ctim.tv_nsec == raw.st_ctim.tv_nsec;
    printf("%s %s", argv[f], same ? "same" : "differ");
    show(&mine);
    show(&raw);
    printf("\n");
    if (fd >= 0) close(fd);
  }
  return 0;
}
