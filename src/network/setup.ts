// The network of a run: what the sandbox needs (its own resolv.conf, nsswitch.conf and
// hosts, the run's CA in every trust store, the CA variables, a second loopback address,
// the DNS sockets), the DNS and proxy actors that serve it, and their finish.
//
// Modes: capture (a fresh run with --net: names resolve on the host or by --dns-map,
// requests go to the real servers and are recorded), replay (--replay: answers come
// from the replayed attempt's record only), offline (--no-net: nothing resolves but
// localhost). In every mode the sandbox has only loopback, so nothing leaves it except
// through the proxy.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ActorSpec, Supervisor } from '../actors/runtime.js';
import type { DnsOptions } from '../actors/dns.js';
import type { ProxyOptions, ProxyStats } from '../actors/proxy.js';
import { DNS_MESSAGES, PROXY_MESSAGES, type NetMode } from './messages.js';
import type { NetworkPlan } from '../sandbox/plan.js';
import { ADDRCONFIG_IPV4, ADDRCONFIG_IPV6, IPV6_PREFIX, IPV6_PREFIX_LENGTH } from './addresses.js';
import { generateKeys, keysFromPem, keysToPem, makeCaCert, recordedCert, type Authority, type CaKeys } from './ca.js';
import { keepAuthority, servesRun, type CachedAuthority } from './ca-cache.js';
import { KEYS_FILE, NET_DIR } from './record.js';
import { isJks, JAVA_KEYSTORE_PATHS, withTrustedCert } from './java-keystore.js';
import { native } from '../native.js';
import { writeTrustStore } from './trust-cache.js';
import { notBeforeOf } from './x509.js';

/** System CA bundles the run's CA is added to (Go's list of Linux locations). */
export const CA_BUNDLE_PATHS = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/pki/tls/cacert.pem',
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  '/etc/ssl/cert.pem',
];
/** Inside the sandbox: the run's CA alone, for Node. With NODE_EXTRA_CA_CERTS set, Node
 * parses its own roots and that file when it starts, whether it uses TLS or not: the
 * whole system bundle there cost `node -e 0` about 90 ms of CPU, one certificate about 30. */
export const NODE_CA_PATH = '/dev/.uwrx-ca.pem';
/** Variables that point clients at a CA bundle (the ones without a system default). */
export const CA_ENV_VARS = [
  'SSL_CERT_FILE',
  'NODE_EXTRA_CA_CERTS',
  'DENO_CERT',
  'PERL_LWP_SSL_CA_FILE',
  'GIT_SSL_CAINFO',
  'CARGO_HTTP_CAINFO',
  'CURL_CA_BUNDLE',
  'REQUESTS_CA_BUNDLE',
  'PIP_CERT',
  'AWS_CA_BUNDLE',
];

export interface NetworkInput {
  /** Capture from the real network (fresh runs by default). */
  net: boolean;
  /** The replayed attempt: answers come from its record. */
  replayDir?: string;
  /** --dns-map NAME=IP: upstream addresses by name. */
  dnsMap: Record<string, string[]>;
  /** --upstream-ca FILE: PEM files trusted for upstream servers. */
  upstreamCa: string[];
  /** --allow-push: git pushes reach the real server in capture mode. */
  allowPush?: boolean;
}

/** Per-run network statistics (the summary line, the status file). */
export interface NetworkStats extends ProxyStats {
  queries: number;
}


/** Reads --upstream-ca files; a missing or non-PEM file is a usage error (thrown as is). */
export function readUpstreamCa(files: string[]): string[] {
  return files.map((f) => {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (err) {
      throw new Error(`--upstream-ca ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`--upstream-ca ${f}: no PEM certificate in it`);
    return text;
  });
}

/** Parses --dns-map values: NAME=IP[,NAME=IP...]; throws a one-line message. */
export function parseDnsMap(values: string[]): Record<string, string[]> {
  const map: Record<string, string[]> = {};
  for (const value of values) {
    for (const item of value.split(',')) {
      const m = /^([A-Za-z0-9_.-]+)=([0-9.]+|[0-9a-fA-F:]+)$/.exec(item.trim());
      if (!m) throw new Error(`--dns-map: expected NAME=IP, got ${JSON.stringify(item)}`);
      (map[m[1]!.toLowerCase().replace(/\.$/, '')] ??= []).push(m[2]!);
    }
  }
  return map;
}

export function networkMode(input: Pick<NetworkInput, 'net' | 'replayDir'>): NetMode {
  return input.replayDir ? 'replay' : input.net ? 'capture' : 'offline';
}

/** Starts what takes long (key generation) right away; `prepare` finishes the rest. */
export function startKeys(input: Pick<NetworkInput, 'replayDir'>): Promise<CaKeys> {
  if (input.replayDir) {
    try {
      return Promise.resolve(keysFromPem(readFileSync(path.join(input.replayDir, NET_DIR, KEYS_FILE), 'utf8')));
    } catch {
      // a record without keys: fresh ones (the certificates differ, the exchanges do not)
    }
  }
  const p = generateKeys();
  p.catch(() => undefined);
  return p;
}

/** The run's CA for a run whose clock starts at `notBeforeMs`: on replay the replayed
 * attempt's certificate when it certifies the keys; in a fresh run the cached authority
 * when it serves the run (src/network/ca-cache.ts); otherwise a certificate made now for
 * `keys()`, which a fresh run then keeps in the cache. */
export async function runAuthority(
  input: Pick<NetworkInput, 'replayDir'>,
  cached: CachedAuthority | undefined,
  keys: () => Promise<CaKeys>,
  notBeforeMs: number,
): Promise<Authority> {
  if (input.replayDir) {
    const k = await keys();
    // the same CA certificate on replay: the recorded one, which certifies the same key
    return { keys: k, caCertPem: recordedCert(path.join(input.replayDir, 'ca.pem'), k.caKeyPem) ?? makeCaCert(k, notBeforeMs) };
  }
  if (cached && servesRun(cached, notBeforeMs)) return { keys: cached.keys, caCertPem: cached.caCertPem };
  const k = await keys();
  const authority = { keys: k, caCertPem: makeCaCert(k, notBeforeMs) };
  keepAuthority(authority);
  return authority;
}

/** A file's text; empty when there is none or it cannot be read (a trust source that
 * is missing adds nothing, as for the clients that read it). */
function readableText(file: string | undefined): string {
  if (!file) return '';
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The host's files the sandbox sees replaced by the run's own, as real paths: looked up
 * once per run (the record hook writes the copies, the plan binds them over these). */
export interface HostFiles {
  /** Each of CA_BUNDLE_PATHS that is a file, by real path (undefined where none). */
  bundles: Array<string | undefined>;
  /** The host's JVM keystores in the JKS format (see javaKeystoreTargets). */
  javaKeystores: string[];
  resolv: string | undefined;
  nsswitch: string | undefined;
  hosts: string | undefined;
}

export function findHostFiles(): HostFiles {
  return {
    bundles: CA_BUNDLE_PATHS.map(realFile),
    javaKeystores: javaKeystoreTargets(),
    resolv: realFile('/etc/resolv.conf'),
    nsswitch: realFile('/etc/nsswitch.conf'),
    hosts: realFile('/etc/hosts'),
  };
}

export class Network {
  readonly mode: NetMode;
  private readonly keys: CaKeys;
  private readonly caCertPem: string;
  private readonly files: SandboxFiles;
  /** Host bundle plus --upstream-ca for the git that fills mirrors; none without the
   * option (git's own default then). */
  private readonly upstreamCaFile: string | undefined;
  /** What upstream servers' certificates are checked against, besides Node's roots: the
   * host's trust store (where a machine adds its own CAs, e.g. an intercepting proxy's),
   * the file NODE_EXTRA_CA_CERTS names for uwrx, and --upstream-ca. */
  private readonly upstreamTrust: () => string[];
  /** The files of writeFiles(), under way from the constructor on. */
  private readonly written: Promise<void>;
  private supervisor: Supervisor | undefined;
  private specs: () => ActorSpec[] = () => [];
  /** Set once the actors were asked to start: they start when the sandbox first uses the
   * network (a DNS socket turns readable, a connect to an allocated address), so a run
   * that never does pays nothing for them. */
  private started: Promise<void> | undefined;
  /** DNS sockets from uwrx-init waiting for their first query. */
  private readonly idleDns: Array<{ fd: number; kind: string; watch: number }> = [];
  private finishing = false;

  constructor(
    private readonly input: NetworkInput,
    private readonly attemptDir: string,
    runDir: string,
    authority: Authority,
    private readonly notBeforeMs: number,
    host: HostFiles,
  ) {
    this.mode = networkMode(input);
    this.keys = authority.keys;
    this.caCertPem = authority.caCertPem;
    this.files = sandboxFiles(runDir);
    this.upstreamCaFile = input.upstreamCa.length ? path.join(path.dirname(this.files.bundle), 'upstream-ca.pem') : undefined;
    // read when the proxy starts: most runs never use the network
    const hostBundle = host.bundles.find((p): p is string => !!p);
    this.upstreamTrust = () => [readableText(hostBundle), readableText(process.env['NODE_EXTRA_CA_CERTS']), ...input.upstreamCa].filter((t) => t.trim() !== '');
    this.written = this.writeFiles(host);
    this.written.catch(() => undefined);
  }

  /** Resolves once the record's CA files and the files the sandbox sees in place of the
   * host's (bound over them when uwrx-init sets the sandbox up) are written; rejects
   * with what failed. They are written by the constructor (writeFiles), so a failure
   * surfaces here, where the run awaits the features' ready steps before uwrx-init
   * starts. */
  ready(): Promise<void> {
    return this.written;
  }

  private async writeFiles(host: HostFiles): Promise<void> {
    // Synchronous calls, run from the constructor: some ten small files and two copies
    // of some 200 KB, where each call through the thread pool cost this thread a round
    // trip (about 0.3 ms of CPU each) that the call itself does not take. An error
    // still rejects ready(), as before.
    const netDir = path.join(this.attemptDir, NET_DIR);
    mkdirSync(netDir, { recursive: true });
    writeFileSync(path.join(this.attemptDir, 'ca.pem'), this.caCertPem);
    writeFileSync(path.join(netDir, KEYS_FILE), keysToPem(this.keys), { mode: 0o600 });
    mkdirSync(path.dirname(this.files.resolv), { recursive: true });
    const bundleTarget = host.bundles.find((p): p is string => !!p);
    // offline, the sandbox keeps the host's trust stores (networkPlan)
    const trustStores = this.mode !== 'offline';
    writeFileSync(this.files.resolv, 'nameserver 127.0.0.1\n');
    writeFileSync(this.files.nsswitch, nsswitchText());
    writeFileSync(this.files.hosts, '127.0.0.1\tlocalhost uwrx\n::1\tlocalhost ip6-localhost ip6-loopback\n');
    if (trustStores) {
      // the stores are the same for every run with this CA: made once, then copied (trust-cache.ts)
      if (bundleTarget) writeTrustStore('bundle', bundleTarget, this.caCertPem, this.files.bundle, () => caBundle(readFileSync(bundleTarget, 'utf8'), this.caCertPem));
      else writeFileSync(this.files.bundle, this.caCertPem);
      writeFileSync(this.files.ca, this.caCertPem);
    }
    if (this.upstreamCaFile) {
      const hostBundle = readableText(bundleTarget);
      writeFileSync(this.upstreamCaFile, [hostBundle.trimEnd(), ...this.input.upstreamCa.map((c) => c.trimEnd())].filter(Boolean).join('\n') + '\n');
    }
    for (const [i, target] of (trustStores ? host.javaKeystores : []).entries()) {
      writeTrustStore('jks', target, this.caCertPem, javaKeystoreCopy(this.files, i), () => javaKeystore(readFileSync(target), this.caCertPem));
    }
  }

  /** A socket uwrx-init made, by kind: udp/tcp (DNS) or listen (proxy). A DNS socket
   * waits, unread, for its first query before the actors start. */
  onSocket(fd: number, info: { kind: string; address: string; port: number }): void {
    if (info.kind === 'listen') {
      void this.start()
        .then(() => this.supervisor!.request('proxy', PROXY_MESSAGES.listen, { fd, address: info.address, port: info.port }))
        .catch(() => undefined);
    } else if (this.started) {
      void this.started.then(() => this.supervisor!.request('dns', DNS_MESSAGES.socket, { fd, kind: info.kind })).catch(() => undefined);
    } else {
      const watch = native().whenReadable(fd, () => void this.start().catch(() => undefined));
      this.idleDns.push({ fd, kind: info.kind, watch });
    }
  }

  /** A connect to an allocated address or to the name server, from logical pid `pid`. */
  onConnect(info: { pid: number; kind?: string; address: string; port: number; sourcePort: number }): void {
    const nameServer = info.address === '127.0.0.1' && info.port === 53;
    void this.start()
      .then(() =>
        nameServer
          ? this.supervisor!.request('dns', DNS_MESSAGES.connect, { pid: info.pid, kind: info.kind ?? 'tcp', sourcePort: info.sourcePort })
          : this.supervisor!.request('proxy', PROXY_MESSAGES.connect, info),
      )
      .catch(() => undefined);
  }

  actorSpecs(tracesDir: string | undefined): ActorSpec[] {
    const dns: DnsOptions = {
      attemptDir: this.attemptDir,
      mode: this.mode,
      ...(this.input.replayDir ? { replayDir: this.input.replayDir } : {}),
      dnsMap: this.input.dnsMap,
      ipv6: true,
      ...(tracesDir ? { tracesDir } : {}),
    };
    const proxy: ProxyOptions = {
      attemptDir: this.attemptDir,
      mode: this.mode,
      ...(this.input.replayDir ? { replayDir: this.input.replayDir } : {}),
      upstreamCa: this.upstreamTrust(),
      ...(this.upstreamCaFile ? { upstreamCaFile: this.upstreamCaFile } : {}),
      ...(this.input.allowPush ? { allowPush: true } : {}),
      keysPem: keysToPem(this.keys),
      caCertPem: this.caCertPem,
      notBeforeMs: this.notBeforeMs,
      ...(tracesDir ? { tracesDir } : {}),
    };
    // one thread: both wait on sockets most of the time
    return [
      { name: 'dns', module: new URL('../actors/dns.js', import.meta.url), options: dns, thread: 'net' },
      { name: 'proxy', module: new URL('../actors/proxy.js', import.meta.url), options: proxy, connect: ['dns'], thread: 'net' },
    ];
  }

  /** The supervisor the actors will run under, and their specs (made and started on
   * first use). */
  attach(supervisor: Supervisor, specs: () => ActorSpec[]): void {
    this.supervisor = supervisor;
    this.specs = specs;
  }

  /** Starts the actors (once) and hands them the DNS sockets. */
  private start(): Promise<void> {
    if (this.finishing) return Promise.reject(new Error('the run is finishing'));
    if (!this.started) {
      const waiting = this.idleDns.splice(0);
      for (const w of waiting) native().cancelReadable(w.watch);
      const s = this.supervisor!;
      this.started = s.start(this.specs()).then(async () => {
        await Promise.all(waiting.map((w) => s.request('dns', DNS_MESSAGES.socket, { fd: w.fd, kind: w.kind })));
      });
      this.started.catch(() => undefined);
    }
    return this.started;
  }

  /** Stops serving and returns the run's numbers (before the trace is finished: the
   * actors' trace files close here). */
  async finish(): Promise<NetworkStats> {
    this.finishing = true;
    if (!this.started) {
      for (const w of this.idleDns.splice(0)) {
        native().cancelReadable(w.watch);
        native().closeFd(w.fd);
      }
      return { requests: 0, bytes: 0, unmatched: 0, errors: 0, problems: [], git: 0, gitBytes: 0, queries: 0 };
    }
    await this.started;
    const s = this.supervisor!;
    const proxy = await s.request<ProxyStats>('proxy', PROXY_MESSAGES.finish);
    const dns = await s.request<{ queries: number }>('dns', DNS_MESSAGES.finish);
    return { ...proxy, queries: dns.queries };
  }
}

interface SandboxFiles {
  resolv: string;
  nsswitch: string;
  hosts: string;
  bundle: string;
  /** The CA alone (NODE_CA_PATH inside). */
  ca: string;
}

/** The host's CA bundle with the run's CA after its certificates. */
function caBundle(hostBundle: string, caCertPem: string): string {
  return (hostBundle ? hostBundle.trimEnd() + '\n' : '') + caCertPem;
}

/** A host keystore with the run's CA as the trusted entry `uwrx-run-ca`, dated from the
 * certificate's own start: the same bytes for every run with this CA and keystore. */
function javaKeystore(hostKeystore: Buffer, caCertPem: string): Buffer {
  const caDer = Buffer.from(caCertPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  return withTrustedCert(hostKeystore, 'uwrx-run-ca', caDer, notBeforeOf(caDer).getTime());
}

/** Where a run keeps the files the sandbox sees in place of its own. */
function sandboxFiles(runDir: string): SandboxFiles {
  const dir = path.join(runDir, 'net');
  return {
    resolv: path.join(dir, 'resolv.conf'),
    nsswitch: path.join(dir, 'nsswitch.conf'),
    hosts: path.join(dir, 'hosts'),
    bundle: path.join(dir, 'ca-bundle.pem'),
    ca: path.join(dir, 'ca.pem'),
  };
}

/** The host's JVM keystores in the JKS format (real paths, each once): the system ones and
 * those of JDKs under /usr/lib/jvm that are files of their own. */
function javaKeystoreTargets(): string[] {
  const candidates = [...JAVA_KEYSTORE_PATHS];
  try {
    for (const jdk of readdirSync('/usr/lib/jvm')) candidates.push(path.join('/usr/lib/jvm', jdk, 'lib', 'security', 'cacerts'));
  } catch {
    // no JDK there
  }
  const targets = new Set<string>();
  for (const c of candidates) {
    const real = realFile(c);
    if (real && isJks(readHead(real, 64))) targets.add(real);
  }
  return [...targets].sort();
}

function javaKeystoreCopy(files: SandboxFiles, index: number): string {
  return path.join(path.dirname(files.bundle), `java-cacerts-${index}`);
}

/** The first `n` bytes of a file (fewer when it is shorter; none when unreadable). */
function readHead(file: string, n: number): Buffer {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buf = Buffer.alloc(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } catch {
    return Buffer.alloc(0);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Variables for the command's environment: every CA variable names the bundle, by the
 * first of CA_BUNDLE_PATHS that is a file (the path as the sandbox sees it), except
 * NODE_EXTRA_CA_CERTS, which names the CA alone. None offline (--no-net): no server of
 * the sandbox uses the run's CA then, so the environment stays the caller's. */
export function caEnv(host: HostFiles, mode: NetMode): Record<string, string> {
  const bundle = CA_BUNDLE_PATHS.find((_, i) => host.bundles[i]);
  if (!bundle || mode === 'offline') return {};
  return Object.fromEntries(CA_ENV_VARS.map((v) => [v, v === 'NODE_EXTRA_CA_CERTS' ? NODE_CA_PATH : bundle]));
}

/** The plan's network pieces for a run directory: a second address on lo, the DNS
 * sockets, and the files bound over the sandbox's own (written by Network). */
export function networkPlan(runDir: string, host: HostFiles, mode: NetMode): NetworkPlan {
  const files = sandboxFiles(runDir);
  const binds: Array<{ source: string; target: string }> = [];
  const over = (target: string | undefined, source: string) => {
    if (target) binds.push({ source, target });
  };
  over(host.resolv, files.resolv);
  over(host.nsswitch, files.nsswitch);
  over(host.hosts, files.hosts);
  const created: Array<{ source: string; target: string }> = [];
  // offline, the trust stores stay the host's: nothing inside is served with the CA
  if (mode !== 'offline') {
    for (const t of host.bundles) if (t) binds.push({ source: files.bundle, target: t });
    host.javaKeystores.forEach((target, i) => binds.push({ source: javaKeystoreCopy(files, i), target }));
    if (host.bundles.some((t) => t)) created.push({ source: files.ca, target: NODE_CA_PATH });
  }
  return {
    created,
    steps: [
      { op: 'netaddr', path: ADDRCONFIG_IPV4, flags: 8 },
      { op: 'netaddr', path: ADDRCONFIG_IPV6, flags: 128 },
      { op: 'netroute', path: IPV6_PREFIX, flags: IPV6_PREFIX_LENGTH },
      { op: 'netsocket', name: 'udp', path: '127.0.0.1', flags: 53 },
      { op: 'netsocket', name: 'tcp', path: '127.0.0.1', flags: 53 },
    ],
    binds,
  };
}

/** The host's nsswitch.conf with hosts looked up in files, then DNS (no resolver
 * daemons: their unix sockets are not isolated by the network namespace). */
function nsswitchText(): string {
  let text = '';
  try {
    text = readFileSync('/etc/nsswitch.conf', 'utf8');
  } catch {
    // none on the host
  }
  const lines = text.split('\n').filter((l) => !/^\s*hosts\s*:/.test(l));
  return [...lines.filter((l, i) => l || i < lines.length - 1), 'hosts: files dns', ''].join('\n');
}

function realFile(p: string): string | undefined {
  try {
    // the C library's realpath: Node's own lstats each component
    const real = realpathSync.native(p);
    return statSync(real).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}
