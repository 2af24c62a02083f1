package plinth.agent_test

import rego.v1

import data.plinth.agent

refund_api := {"kind": "API", "metadata": {"name": "refunds-api", "tags": ["payments", "write"]}, "spec": {"type": "openapi"}}

orders_api := {"kind": "API", "metadata": {"name": "orders-api", "annotations": {"plinth.io/tool-access": "read"}}, "spec": {"type": "openapi"}}

entities := {
	"api:default/refunds-api": refund_api,
	"api:default/orders-api": orders_api,
	"prompt:default/support-reply-draft": {"kind": "Prompt", "metadata": {"name": "support-reply-draft"}},
}

agent_entity(spec, annotations) := {
	"apiVersion": "plinth.dev/v1alpha1",
	"kind": "Agent",
	"metadata": {"name": "support-resolution-agent", "annotations": annotations},
	"spec": object.union({
		"type": "assistant", "owner": "team-applied-ai", "lifecycle": "production",
		"autonomy": "supervised", "riskTier": "limited",
		"tools": ["api:orders-api", "api:refunds-api"],
		"prompts": ["prompt:support-reply-draft"],
	}, spec),
	"plinth": {"point": "catalog", "catalog": true, "entities": entities},
}

good_annotations := {"plinth.io/tracing": "enabled", "plinth.io/token-budget-per-run": "60000"}

test_good_agent_passes if {
	a := agent_entity({}, good_annotations)
	count(agent.deny_tool_uncatalogued) == 0 with input as a
	count(agent.deny_unsupervised_autonomy) == 0 with input as a
	count(agent.deny_tracing_disabled) == 0 with input as a
	count(agent.deny_token_budget) == 0 with input as a
	count(agent.deny_prompt_uncatalogued) == 0 with input as a
}

test_unknown_tool_denied if {
	a := agent_entity({"tools": ["api:orders-api", "api:shipping-api"]}, good_annotations)
	some msg in agent.deny_tool_uncatalogued with input as a
	contains(msg, "api:default/shipping-api")
}

test_tool_wrong_kind_denied if {
	a := agent_entity({"tools": ["resource:orders-db"]}, good_annotations)
	count(agent.deny_tool_uncatalogued) == 1 with input as a
}

test_unknown_tool_not_checked_offline if {
	a := object.union(agent_entity({"tools": ["api:shipping-api"]}, good_annotations), {"plinth": {"catalog": false, "entities": {}}})
	count(agent.deny_tool_uncatalogued) == 0 with input as a
}

test_autonomous_write_agent_without_approval_denied if {
	a := agent_entity({"autonomy": "autonomous"}, good_annotations)
	some msg in agent.deny_unsupervised_autonomy with input as a
	contains(msg, "api:refunds-api")
}

test_autonomous_write_agent_with_approval_passes if {
	a := agent_entity({"autonomy": "autonomous"}, object.union(good_annotations, {"plinth.io/human-approval": "required"}))
	count(agent.deny_unsupervised_autonomy) == 0 with input as a
}

test_autonomous_minimal_risk_exempt if {
	a := agent_entity({"autonomy": "autonomous", "riskTier": "minimal"}, good_annotations)
	count(agent.deny_unsupervised_autonomy) == 0 with input as a
}

test_autonomous_read_only_exempt if {
	a := agent_entity({"autonomy": "autonomous", "tools": ["api:orders-api"]}, good_annotations)
	count(agent.deny_unsupervised_autonomy) == 0 with input as a
}

test_tracing_missing_denied if {
	a := agent_entity({}, {"plinth.io/token-budget-per-run": "60000"})
	count(agent.deny_tracing_disabled) == 1 with input as a
}

test_token_budget_missing_denied if {
	a := agent_entity({}, {"plinth.io/tracing": "enabled"})
	count(agent.deny_token_budget) == 1 with input as a
}

test_token_budget_too_high_denied if {
	a := agent_entity({}, {"plinth.io/tracing": "enabled", "plinth.io/token-budget-per-run": "99999999"})
	count(agent.deny_token_budget) == 1 with input as a
}

test_unknown_prompt_denied if {
	a := agent_entity({"prompts": ["prompt:support-refund-v2"]}, good_annotations)
	count(agent.deny_prompt_uncatalogued) == 1 with input as a
}

test_workload_uses_resolved_agent if {
	ent := agent_entity({"autonomy": "autonomous"}, {})
	d := {
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": {"name": "support-agent", "labels": {"plinth.io/agent": "support-resolution-agent"}, "annotations": good_annotations},
		"spec": {"template": {"spec": {"containers": []}}},
		"plinth": {"point": "deploy", "environment": "production", "catalog": true, "entities": object.union(entities, {"agent:default/support-resolution-agent": object.remove(ent, ["plinth"])})},
	}
	count(agent.deny_unsupervised_autonomy) == 1 with input as d
	count(agent.deny_tracing_disabled) == 0 with input as d
}

test_workload_tracing_missing_denied if {
	d := {"kind": "Deployment", "metadata": {"name": "a", "labels": {"plinth.io/agent": "x"}}, "spec": {"template": {"spec": {"containers": []}}}}
	count(agent.deny_tracing_disabled) == 1 with input as d
}

test_params_tools_checked if {
	p := {"template": "template:default/ai-agent", "parameters": {"tools": ["api:nope"], "prompts": "prompt:support-reply-draft"}, "plinth": {"catalog": true, "entities": entities}}
	count(agent.deny_tool_uncatalogued) == 1 with input as p
	count(agent.deny_prompt_uncatalogued) == 0 with input as p
}
