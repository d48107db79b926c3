// Metering ids without a server: time-ordered, unique, kept when given.
import assert from "node:assert/strict";
import { test } from "node:test";

import { newEventId, prepareEvents } from "../src/index.js";

test("event ids are time-ordered: the millisecond, a per-process prefix, a counter", () => {
  const ids = prepareEvents(Array.from({ length: 2000 }, () => ({ type: "call.completed", agent: "agt_1" }))).map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids); // made later, sorts later
  for (const id of ids) assert.match(id, /^[0-9a-f]{36}$/);
  assert.equal(new Set(ids.map((id) => id.slice(12, 28))).size, 1); // one prefix per process
  const early = newEventId(Date.parse("2026-12-03T12:00:00Z"));
  const late = newEventId(Date.parse("2026-12-03T12:00:00.001Z"));
  assert.equal(early.slice(0, 12), Date.parse("2026-12-03T12:00:00Z").toString(16).padStart(12, "0"));
  assert.ok(early < late);
  assert.deepEqual(prepareEvents([{ id: "mine", type: "call.completed", agent: "a" }]).map((e) => e.id), ["mine"]);
});
