// The scenarios `uwrx test` ships, run as part of the suite.
import test from 'ava';
import { runScenario, scenarios } from '../src/scenarios/index.js';

for (const scenario of scenarios) {
  test(`scenario ${scenario.name}`, async (t) => {
    const outcome = await runScenario(scenario);
    t.true(outcome.ok, outcome.message);
  });
}
