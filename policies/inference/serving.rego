# METADATA
# title: Inference — serving configuration
# description: >-
#   How a model is served: token cost attributable to a team and cost centre,
#   served from a region allowed for its data classification, GPU limits set,
#   and bounded autoscaling.
# custom:
#   points: [admission, deploy, provision, pr]
#   profile: inference
package plinth.inference.serving

import rego.v1

import data.plinth.lib.catalog
import data.plinth.lib.inference
import data.plinth.lib.k8s

attribution_labels := ["plinth.io/owner", "plinth.io/cost-centre", "plinth.io/model"]

# Labels the serving pods carry, with where they are set: KServe copies the
# InferenceService's labels to its pods; other workloads need them on each
# pod template.
pod_label_sets contains {"path": "metadata.labels", "labels": _labels_of(k8s.object)} if k8s.kind == "InferenceService"

pod_label_sets contains {"path": sprintf("%s.metadata.labels", [trim_suffix(ps.path, ".spec")]), "labels": ps.labels} if {
	k8s.kind != "InferenceService"
	some ps in k8s.pod_specs
}

_labels_of(obj) := obj.metadata.labels if {
	is_object(obj.metadata.labels)
} else := {}

# METADATA
# title: Token cost is attributable
# description: Token and GPU spend is attributed from labels on the serving pods; without owner, cost centre and model labels the spend cannot be charged back.
# custom:
#   id: PL-INF-010
#   severity: medium
#   controls: [NIST-AI-RMF-GOVERN-1.1, SOC2-CC1.3, FinOps-Allocation]
deny_cost_attribution contains msg if {
	inference.is_inference
	some set in pod_label_sets
	missing := [l |
		some l in attribution_labels
		not _non_empty(set.labels, l)
	]
	count(missing) > 0
	msg := sprintf("%s: serving pods lack the cost-attribution labels %v; add them to %s so token and GPU cost can be charged to a team", [inference.subject, missing, set.path])
}

_non_empty(labels, key) if labels[key] != ""

# METADATA
# title: Serving region allowed for the data classification
# description: Prompts and completions carry the data the model handles; confidential and restricted data may only be processed in approved regions.
# custom:
#   id: PL-INF-011
#   severity: high
#   controls: [GDPR-Art44, ISO-27001-A.5.34, SOC2-C1.1]
deny_serving_region contains msg if {
	inference.is_inference
	c := inference.classification
	catalog.classification_rank(c) >= catalog.classification_rank("confidential")
	not inference.region
	msg := sprintf("%s handles %s data but declares no serving region: set plinth.io/region (annotation, or the parameter region) to one of %v", [inference.subject, c, data.plinth.regions[c]])
}

deny_serving_region contains msg if {
	inference.is_inference
	c := inference.classification
	region := inference.region
	not region in data.plinth.regions[c]
	msg := {
		"msg": sprintf("%s serves %s data from region %q, which is not allowed for that classification; use one of %v", [inference.subject, c, region, data.plinth.regions[c]]),
		"details": {"classification": c, "region": region, "allowed": data.plinth.regions[c]},
	}
}

# METADATA
# title: GPU limits are set
# description: Extended resources like GPUs are only guaranteed through limits; a request without a limit is rejected or shares GPUs unpredictably.
# custom:
#   id: PL-INF-012
#   severity: medium
#   controls: [CIS-K8S-5.7.1, NIST-AI-RMF-MANAGE-2.1]
deny_gpu_limits contains msg if {
	inference.is_inference
	some lc in k8s.located_containers
	lc.container.resources.requests[k8s.gpu_resource]
	not lc.container.resources.limits[k8s.gpu_resource]
	msg := sprintf("container %q requests GPUs but sets no GPU limit: set %s.resources.limits[\"nvidia.com/gpu\"] equal to the request", [lc.name, lc.path])
}

# METADATA
# title: Autoscaling is bounded
# description: Unbounded scale-out of GPU-backed endpoints is the most common cause of runaway inference cost; a floor keeps latency SLOs.
# custom:
#   id: PL-INF-013
#   severity: medium
#   controls: [NIST-AI-RMF-MANAGE-2.1, SOC2-A1.1, FinOps-Budgeting]
deny_autoscaling contains msg if {
	inference.is_inference
	k8s.kind == "InferenceService"
	some field in ["minReplicas", "maxReplicas"]
	not is_number(k8s.object.spec.predictor[field])
	msg := sprintf("%s has no spec.predictor.%s: set both minReplicas and maxReplicas (maxReplicas at most %v)", [inference.subject, field, data.plinth.inference.max_replicas])
}

deny_autoscaling contains msg if {
	inference.is_inference
	k8s.kind == "InferenceService"
	p := k8s.object.spec.predictor
	p.maxReplicas < p.minReplicas
	msg := sprintf("%s has spec.predictor.maxReplicas (%v) below minReplicas (%v)", [inference.subject, p.maxReplicas, p.minReplicas])
}

deny_autoscaling contains msg if {
	inference.is_inference
	k8s.kind == "InferenceService"
	max := k8s.object.spec.predictor.maxReplicas
	max > data.plinth.inference.max_replicas
	msg := sprintf("%s may scale to %v replicas (spec.predictor.maxReplicas); the platform limit is %v", [inference.subject, max, data.plinth.inference.max_replicas])
}

# METADATA
# title: Serving Deployments name their autoscaler
# description: A model served from a plain Deployment should be scaled by an HPA or KEDA ScaledObject with explicit bounds rather than fixed replicas.
# custom:
#   id: PL-INF-014
#   severity: low
#   controls: [NIST-AI-RMF-MANAGE-2.1, SOC2-A1.1]
warn_autoscaler contains msg if {
	inference.is_inference
	k8s.kind in {"Deployment", "StatefulSet"}
	not k8s.annotations["plinth.io/autoscaler"]
	msg := sprintf("%s serves a model without a declared autoscaler: create a HorizontalPodAutoscaler (or KEDA ScaledObject) with minReplicas/maxReplicas and name it in the annotation plinth.io/autoscaler", [inference.subject])
}
