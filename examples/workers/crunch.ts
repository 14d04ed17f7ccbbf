/**
 * A CPU-bound function for the offload examples: about 40 ms of arithmetic at n = 1,000,000 on a
 * typical core. Pure, so it can run on the event loop or on a worker thread.
 */
export const crunch = (n: number): number => {
  let acc = 0
  for (let i = 1; i <= n; i++) {
    let x = (i * 48271) % 2147483647
    x = (x * 48271) % 2147483647
    acc = (acc + x) % 1000000007
  }
  return acc
}
