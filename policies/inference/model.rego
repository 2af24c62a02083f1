# METADATA
# title: Inference — model governance
# description: >-
#   What may be served: a registered Model entity (production lifecycle in
#   production), with a model card and an approved licence; no prohibited
#   models; high-risk models only with audit logging of inferences.
# custom:
#   points: [admission, deploy, provision, pr]
#   profile: inference
package plinth.inference.model

import rego.v1

import data.plinth.lib.catalog
import data.plinth.lib.inference

entity := inference.model_entity

# METADATA
# title: Served model is declared
# description: Without a model reference no serving workload can be tied to its Model entity, owner, risk tier or cost.
# custom:
#   id: PL-INF-001
#   severity: high
#   controls: [EU-AI-Act-Art12, NIST-AI-RMF-MAP-4.1, ISO-42001-A.6.2.2]
deny_model_missing contains msg if {
	inference.is_inference
	not inference.model
	msg := sprintf("%s serves a model but does not say which: set %s to the catalogue Model name (e.g. llama-3-1-8b-support)", [inference.subject, inference.model_field])
}

# METADATA
# title: Served model is registered
# description: Only models in the model registry/catalogue have an accountable owner, risk assessment and lineage.
# custom:
#   id: PL-INF-002
#   severity: high
#   controls: [EU-AI-Act-Art11, NIST-AI-RMF-GOVERN-1.6, ISO-42001-A.6.2.2]
deny_model_unregistered contains msg if {
	inference.is_inference
	catalog.live
	inference.model
	not entity
	msg := sprintf("%s serves model %q (%s), which is not a registered Model entity; register it in the catalogue (kind: Model) before serving it", [inference.subject, inference.model, inference.model_ref])
}

# METADATA
# title: Production serves production models
# description: Experimental models have not passed the evaluation and approval gates that production traffic requires.
# custom:
#   id: PL-INF-003
#   severity: high
#   controls: [NIST-AI-RMF-MANAGE-1.1, ISO-42001-A.6.2.5, SOC2-CC8.1]
deny_model_lifecycle contains msg if {
	inference.is_inference
	catalog.is_production
	entity
	lifecycle := object.get(entity, ["spec", "lifecycle"], "unset")
	lifecycle != "production"
	msg := sprintf("%s serves model %s in production but the model's lifecycle is %q; promote the model to lifecycle: production first (or deploy to staging)", [inference.subject, inference.model_ref, lifecycle])
}

# METADATA
# title: Served model has a model card
# description: A model card documents intended use, limitations and evaluation results for users and auditors (EU AI Act technical documentation).
# custom:
#   id: PL-INF-004
#   severity: medium
#   controls: [EU-AI-Act-Art11, EU-AI-Act-Art13, NIST-AI-RMF-MAP-2.2, ISO-42001-A.6.2.7]
deny_model_card contains msg if {
	inference.is_inference
	entity
	not _has_model_card
	msg := sprintf("model %s served by %s has no model card: set spec.modelCard on the Model entity to the URL of its card", [inference.model_ref, inference.subject])
}

_has_model_card if trim_space(entity.spec.modelCard) != ""

# METADATA
# title: Served model has an approved licence
# description: Serving a model under an unreviewed licence can breach its terms (non-commercial, research-only, attribution).
# custom:
#   id: PL-INF-005
#   severity: high
#   controls: [NIST-AI-RMF-GOVERN-6.1, ISO-42001-A.10.3]
deny_model_license contains msg if {
	inference.is_inference
	entity
	license := object.get(entity, ["spec", "license"], "none")
	not lower(license) in {lower(l) | some l in data.plinth.models.allowed_licenses}
	msg := sprintf("model %s served by %s has licence %q, which is not approved; approved licences are %v (ask legal to review and add it to data.plinth.models.allowed_licenses)", [inference.model_ref, inference.subject, license, data.plinth.models.allowed_licenses])
}

# METADATA
# title: No prohibited-risk models
# description: AI practices classed as unacceptable risk under the EU AI Act must never be deployed.
# custom:
#   id: PL-INF-006
#   severity: critical
#   controls: [EU-AI-Act-Art5, NIST-AI-RMF-GOVERN-1.1]
deny_prohibited_model contains msg if {
	inference.is_inference
	lower(entity.spec.riskTier) == "prohibited"
	msg := sprintf("model %s has riskTier: prohibited and may not be served (%s); remove the deployment", [inference.model_ref, inference.subject])
}

# METADATA
# title: High-risk models log inferences for 180 days
# description: High-risk AI systems must automatically record events (logs) and keep them long enough for post-market monitoring and incident investigation.
# custom:
#   id: PL-INF-007
#   severity: high
#   controls: [EU-AI-Act-Art12, EU-AI-Act-Art19, NIST-AI-RMF-MEASURE-2.7, ISO-42001-A.6.2.8]
deny_audit_logging contains msg if {
	inference.is_inference
	lower(entity.spec.riskTier) == "high"
	not inference.audit_log == "enabled"
	msg := sprintf("model %s is high-risk but %s does not enable inference audit logging: set the %s plinth.io/audit-log: enabled with plinth.io/audit-log-retention-days >= %v", [inference.model_ref, inference.subject, inference.audit_field, data.plinth.audit.min_retention_days])
}

deny_audit_logging contains msg if {
	inference.is_inference
	lower(entity.spec.riskTier) == "high"
	inference.audit_log == "enabled"
	not _retention_ok
	msg := sprintf("model %s is high-risk and %s keeps inference audit logs for %v days; set plinth.io/audit-log-retention-days to at least %v", [inference.model_ref, inference.subject, _retention, data.plinth.audit.min_retention_days])
}

_retention := inference.audit_retention

_retention := "unset" if not inference.audit_retention

_retention_ok if {
	regex.match(`^[0-9]+$`, sprintf("%v", [inference.audit_retention]))
	to_number(inference.audit_retention) >= data.plinth.audit.min_retention_days
}
