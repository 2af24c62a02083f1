# METADATA
# title: Training — data governance
# description: >-
#   Training data must be catalogued, stay in its residency region, and
#   personal data needs confidential-or-higher handling and a declared purpose.
#   Datasets come from the annotation plinth.io/datasets (or the parameter
#   `datasets`) and are resolved by Plinth into input.plinth.entities.
# custom:
#   points: [admission, deploy, provision, pr]
#   profile: training
package plinth.training.data

import rego.v1

import data.plinth.lib.catalog
import data.plinth.lib.training

# Declared datasets with their resolved entity (when Plinth resolved it).
resolved contains {"name": name, "ref": catalog.ref("dataset", name), "entity": e} if {
	training.is_training
	some name in training.datasets
	e := catalog.entity("dataset", name)
}

# METADATA
# title: Training datasets are registered
# description: Data lineage (EU AI Act Art. 10) starts with knowing which catalogued datasets a model was trained on.
# custom:
#   id: PL-TRN-010
#   severity: high
#   controls: [EU-AI-Act-Art10, NIST-AI-RMF-MAP-4.1, ISO-42001-A.7.2]
deny_dataset_unregistered contains msg if {
	training.is_training
	catalog.live
	some name in training.datasets
	not catalog.exists("dataset", name)
	msg := sprintf("%s uses dataset %q (%s), which is not registered in the catalogue; register it as a Dataset entity with its classification, residency and PII flag", [training.subject, name, catalog.ref("dataset", name)])
}

# METADATA
# title: Dataset residency matches the compute region
# description: Data with a residency constraint (e.g. EU-only customer data) must not be processed in another region, even transiently on a GPU node.
# custom:
#   id: PL-TRN-011
#   severity: critical
#   controls: [GDPR-Art44, EU-AI-Act-Art10, ISO-27001-A.5.34]
deny_dataset_residency contains msg if {
	some d in resolved
	count(object.get(d.entity, ["spec", "residency"], [])) > 0
	not training.region
	msg := sprintf("%s uses dataset %s, which must stay in %v, but declares no compute region: set the annotation plinth.io/region (or the parameter region)", [training.subject, d.ref, d.entity.spec.residency])
}

deny_dataset_residency contains msg if {
	some d in resolved
	residency := object.get(d.entity, ["spec", "residency"], [])
	count(residency) > 0
	region := training.region
	not region in residency
	msg := {
		"msg": sprintf("%s runs in region %q but dataset %s may only be processed in %v; run the job in an allowed region", [training.subject, region, d.ref, residency]),
		"details": {"dataset": d.ref, "region": region, "residency": residency},
	}
}

# METADATA
# title: PII datasets need confidential handling
# description: Training on personal data requires the workload to be handled as confidential or restricted (isolated nodes, encrypted storage, access logging).
# custom:
#   id: PL-TRN-012
#   severity: high
#   controls: [GDPR-Art32, EU-AI-Act-Art10, ISO-27701-6.5.3, SOC2-C1.1]
deny_pii_classification contains msg if {
	some d in resolved
	d.entity.spec.containsPii == true
	not _confidential_or_higher
	msg := sprintf("%s trains on dataset %s, which contains PII, but its data classification is %q: set plinth.io/data-classification (label, annotation or parameter dataClassification) to confidential or restricted", [training.subject, d.ref, _classification])
}

_classification := training.classification

_classification := "unset" if not training.classification

_confidential_or_higher if {
	catalog.classification_rank(training.classification) >= catalog.classification_rank("confidential")
}

# METADATA
# title: PII datasets need a declared purpose
# description: GDPR purpose limitation - using personal data to train a model must be tied to a documented purpose.
# custom:
#   id: PL-TRN-013
#   severity: high
#   controls: [GDPR-Art5-1b, EU-AI-Act-Art10, ISO-27701-7.2.1]
deny_pii_purpose contains msg if {
	some d in resolved
	d.entity.spec.containsPii == true
	not _has_purpose
	msg := sprintf("%s trains on dataset %s, which contains PII, without a declared purpose: add the annotation plinth.io/purpose (or the parameter purpose) describing why the personal data is needed", [training.subject, d.ref])
}

_has_purpose if trim_space(training.purpose) != ""
