// DirCalls (src/fs.ts): the run directory's directory calls carried out in one
// thread-pool job by the addon make what Node's synchronous calls make, and fail with
// the error Node's call would have thrown.
import test from 'ava';
import { chmodSync, chownSync, lstatSync, mkdirSync, statSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { DirCalls } from '../src/fs.js';
import { scratchDir } from './helpers/uwrx.js';

/** What a directory's stat says that the calls set. */
function shape(p: string) {
  const st = statSync(p, { bigint: true });
  return { mode: st.mode, uid: st.uid, gid: st.gid, atimeNs: st.atimeNs, mtimeNs: st.mtimeNs, dir: st.isDirectory() };
}

test('the calls make the tree Node makes: parents, modes, owners and times to the nanosecond Node sets', async (t) => {
  const dir = scratchDir('uwrx-dircalls-');
  const made: Record<string, ReturnType<typeof shape>> = {};
  // times with fractions a double cannot hold exactly, as a lower directory's times are
  const atime = 1700000000.123456;
  const mtime = 1700000001.987654321;
  for (const how of ['node', 'job'] as const) {
    const root = path.join(dir, how);
    const deep = path.join(root, 'a', 'b', 'c');
    const plain = path.join(root, 'plain');
    const { uid, gid } = statSync(dir);
    if (how === 'node') {
      mkdirSync(deep, { recursive: true });
      mkdirSync(deep, { recursive: true });
      mkdirSync(plain);
      chownSync(deep, uid, gid);
      chmodSync(deep, 0o751);
      utimesSync(deep, atime, mtime);
      chmodSync(plain, 0o500);
    } else {
      const whiteouts = await new DirCalls()
        .mkdir(deep, { recursive: true })
        .mkdir(deep, { recursive: true })
        .mkdir(plain)
        .chown(deep, uid, gid)
        .chmod(deep, 0o751)
        .utimes(deep, atime, mtime)
        .chmod(plain, 0o500)
        .run();
      t.is(whiteouts.size, 0);
    }
    made[how] = { ...shape(deep), ...Object.fromEntries(Object.entries(shape(plain)).map(([k, v]) => [`plain.${k}`, v])) } as never;
  }
  // the plain directories were made at different moments: their modes and kind compare
  const strip = (s: Record<string, unknown>) => Object.fromEntries(Object.entries(s).filter(([k]) => !/^plain\.(a|m)timeNs$/.test(k)));
  t.deepEqual(strip(made.job!), strip(made.node!));
});

test('a whiteout is a 0/0 character device, returned with the identity lstat gives it', async (t) => {
  const dir = scratchDir('uwrx-dircalls-');
  const w = path.join(dir, 'upper', 'gone');
  const whiteouts = await new DirCalls().mkdir(path.join(dir, 'upper')).whiteout(w).run();
  const st = lstatSync(w, { bigint: true });
  t.true(st.isCharacterDevice());
  t.is(st.rdev, 0n);
  t.deepEqual([...whiteouts], [[w, `${st.ino}:${st.ctimeNs}`]]);
});

test('a failed call stops the job with the error Node\'s own call throws', async (t) => {
  const dir = scratchDir('uwrx-dircalls-');
  const after = path.join(dir, 'not-made');
  const cases: Array<[(c: DirCalls) => DirCalls, () => void]> = [
    [(c) => c.mkdir(dir), () => mkdirSync(dir)],
    [(c) => c.mkdir(path.join(dir, 'no', 'parent')), () => mkdirSync(path.join(dir, 'no', 'parent'))],
    [(c) => c.chmod(path.join(dir, 'absent'), 0o700), () => chmodSync(path.join(dir, 'absent'), 0o700)],
    [(c) => c.utimes(path.join(dir, 'absent'), 1, 2), () => utimesSync(path.join(dir, 'absent'), 1, 2)],
  ];
  for (const [calls, node] of cases) {
    const expected = t.throws(node)! as NodeJS.ErrnoException;
    const got = await t.throwsAsync(calls(new DirCalls()).mkdir(after).run());
    const fields = (e: NodeJS.ErrnoException) => ({ message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path });
    t.deepEqual(fields(got as NodeJS.ErrnoException), fields(expected));
    t.throws(() => statSync(after), undefined, 'nothing after the failed call was made');
  }
});
