import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // End-to-end tests spawn lb and its agent: two cores, so few files at once.
    maxWorkers: 2,
  },
});
