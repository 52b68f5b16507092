// A generated multi-file C project built with make: `files` sources in src/, each
// including common.h and one of four group headers (g0.h ... g3.h) found through
// `-Ishadow -Iinclude` (shadow/ starts empty: a header put there shadows one in
// include/), archived into libproj.a with ar and linked with main.c into `prog`. Every
// compile prints a warning on stderr, so output replay shows. Used by the partial
// rebuild tests and benchmark.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const GROUPS = 4;

export interface CProject {
  dir: string;
  /** Source file names (without directory), in order: m0.c ... */
  sources: string[];
  /** The group header file a source includes. */
  groupOf(source: string): string;
  /** Object files the build writes, relative to dir. */
  objects: string[];
}

export function writeCProject(dir: string, files = 32): CProject {
  mkdirSync(path.join(dir, 'src'), { recursive: true });
  mkdirSync(path.join(dir, 'include'), { recursive: true });
  mkdirSync(path.join(dir, 'shadow'), { recursive: true });
  mkdirSync(path.join(dir, 'obj'), { recursive: true });
  writeFileSync(
    path.join(dir, 'include', 'common.h'),
    '#ifndef COMMON_H\n#define COMMON_H\n#include <stdio.h>\n#define SCALE 3\nint proj_total(void);\n#endif\n',
  );
  for (let g = 0; g < GROUPS; g++) {
    writeFileSync(path.join(dir, 'include', `g${g}.h`), `#ifndef G${g}_H\n#define G${g}_H\n#define GROUP_BASE ${g * 100}\n#endif\n`);
  }
  const sources: string[] = [];
  const decls: string[] = [];
  for (let i = 0; i < files; i++) {
    const name = `m${i}.c`;
    sources.push(name);
    decls.push(`int m${i}(int);`);
    writeFileSync(
      path.join(dir, 'src', name),
      `#include "common.h"\n#include "g${i % GROUPS}.h"\n` +
        `int m${i}(int x) { int unused_${i}; return x * SCALE + GROUP_BASE + ${i}; }\n`,
    );
  }
  writeFileSync(
    path.join(dir, 'src', 'main.c'),
    `#include "common.h"\n${decls.join('\n')}\n` +
      `int main(void) { long t = 0;\n${sources.map((_, i) => `  t += m${i}(${i});`).join('\n')}\n` +
      '  printf("total %ld\\n", t); return 0; }\n',
  );
  const objects = sources.map((s) => `obj/${s.replace(/\.c$/, '.o')}`);
  writeFileSync(
    path.join(dir, 'Makefile'),
    [
      'CFLAGS ?= -O1 -Wall',
      'CPPFLAGS = -Ishadow -Iinclude',
      `OBJS = ${objects.join(' ')}`,
      'prog: obj/main.o libproj.a',
      '\tgcc -o $@ obj/main.o libproj.a',
      'libproj.a: $(OBJS)',
      '\tar rcs $@ $(OBJS)',
      'obj/%.o: src/%.c',
      '\tgcc $(CFLAGS) $(CPPFLAGS) -c -o $@ $<',
      '',
    ].join('\n'),
  );
  return {
    dir,
    sources,
    groupOf: (source) => `g${Number(/^m(\d+)\.c$/.exec(source)![1]) % GROUPS}.h`,
    objects: [...objects, 'obj/main.o'],
  };
}
