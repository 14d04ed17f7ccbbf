import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Process tests spawn examples under tsx and wait for them to listen with no clock of their own:
    // this is the bound. A start took over 20 s on a 2-core machine with a load average of 11, and
    // a test may start several processes; a process that hangs still fails its test, and is killed.
    testTimeout: 180_000,
    hookTimeout: 180_000
  }
})
