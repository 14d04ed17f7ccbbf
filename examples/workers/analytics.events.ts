/** The analytics event the isolated-loop example sends to its worker thread. */
import { Schema } from "effect"

export const AnalyticsEvent = Schema.Struct({
  id: Schema.Int,
  name: Schema.String
})
export type AnalyticsEvent = typeof AnalyticsEvent.Type
