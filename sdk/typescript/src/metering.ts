/**
 * Metering: record events (ids generated client-side) and read usage; outcomes are events too.
 *
 * Every event without an `id` gets one here, before the first attempt ({@link newEventId}: time-ordered,
 * as the Python SDK's batcher makes them), and the request carries an `Idempotency-Key`: a retried
 * request repeats the same ids, which the server stores once, so a retry never double-counts. To retry a failed batch yourself, send the same prepared events again
 * ({@link prepareEvents} assigns ids up front).
 * @module
 */

import type { CallOptions } from "./http.js";
import type { Body, Query, Result } from "./types.js";
import { Surface } from "./types.js";

type AnyEvent = Body<"report_events">;
/** One usage event as the server stores it. */
export type MeteringEvent = Exclude<AnyEvent, { events: unknown }>;
/** An event to record: `id` and `timestamp` are filled in when absent. */
export type EventInput = Omit<MeteringEvent, "id" | "timestamp"> & { id?: string; timestamp?: string };
/** The largest batch the server takes. */
export const MAX_BATCH = 1000;

// This process's random 64-bit id prefix (hex) and the counter after it.
const ID_PREFIX = Array.from(globalThis.crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
let idSerial = 0;

/**
 * A new event id, time-ordered (UUIDv7's idea, the Python SDK's batcher's format): the millisecond
 * (12 hex digits), this process's random 64-bit prefix and a counter (8 hex digits). Ids made later
 * sort later, so the server's unique-id index takes each event at its end instead of a random page
 * (random ids made that index's writes grow with the table); unique without a random draw per event.
 */
export function newEventId(nowMs: number = Date.now()): string {
  idSerial = (idSerial + 1) >>> 0;
  return nowMs.toString(16).padStart(12, "0") + ID_PREFIX + idSerial.toString(16).padStart(8, "0");
}

/** A copy of `event` with an `id` ({@link newEventId}) and a `timestamp` (now) unless it has them. */
export function prepareEvent(event: EventInput): MeteringEvent {
  return {
    ...event,
    id: event.id ?? newEventId(),
    timestamp: event.timestamp ?? new Date().toISOString(),
  } as MeteringEvent;
}

/** Copies of `events`, each with an `id` and a `timestamp` (kept when present). */
export function prepareEvents(events: readonly EventInput[]): MeteringEvent[] {
  return events.map(prepareEvent);
}

/** Usage query: `filter` is `{ dimension: value | values }` (values of one dimension are ORed). */
export type UsageQuery = Omit<Query<"get_usage">, "filter" | "group_by"> & {
  group_by?: string | readonly string[];
  filter?: Record<string, string | readonly string[]>;
};

/** `/metering`: record one event or a batch, read usage. */
export class Metering extends Surface {
  /** One event (`tokens.consumed`, `call.completed` or `outcome.<name>`); its id is the Idempotency-Key. */
  record(event: EventInput, options?: CallOptions): Promise<Result<"report_events">> {
    const prepared = prepareEvent(event);
    const opts = { ...options, idempotencyKey: options?.idempotencyKey ?? prepared.id };
    return this.call("report_events", { method: "POST", path: "/metering/events", body: prepared }, opts);
  }

  /** Up to 1,000 events in one request; each gets its id now, so a retry of this call is deduplicated. */
  recordBatch(events: readonly EventInput[], options?: CallOptions): Promise<Result<"report_events">> {
    if (events.length === 0 || events.length > MAX_BATCH) throw new RangeError(`a batch holds 1 to ${MAX_BATCH} events`);
    const prepared = prepareEvents(events);
    const opts = { ...options, idempotencyKey: options?.idempotencyKey ?? globalThis.crypto.randomUUID() };
    return this.call("report_events", { method: "POST", path: "/metering/events", body: { events: prepared } }, opts);
  }

  /** Usage and cost per period, grouped: `usage({ group_by: "agent", filter: { agent: id } })`. */
  usage(query: UsageQuery = {}, options?: CallOptions): Promise<Result<"get_usage">> {
    const { filter, group_by, ...rest } = query;
    const filters = Object.entries(filter ?? {}).flatMap(([dim, values]) =>
      (typeof values === "string" ? [values] : values).map((v) => `${dim}=${v}`),
    );
    const groupBy = group_by === undefined || typeof group_by === "string" ? group_by : group_by.join(",");
    return this.call("get_usage", { method: "GET", path: "/metering/usage", query: { ...rest, group_by: groupBy, filter: filters } }, options);
  }
}

/** An outcome to record: what was delivered, by which agent. */
export type OutcomeInput = Omit<EventInput, "type">;

/** Outcomes (`outcome.<name>` metering events: a resolved ticket, a merged PR, ...). */
export class Outcomes extends Surface {
  private readonly metering = new Metering(this.transport);

  /** Record `outcome.<name>` for an agent (`quantity` defaults to 1 on the server). */
  record(name: string, outcome: OutcomeInput, options?: CallOptions): Promise<Result<"report_events">> {
    const type = name.startsWith("outcome.") ? name : `outcome.${name}`;
    return this.metering.record({ ...outcome, type }, options);
  }
}
