// `uwrx inspect net <attempt>`: the HTTP exchanges of a record (net/_exchanges.jsonl) and
// its git operations (net/_git.jsonl), one line each, or as JSON; and the domains with
// their addresses.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { requireAttemptDirectory } from '../record/reader.js';
import { NET_DIR, readDomains, readExchanges, readGitOperations, type Exchange, type GitOperation } from '../network/record.js';

export function inspectNet(attemptDir: string, format: 'text' | 'json', out: NodeJS.WritableStream, pid?: number): void {
  requireAttemptDirectory(attemptDir);
  const exchanges = readExchanges(attemptDir).filter((e) => pid === undefined || e.pid === pid);
  const git = readGitOperations(attemptDir).filter((o) => pid === undefined || o.pid === pid);
  const domains = [...readDomains(attemptDir)].map(([domain, a]) => ({ domain, ...a }));
  if (format === 'json') {
    out.write(JSON.stringify({ domains, exchanges, git }, null, 2) + '\n');
    return;
  }
  if (!existsSync(path.join(attemptDir, NET_DIR))) {
    out.write('no network record\n');
    return;
  }
  for (const d of domains) out.write(`domain ${d.domain} ${[d.ip4, d.ip6].filter(Boolean).join(' ')}\n`);
  let bytes = 0;
  for (const e of exchanges) {
    bytes += e.responseBytes ?? 0;
    out.write(line(e) + '\n');
  }
  out.write(`${exchanges.length} exchange${exchanges.length === 1 ? '' : 's'}, ${bytes} response bytes\n`);
  if (git.length === 0) return;
  let gitBytes = 0;
  for (const o of git) {
    gitBytes += o.bytes;
    out.write(gitLine(o) + '\n');
  }
  out.write(`${git.length} git operation${git.length === 1 ? '' : 's'}, ${gitBytes} bytes sent\n`);
}

function gitLine(o: GitOperation): string {
  const asked = [
    o.wants.length ? `wants ${o.wants.length}` : '',
    o.depth !== undefined ? `depth ${o.depth}` : '',
    o.filter ? `filter ${o.filter}` : '',
  ].filter(Boolean);
  const extra = [...asked, o.mirror ? `<- net/${o.mirror}${o.source ? ` (${o.source})` : ''}` : '', o.error ? `(${o.error})` : ''].filter(Boolean).join(' ');
  return `${String(o.seq).padStart(4)} pid ${o.pid} ${o.service} ${o.remote} ${o.request} v${o.protocol} ${o.bytes} B ${o.durationMs} ms${extra ? ' ' + extra : ''}`;
}

function line(e: Exchange): string {
  const url = `${e.scheme}://${e.host}:${e.port}${e.target}`;
  const status = e.status === undefined ? 'ERR' : String(e.status);
  const extra = [e.saved ? `-> net/${e.saved}` : '', e.error ? `(${e.error})` : ''].filter(Boolean).join(' ');
  return `${String(e.seq).padStart(4)} pid ${e.pid} ${e.method} ${url} ${status} ${e.responseBytes ?? 0} B ${e.durationMs} ms${extra ? ' ' + extra : ''}`;
}
