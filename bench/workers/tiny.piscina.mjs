// Piscina's worker for the tiny-task benchmark.
export default (n) => n + 1
