/* A shared library whose constructor uses libc before main and before the recorder's own
 * constructor (which runs after its dependents' in the dynamic linker's order), as
 * libselinux's does in sed, mkdir and mv: a read of /proc/filesystems through stdio
 * (malloc's first call, stdio's fstat of the descriptor). */
#include <stdio.h>

static int lines;

__attribute__((constructor)) static void read_early(void) {
  FILE *f = fopen("/proc/filesystems", "re");
  if (!f) return;
  char line[256];
  while (fgets(line, sizeof line, f)) lines++;
  fclose(f);
}

int early_ctor_lines(void) { return lines; }
