/**
 * Human oversight (AI Act Art. 14): tools that need a person's approval, the approval requests and
 * decisions, the resource servers' gate check; and an agent's AI Act record (`agents.aiAct`).
 * @module
 */

import type { CallOptions } from "./http.js";
import { seg } from "./http.js";
import type { Body, Query, Result } from "./types.js";
import { Surface } from "./types.js";

/** `/oversight/rules`: which tools of which MCP server need approval. */
export class OversightRules extends Surface {
  /** The rules, optionally of one resource. */
  list(query: Query<"list_rules_op"> = {}, options?: CallOptions): Promise<Result<"list_rules_op">> {
    return this.call("list_rules_op", { method: "GET", path: "/oversight/rules", query }, options);
  }

  /** Mark a tool as needing approval (optionally from an agent risk level up). */
  add(input: Body<"put_rule_op">, options?: CallOptions): Promise<Result<"put_rule_op">> {
    return this.call("put_rule_op", { method: "POST", path: "/oversight/rules", body: input }, options);
  }

  /** Stop requiring approval. */
  delete(ruleId: string, options?: CallOptions): Promise<Result<"delete_rule_op">> {
    return this.call("delete_rule_op", { method: "DELETE", path: `/oversight/rules/${seg(ruleId)}` }, options);
  }
}

/** `/oversight/approvals`: requests and decisions. */
export class Approvals extends Surface {
  /** Approval requests, newest first, optionally in one status. */
  list(query: Query<"list_approvals_op"> = {}, options?: CallOptions): Promise<Result<"list_approvals_op">> {
    return this.call("list_approvals_op", { method: "GET", path: "/oversight/approvals", query }, options);
  }

  /** Approve or reject (deciding again is an override). */
  decide(approvalId: string, input: Body<"decide_op">, options?: CallOptions): Promise<Result<"decide_op">> {
    return this.call("decide_op", { method: "POST", path: `/oversight/approvals/${seg(approvalId)}/decision`, body: input }, options);
  }
}

/** Human oversight: `rules`, `approvals`, and the resource server side (`gated`, `check`; scope `approvals:check`). */
export class Oversight extends Surface {
  readonly rules = new OversightRules(this.transport);
  readonly approvals = new Approvals(this.transport);

  /** The tools of a resource some rule gates. */
  gated(query: Query<"gated_op"> = {}, options?: CallOptions): Promise<Result<"gated_op">> {
    return this.call("gated_op", { method: "GET", path: "/oversight/gated", query }, options);
  }

  /** May this call go ahead? `allow` consumes an approval; otherwise `approval_required` with the page URL, or `rejected`. */
  check(input: Body<"check_op">, options?: CallOptions): Promise<Result<"check_op">> {
    return this.call("check_op", { method: "POST", path: "/oversight/check", body: input }, options);
  }
}

/** `/agents/{id}/ai-act`: an agent's AI Act record. */
export class AiAct extends Surface {
  /** The record. */
  get(agentId: string, options?: CallOptions): Promise<Result<"get_ai_act_op">> {
    return this.call("get_ai_act_op", { method: "GET", path: `/agents/${seg(agentId)}/ai-act` }, options);
  }

  /** Set the record (risk, Annex III area, intended purpose, provider, deployer). */
  put(agentId: string, input: Body<"put_ai_act_op">, options?: CallOptions): Promise<Result<"put_ai_act_op">> {
    return this.call("put_ai_act_op", { method: "PUT", path: `/agents/${seg(agentId)}/ai-act`, body: input }, options);
  }
}

/** `/incidents`: serious-incident records (AI Act Art. 73) and their reporting deadlines. */
export class Incidents extends Surface {
  /** Incidents, earliest deadline first, optionally open or closed only. */
  list(query: Query<"list_incidents_op"> = {}, options?: CallOptions): Promise<Result<"list_incidents_op">> {
    return this.call("list_incidents_op", { method: "GET", path: "/incidents", query }, options);
  }

  /** Open an incident record (its reporting clock starts at `aware_at`, default now). */
  open(input: Body<"open_incident_op">, options?: CallOptions): Promise<Result<"open_incident_op">> {
    return this.call("open_incident_op", { method: "POST", path: "/incidents", body: input }, options);
  }

  /** An incident with its deadline. */
  get(incidentId: string, options?: CallOptions): Promise<Result<"get_incident_op">> {
    return this.call("get_incident_op", { method: "GET", path: `/incidents/${seg(incidentId)}` }, options);
  }

  /** Change only the fields given (`reported_at` stops the clock). */
  update(incidentId: string, input: Body<"update_incident_op">, options?: CallOptions): Promise<Result<"update_incident_op">> {
    return this.call("update_incident_op", { method: "PATCH", path: `/incidents/${seg(incidentId)}`, body: input }, options);
  }

  /** Close an incident. */
  close(incidentId: string, input: Body<"close_incident_op"> = {}, options?: CallOptions): Promise<Result<"close_incident_op">> {
    return this.call("close_incident_op", { method: "POST", path: `/incidents/${seg(incidentId)}/close`, body: input }, options);
  }
}
