// Library entry: `import { run } from 'uwrx'`.
export { run, RunHandle } from './run.js';
export type { RunOptions, RunResult, RunEvent } from './run.js';
export type { SandboxEvent, SandboxResult } from './sandbox/index.js';
export { UsageError, EnvironmentError } from './errors.js';
export { defineFeature } from './features/feature.js';
export type { RunFeature, FeatureHooks, RunContext, RunSettings, PlanContext, FinishInput } from './features/feature.js';
