// Download throughput through uwrx's proxy against the same download straight from the
// server, both on this machine's loopback, measured in the same invocation: curl fetches
// a large body over HTTPS from a local Node server, natively and inside `uwrx run`
// (capture: forwarded and recorded; replay: served from the record). curl's own timers
// give the transfer time and the time to first byte (`--time real` inside uwrx, so the
// sandbox's clocks are the host's).
//
//   npm run build:ts && npm run bench:net [-- --mib 256 --runs 3 --base OTHER-CHECKOUT]
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
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
  /** CPU time (user + system) of the command and everything it waited for. */
  cpu: number;
}

/** curl's timers, then the shell's `times` (its own, then its children's). */
function parseCurl(out: string): Sample {
  const m = /(\d+\.\d+) (\d+\.\d+)\n\d+m[\d.]+s \d+m[\d.]+s\n(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(out);
  if (!m) throw new Error(`unexpected curl output: ${out}`);
  return { seconds: Number(m[1]), ttfb: Number(m[2]), cpu: Number(m[3]) * 60 + Number(m[4]) + Number(m[5]) * 60 + Number(m[6]) };
}

// asynchronous: the servers answer from this same process
const exec = promisify(execFile);
/** Runs a command through sh, which reports the CPU time of what it waited for. */
const run = (cmd: string, args: string[], options: { cwd?: string } = {}) =>
  exec('sh', ['-c', '"$@"; s=$?; times; exit $s', 'sh', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 20, ...options });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' }, runs: { type: 'string', default: '3' }, base: { type: 'string', multiple: true } } });
  // --base DIR (repeatable): other uwrx checkouts (built), measured in the same rounds
  const builds: Array<[string, string]> = [['uwrx', uwrxBin], ...(values.base ?? []).map((b): [string, string] => [path.basename(b), path.join(path.resolve(b), 'bin', 'uwrx')])];
  const mib = Number(values.mib);
  const runs = Number(values.runs);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'uwrx-bench-net-'));
  const servers = await startServers(dir, [HOST], undefined, mib * 1024 * 1024);
  try {
    const url = `https://${HOST}:${servers.httpsPort}/big`;
    const curlArgs = ['-sS', '-o', '/dev/null', '-w', '%{time_total} %{time_starttransfer}\n'];
    const direct: Sample[] = [];
    const samples = new Map<string, Sample[]>();
    const add = (name: string, s: Sample) => samples.set(name, [...(samples.get(name) ?? []), s]);
    for (let i = 0; i < runs; i++) {
      const out = await run('curl', [...curlArgs, '--cacert', servers.caFile, '--resolve', `${HOST}:${servers.httpsPort}:127.0.0.1`, url]);
      direct.push(parseCurl(out.stdout));
      for (const [name, bin] of builds) {
        const build = path.join(dir, `build-${name}-${i}`);
        const r = await run(process.execPath, [bin, 'run', '-q', '--build', build, '--time', 'real', '--dns-map', `${HOST}=127.0.0.1`, '--upstream-ca', servers.caFile, '--', 'curl', ...curlArgs, url], { cwd: dir });
        add(`${name} capture`, parseCurl(r.stdout));
        const attempt = path.join(build, '0', readdirSync(path.join(build, '0')).filter((n) => /^\d+$/.test(n))[0]!);
        const p = await run(process.execPath, [bin, 'run', '-q', '--replay', attempt], { cwd: dir });
        add(`${name} replay`, parseCurl(p.stdout));
        rmSync(build, { recursive: true, force: true });
      }
      process.stderr.write(`run ${i + 1}/${runs} done\n`);
    }
    const d = median(direct.map((s) => s.seconds));
    const row = (name: string, list: Sample[]) => {
      const s = median(list.map((x) => x.seconds));
      const ttfb = median(list.map((x) => x.ttfb));
      const cpu = median(list.map((x) => x.cpu));
      const mibs = mib / s;
      return `${name.padEnd(16)} ${s.toFixed(3).padStart(8)} s ${mibs.toFixed(0).padStart(6)} MiB/s  ratio ${(d / s).toFixed(2)}x  ttfb ${(ttfb * 1000).toFixed(1).padStart(6)} ms  cpu ${cpu.toFixed(2)} s`;
    };
    console.log(`download of ${mib} MiB over HTTPS on loopback, median of ${runs} (curl ${execFileSync('curl', ['--version'], { encoding: 'utf8' }).split(' ')[1]})`);
    console.log(`cpu: user + system time of curl (direct) or of uwrx with everything it ran, not the server's`);
    console.log(row('direct', direct));
    for (const [name, list] of samples) console.log(row(name, list));
    console.log(`goal: capture and replay at least 0.8x of direct`);
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
