// Real HTTP and HTTPS servers on the host's loopback for the network tests, with a test
// CA of their own (what --upstream-ca is for) and a count of the requests they served.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import forge from 'node-forge';

export interface TestServers {
  httpsPort: number;
  httpPort: number;
  /** An HTTP/2 server (TLS, ALPN h2 and http/1.1) with the same handler. */
  http2Port: number;
  /** The test CA's certificate file (for --upstream-ca). */
  caFile: string;
  /** Requests served so far, both servers. */
  count(): number;
  close(): Promise<void>;
}

/** Deterministic bytes: the same `size` gives the same content on every call. */
export function testBytes(size: number, seed = 'uwrx'): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export const BIG_SIZE = 100 * 1024 * 1024;
const SMALL = testBytes(300_000);

function makeCerts(names: string[]): { ca: string; key: string; cert: string } {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const ca = forge.pki.createCertificate();
  ca.publicKey = keys.publicKey;
  ca.serialNumber = '01';
  ca.validity.notBefore = new Date(Date.now() - 86_400_000);
  ca.validity.notAfter = new Date(Date.now() + 30 * 86_400_000);
  ca.setSubject([{ name: 'commonName', value: 'uwrx test upstream CA' }]);
  ca.setIssuer([{ name: 'commonName', value: 'uwrx test upstream CA' }]);
  ca.setExtensions([{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, critical: true }]);
  ca.sign(keys.privateKey, forge.md.sha256.create());
  const leaf = forge.pki.createCertificate();
  leaf.publicKey = keys.publicKey;
  leaf.serialNumber = '02';
  leaf.validity.notBefore = ca.validity.notBefore;
  leaf.validity.notAfter = ca.validity.notAfter;
  leaf.setSubject([{ name: 'commonName', value: names[0]! }]);
  leaf.setIssuer(ca.subject.attributes);
  leaf.setExtensions([
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map((value) => ({ type: 2, value })) },
  ]);
  leaf.sign(keys.privateKey, forge.md.sha256.create());
  return { ca: forge.pki.certificateToPem(ca), key: forge.pki.privateKeyToPem(keys.privateKey), cert: forge.pki.certificateToPem(leaf) };
}

/** Serves a bare repository by smart HTTP through `git http-backend` (CGI). */
function gitBackend(req: http.IncomingMessage, res: http.ServerResponse, projectRoot: string): void {
  const url = new URL(req.url!, 'http://x');
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      REQUEST_METHOD: req.method,
      PATH_INFO: url.pathname,
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(req.headers['content-encoding']) } : {}),
      ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
    },
  });
  req.pipe(child.stdin);
  const chunks: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.on('close', () => {
    const out = Buffer.concat(chunks);
    const split = out.indexOf('\r\n\r\n');
    const head = out.subarray(0, split).toString('latin1');
    let status = 200;
    for (const line of head.split('\r\n')) {
      const [k, ...v] = line.split(':');
      if (!k) continue;
      if (k.toLowerCase() === 'status') status = Number(v.join(':').trim().split(' ')[0]);
      else res.setHeader(k, v.join(':').trim());
    }
    res.statusCode = status;
    res.end(out.subarray(split + 4));
  });
}

/** Starts both servers; `gitRoot` (optional) holds bare repositories served under /git/;
 * /big serves `bigSize` bytes (a multiple of 1 MiB). */
export async function startServers(dir: string, names: string[], gitRoot?: string, bigSize = BIG_SIZE): Promise<TestServers> {
  const certs = makeCerts(names);
  const caFile = path.join(dir, 'upstream-ca.pem');
  writeFileSync(caFile, certs.ca);
  let count = 0;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    count++;
    const url = new URL(req.url!, 'http://x');
    if (gitRoot && url.pathname.startsWith('/git/')) {
      req.url = req.url!.slice(4);
      return gitBackend(req, res, gitRoot);
    }
    switch (url.pathname) {
      case '/a.tar.gz':
        res.setHeader('Content-Type', 'application/gzip');
        res.setHeader('Content-Length', SMALL.length);
        return res.end(SMALL);
      case '/gzip': {
        const body = gzipSync(Buffer.from('compressed text\n'.repeat(1000)));
        res.setHeader('Content-Encoding', 'gzip');
        res.setHeader('Content-Type', 'text/plain');
        res.setHeader('Content-Length', body.length);
        return res.end(body);
      }
      case '/chunked':
        res.setHeader('Content-Type', 'text/plain');
        res.setHeader('Trailer', 'X-Checksum');
        res.write('first part\n');
        res.write('second part\n');
        res.addTrailers({ 'X-Checksum': 'abc' });
        return res.end('last part\n');
      case '/big': {
        res.setHeader('Content-Length', bigSize);
        let sent = 0;
        const block = testBytes(1 << 20, 'big');
        const more = () => {
          while (sent < bigSize) {
            sent += block.length;
            if (!res.write(block)) return void res.once('drain', more);
          }
          res.end();
        };
        return more();
      }
      case '/redirect':
        res.statusCode = 302;
        res.setHeader('Location', '/a.tar.gz');
        return res.end('moved\n');
      case '/reset':
        res.setHeader('Content-Length', 100_000);
        res.write(SMALL.subarray(0, 1000));
        return void setTimeout(() => req.socket.destroy(), 50);
      case '/echo': {
        const hash = createHash('sha256');
        req.on('data', (c: Buffer) => hash.update(c));
        return void req.on('end', () => res.end(hash.digest('hex') + '\n'));
      }
      case '/query':
        return res.end(`query ${url.search}\n`);
      default:
        res.statusCode = 404;
        return res.end('not found\n');
    }
  };
  const secure = https.createServer({ key: certs.key, cert: certs.cert }, handler);
  const plain = http.createServer(handler);
  const h2 = http2.createSecureServer({ key: certs.key, cert: certs.cert, allowHTTP1: true }, handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  const h2Sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (s: http2.ServerHttp2Session) => {
    h2Sessions.add(s);
    s.on('close', () => h2Sessions.delete(s));
  });
  await Promise.all([
    new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve)),
    new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve)),
    new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve)),
  ]);
  return {
    httpsPort: (secure.address() as AddressInfo).port,
    httpPort: (plain.address() as AddressInfo).port,
    http2Port: (h2.address() as AddressInfo).port,
    caFile,
    count: () => count,
    close: async () => {
      secure.closeAllConnections();
      plain.closeAllConnections();
      for (const s of h2Sessions) s.destroy();
      await Promise.all([new Promise((r) => secure.close(r)), new Promise((r) => plain.close(r)), new Promise((r) => h2.close(r))]);
    },
  };
}
