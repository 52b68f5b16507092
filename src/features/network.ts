// Network: the sandbox's DNS and HTTP(S) proxy (src/network/, src/actors/dns.ts and
// proxy.ts). Capture in a fresh run, answers from the record in a replay, nothing with
// --no-net; in every case the sandbox has only loopback. Its plan pieces are the
// sandbox's resolv.conf, nsswitch.conf, hosts and CA bundles, the CA variables, a second
// loopback address and the DNS sockets; uwrx-init hands sockets over as MSG_NET_FD.
import { UsageError } from '../errors.js';
import type { NetConnectBody, NetFdBody } from '../protocol/init-messages.js';
import { MSG_NET_CONNECT, MSG_NET_FD } from '../protocol/init-messages.js';
import { readT0File } from '../reproducibility/time.js';
import { Network, caEnv, findHostFiles, networkMode, networkPlan, parseDnsMap, readUpstreamCa, runAuthority, startKeys, type HostFiles, type NetworkInput, type NetworkStats } from '../network/setup.js';
import type { CaKeys } from '../network/ca.js';
import { readCachedAuthority, servesRun, type CachedAuthority } from '../network/ca-cache.js';
import { timing } from '../timing.js';
import { defineFeature } from './feature.js';

export default defineFeature({
  name: 'network',
  finishAfter: [],
  create() {
    let input: NetworkInput;
    let keys: Promise<CaKeys> | undefined;
    let cached: CachedAuthority | undefined;
    let network: Network | undefined;
    let stats: NetworkStats | undefined;
    let host: HostFiles | undefined;
    const hostFiles = () => (host ??= findHostFiles());
    return {
      configure(settings) {
        const o = settings.options;
        try {
          const dnsMap = Array.isArray(o.dnsMap) ? parseDnsMap(o.dnsMap) : o.dnsMap ?? {};
          const upstreamCa = readUpstreamCa(o.upstreamCa ?? []);
          const replayDir = settings.stepOptions.replay as string | undefined;
          input = { net: settings.net ?? !replayDir, ...(replayDir ? { replayDir } : {}), dnsMap, upstreamCa, ...(o.allowPush ? { allowPush: true } : {}) };
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        if (settings.dryRun) return;
        // a fresh run's clock starts now: with a cached CA valid for that, no keys are made
        if (!input.replayDir) cached = readCachedAuthority();
        // otherwise key generation runs while the attempt is set up
        if (!cached || !servesRun(cached, Date.now())) keys = startKeys(input);
      },
      async record(run) {
        const notBeforeMs = Number((await readT0File(run.paths.attemptDir)) / 1_000_000n);
        const authority = await runAuthority(input, cached, () => (keys ??= startKeys(input)), notBeforeMs);
        network = new Network(input, run.paths.attemptDir, run.runDir, authority, notBeforeMs, hostFiles());
        // its actors start when the sandbox first uses the network
        network.attach(run.supervisor, () => network!.actorSpecs(`${run.runDir}/traces`));
        timing('network prepared (CA, sandbox files)');
      },
      ready: () => network?.ready(),
      plan: (run) => ({
        network: networkPlan(run.runDir, hostFiles(), networkMode(input)),
        env: { ...(run.settings.options.env ?? process.env), ...caEnv(hostFiles(), networkMode(input)) },
      }),
      on: {
        [MSG_NET_FD]: (body: NetFdBody) => {
          if (body.fd !== undefined) network?.onSocket(body.fd, body);
        },
        [MSG_NET_CONNECT]: (body: NetConnectBody) => network?.onConnect(body),
      },
      async finish(_run, { actorFailure }) {
        if (actorFailure || !network) return;
        stats = await network.finish();
        timing('network finished');
      },
      status: () =>
        stats
          ? { network: { requests: stats.requests, bytes: stats.bytes, unmatched: stats.unmatched, errors: stats.errors, queries: stats.queries, git: stats.git, gitBytes: stats.gitBytes, ...(stats.problems.length ? { problems: stats.problems } : {}) } }
          : {},
    };
  },
});
