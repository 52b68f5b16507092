import test from 'ava';
import { mkdirSync, statSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { layerLookup, layersBelow, layersFor, resolveBytes, resolveFile, resolveInLayers, settleLayers, type Resolution } from '../src/record/resolve.js';
import { formatFilesMetaLine, parseFilesMeta, parseFilesMetaEscaped, FilesMetaError } from '../src/record/files-meta.js';
import { escapeBytes } from '../src/record/escape.js';
import { native } from '../src/native.js';
import { scratchDir } from './helpers/uwrx.js';

function put(root: string, rel: string, content: string): void {
  const file = path.join(root, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
}

function whiteout(root: string, rel: string): void {
  const file = path.join(root, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  native().makeWhiteout(file);
}

function contentOf(attempt: string, file: string, pid?: number): string | null {
  const r = resolveFile(attempt, file, pid);
  return r.kind === 'found' ? readFileSync(r.file, 'utf8') : null;
}

test('resolveFile: per-process versions, first version, parents, real filesystem', (t) => {
  const build = scratchDir();
  const parent = path.join(build, '0', '0');
  const attempt = path.join(build, '10', '0');
  put(parent, 'files/p/only-in-parent', 'parent');
  put(parent, 'files/p/foo', 'parent foo');
  put(attempt, 'files/p/foo', 'A');
  put(attempt, 'files-7/p/foo', 'C');
  put(attempt, 'files-9/p/foo', 'D');
  mkdirSync(path.join(attempt, 'parent'));
  symlinkSync('../../../0/0', path.join(attempt, 'parent', '0'));

  t.is(contentOf(attempt, '/p/foo', 5), 'A', 'a process before C sees the first version');
  t.is(contentOf(attempt, '/p/foo', 7), 'A', 'C itself saw A before writing');
  t.is(contentOf(attempt, '/p/foo', 8), 'C');
  t.is(contentOf(attempt, '/p/foo'), 'D', 'after the run: the last version');
  t.is(contentOf(attempt, '/p/only-in-parent', 3), 'parent');
  const real = resolveFile(attempt, '/etc/hostname');
  t.is(real.kind, 'found');
  t.true(real.kind === 'found' && real.layer.real === true);
  t.is(resolveFile(attempt, '/p/nowhere').kind, 'absent');
});

// Whiteouts are device nodes: making them takes root.
const asRoot = process.getuid?.() === 0 ? test : test.skip;
asRoot('resolveFile: whiteouts and opaque directories hide lower layers (needs root to make whiteouts)', (t) => {
  const build = scratchDir();
  const attempt = path.join(build, '0', '0');
  put(attempt, 'files/etc/keep', 'k');
  whiteout(attempt, 'files/etc/hostname');
  put(attempt, 'files-4/etc/keep', 'k4');
  whiteout(attempt, 'files-6/etc/keep');
  t.is(resolveFile(attempt, '/etc/hostname').kind, 'absent', 'deleted real file');
  t.is(contentOf(attempt, '/etc/keep', 5), 'k4');
  t.is(resolveFile(attempt, '/etc/keep', 7).kind, 'absent', 'deleted by process 6');
  t.is(resolveFile(attempt, '/etc/keep').kind, 'absent');

  // /usr removed and re-created: an opaque directory hides the real /usr/bin.
  mkdirSync(path.join(attempt, 'files/usr'), { recursive: true });
  native().setXattr(path.join(attempt, 'files/usr'), 'user.overlay.opaque', Buffer.from('y'));
  put(attempt, 'files/usr/new', 'n');
  t.is(resolveFile(attempt, '/usr/bin/env').kind, 'absent');
  t.is(contentOf(attempt, '/usr/new'), 'n');
  // A whiteout of a directory hides what is below it.
  whiteout(attempt, 'files/var');
  t.is(resolveFile(attempt, '/var/lib').kind, 'absent');
});

asRoot('settled layers, and layer by layer lookups, give the answers of the plain rule, however often asked (needs root to make whiteouts)', (t) => {
  const build = scratchDir();
  const parent = path.join(build, '0', '0');
  const attempt = path.join(build, '1', '0');
  put(parent, 'files/w/b/p.h', 'parent');
  put(parent, 'files/w/hidden/x', 'parent x');
  put(attempt, 'files/w/b/a.o', 'A');
  put(attempt, 'files-3/w/b/a.o', 'A3');
  whiteout(attempt, 'files-5/w/b/a.o');
  put(attempt, 'files-5/w/file-not-dir', 'f');
  whiteout(attempt, 'files-7/w/hidden');
  mkdirSync(path.join(attempt, 'files-9/w/opaque'), { recursive: true });
  native().setXattr(path.join(attempt, 'files-9/w/opaque'), 'user.overlay.opaque', Buffer.from('y'));
  put(attempt, 'files-9/w/opaque/new', 'n');
  put(parent, 'files/w/opaque/old', 'old');
  mkdirSync(path.join(attempt, 'parent'));
  symlinkSync('../../../0/0', path.join(attempt, 'parent', '0'));

  const files = ['/w/b/a.o', '/w/b/p.h', '/w/b/none', '/w/hidden/x', '/w/file-not-dir/y', '/w/opaque/new', '/w/opaque/old', '/w/opaque/none', '/etc/hostname', '/w', '/nowhere/at/all'];
  const text = (file: string) => (statSync(file).isDirectory() ? 'dir' : readFileSync(file, 'utf8').slice(0, 8));
  const describe = (r: ReturnType<typeof resolveInLayers>) => (r.kind === 'found' ? `${text(r.file)}@${r.layer.root}` : `absent@${r.layer?.root ?? ''}`);
  const seen: string[] = [];
  for (const pid of [2, 4, 6, 8, 10, Number.POSITIVE_INFINITY]) {
    const settled = settleLayers(layersFor(attempt, pid));
    for (let round = 0; round < 2; round++) {
      for (const f of files) {
        const plain = describe(resolveInLayers(layersFor(attempt, pid), f));
        t.is(describe(resolveInLayers(settled, f)), plain, `${f} for process ${pid}, round ${round}`);
        // the rule is the first layer that decides (the rebuild index asks layer by layer)
        const lookup = layerLookup(f);
        let first: Resolution | undefined;
        for (const layer of settled) if ((first = lookup(layer))) break;
        t.is(first && describe(first), plain, `${f} layer by layer for process ${pid}, round ${round}`);
        seen.push(plain);
      }
    }
  }
  // the cases above are all exercised: versions, deletions, hiding, opaque, parents, real
  t.true(seen.includes(`A3@${attempt}/files-3`) && seen.includes(`absent@${attempt}/files-5`));
  t.true(seen.includes(`absent@${attempt}/files-7`) && seen.includes(`n@${attempt}/files-9`));
  t.true(seen.includes(`parent@${parent}/files`) && seen.some((d) => d.endsWith('@/')));
});

test('resolveInLayers on the host gives what the rule over the path\'s bytes gives', (t) => {
  const dir = scratchDir();
  put(dir, 'a/b/file', 'x');
  symlinkSync('nowhere', path.join(dir, 'a', 'dangling'));
  symlinkSync('b', path.join(dir, 'a', 'link'));
  const host = layersBelow(path.join(dir, 'no-attempt'));
  t.is(host.length, 1);
  const paths = ['/', dir, `${dir}/`, `${dir}//a/./b/file`, `${dir}/a/b/file/`, `${dir}/a/x/../b/file`, `${dir}/a/dangling`, `${dir}/a/link/`,
    `${dir}/a/link/file`, `${dir}/a/missing`, `${dir}/a/b/file/below-a-file`, `${dir}/a/\u00e9t\u00e9`, '/proc/self/fd/'];
  for (const p of paths) {
    const bytes = resolveBytes(host, Buffer.from(path.normalize(p)));
    const expected = bytes.kind === 'found' ? { kind: 'found', file: bytes.file.toString(), layer: bytes.layer } : bytes;
    t.deepEqual(resolveInLayers(host, p), expected, p);
  }
  t.is((resolveInLayers(host, `${dir}/a/b/file/`) as { file: string }).file, `${dir}/a/b/file`);
  t.is(resolveInLayers(host, `${dir}/a/dangling`).kind, 'found');
  t.is(resolveInLayers(host, `${dir}/a/missing`).kind, 'absent');
});

test('files.meta round-trips odd paths and names bad lines', (t) => {
  const entries = [
    { path: Buffer.from('/w/with space\tand\ttabs\nnewline'), pid: 3, operation: 'write' as const, execPath: Buffer.from('/usr/bin/gcc') },
    { path: Buffer.from([0x2f, 0xff, 0xfe, 0x5c]), pid: 12, operation: 'rename_to' as const, execPath: Buffer.from('/bin/mv') },
  ];
  const text = entries.map(formatFilesMetaLine).join('');
  t.is(text.split('\n').length, 3);
  t.deepEqual(parseFilesMeta(text), entries);
  t.throws(() => parseFilesMeta('/a\t2\twrite\n/b\tx\twrite\t/bin/sh\n'), { instanceOf: FilesMetaError, message: /line 1: expected 4/ });
  t.throws(() => parseFilesMeta('/a\t2\tfrobnicate\t/bin/sh\n'), { message: /unknown operation "frobnicate"/ });
  t.throws(() => parseFilesMeta('/a\t0\twrite\t/bin/sh\n'), { message: /not a logical pid/ });
  // the escaped reading: the paths as escapeBytes writes them, also from an escape that
  // is not the canonical one, and the same errors
  const plain = '/w/conftest.c\t7\tcreate\t/usr/bin/bash\n/w/\\x41\u00e9\t8\tdelete\t/bin/rm\n';
  const escaped = parseFilesMetaEscaped(text + plain);
  t.deepEqual(escaped, [...entries, ...parseFilesMeta(plain)].map((e) => ({ ...e, path: escapeBytes(e.path), execPath: escapeBytes(e.execPath) })));
  t.is(escaped[3]!.path, '/w/A\u00e9');
  t.throws(() => parseFilesMetaEscaped('/a\t2\twrite\n'), { instanceOf: FilesMetaError, message: /line 1: expected 4/ });
  t.throws(() => parseFilesMetaEscaped('/a\t2\twrite\t/bin/sh\n/b\\q\t2\twrite\t/bin/sh\n'), { instanceOf: FilesMetaError, message: /line 2: malformed escape/ });
});
