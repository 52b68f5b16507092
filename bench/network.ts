// Download throughput through uwrx's proxy against the same download straight from the
// server, both on this machine's loopback, measured in the same invocation: curl fetches
// a large body over HTTPS from a local Node server, natively and inside `uwrx run`
// (capture: forwarded and recorded; replay: served from the record). curl's own timers
// give the transfer time and the time to first byte (`--time real` inside uwrx, so the
// sandbox's clocks are the host's).
//
//   npm run build:ts && npm run bench:net [-- --mib 256 --runs 3]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServers } from './net-servers.js';

const HOST = 'pkgs.example.test';
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const uwrxBin = path.join(repoRoot, 'bin', 'uwrx');

interface Sample {
  seconds: number;
  ttfb: number;
}

function parseCurl(out: string): Sample {
  const m = /(\d+\.\d+) (\d+\.\d+)\s*$/.exec(out);
  if (!m) throw new Error(`unexpected curl output: ${out}`);
  return { seconds: Number(m[1]), ttfb: Number(m[2]) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' }, runs: { type: 'string', default: '3' } } });
  const mib = Number(values.mib);
  const runs = Number(values.runs);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'uwrx-bench-net-'));
  const servers = await startServers(dir, [HOST], undefined, mib * 1024 * 1024);
  try {
    const url = `https://${HOST}:${servers.httpsPort}/big`;
    const curlArgs = ['-sS', '-o', '/dev/null', '-w', '%{time_total} %{time_starttransfer}\n'];
    const direct: Sample[] = [];
    const capture: Sample[] = [];
    const replay: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      const out = execFileSync('curl', [...curlArgs, '--cacert', servers.caFile, '--resolve', `${HOST}:${servers.httpsPort}:127.0.0.1`, url], { encoding: 'utf8' });
      direct.push(parseCurl(out));
      const build = path.join(dir, `build-${i}`);
      const r = spawnSync(process.execPath, [uwrxBin, 'run', '-q', '--build', build, '--time', 'real', '--dns-map', `${HOST}=127.0.0.1`, '--upstream-ca', servers.caFile, '--', 'curl', ...curlArgs, url], { encoding: 'utf8', cwd: dir });
      if (r.status !== 0) throw new Error(`uwrx run failed: ${r.stderr}`);
      capture.push(parseCurl(r.stdout));
      const attempt = path.join(build, '0', readdirSync(path.join(build, '0')).filter((n) => /^\d+$/.test(n))[0]!);
      const p = spawnSync(process.execPath, [uwrxBin, 'run', '-q', '--replay', attempt], { encoding: 'utf8', cwd: dir });
      if (p.status !== 0) throw new Error(`uwrx replay failed: ${p.stderr}`);
      replay.push(parseCurl(p.stdout));
      rmSync(build, { recursive: true, force: true });
      process.stderr.write(`run ${i + 1}/${runs} done\n`);
    }
    const d = median(direct.map((s) => s.seconds));
    const row = (name: string, samples: Sample[]) => {
      const s = median(samples.map((x) => x.seconds));
      const ttfb = median(samples.map((x) => x.ttfb));
      const mibs = mib / s;
      return `${name.padEnd(16)} ${s.toFixed(3).padStart(8)} s ${mibs.toFixed(0).padStart(6)} MiB/s  ratio ${(d / s).toFixed(2)}x  ttfb ${(ttfb * 1000).toFixed(1)} ms`;
    };
    console.log(`download of ${mib} MiB over HTTPS on loopback, median of ${runs} (curl ${execFileSync('curl', ['--version'], { encoding: 'utf8' }).split(' ')[1]})`);
    console.log(row('direct', direct));
    console.log(row('uwrx capture', capture));
    console.log(row('uwrx replay', replay));
    console.log(`goal: capture and replay at least 0.8x of direct`);
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
