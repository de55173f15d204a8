import { afterAll, expect } from 'vitest';

import { Loop } from '../src/monitor/runner.js';

// A loop still running after a file's tests is a leaked monitor or liveness timer: a bug.
afterAll(() => {
  expect(Loop.running, 'loops still running after the tests (leaked monitor or liveness loop)').toBe(0);
});
