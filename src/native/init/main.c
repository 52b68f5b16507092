/* uwrx-init: pid 1 of the sandbox. Placeholder until the sandbox lands. */
#include <stdio.h>
int main(void) { fputs("uwrx-init: not implemented\n", stderr); return 2; }
