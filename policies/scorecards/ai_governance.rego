# METADATA
# title: AI governance
# description: >-
#   Governance evidence for models and agents. Bronze: risk tier and data
#   classification. Silver: model card and audit logging. Gold: evaluations.
# custom:
#   scorecard: ai-governance
#   kinds: [model, agent]
package plinth.scorecards.ai_governance

import rego.v1

import data.plinth.lib.catalog

annotations := catalog.entity_annotations

kind := catalog.entity_kind

risk_tiers := {"minimal", "limited", "high"}

classifications := {c | some c in data.plinth.classification_order}

links := input.metadata.links if {
	is_array(input.metadata.links)
} else := []

# METADATA
# title: Risk tier assessed
# description: spec.riskTier is one of minimal, limited or high (EU AI Act risk classes); prohibited fails.
# custom:
#   level: bronze
check_risk_tier contains "spec.riskTier is not set: assess the EU AI Act risk tier (minimal, limited, high)" if {
	not input.spec.riskTier
}

check_risk_tier contains reason if {
	tier := lower(input.spec.riskTier)
	not tier in risk_tiers
	reason := sprintf("spec.riskTier is %q; it must be minimal, limited or high (prohibited systems may not be operated)", [input.spec.riskTier])
}

# METADATA
# title: Data classification set
# description: spec.dataClassification is one of public, internal, confidential, restricted.
# custom:
#   level: bronze
check_data_classification contains reason if {
	not lower(input.spec.dataClassification) in classifications
	reason := sprintf("spec.dataClassification must be one of %v", [data.plinth.classification_order])
}

# METADATA
# title: Model card
# description: A Model links its model card (spec.modelCard); an Agent's catalogued models all have one.
# custom:
#   level: silver
check_model_card contains "spec.modelCard is not set: link the model card" if {
	kind == "model"
	not trim_space(input.spec.modelCard) != ""
}

check_model_card contains reason if {
	kind == "agent"
	is_array(input.spec.models)
	some m in input.spec.models
	e := catalog.entity("model", m)
	not trim_space(e.spec.modelCard) != ""
	reason := sprintf("model %s used by this agent has no model card", [catalog.ref("model", m)])
}

# METADATA
# title: Audit logging
# description: Inferences or agent actions are logged for audit (annotation plinth.io/audit-log enabled); high-risk entities need retention of at least 180 days.
# custom:
#   level: silver
check_audit_logging contains "audit logging is not enabled: set the annotation plinth.io/audit-log: enabled" if {
	not annotations["plinth.io/audit-log"] == "enabled"
}

check_audit_logging contains reason if {
	annotations["plinth.io/audit-log"] == "enabled"
	lower(input.spec.riskTier) == "high"
	not _retention_ok
	reason := sprintf("high-risk: set plinth.io/audit-log-retention-days to at least %v", [data.plinth.audit.min_retention_days])
}

_retention_ok if {
	regex.match(`^[0-9]+$`, sprintf("%v", [annotations["plinth.io/audit-log-retention-days"]]))
	to_number(annotations["plinth.io/audit-log-retention-days"]) >= data.plinth.audit.min_retention_days
}

# METADATA
# title: Evaluations
# description: Evaluation results are published (annotation plinth.io/evaluations, or a link titled evaluation).
# custom:
#   level: gold
check_evaluations contains "no evaluation results: set the annotation plinth.io/evaluations or add a link titled Evaluations" if {
	not trim_space(annotations["plinth.io/evaluations"]) != ""
	not _evaluation_link
}

_evaluation_link if {
	some l in links
	contains(lower(l.title), "evaluation")
}
