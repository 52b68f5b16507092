// The module graph stays a tree of layers: no import cycles among src/ modules, and
// nothing in src/ or bench/ reaches into test/. Read from the TypeScript sources;
// type-only imports are left out (they vanish at compile time).
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './helpers/uwrx.js';

function sources(dir: string): string[] {
  return readdirSync(path.join(repoRoot, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => path.relative(repoRoot, path.join(e.parentPath, e.name)));
}

/** Relative modules a file imports at run time (static and dynamic), as repo paths. */
function imports(file: string): string[] {
  const text = readFileSync(path.join(repoRoot, file), 'utf8');
  const found: string[] = [];
  const re = /(?:^|\n)\s*(import|export)\s+(type\s+)?[^'";]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g;
  for (const m of text.matchAll(re)) {
    if (m[2]) continue;
    const spec = m[3] ?? m[4]!;
    found.push(path.normalize(path.join(path.dirname(file), spec.replace(/\.js$/, '.ts'))));
  }
  return found;
}

test('nothing in src/ or bench/ imports from test/', (t) => {
  const offenders = [...sources('src'), ...sources('bench')].flatMap((f) =>
    imports(f).filter((i) => i.startsWith('test/')).map((i) => `${f} -> ${i}`),
  );
  t.deepEqual(offenders, []);
});

test('src/ has no import cycles', (t) => {
  const graph = new Map(sources('src').map((f) => [f, imports(f).filter((i) => i.startsWith('src/'))]));
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const next of graph.get(f) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].join(' -> '));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  t.deepEqual(cycles, []);
});
