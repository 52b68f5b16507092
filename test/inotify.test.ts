// Watchers (a `--watch` mode, `tail -f`) learn of changes through inotify. Inside the
// sandbox the files live in overlays, whose directories report the changes made
// through them: a watch on the working directory sees the program's own creations,
// writes, renames and removals as natively, in the same order, and `tail -f` follows a
// file another process appends to.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { nativeAndRecordedDirs, uwrx } from './helpers/uwrx.js';

// Watches its working directory, then changes it from a thread; prints each event's
// kinds and name. Masks: IN_MODIFY 0x2, IN_CLOSE_WRITE 0x8, IN_MOVED_FROM 0x40,
// IN_MOVED_TO 0x80, IN_CREATE 0x100, IN_DELETE 0x200 (inotify(7)).
const WATCHER = String.raw`
import ctypes, os, struct, threading, time
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
assert fd >= 0, ctypes.get_errno()
assert libc.inotify_add_watch(fd, b".", 0x2 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200) >= 0
NAMES = {0x2: "modify", 0x8: "close_write", 0x40: "moved_from", 0x80: "moved_to", 0x100: "create", 0x200: "delete", 0x40000000: "dir"}
def change():
    time.sleep(0.1)
    with open("a.txt", "w") as f:
        f.write("one")
    with open("a.txt", "a") as f:
        f.write("two")
    os.rename("a.txt", "b.txt")
    os.mkdir("sub")
    os.remove("b.txt")
    os.rmdir("sub")
    open("last", "w").close()
threading.Thread(target=change).start()
seen = []
while not seen or seen[-1][1] != "last" or "close_write" not in seen[-1][0]:
    buf = os.read(fd, 4096)
    at = 0
    while at < len(buf):
        wd, mask, cookie, size = struct.unpack_from("iIII", buf, at)
        name = buf[at + 16:at + 16 + size].rstrip(b"\0").decode()
        seen.append(("+".join(v for k, v in sorted(NAMES.items()) if mask & k), name))
        at += 16 + size
for kinds, name in seen:
    print(kinds, name)
`;


test("an inotify watch on the working directory sees the program's own changes as natively", async (t) => {
  const { cwd, nat, rec } = nativeAndRecordedDirs('uwrx-inotify-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const native = spawnSync('python3', ['-c', WATCHER], { cwd: nat, encoding: 'utf8', timeout: 30_000 });
  t.is(native.status, 0, native.stderr);
  t.regex(native.stdout, /^create a\.txt\nmodify a\.txt\nclose_write a\.txt\n/);
  t.regex(native.stdout, /moved_from a\.txt\nmoved_to b\.txt\ncreate\+dir sub\ndelete b\.txt\ndelete\+dir sub\ncreate last\nclose_write last\n$/);
  const r = await uwrx(['run', '-q', '--build', '../b', '--', 'python3', '-c', WATCHER], { cwd: rec });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, native.stdout);
});

test('tail -f follows a file another process appends to', async (t) => {
  const { cwd, nat, rec } = nativeAndRecordedDirs('uwrx-tail-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  // tail's own sleep between checks is long (1 s); inotify wakes it at each append. (Half
  // a second more before the kill: room for a loaded machine to schedule tail.)
  const script = ': > log; tail -f log & for i in 1 2 3 4 5; do echo "line $i" >> log; sleep 0.2; done; sleep 0.5; kill $!; wait $! 2>/dev/null; echo end';
  const native = spawnSync('sh', ['-c', script], { cwd: nat, encoding: 'utf8', timeout: 30_000 });
  t.is(native.stdout, 'line 1\nline 2\nline 3\nline 4\nline 5\nend\n', native.stderr);
  const r = await uwrx(['run', '-q', '--build', '../b', '--', 'sh', '-c', script], { cwd: rec });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, native.stdout);
  // (tail says so when it has to fall back to polling)
  t.notRegex(r.stderr, /polling/);
});
