// A Debian package built with dpkg-buildpackage and debhelper, as a packager builds it:
// Perl's dh sequence, make, gcc, strip and objcopy for the debug symbols, dpkg-shlibdeps
// reading the system's package database, all under fakeroot, which preloads its own
// library into every program (LD_PRELOAD, beside uwrx's recorder) and answers their
// ownership calls from a daemon it starts (faked, over System V IPC). The packages are bit for bit the ones built natively (the
// changelog's date is the build's SOURCE_DATE_EPOCH), and so is what the build printed.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const missing = ensureCommands({ dh: 'debhelper', fakeroot: 'fakeroot', 'dpkg-buildpackage': 'dpkg-dev', cc: 'gcc' });

const FILES: Record<string, string> = {
  'hello.c': '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n',
  Makefile: [
    'CFLAGS ?= -O2 -g',
    'all: hello',
    'hello: hello.c',
    '\t$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<',
    'install:',
    '\tinstall -D -m 0755 hello $(DESTDIR)/usr/bin/hello',
    'clean:',
    '\trm -f hello',
    '',
  ].join('\n'),
  'debian/control': [
    'Source: hello-uwrx',
    'Section: misc',
    'Priority: optional',
    'Maintainer: Test <test@example.org>',
    'Build-Depends: debhelper-compat (= 13)',
    'Standards-Version: 4.6.2',
    '',
    'Package: hello-uwrx',
    'Architecture: any',
    'Depends: ${shlibs:Depends}, ${misc:Depends}',
    'Description: test package',
    ' A package built under uwrx and natively.',
    '',
  ].join('\n'),
  'debian/rules': '#!/usr/bin/make -f\n%:\n\tdh $@\n',
  'debian/changelog': 'hello-uwrx (1.0-1) unstable; urgency=medium\n\n  * Initial release.\n\n -- Test <test@example.org>  Thu, 03 Dec 2026 00:00:00 +0000\n',
  'debian/source/format': '3.0 (native)\n',
};

function writeSource(dir: string): void {
  for (const [name, text] of Object.entries(FILES)) {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text, { mode: name === 'debian/rules' ? 0o755 : 0o644 });
  }
}

function inBuildOrder(output: string): string {
  const lines = output.split('\n');
  const debs = lines.filter((l) => l.startsWith('dpkg-deb: building package')).sort();
  return lines.map((l) => (l.startsWith('dpkg-deb: building package') ? debs.shift()! : l)).join('\n');
}

interface Proc {
  exe: string | null;
}

test('dpkg-buildpackage with debhelper and fakeroot builds the packages it builds natively, byte for byte', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const cwd = scratchDir('uwrx-deb-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  // the same tree in two directories of the same name length; -d: build-essential's
  // metapackage need not be installed for what this builds. (As root dpkg-buildpackage
  // would use no fakeroot of its own: it runs under one.)
  for (const dir of ['nat', 'rec']) writeSource(path.join(cwd, dir, 'hello-1.0'));
  const build = 'cd hello-1.0 && fakeroot -- dpkg-buildpackage -us -uc -b -d 2>&1; echo "exit $?"';
  const native = execFileSync('sh', ['-c', build], { cwd: path.join(cwd, 'nat'), encoding: 'utf8' });
  const r = await uwrx(['run', '-q', '--build', '../b', '--', 'sh', '-c', build], { cwd: path.join(cwd, 'rec') });
  t.is(r.status, 0, r.stderr);
  t.true(native.endsWith('exit 0\n'), native);
  // dh_builddeb runs one dpkg-deb per package in parallel: their lines come in either
  // order, natively too
  // (make names its directory, -ffile-prefix-map takes it out of the binaries)
  const here = native.replaceAll(path.join(cwd, 'nat'), path.join(cwd, 'rec'));
  t.is(inBuildOrder(r.stdout), inBuildOrder(here), 'what the build printed');

  // the packages, read back through a later step; the contents' owners are fakeroot's
  const show = 'sha256sum *.deb && dpkg-deb -c hello-uwrx_1.0-1_amd64.deb';
  const later = await uwrx(['run', '-q', '--build', '../b', '--step', '1', '--parent', '../b/0/0', '--', 'sh', '-c', show], { cwd: path.join(cwd, 'rec') });
  t.is(later.status, 0, later.stderr);
  const nativeShow = execFileSync('sh', ['-c', show], { cwd: path.join(cwd, 'nat'), encoding: 'utf8' });
  t.is(later.stdout, nativeShow, 'the .deb files and their contents');
  t.regex(nativeShow, /hello-uwrx-dbgsym_1\.0-1_amd64\.deb/);
  t.regex(nativeShow, /root\/root +\d+ \S+ \S+ \.\/usr\/bin\/hello/);

  // fakeroot's daemon and dpkg-deb ran inside, and are in the record
  const procs = await uwrx(['inspect', 'procs', 'b/0/0', '--format', 'json'], { cwd });
  t.is(procs.status, 0, procs.stderr);
  const exes = (JSON.parse(procs.stdout) as Proc[]).map((p) => path.basename(p.exe ?? ''));
  t.true(exes.some((e) => e.startsWith('faked')), exes.join(' '));
  t.true(exes.includes('dpkg-deb'), exes.join(' '));
  // faked ends with the build: nothing lingered
  const status = JSON.parse(readFileSync(path.join(cwd, 'b/0/0/status'), 'utf8')) as { complete: boolean; terminated?: unknown };
  t.true(status.complete && status.terminated === undefined, JSON.stringify(status));
});
