// Resolves every package of a node_modules tree as a bundler or a test runner does at
// its start: for each package, its package.json read and parsed, then the package's
// entry found by Node's own resolution (the stats of every candidate file and index,
// made by libuv through syscall(2)), ROUNDS times over. Prints how many resolved.
'use strict';
const { readdirSync, readFileSync, statSync } = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');

const root = path.resolve(process.argv[2] ?? '.');
const rounds = Number(process.argv[3] ?? 5);
const modules = path.join(root, 'node_modules');

function packages() {
  const names = [];
  for (const entry of readdirSync(modules)) {
    if (entry.startsWith('.')) continue;
    if (entry.startsWith('@')) for (const scoped of readdirSync(path.join(modules, entry))) names.push(`${entry}/${scoped}`);
    else names.push(entry);
  }
  return names.sort();
}

let resolved = 0;
let failed = 0;
const names = packages();
for (let round = 0; round < rounds; round++) {
  // a fresh require each round: Node caches resolutions per require function
  const req = createRequire(path.join(root, `round-${round}.js`));
  for (const name of names) {
    const manifest = path.join(modules, name, 'package.json');
    if (!statSync(manifest, { throwIfNoEntry: false })) continue;
    JSON.parse(readFileSync(manifest, 'utf8'));
    try {
      req.resolve(name);
      resolved++;
    } catch {
      failed++; // no main entry for require (types-only, ESM-only exports)
    }
  }
}
console.log(`${names.length} packages, ${resolved} resolved, ${failed} not resolvable, ${rounds} rounds`);
