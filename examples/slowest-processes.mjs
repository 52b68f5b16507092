#!/usr/bin/env node
// Reads a uwrx record with the library: the slowest processes, the failed ones with the
// end of what they printed, and who wrote each file under a directory.
//
//   node examples/slowest-processes.mjs build/0/0 [directory]
import { openRecord } from 'uwrx';

const [attemptDir, directory] = process.argv.slice(2);
if (!attemptDir) {
  console.error('usage: slowest-processes.mjs <attempt directory> [directory]');
  process.exit(2);
}

const record = openRecord(attemptDir);
console.log(`${record.command.join(' ')}: ${record.processes().length} processes, ${record.status?.complete ? 'complete' : 'incomplete'}`);

const seconds = (p) => (p.end - p.start) / 1e9;
const timed = record.processes().filter((p) => p.start !== null && p.end !== null);
for (const p of timed.sort((a, b) => seconds(b) - seconds(a)).slice(0, 5)) {
  console.log(`slow    ${seconds(p).toFixed(3)} s  pid ${p.pid}  ${p.argv.join(' ')}`);
}

for (const p of record.processes().filter((p) => p.signal !== null || (p.exitCode ?? 0) !== 0)) {
  const tail = record.output(p.pid).toString('utf8').trimEnd().split('\n').slice(-2).join(' | ');
  console.log(`failed  pid ${p.pid} (${p.signal !== null ? `signal ${p.signal}` : `exit ${p.exitCode}`})  ${p.argv.join(' ')}${tail ? `: ${tail}` : ''}`);
}

if (directory) {
  for (const op of record.fileOperations({ pathPrefix: directory })) {
    const version = record.versionWrittenBy(op.path, op.pid);
    console.log(`file    ${op.operation} ${op.path} by pid ${op.pid} (${op.exec})${version ? `, kept in ${version.layer}/` : ''}`);
  }
}
