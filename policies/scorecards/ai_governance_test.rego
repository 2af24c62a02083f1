package plinth.scorecards.ai_governance_test

import rego.v1

import data.plinth.scorecards.ai_governance as ai

model := {
	"apiVersion": "plinth.dev/v1alpha1",
	"kind": "Model",
	"metadata": {
		"name": "fraud-scoring-xgb",
		"annotations": {"plinth.io/audit-log": "enabled", "plinth.io/audit-log-retention-days": "365", "plinth.io/evaluations": "https://mlflow.northwindlabs.com/#/experiments/42"},
	},
	"spec": {"type": "classifier", "riskTier": "high", "dataClassification": "restricted", "modelCard": "https://mlflow.northwindlabs.com/#/models/fraud-scoring-xgb"},
}

bare_model := {"apiVersion": "plinth.dev/v1alpha1", "kind": "Model", "metadata": {"name": "m"}, "spec": {"type": "llm"}}

test_governed_model_passes_all if {
	count(ai.check_risk_tier) == 0 with input as model
	count(ai.check_data_classification) == 0 with input as model
	count(ai.check_model_card) == 0 with input as model
	count(ai.check_audit_logging) == 0 with input as model
	count(ai.check_evaluations) == 0 with input as model
}

test_risk_tier_missing_fails if {
	count(ai.check_risk_tier) == 1 with input as bare_model
}

test_prohibited_risk_tier_fails if {
	count(ai.check_risk_tier) == 1 with input as object.union(model, {"spec": {"riskTier": "prohibited"}})
}

test_data_classification_missing_fails if {
	count(ai.check_data_classification) == 1 with input as bare_model
}

test_model_card_missing_fails if {
	count(ai.check_model_card) == 1 with input as bare_model
}

test_agent_model_without_card_fails if {
	a := {
		"apiVersion": "plinth.dev/v1alpha1", "kind": "Agent", "metadata": {"name": "a"},
		"spec": {"models": ["model:m"]},
		"plinth": {"catalog": true, "entities": {"model:default/m": {"kind": "Model", "spec": {}}}},
	}
	count(ai.check_model_card) == 1 with input as a
}

test_audit_logging_missing_fails if {
	count(ai.check_audit_logging) == 1 with input as bare_model
}

test_high_risk_short_retention_fails if {
	m := object.union(model, {"metadata": {"annotations": {"plinth.io/audit-log-retention-days": "90"}}})
	count(ai.check_audit_logging) == 1 with input as m
}

test_evaluations_missing_fails if {
	count(ai.check_evaluations) == 1 with input as bare_model
}

test_evaluation_link_accepted if {
	m := object.union(bare_model, {"metadata": {"links": [{"url": "https://x", "title": "Offline evaluation report"}]}})
	count(ai.check_evaluations) == 0 with input as m
}
