/** The analytics event the isolated-loop example sends to its worker thread. */
import * as Schema from "effect/Schema"

export const AnalyticsEvent = Schema.Struct({
  id: Schema.Int,
  name: Schema.String
})
export type AnalyticsEvent = typeof AnalyticsEvent.Type
