/**
 * Surfaces of agents, their credentials and budgets, teams, workflows, budgets, policies and
 * data-subject requests (`/api/v1`, an admin access token).
 * @module
 */

import type { CallOptions } from "./http.js";
import { seg } from "./http.js";
import type { Body, Query, Result } from "./types.js";
import { Surface } from "./types.js";
import { AiAct } from "./oversight.js";

/** Reason recorded in the audit trail for a status change. */
export type Reason = Body<"suspend_agent">;

/** `/agents/{id}/credentials`: issue, list, rotate, revoke. */
export class Credentials extends Surface {
  /** Issue a credential; for `kind: "secret"` (the default) the answer carries `secret`, shown once. */
  issue(agentId: string, input: Body<"issue_credential"> = { kind: "secret" }, options?: CallOptions): Promise<Result<"issue_credential">> {
    return this.call("issue_credential", { method: "POST", path: `/agents/${seg(agentId)}/credentials`, body: input }, options);
  }

  /** The agent's credentials (never their secrets). */
  list(agentId: string, options?: CallOptions): Promise<Result<"list_credentials">> {
    return this.call("list_credentials", { method: "GET", path: `/agents/${seg(agentId)}/credentials` }, options);
  }

  /** A replacement credential; the old one keeps working for `overlap_seconds`. */
  rotate(agentId: string, credentialId: string, input: Body<"rotate_credential"> = {}, options?: CallOptions): Promise<Result<"rotate_credential">> {
    const path = `/agents/${seg(agentId)}/credentials/${seg(credentialId)}/rotate`;
    return this.call("rotate_credential", { method: "POST", path, body: input }, options);
  }

  /** Revoke a credential at once. */
  revoke(agentId: string, credentialId: string, input: Body<"revoke_credential"> = {}, options?: CallOptions): Promise<Result<"revoke_credential">> {
    const path = `/agents/${seg(agentId)}/credentials/${seg(credentialId)}/revoke`;
    return this.call("revoke_credential", { method: "POST", path, body: input }, options);
  }
}

/** The budgets of one kind of owner (`/agents|teams|workflows/{id}/budgets`). */
export class OwnerBudgets extends Surface {
  /** @internal */
  private readonly kind: "agents" | "teams" | "workflows";

  constructor(transport: ConstructorParameters<typeof Surface>[0], kind: "agents" | "teams" | "workflows") {
    super(transport);
    this.kind = kind;
  }

  /** Create a budget: exactly one limit (`token_limit`, `call_limit`, or `cost_limit_micros` with `currency`). */
  create(ownerId: string, input: Body<"create_agent_budget">, options?: CallOptions): Promise<Result<"create_agent_budget">> {
    return this.call("create_agent_budget", { method: "POST", path: `/${this.kind}/${seg(ownerId)}/budgets`, body: input }, options);
  }

  /** The owner's budgets with their status. */
  list(ownerId: string, options?: CallOptions): Promise<Result<"list_agent_budgets">> {
    return this.call("list_agent_budgets", { method: "GET", path: `/${this.kind}/${seg(ownerId)}/budgets` }, options);
  }
}

/** `/agents`: create, list, get, update, suspend, reinstate, revoke; `credentials`, `budgets`. */
export class Agents extends Surface {
  /** The agent's credentials. */
  readonly credentials = new Credentials(this.transport);
  /** Budgets on an agent. */
  readonly budgets = new OwnerBudgets(this.transport, "agents");
  /** The agent's AI Act record. */
  readonly aiAct = new AiAct(this.transport);

  /** Create an agent. */
  create(input: Body<"create_agent">, options?: CallOptions): Promise<Result<"create_agent">> {
    return this.call("create_agent", { method: "POST", path: "/agents", body: input }, options);
  }

  /** One page (`items`, `next_cursor`); pass `cursor: page.next_cursor` for the next. */
  list(query: Query<"list_agents"> = {}, options?: CallOptions): Promise<Result<"list_agents">> {
    return this.call("list_agents", { method: "GET", path: "/agents", query }, options);
  }

  /** Every agent matching `query`, page after page. */
  async *iterate(query: Omit<Query<"list_agents">, "cursor"> = {}, options?: CallOptions): AsyncGenerator<Result<"get_agent">> {
    let cursor: string | undefined;
    do {
      const page = await this.list({ ...query, ...(cursor ? { cursor } : {}) }, options);
      yield* page.items;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** Read an agent. */
  get(agentId: string, options?: CallOptions): Promise<Result<"get_agent">> {
    return this.call("get_agent", { method: "GET", path: `/agents/${seg(agentId)}` }, options);
  }

  /** Change only the fields given (`team: null` removes the team). */
  update(agentId: string, input: Body<"update_agent">, options?: CallOptions): Promise<Result<"update_agent">> {
    return this.call("update_agent", { method: "PATCH", path: `/agents/${seg(agentId)}`, body: input }, options);
  }

  /** Suspend: the agent's live tokens die at once. */
  suspend(agentId: string, input: Reason = {}, options?: CallOptions): Promise<Result<"suspend_agent">> {
    return this.call("suspend_agent", { method: "POST", path: `/agents/${seg(agentId)}/suspend`, body: input }, options);
  }

  /** Reinstate a suspended agent (tokens issued before stay dead). */
  reinstate(agentId: string, input: Reason = {}, options?: CallOptions): Promise<Result<"reinstate_agent">> {
    return this.call("reinstate_agent", { method: "POST", path: `/agents/${seg(agentId)}/reinstate`, body: input }, options);
  }

  /** Revoke for good. */
  revoke(agentId: string, input: Reason = {}, options?: CallOptions): Promise<Result<"revoke_agent">> {
    return this.call("revoke_agent", { method: "POST", path: `/agents/${seg(agentId)}/revoke`, body: input }, options);
  }
}

/** `/teams`: create, list, get; `budgets`. */
export class Teams extends Surface {
  /** Budgets on a team. */
  readonly budgets = new OwnerBudgets(this.transport, "teams");

  /** Create a team. */
  create(input: Body<"create_team">, options?: CallOptions): Promise<Result<"create_team">> {
    return this.call("create_team", { method: "POST", path: "/teams", body: input }, options);
  }

  /** All teams. */
  list(options?: CallOptions): Promise<Result<"list_teams">> {
    return this.call("list_teams", { method: "GET", path: "/teams" }, options);
  }

  /** Read a team (by id). */
  get(teamId: string, options?: CallOptions): Promise<Result<"get_team">> {
    return this.call("get_team", { method: "GET", path: `/teams/${seg(teamId)}` }, options);
  }
}

/** Exactly one owner of a budget. */
export type BudgetOwner = { agent: string } | { team: string } | { workflow: string };

function ownerPath(owner: BudgetOwner): string {
  const entries = Object.entries(owner).filter(([, v]) => typeof v === "string" && v);
  const [entry] = entries;
  if (entries.length !== 1 || !entry) throw new TypeError("name exactly one of agent, team, workflow");
  const kind = { agent: "agents", team: "teams", workflow: "workflows" }[entry[0]];
  if (!kind) throw new TypeError("name exactly one of agent, team, workflow");
  return `/${kind}/${seg(entry[1] as string)}/budgets`;
}

/** Budgets: create and list by owner, get, update, delete, status; reserve/settle for custom servers. */
export class Budgets extends Surface {
  /** Create a budget on one owner: `budgets.create({ agent: id }, { token_limit: 1000 })`. */
  create(owner: BudgetOwner, input: Body<"create_agent_budget">, options?: CallOptions): Promise<Result<"create_agent_budget">> {
    return this.call("create_agent_budget", { method: "POST", path: ownerPath(owner), body: input }, options);
  }

  /** The budgets of one owner. */
  list(owner: BudgetOwner, options?: CallOptions): Promise<Result<"list_agent_budgets">> {
    return this.call("list_agent_budgets", { method: "GET", path: ownerPath(owner) }, options);
  }

  /** Read a budget and its status. */
  get(budgetId: string, options?: CallOptions): Promise<Result<"get_budget">> {
    return this.call("get_budget", { method: "GET", path: `/budgets/${seg(budgetId)}` }, options);
  }

  /** Change only the fields given. */
  update(budgetId: string, input: Body<"update_budget">, options?: CallOptions): Promise<Result<"update_budget">> {
    return this.call("update_budget", { method: "PATCH", path: `/budgets/${seg(budgetId)}`, body: input }, options);
  }

  /** Delete a budget. */
  delete(budgetId: string, options?: CallOptions): Promise<Result<"delete_budget">> {
    return this.call("delete_budget", { method: "DELETE", path: `/budgets/${seg(budgetId)}` }, options);
  }

  /** Spent, reserved, remaining and the period end (the budget's usage). */
  status(budgetId: string, options?: CallOptions): Promise<Result<"budget_status">> {
    return this.call("budget_status", { method: "GET", path: `/budgets/${seg(budgetId)}/status` }, options);
  }

  /** Add a webhook endpoint to a budget (its secret is shown once). */
  addWebhook(budgetId: string, input: Body<"add_budget_webhook">, options?: CallOptions): Promise<Result<"add_budget_webhook">> {
    return this.call("add_budget_webhook", { method: "POST", path: `/budgets/${seg(budgetId)}/webhooks`, body: input }, options);
  }

  /** Alias of {@link Budgets.status}. */
  usage(budgetId: string, options?: CallOptions): Promise<Result<"budget_status">> {
    return this.status(budgetId, options);
  }

  /**
   * Reserve an estimate on every budget of an agent/team/workflow (a 429 {@link ApiError} when a
   * hard one is exhausted; `Retry-After` is its period end). The server deduplicates by
   * `request_id` (scoped to the calling client); one is generated when absent (`rsv_` + 32 hex
   * digits, as the Python SDK does), so the call is retried like an idempotent one.
   */
  reserve(input: Body<"reserve_use">, options?: CallOptions): Promise<Result<"reserve_use">> {
    const body = input.request_id ? input : { ...input, request_id: `rsv_${globalThis.crypto.randomUUID().replaceAll("-", "")}` };
    return this.call("reserve_use", { method: "POST", path: "/budgets/reserve", body, idempotent: true }, options);
  }

  /** Settle or release reservations (idempotent on the server, so retried). */
  settle(input: Body<"settle_use">, options?: CallOptions): Promise<Result<"settle_use">> {
    return this.call("settle_use", { method: "POST", path: "/budgets/settle", body: input, idempotent: true }, options);
  }
}

/** `/policies`: the active Cedar policy set; store a new version; the history; run policy tests. */
export class Policies extends Surface {
  /** The active policy version (its sources). */
  get(options?: CallOptions): Promise<Result<"get_policies">> {
    return this.call("get_policies", { method: "GET", path: "/policies" }, options);
  }

  /** Store and activate a policy set (`sources: {file: Cedar text}`); 409 when it does not validate. */
  put(input: Body<"put_policies">, options?: CallOptions): Promise<Result<"put_policies">> {
    return this.call("put_policies", { method: "PUT", path: "/policies", body: input }, options);
  }

  /**
   * Run policy tests (`tests: {"ALLOW/<name>" | "DENY/<name>": JSON text or object}`; default: the
   * server's shipped tests) against the active set, or against a draft given as `sources` (and
   * `schema`, `entities`, as {@link Policies.put} takes them) that is never stored. One result per
   * test, with the deciding policies' file, line and column; an invalid draft or test is an
   * {@link ApiError} (422) whose `errors` name each field and its `file:line:col`. It changes
   * nothing, so it is retried like an idempotent call.
   */
  test(input: Body<"test_policies"> = {}, options?: CallOptions): Promise<Result<"test_policies">> {
    return this.call("test_policies", { method: "POST", path: "/policies/test", body: input, idempotent: true }, options);
  }

  /** The stored versions. */
  versions(options?: CallOptions): Promise<Result<"list_policy_versions">> {
    return this.call("list_policy_versions", { method: "GET", path: "/policies/versions" }, options);
  }

  /** One stored version. */
  version(version: number, options?: CallOptions): Promise<Result<"get_policy_version">> {
    return this.call("get_policy_version", { method: "GET", path: `/policies/versions/${seg(version)}` }, options);
  }
}

/** Data-subject requests (GDPR Art. 15/17/20); need the `subjects:admin` scope. */
export class Subjects extends Surface {
  /** Everything held about a person. */
  export(subjectId: string, options?: CallOptions): Promise<Result<"export_subject_op">> {
    return this.call("export_subject_op", { method: "GET", path: `/subjects/${seg(subjectId)}/export` }, options);
  }

  /** Erase a person: revoke, delete, destroy their key. */
  erase(subjectId: string, input: Body<"erase_subject_op"> = {}, options?: CallOptions): Promise<Result<"erase_subject_op">> {
    return this.call("erase_subject_op", { method: "POST", path: `/subjects/${seg(subjectId)}/erase`, body: input }, options);
  }
}
