// The network's part of the plan: once lo is up, the steps the network feature asked for
// (a second address, the DNS sockets) and its files bound over the sandbox's own
// (resolv.conf, nsswitch.conf, hosts, the CA bundles).
import { inRoot, type BuildContext } from './steps.js';

export function buildNetwork(ctx: BuildContext): void {
  const network = ctx.input.network;
  if (!network) return;
  for (const step of network.steps) ctx.steps.push(step);
  for (const b of network.binds) ctx.steps.bindReadOnly(b.source, inRoot(ctx, b.target));
}
