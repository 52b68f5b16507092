// The init protocol is written twice, in src/protocol/init-messages.ts and in
// src/native/include/uwrx_init_proto.h: message types, plan operations and problem
// kinds must be the same on both sides, and uwrx-init's op table must execute every
// operation the header names.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../src/native.js';
import * as proto from '../src/protocol/init-messages.js';

const nativeDir = path.join(packageRoot, 'src', 'native');
const header = readFileSync(path.join(nativeDir, 'include', 'uwrx_init_proto.h'), 'utf8');
const tsSource = readFileSync(path.join(packageRoot, 'src', 'protocol', 'init-messages.ts'), 'utf8');

/** `#define PREFIXNAME "value"` of the header, as name -> value. */
function stringDefines(prefix: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of header.matchAll(new RegExp(`^#define\\s+(${prefix}\\w+)\\s+"([^"]*)"`, 'gm'))) out.set(m[1]!, m[2]!);
  return out;
}

test('every message type has the same name and value on both sides', (t) => {
  const c = Object.fromEntries(stringDefines('MSG_'));
  const ts = Object.fromEntries(Object.entries(proto).filter(([k, v]) => k.startsWith('MSG_') && typeof v === 'string'));
  t.true(Object.keys(c).length >= 10, 'the header defines the messages');
  t.deepEqual(ts, c);
});

test('the kinds of process notice entries (MSG_PROCS) have the same numbers on both sides', (t) => {
  const c = Object.fromEntries([...header.matchAll(/^#define\s+(PROC_\w+)\s+(\d+)\s*$/gm)].map((m) => [m[1]!, Number(m[2])]));
  const ts = Object.fromEntries(Object.entries(proto).filter(([k, v]) => k.startsWith('PROC_') && typeof v === 'number'));
  t.deepEqual(Object.keys(c).sort(), ['PROC_EXEC', 'PROC_EXIT', 'PROC_SPAWN']);
  t.deepEqual(ts, c);
});

test('the plan operations are the same on both sides, and uwrx-init executes each of them', (t) => {
  const c = [...stringDefines('OP_').values()].sort();
  // the PlanOp union: one `op: '...'` per member
  const union = tsSource.slice(tsSource.indexOf('export type PlanOp ='), tsSource.indexOf('export interface InitPlan'));
  const ts = [...union.matchAll(/\{\s*op:\s*'(\w+)'/g)].map((m) => m[1]!).sort();
  t.true(c.length >= 10, 'the header defines the operations');
  t.deepEqual(ts, c);
  // plan.c's table: { OP_NAME, executor, best effort }
  const table = readFileSync(path.join(nativeDir, 'init', 'plan.c'), 'utf8');
  const executed = [...table.matchAll(/\{\s*(OP_\w+),\s*op_\w+,\s*(?:true|false)\s*\}/g)].map((m) => m[1]!).sort();
  t.deepEqual(executed, [...stringDefines('OP_').keys()].sort());
});

test('the problem kinds uwrx-init reports are the ones the protocol lists', (t) => {
  const c = [...stringDefines('PROBLEM_NAME_').values()].sort();
  t.deepEqual([...proto.INIT_PROBLEM_KINDS].sort(), c);
  // and problems.c names every kind of its enum
  const problems = readFileSync(path.join(nativeDir, 'init', 'problems.c'), 'utf8');
  for (const name of stringDefines('PROBLEM_NAME_').keys()) t.regex(problems, new RegExp(`= ${name},`));
});
