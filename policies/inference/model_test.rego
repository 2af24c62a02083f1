package plinth.inference.model_test

import rego.v1

import data.plinth.inference.model

llama := {"apiVersion": "plinth.dev/v1alpha1", "kind": "Model", "metadata": {"name": "llama-3-1-8b-support"}, "spec": {
	"type": "llm", "owner": "team-applied-ai", "lifecycle": "production", "license": "llama3",
	"riskTier": "limited", "dataClassification": "confidential",
	"modelCard": "https://mlflow.northwindlabs.com/#/models/llama-3-1-8b-support",
}}

entity_with(spec) := object.union(llama, {"spec": spec})

ctx(m, env) := {"point": "deploy", "environment": env, "catalog": true, "entities": {"model:default/llama-3-1-8b-support": m}}

isvc(annotations, m, env) := {
	"apiVersion": "serving.kserve.io/v1beta1",
	"kind": "InferenceService",
	"metadata": {"name": "support-llm", "labels": {"plinth.io/model": "llama-3-1-8b-support"}, "annotations": annotations},
	"spec": {"predictor": {"model": {"modelFormat": {"name": "huggingface"}}}},
	"plinth": ctx(m, env),
}

audit := {"plinth.io/audit-log": "enabled", "plinth.io/audit-log-retention-days": "365"}

test_good_model_passes if {
	i := isvc({}, llama, "production")
	count(model.deny_model_missing) == 0 with input as i
	count(model.deny_model_unregistered) == 0 with input as i
	count(model.deny_model_lifecycle) == 0 with input as i
	count(model.deny_model_card) == 0 with input as i
	count(model.deny_model_license) == 0 with input as i
	count(model.deny_prohibited_model) == 0 with input as i
	count(model.deny_audit_logging) == 0 with input as i
}

test_model_label_missing_denied if {
	i := {"kind": "InferenceService", "metadata": {"name": "x"}, "spec": {"predictor": {}}}
	count(model.deny_model_missing) == 1 with input as i
}

test_params_model_missing_denied if {
	count(model.deny_model_missing) == 1 with input as {"template": "template:default/model-serving-endpoint", "parameters": {"owner": "team-search"}}
}

test_unregistered_model_denied if {
	i := object.union(isvc({}, llama, "production"), {"plinth": {"entities": {"model:default/llama-3-1-8b-support": null}}})
	j := object.union(i, {"metadata": {"labels": {"plinth.io/model": "llama-4-unknown"}}})
	some msg in model.deny_model_unregistered with input as j
	contains(msg, "model:default/llama-4-unknown")
}

test_unregistered_not_checked_offline if {
	i := object.union(isvc({}, llama, "production"), {"plinth": {"catalog": false, "entities": {}}})
	count(model.deny_model_unregistered) == 0 with input as i
}

test_experimental_model_in_production_denied if {
	m := entity_with({"lifecycle": "experimental"})
	count(model.deny_model_lifecycle) == 1 with input as isvc({}, m, "production")
	count(model.deny_model_lifecycle) == 0 with input as isvc({}, m, "staging")
}

test_model_card_missing_denied if {
	m := object.union(llama, {"spec": {"modelCard": ""}})
	count(model.deny_model_card) == 1 with input as isvc({}, m, "production")
}

test_unapproved_license_denied if {
	m := entity_with({"license": "cc-by-nc-4.0"})
	count(model.deny_model_license) == 1 with input as isvc({}, m, "production")
}

test_prohibited_model_denied if {
	m := entity_with({"riskTier": "prohibited"})
	count(model.deny_prohibited_model) == 1 with input as isvc({}, m, "production")
}

test_high_risk_with_audit_passes if {
	m := entity_with({"riskTier": "high"})
	count(model.deny_audit_logging) == 0 with input as isvc(audit, m, "production")
}

test_high_risk_without_audit_denied if {
	m := entity_with({"riskTier": "high"})
	count(model.deny_audit_logging) == 1 with input as isvc({}, m, "production")
}

test_high_risk_short_retention_denied if {
	m := entity_with({"riskTier": "high"})
	a := {"plinth.io/audit-log": "enabled", "plinth.io/audit-log-retention-days": "30"}
	some msg in model.deny_audit_logging with input as isvc(a, m, "production")
	contains(msg, "30 days")
}
