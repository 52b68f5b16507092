// An HTTP load test in one Node process: a server on loopback and CLIENTS keep-alive
// clients sending REQUESTS GET requests in all, each client one request at a time.
// Prints the seconds the requests took, read from /proc/uptime, which no clock
// interception touches (uwrx's virtual clocks would otherwise time themselves).
'use strict';
const http = require('node:http');
const { readFileSync } = require('node:fs');

const requests = Number(process.argv[2] ?? 20000);
const clients = Number(process.argv[3] ?? 32);
const uptime = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
const body = Buffer.alloc(512, 'x');

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => res.end(body));
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  let started = 0;
  let done = 0;
  const begin = uptime();
  const next = () => {
    if (started === requests) return;
    started++;
    http
      .get({ host: '127.0.0.1', port, path: `/item/${started}`, agent }, (res) => {
        let bytes = 0;
        res.on('data', (c) => (bytes += c.length));
        res.on('end', () => {
          if (res.statusCode !== 200 || bytes !== body.length) throw new Error(`bad response ${res.statusCode}, ${bytes} bytes`);
          if (++done === requests) {
            console.log((uptime() - begin).toFixed(2));
            agent.destroy();
            server.close();
          } else next();
        });
      })
      .on('error', (e) => {
        throw e;
      });
  };
  for (let i = 0; i < clients; i++) next();
});
