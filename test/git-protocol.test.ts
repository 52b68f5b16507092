// The git wire protocol pieces the proxy relies on: pkt-lines, recognising smart HTTP and
// git:// requests, reading what a client asked for, and where a mirror goes.
import test from 'ava';
import {
  detectSmartHttp,
  emptyAsk,
  errPkt,
  gitProtocolEnv,
  mirrorPath,
  parseDaemonRequest,
  parsePkts,
  pktLine,
  protocolVersion,
  PktScanner,
  readAsk,
  type Pkt,
} from '../src/network/git-protocol.js';

test('pkt-lines encode and decode, special packets included, a cut line left for later', (t) => {
  t.is(pktLine('want x\n').toString(), '000bwant x\n');
  t.is(errPkt('no\nway').toString(), '000fERR no way\n');
  const buf = Buffer.from('0008abcd000000010002000aabc');
  const { pkts, used, bad } = parsePkts(buf);
  t.deepEqual(pkts, [Buffer.from('abcd'), 'flush', 'delim', 'end']);
  t.is(used, 20);
  t.false(bad);
  t.true(parsePkts(Buffer.from('PACK....')).bad);
});

test('smart HTTP requests are recognised; other URLs are not', (t) => {
  t.deepEqual(detectSmartHttp('GET', '/git/lib.git/info/refs?service=git-upload-pack'), { kind: 'advertise', service: 'git-upload-pack', repoPath: '/git/lib.git' });
  t.deepEqual(detectSmartHttp('POST', '/lib/git-upload-pack'), { kind: 'rpc', service: 'git-upload-pack', repoPath: '/lib' });
  t.deepEqual(detectSmartHttp('GET', '/x.git/info/refs?service=git-receive-pack'), { kind: 'advertise', service: 'git-receive-pack', repoPath: '/x.git' });
  t.is(detectSmartHttp('GET', '/x.git/info/refs'), undefined, 'dumb HTTP');
  t.is(detectSmartHttp('GET', '/x.git/info/refs?service=other'), undefined);
  t.is(detectSmartHttp('GET', '/x.git/git-upload-pack'), undefined);
  t.is(detectSmartHttp('POST', '/upload'), undefined);
});

test('the git:// request line gives service, path, host and extra parameters', (t) => {
  t.deepEqual(parseDaemonRequest(Buffer.from('git-upload-pack /lib.git\0host=h.test:9418\0\0version=2\0')), {
    service: 'git-upload-pack',
    repoPath: '/lib.git',
    host: 'h.test:9418',
    extra: ['version=2'],
  });
  t.deepEqual(parseDaemonRequest(Buffer.from('git-receive-pack /a\0')), { service: 'git-receive-pack', repoPath: '/a', extra: [] });
  t.is(parseDaemonRequest(Buffer.from('hello /a\0')), undefined);
  t.is(gitProtocolEnv(['version=2']), 'version=2');
  t.is(gitProtocolEnv(['version=2:object-format=sha1', 'bad value;rm']), 'version=2:object-format=sha1');
  t.is(gitProtocolEnv(['']), undefined);
  t.is(protocolVersion('version=2'), 2);
  t.is(protocolVersion(undefined), 0);
});

test('what a client asks for: commands, wants, ref prefixes, depth and filter', (t) => {
  const v2 = emptyAsk();
  const lines = (...l: string[]): Pkt[] => l.map((s) => (s === '' ? 'delim' : Buffer.from(s + '\n')));
  readAsk(lines('command=ls-refs', 'agent=git/2', '', 'peel', 'ref-prefix HEAD', 'ref-prefix refs/heads/'), v2);
  readAsk(lines('command=fetch', '', 'thin-pack', `want ${'a'.repeat(40)}`, 'want-ref refs/heads/main', 'deepen 1', 'filter blob:none', 'done'), v2);
  t.deepEqual(v2, { commands: ['ls-refs', 'fetch'], wants: ['a'.repeat(40), 'refs/heads/main'], refPrefixes: ['HEAD', 'refs/heads/'], depth: 1, filter: 'blob:none' });
  const v0 = emptyAsk();
  readAsk(lines(`want ${'b'.repeat(40)} multi_ack side-band-64k`, `want ${'c'.repeat(40)}`, `have ${'d'.repeat(40)}`), v0);
  t.deepEqual(v0, { commands: ['fetch'], wants: ['b'.repeat(40), 'c'.repeat(40)], refPrefixes: [] });
  // a stream cut anywhere gives the same result
  const seen: Pkt[] = [];
  const scanner = new PktScanner((p) => seen.push(...p));
  const bytes = Buffer.concat([pktLine('want x\n'), pktLine('done\n'), Buffer.from('0000')]);
  for (const b of bytes) scanner.push(Buffer.from([b]));
  t.deepEqual(seen, [Buffer.from('want x\n'), Buffer.from('done\n'), 'flush']);
});

test('mirrors live at net/<domain>/<path>.git', (t) => {
  t.is(mirrorPath('h.test', '/lib.git'), 'h.test/lib.git');
  t.is(mirrorPath('h.test', '/lib'), 'h.test/lib.git');
  t.is(mirrorPath('h.test', '/org/lib.git/'), 'h.test/org/lib.git');
  t.is(mirrorPath('h.test', '/a/../b'), 'h.test/a/%2E%2E/b.git');
  t.is(mirrorPath('h.test', '/~user/x'), 'h.test/~user/x.git');
});
