# METADATA
# title: Agent — tools, supervision, tracing and budgets
# description: >-
#   AI agents (Agent entities at the catalog point; workloads labelled
#   plinth.io/agent at deploy/admission; agent golden-path requests at
#   provision) call only catalogued tools and prompts, are supervised when
#   they act autonomously with write access in production, are traced, and
#   have a per-run token budget.
# custom:
#   points: [catalog, admission, deploy, provision, pr]
#   profile: agent
package plinth.agent

import rego.v1

import data.plinth.lib.catalog
import data.plinth.lib.k8s

# --- what is being checked -------------------------------------------------

is_entity if catalog.entity_kind == "agent"

is_workload if {
	k8s.is_workload
	not k8s.is_delete
	k8s.labels["plinth.io/agent"]
}

is_params if {
	catalog.is_params
	contains(catalog.template_name, "agent")
}

applies if is_entity

applies if is_workload

applies if is_params

subject := sprintf("Agent %q", [input.metadata.name]) if is_entity

subject := sprintf("%s %q (agent %s)", [k8s.kind, k8s.name, k8s.labels["plinth.io/agent"]]) if is_workload

subject := sprintf("golden-path request (%s)", [input.template]) if is_params

# The agent's spec: the entity itself, the resolved entity for a workload.
spec := input.spec if is_entity

spec := catalog.entity("agent", k8s.labels["plinth.io/agent"]).spec if is_workload

spec := catalog.params if is_params

# Where runtime settings (tracing, budget, approval) are declared.
annotations := catalog.entity_annotations if is_entity

annotations := k8s.annotations if is_workload

annotations_field := "metadata.annotations" if is_entity

annotations_field := "metadata.annotations (or the pod template's annotations)" if is_workload

tools contains t if {
	is_array(spec.tools)
	some t in spec.tools
	is_string(t)
}

tools contains t if {
	is_workload
	some t in k8s.list_value("plinth.io/tools")
}

tools contains t if {
	is_params
	some t in catalog.param_list("tools")
}

prompts contains p if {
	is_array(spec.prompts)
	some p in spec.prompts
	is_string(p)
}

prompts contains p if {
	is_workload
	some p in k8s.list_value("plinth.io/prompts")
}

prompts contains p if {
	is_params
	some p in catalog.param_list("prompts")
}

in_production if catalog.is_production

in_production if {
	is_entity
	input.spec.lifecycle == "production"
}

# A tool is write-capable when its entity says so.
write_tool(t) if {
	e := catalog.entity("api", t)
	e.metadata.annotations["plinth.io/tool-access"] == "write"
}

write_tool(t) if {
	e := catalog.entity("api", t)
	is_array(e.metadata.tags)
	"write" in e.metadata.tags
}

# METADATA
# title: Agent tools are catalogued APIs or Components
# description: An agent's blast radius is the set of tools it can call; every tool must be a known, owned API or Component so the graph shows what an agent can touch.
# custom:
#   id: PL-AGT-001
#   severity: high
#   controls: [NIST-AI-RMF-MAP-4.1, NIST-AI-RMF-GOVERN-6.1, ISO-42001-A.6.2.3, OWASP-LLM06]
deny_tool_uncatalogued contains msg if {
	applies
	some t in tools
	not catalog.ref_kind("api", t) in {"api", "component"}
	msg := sprintf("%s lists tool %q, which is a %s; tools must be API or Component entities (api:<name> or component:<name>)", [subject, t, catalog.ref_kind("api", t)])
}

deny_tool_uncatalogued contains msg if {
	applies
	catalog.live
	some t in tools
	catalog.ref_kind("api", t) in {"api", "component"}
	not catalog.exists("api", t)
	msg := sprintf("%s lists tool %q (%s), which is not in the catalogue; register the API or Component it calls before granting it to an agent", [subject, t, catalog.ref("api", t)])
}

# METADATA
# title: Autonomous agents with write tools need human approval in production
# description: An autonomous agent that can change systems must have a human in the loop for write actions unless it is minimal risk (EU AI Act human oversight).
# custom:
#   id: PL-AGT-002
#   severity: critical
#   controls: [EU-AI-Act-Art14, NIST-AI-RMF-MANAGE-2.4, ISO-42001-A.9.3, OWASP-LLM06]
deny_unsupervised_autonomy contains msg if {
	applies
	lower(spec.autonomy) == "autonomous"
	in_production
	not lower(object.get(spec, "riskTier", "unset")) == "minimal"
	writes := [t | some t in tools; write_tool(t)]
	count(writes) > 0
	not _approval_required
	msg := sprintf("%s is autonomous, runs in production and can call write-capable tools %v, but has no human approval step: set the annotation plinth.io/human-approval: required on %s (or lower autonomy to supervised)", [subject, writes, annotations_field])
}

_approval_required if annotations["plinth.io/human-approval"] == "required"

_approval_required if catalog.params.humanApproval == "required"

_approval_required if catalog.params.humanApproval == true

# METADATA
# title: Agent runs are traced
# description: Agent decision traces (OpenTelemetry GenAI spans) are the only record of what an agent did and why; required for incident review and audit.
# custom:
#   id: PL-AGT-003
#   severity: high
#   controls: [EU-AI-Act-Art12, NIST-AI-RMF-MEASURE-2.7, ISO-42001-A.6.2.8]
deny_tracing_disabled contains msg if {
	applies
	not is_params
	not annotations["plinth.io/tracing"] == "enabled"
	msg := sprintf("%s does not enable tracing: set the annotation plinth.io/tracing: enabled on %s and export OpenTelemetry GenAI spans", [subject, annotations_field])
}

# METADATA
# title: Agent runs have a token budget
# description: A per-run token budget stops runaway loops from burning unbounded tokens and money.
# custom:
#   id: PL-AGT-004
#   severity: medium
#   controls: [NIST-AI-RMF-MANAGE-2.1, OWASP-LLM10, FinOps-Budgeting]
deny_token_budget contains msg if {
	applies
	not is_params
	not annotations["plinth.io/token-budget-per-run"]
	msg := sprintf("%s has no per-run token budget: set the annotation plinth.io/token-budget-per-run on %s (at most %v tokens)", [subject, annotations_field, data.plinth.agents.max_token_budget_per_run])
}

deny_token_budget contains msg if {
	applies
	not is_params
	value := annotations["plinth.io/token-budget-per-run"]
	not _valid_budget(value)
	msg := sprintf("%s has plinth.io/token-budget-per-run %q; it must be a positive whole number of tokens, at most %v", [subject, value, data.plinth.agents.max_token_budget_per_run])
}

_valid_budget(v) if {
	regex.match(`^[1-9][0-9]*$`, sprintf("%v", [v]))
	to_number(v) <= data.plinth.agents.max_token_budget_per_run
}

# METADATA
# title: Agent prompts are catalogued
# description: Prompts steer agent behaviour as much as code does; they must be versioned Prompt entities with an owner.
# custom:
#   id: PL-AGT-005
#   severity: medium
#   controls: [NIST-AI-RMF-GOVERN-1.6, ISO-42001-A.6.2.3]
deny_prompt_uncatalogued contains msg if {
	applies
	some p in prompts
	catalog.ref_kind("prompt", p) != "prompt"
	msg := sprintf("%s lists prompt %q, which is not a Prompt reference; use prompt:<name>", [subject, p])
}

deny_prompt_uncatalogued contains msg if {
	applies
	catalog.live
	some p in prompts
	catalog.ref_kind("prompt", p) == "prompt"
	not catalog.exists("prompt", p)
	msg := sprintf("%s uses prompt %q (%s), which is not in the catalogue; register it as a Prompt entity", [subject, p, catalog.ref("prompt", p)])
}
