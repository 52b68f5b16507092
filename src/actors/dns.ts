// The DNS actor: the sandbox's name server on 127.0.0.1:53 (UDP and TCP, sockets made
// by uwrx-init and handed over by fd). A and AAAA get the domain's own loopback address
// (allocated on first sight, kept in net/<domain>/ip4.txt and ip6.txt); every other type
// an empty NOERROR at once, so no client waits out a timeout. Capture mode looks names up
// on the host (or in --dns-map) to learn that they exist and where the proxy should
// connect; replay and offline answer only from the record, anything else NXDOMAIN.
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { defineActor } from './actor.js';
import { allocateIpv4, allocateIpv6 } from '../network/addresses.js';
import { readDomains, writeDomainFile } from '../network/record.js';
import { NetTrace } from '../network/trace.js';
import { ConnectionOwners } from '../network/owners.js';
import { DNS_MESSAGES, type NetMode } from '../network/messages.js';

export { DNS_MESSAGES, type NetMode };

export interface DnsOptions {
  attemptDir: string;
  mode: NetMode;
  /** The replayed attempt (replay mode): its domains and addresses. */
  replayDir?: string;
  /** --dns-map: upstream addresses by lower-case name, instead of the host's resolver. */
  dnsMap: Record<string, string[]>;
  /** Answer AAAA with an address of the private prefix (it is routed on the sandbox's lo). */
  ipv6: boolean;
  tracesDir?: string;
}

export interface DomainInfo {
  domain: string;
  ip4: string;
  ip6?: string;
  /** Where the proxy connects in capture mode. */
  upstream: string[];
}

const TYPE_CODES: Record<string, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, SVCB: 64, HTTPS: 65, ANY: 255 };
const typeCode = (t: string) => TYPE_CODES[t] ?? (Number(/^UNKNOWN_(\d+)$/.exec(t)?.[1]) || 0);
const TTL = 60;

class NameService {
  private readonly byName = new Map<string, DomainInfo>();
  private readonly byAddress = new Map<string, DomainInfo>();
  private readonly pending = new Map<string, Promise<DomainInfo | null>>();
  private readonly recorded: Map<string, { ip4?: string; ip6?: string }>;
  private readonly taken = new Set<string>();
  queries = 0;

  constructor(private readonly options: DnsOptions) {
    this.recorded = options.replayDir ? readDomains(options.replayDir) : new Map();
    for (const r of this.recorded.values()) {
      if (r.ip4) this.taken.add(r.ip4);
      if (r.ip6) this.taken.add(r.ip6);
    }
  }

  domainOf(address: string): DomainInfo | null {
    const known = this.byAddress.get(address);
    if (known) return known;
    // a replayed address connected to directly (without a lookup in this run)
    for (const [domain, r] of this.recorded) if (r.ip4 === address || r.ip6 === address) return this.adopt(domain, r, []);
    return null;
  }

  resolve(name: string): Promise<DomainInfo | null> {
    const domain = name.toLowerCase().replace(/\.$/, '');
    const known = this.byName.get(domain);
    if (known) return Promise.resolve(known);
    let p = this.pending.get(domain);
    if (!p) {
      p = this.lookupNew(domain).finally(() => this.pending.delete(domain));
      this.pending.set(domain, p);
    }
    return p;
  }

  private async lookupNew(domain: string): Promise<DomainInfo | null> {
    if (!/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(domain)) return null;
    const recorded = this.recorded.get(domain);
    if (recorded) return this.adopt(domain, recorded, []);
    if (this.options.mode !== 'capture') return null;
    let upstream = this.options.dnsMap[domain];
    if (!upstream) {
      try {
        upstream = (await lookup(domain, { all: true, family: 4 })).map((a) => a.address);
      } catch {
        return null;
      }
      if (upstream.length === 0) return null;
    }
    return this.adopt(domain, { ip4: allocateIpv4(this.taken), ...(this.options.ipv6 ? { ip6: allocateIpv6(this.taken) } : {}) }, upstream);
  }

  private adopt(domain: string, r: { ip4?: string; ip6?: string }, upstream: string[]): DomainInfo {
    const info: DomainInfo = { domain, ip4: r.ip4 ?? allocateIpv4(this.taken), ...(r.ip6 ? { ip6: r.ip6 } : {}), upstream };
    this.taken.add(info.ip4);
    this.byName.set(domain, info);
    this.byAddress.set(info.ip4, info);
    writeDomainFile(this.options.attemptDir, domain, 'ip4.txt', info.ip4 + '\n');
    if (info.ip6) {
      this.taken.add(info.ip6);
      this.byAddress.set(info.ip6, info);
      writeDomainFile(this.options.attemptDir, domain, 'ip6.txt', info.ip6 + '\n');
    }
    return info;
  }
}

/** The name server of one run: its sockets, its names, its trace file. */
class DnsServer {
  private readonly servers: Array<dgram.Socket | net.Server> = [];
  private trace: NetTrace | undefined;

  constructor(readonly service: NameService, tracesDir: string | undefined) {
    if (tracesDir) this.trace = new NetTrace(tracesDir, 'dns');
  }

  /** Which process sent a query: by the source port of its socket ("udp:PORT", "tcp:PORT"). */
  readonly owners = new ConnectionOwners();
  /** Lookup events wait for their owner in the order they were answered, so the trace
   * file stays in time order. */
  private traced: Promise<void> = Promise.resolve();

  async answer(query: Buffer, source: string): Promise<Buffer | null> {
    let packet: dnsPacket.Packet;
    try {
      packet = dnsPacket.decode(query);
    } catch {
      return null;
    }
    const questions = packet.questions ?? [];
    const answers: dnsPacket.Answer[] = [];
    let rcode = 'NOERROR';
    for (const q of questions) {
      this.service.queries++;
      const info = await this.service.resolve(q.name);
      const type = q.type as string;
      if (!info) rcode = 'NXDOMAIN';
      else if (type === 'A') answers.push({ name: q.name, type: 'A', class: 'IN', ttl: TTL, data: info.ip4 });
      else if (type === 'AAAA' && info.ip6) answers.push({ name: q.name, type: 'AAAA', class: 'IN', ttl: TTL, data: info.ip6 });
      const answered = info ? (type === 'A' ? info.ip4 : type === 'AAAA' ? info.ip6 ?? '' : '') : '';
      const trace = this.trace;
      if (trace) {
        const time = trace.now();
        const owner = this.owners.ownerOf(source);
        this.traced = this.traced.then(() => owner).then((pid) => trace.dns(pid, time, typeCode(type), info ? 0 : 3, q.name, answered));
      }
    }
    // the decoded questions go back as they came (dns-packet cannot encode every type name)
    return dnsPacket.encode({
      id: packet.id,
      type: 'response',
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (rcode === 'NXDOMAIN' ? 3 : 0),
      questions,
      answers,
    });
  }

  serveUdp(fd: number): void {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (msg, rinfo) => {
      this.answer(msg, `udp:${rinfo.port}`).then(
        (reply) => reply && socket.send(reply, rinfo.port, rinfo.address),
        () => undefined,
      );
    });
    socket.on('error', () => undefined);
    socket.bind({ fd });
    this.servers.push(socket);
  }

  /** DNS over TCP: each message is preceded by its length (u16 big endian). */
  serveTcp(fd: number): void {
    const server = net.createServer((conn) => {
      let buf = Buffer.alloc(0);
      conn.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
          buf = buf.subarray(2 + msg.length);
          this.answer(msg, `tcp:${conn.remotePort}`).then(
            (reply) => {
              if (!reply) {
                conn.destroy();
                return;
              }
              const len = Buffer.alloc(2);
              len.writeUInt16BE(reply.length);
              conn.write(Buffer.concat([len, reply]));
            },
            () => conn.destroy(),
          );
        }
      });
      conn.on('error', () => undefined);
    });
    server.on('error', () => undefined);
    server.listen({ fd });
    this.servers.push(server);
  }

  async close(): Promise<void> {
    for (const s of this.servers) s.close();
    this.servers.length = 0;
    await this.traced;
    this.trace?.close();
    this.trace = undefined;
  }
}

export default defineActor<DnsOptions>('dns', (ctx) => {
  const server = new DnsServer(new NameService(ctx.options), ctx.options.tracesDir);
  return {
    stop: () => server.close(),
    handlers: {
      [DNS_MESSAGES.socket]: (body: { fd: number; kind: string }) => {
        if (body.kind === 'udp') server.serveUdp(body.fd);
        else server.serveTcp(body.fd);
        return null;
      },
      [DNS_MESSAGES.domainOf]: (body: { address: string }) => server.service.domainOf(body.address),
      [DNS_MESSAGES.resolve]: (body: { name: string }) => server.service.resolve(body.name),
      [DNS_MESSAGES.connect]: (body: { pid: number; kind: string; sourcePort: number }) => {
        server.owners.reported(`${body.kind}:${body.sourcePort}`, body.pid);
        return null;
      },
      [DNS_MESSAGES.finish]: async () => {
        await server.close();
        return { queries: server.service.queries };
      },
    },
  };
});
