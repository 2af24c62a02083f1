# METADATA
# title: Inference workload helpers
# description: >-
#   A single view of a model-serving workload: a KServe InferenceService, any
#   workload labelled plinth.io/model, or golden-path parameters for a
#   model-serving endpoint.
package plinth.lib.inference

import rego.v1

import data.plinth.lib.catalog
import data.plinth.lib.k8s

is_inference if {
	k8s.is_workload
	not k8s.is_delete
	_k8s_inference
}

is_inference if {
	catalog.is_params
	_params_inference
}

_k8s_inference if k8s.kind == "InferenceService"

_k8s_inference if k8s.labels["plinth.io/model"]

_k8s_inference if k8s.labels["plinth.io/profile"] == "inference"

_k8s_inference if catalog.context.profile == "inference"

_params_inference if catalog.context.profile == "inference"

_params_inference if contains(catalog.template_name, "model-serving")

_params_inference if contains(catalog.template_name, "inference")

subject := sprintf("%s %q", [k8s.kind, k8s.name]) if k8s.is_workload

subject := sprintf("golden-path request (%s)", [input.template]) if catalog.is_params

model_field := "the label plinth.io/model" if k8s.is_workload

model_field := "the parameter model" if catalog.is_params

model := k8s.labels["plinth.io/model"] if k8s.is_workload

model := catalog.params.model if catalog.is_params

model_ref := catalog.ref("model", model)

model_entity := catalog.entity("model", model)

region := k8s.meta_value("plinth.io/region") if k8s.is_workload

region := r if {
	k8s.is_workload
	not k8s.meta_value("plinth.io/region")
	some ps in k8s.pod_specs
	r := ps.spec.nodeSelector["topology.kubernetes.io/region"]
}

region := catalog.params.region if catalog.is_params

declared_classification := k8s.meta_value("plinth.io/data-classification") if k8s.is_workload

declared_classification := catalog.params.dataClassification if catalog.is_params

# Classifications that apply: the model's and the workload's own.
classifications contains lower(model_entity.spec.dataClassification)

classifications contains lower(declared_classification)

# The highest classification that applies.
classification := c if {
	some c in classifications
	rank := catalog.classification_rank(c)
	every other in classifications {
		catalog.classification_rank(other) <= rank
	}
}

audit_field := "annotation" if k8s.is_workload

audit_field := "parameter" if catalog.is_params

audit_log := k8s.annotations["plinth.io/audit-log"] if k8s.is_workload

audit_log := catalog.params.auditLog if catalog.is_params

audit_retention := k8s.annotations["plinth.io/audit-log-retention-days"] if k8s.is_workload

audit_retention := catalog.params.auditLogRetentionDays if catalog.is_params
