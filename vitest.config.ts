import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Process tests spawn examples under tsx; give them room on a 2-core CI machine.
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
