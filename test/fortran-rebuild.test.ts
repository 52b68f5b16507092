// Fortran modules under partial rebuild: gfortran writes a module's interface to a .mod
// file that every user of the module reads, and rewrites it only when the interface
// changed. gfortran and f951 are on the default skippable list: a replay after an edit
// of the module's code alone skips the user's compile (its inputs, the .mod among them,
// are unchanged); an edit of its interface runs it again, naming the .mod. Each replay's
// program prints what the same sources print natively.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const missing = ensureCommands({ gfortran: 'gfortran' });

const MODULE = `module shapes
  implicit none
  type :: circle
     real(8) :: r
  end type circle
contains
  pure function area(c) result(a)
    type(circle), intent(in) :: c
    real(8) :: a
    a = 4.0d0 * atan(1.0d0) * c%r**2
  end function area
end module shapes
`;

const MAIN = `program main
  use shapes
  implicit none
  integer :: i
  print '(F10.4)', sum([(area(circle(real(i, 8))), i = 1, 5)])
end program main
`;

const MAKEFILE = `prog: main.o shapes.o
\tgfortran -o $@ main.o shapes.o
main.o: main.f90 shapes.o
\tgfortran -O2 -c main.f90
shapes.o: shapes.f90
\tgfortran -O2 -c shapes.f90
`;

interface Decision {
  pid: number;
  exe: string;
  decision: string;
  reason: string;
}

/** The replay's decisions for the compile of main.f90 (the gfortran driver's row). */
async function mainCompile(dir: string, attempt: string): Promise<Decision | undefined> {
  const r = await uwrx(['inspect', 'rebuild', attempt, '--format', 'json'], { cwd: dir });
  const rows = JSON.parse(r.stdout) as Decision[];
  const procs = readFileSync(path.join(attempt, 'procs.tsv'), 'utf8').split('\n');
  const pidOfMain = procs.find((l) => /gfortran\S* -O2 -c main\.f90/.test(l.replace(/\t/g, ' ')))?.split('\t')[0];
  return rows.find((row) => String(row.pid) === pidOfMain);
}

/** The program's output natively, built from `dir`'s sources. */
function nativeOutput(dir: string): string {
  const copy = `${dir}-native`;
  rmSync(copy, { recursive: true, force: true });
  mkdirSync(copy);
  for (const f of ['Makefile', 'shapes.f90', 'main.f90']) cpSync(path.join(dir, f), path.join(copy, f));
  const built = spawnSync('sh', ['-c', 'make -s && ./prog'], { cwd: copy, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(built.stderr);
  return built.stdout;
}

test('a replay skips the compile of a module\'s user when only the module\'s code changed, and runs it when its interface did', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const cwd = scratchDir('uwrx-fortran-');
  const dir = path.join(cwd, 'src');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'Makefile'), MAKEFILE);
  writeFileSync(path.join(dir, 'shapes.f90'), MODULE);
  writeFileSync(path.join(dir, 'main.f90'), MAIN);
  const build = path.join(cwd, 'B');
  const capture = await uwrx(['run', '-q', '--build', build, '--', 'sh', '-c', 'make -s && ./prog'], { cwd: dir });
  t.is(capture.status, 0, capture.stderr);
  t.is(capture.stdout, nativeOutput(dir));
  t.is(capture.stdout.trim(), '172.7876');

  // the code alone: area() now 2r; shapes.mod is written the same
  writeFileSync(path.join(dir, 'shapes.f90'), MODULE.replace('4.0d0 * atan(1.0d0) * c%r**2', '2.0d0 * c%r'));
  const first = await uwrx(['run', '-q', '--build', build, '--replay', path.join(build, '0', '0')], { cwd: dir });
  t.is(first.status, 0, first.stderr);
  t.is(first.stdout, nativeOutput(dir));
  t.is(first.stdout.trim(), '30.0000');
  const skipped = await mainCompile(dir, path.join(build, '0', '1'));
  t.is(skipped?.decision, 'skipped', JSON.stringify(skipped));

  // the interface: an optional argument changes shapes.mod, which main.f90's compile read
  writeFileSync(
    path.join(dir, 'shapes.f90'),
    MODULE.replace('area(c) result(a)', 'area(c, scale) result(a)')
      .replace('    real(8) :: a\n', '    real(8), intent(in), optional :: scale\n    real(8) :: a\n')
      .replace('4.0d0 * atan(1.0d0) * c%r**2', '2.0d0 * c%r\n    if (present(scale)) a = a * scale'),
  );
  const second = await uwrx(['run', '-q', '--build', build, '--replay', path.join(build, '0', '1')], { cwd: dir });
  t.is(second.status, 0, second.stderr);
  t.is(second.stdout, nativeOutput(dir));
  const ran = await mainCompile(dir, path.join(build, '0', '2'));
  t.is(ran?.decision, 'ran', JSON.stringify(ran));
  t.regex(ran?.reason ?? '', /shapes\.mod changed/);
  t.notRegex(first.stderr + second.stderr, /skew|in the future/);
});
