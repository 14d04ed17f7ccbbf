// Runs TypeScript as `tsc` compiles it (see hooks.mjs): `node --import ./bench/loader/register.mjs x.ts`.
import { register } from "node:module"

register("./hooks.mjs", import.meta.url)
