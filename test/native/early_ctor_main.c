/* Linked with libearlyctor.so: prints whether its constructor read /proc/filesystems. */
#include <stdio.h>

int early_ctor_lines(void);

int main(void) {
  printf("early %s\n", early_ctor_lines() > 0 ? "read" : "missed");
  return 0;
}
