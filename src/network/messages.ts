// What the main thread and the network actors say to each other: the message names of
// the DNS and proxy actors, apart from the actors themselves so that the main thread
// does not load them (and their libraries) to name a message.

export type NetMode = 'capture' | 'replay' | 'offline';

export const DNS_MESSAGES = {
  /** body: {fd, kind: 'udp'|'tcp'} a socket on 127.0.0.1:53 from uwrx-init */
  socket: 'dns.socket',
  /** body: {address} -> DomainInfo | null: the domain an allocated address stands for */
  domainOf: 'dns.domainOf',
  /** body: {name} -> DomainInfo | null: resolve (and allocate) like a query would */
  resolve: 'dns.resolve',
  /** body: {pid, kind: 'udp'|'tcp', sourcePort} which process a query socket belongs to */
  connect: 'dns.connect',
  /** -> {queries} and stops serving */
  finish: 'dns.finish',
} as const;

export const PROXY_MESSAGES = {
  /** body: {fd, address, port} a listening socket from uwrx-init */
  listen: 'proxy.listen',
  /** body: {pid, address, port, sourcePort} which process a connection comes from */
  connect: 'proxy.connect',
  /** -> ProxyStats; stops serving */
  finish: 'proxy.finish',
} as const;
