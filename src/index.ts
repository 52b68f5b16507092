// Library entry: `import { run } from 'uwrx'`.
export { run, RunHandle } from './run.js';
export type { RunOptions, RunResult, RunEvent } from './run.js';
export type { SandboxEvent, SandboxResult } from './sandbox/index.js';
export { UsageError, EnvironmentError } from './errors.js';
