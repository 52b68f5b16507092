// Writes LINES lines to stdout, one write(2) each, as a test runner or a build tool
// printing progress does: Node's process has threads, so this is the output path of a
// process with threads.
'use strict';
const { writeSync } = require('node:fs');

const lines = Number(process.argv[2] ?? 50000);
for (let i = 0; i < lines; i++) writeSync(1, `line ${i} of some test output\n`);
