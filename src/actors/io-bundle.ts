// The record's actors (storage, collector, merger) with the worker body, as one CommonJS
// bundle (npm run bundle: dist/src/actors/io.cjs). The CLI's workers that host any of
// them boot from it (worker-boot.ts) through V8's code cache, as the CLI bundle does on
// the main thread: an ES module worker parses and compiles its modules anew in every run,
// and Node has no code cache for ES modules. Each actor is known by the URL of its module
// (actorModule), so a spec names it the same way whichever entry hosts it.
import { promises } from 'node:fs';
import { actorModule } from './modules.js';
import { hostActors, type HostOptions, type Hosting } from './worker-host.js';
import type { ActorDefinition } from './actor.js';
import storage from './storage.js';
import collector from './collector.js';
import merger from './merger.js';

const builtIn = new Map<string, ActorDefinition>([
  [actorModule('storage').href, storage as ActorDefinition],
  [actorModule('collector').href, collector as ActorDefinition],
  [actorModule('merger').href, merger as ActorDefinition],
]);

// Node loads fs.promises (with the dozen modules behind it) on its first use, which
// would be the storage actor's first request, when the run has ended and waits for it:
// loaded here it is part of the thread's boot, beside the run's set-up.
void promises.constants;

/** Hosts this thread's actors (HostOptions without builtIn). */
export function host(options: Omit<HostOptions, 'builtIn'>): Promise<Hosting> {
  return hostActors({ ...options, builtIn });
}
