// The network's part of the plan: once lo is up, the steps the network feature asked for
// (a second address, the DNS sockets) and its files bound over the sandbox's own
// (resolv.conf, nsswitch.conf, hosts, the CA bundles) and the CA alone in /dev.
import { inRoot, type BuildContext } from './steps.js';

export function buildNetwork(ctx: BuildContext): void {
  const network = ctx.input.network;
  if (!network) return;
  for (const step of network.steps) ctx.steps.push(step);
  for (const b of network.binds) ctx.steps.bindReadOnly(b.source, inRoot(ctx, b.target));
  for (const c of network.created) {
    ctx.steps.push({ op: 'file', path: inRoot(ctx, c.target), mode: 0o644 });
    ctx.steps.bindReadOnly(c.source, inRoot(ctx, c.target));
  }
}
