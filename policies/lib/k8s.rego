# METADATA
# title: Kubernetes helpers
# description: >-
#   Shared helpers for policies over Kubernetes manifests. The object under
#   review is `input.review.object` at the admission point (Gatekeeper shape)
#   and `input` itself everywhere else (deploy, pr, offline checks).
package plinth.lib.k8s

import rego.v1

# The Kubernetes object being checked.
object := input.review.object if {
	input.review.object != null
} else := input

kind := object.kind

name := object.metadata.name

namespace := object.metadata.namespace if {
	object.metadata.namespace
} else := input.review.namespace

# Kinds that run containers and where their pod templates live.
workload_kinds := {
	"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
	"InferenceService", "PyTorchJob",
}

is_workload if kind in workload_kinds

# Pod specs of the object, each with its field path and replica count:
# {"path": "spec.template.spec", "spec": {...}, "replicas": n, "labels": {...}, "annotations": {...}}.
pod_specs contains {"path": "spec", "spec": object.spec, "replicas": 1, "labels": _meta(object, "labels"), "annotations": _meta(object, "annotations")} if {
	kind == "Pod"
}

pod_specs contains {"path": "spec.template.spec", "spec": t.spec, "replicas": r, "labels": _meta(t, "labels"), "annotations": _meta(t, "annotations")} if {
	kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
	t := object.spec.template
	r := _default(object.spec, "replicas", 1)
}

pod_specs contains {"path": "spec.template.spec", "spec": t.spec, "replicas": r, "labels": _meta(t, "labels"), "annotations": _meta(t, "annotations")} if {
	kind == "Job"
	t := object.spec.template
	r := _default(object.spec, "parallelism", 1)
}

pod_specs contains {"path": "spec.jobTemplate.spec.template.spec", "spec": t.spec, "replicas": r, "labels": _meta(t, "labels"), "annotations": _meta(t, "annotations")} if {
	kind == "CronJob"
	t := object.spec.jobTemplate.spec.template
	r := _default(object.spec.jobTemplate.spec, "parallelism", 1)
}

# KServe: the predictor (and transformer) are inlined pod specs.
pod_specs contains {"path": sprintf("spec.%s", [component]), "spec": s, "replicas": 1, "labels": _meta(s, "labels"), "annotations": _meta(s, "annotations")} if {
	kind == "InferenceService"
	some component in ["predictor", "transformer", "explainer"]
	s := object.spec[component]
}

pod_specs contains {"path": sprintf("spec.pytorchReplicaSpecs.%s.template.spec", [role]), "spec": rs.template.spec, "replicas": r, "labels": _meta(rs.template, "labels"), "annotations": _meta(rs.template, "annotations")} if {
	kind == "PyTorchJob"
	some role, rs in object.spec.pytorchReplicaSpecs
	r := _default(rs, "replicas", 1)
}

# Every container with where it is: {"name", "path", "container", "init", "replicas", "pod": pod spec entry}.
located_containers contains {"name": c.name, "path": sprintf("%s.%s[%d]", [ps.path, field, i]), "container": c, "init": field == "initContainers", "replicas": ps.replicas, "pod": ps.spec} if {
	some ps in pod_specs
	some field in ["containers", "initContainers"]
	some i, c in ps.spec[field]
}

# KServe's `predictor.model` is a container whose image comes from the serving runtime.
located_containers contains {"name": _default(m, "name", "kserve-container"), "path": "spec.predictor.model", "container": m, "init": false, "replicas": 1, "pod": object.spec.predictor} if {
	kind == "InferenceService"
	m := object.spec.predictor.model
}

# Containers and init containers of every pod spec.
containers contains lc.container if some lc in located_containers

# Labels of the object merged with its pod templates' labels (the object's win).
labels := {k: v |
	some k, v in _all_labels
}

_all_labels[k] := v if {
	some k, v in _meta(object, "labels")
}

_all_labels[k] := v if {
	some ps in pod_specs
	some k, v in ps.labels
	not _meta(object, "labels")[k]
}

annotations := {k: v |
	some k, v in _all_annotations
}

_all_annotations[k] := v if {
	some k, v in _meta(object, "annotations")
}

_all_annotations[k] := v if {
	some ps in pod_specs
	some k, v in ps.annotations
	not _meta(object, "annotations")[k]
}

# label(key) / annotation(key): a value, looked up on the object then its pod templates.
label(key) := labels[key]

annotation(key) := annotations[key]

# A label or an annotation (labels first).
meta_value(key) := labels[key]

meta_value(key) := annotations[key] if not labels[key]

# Comma-separated list annotation or label -> array of trimmed non-empty items.
list_value(key) := [item |
	some raw in split(meta_value(key), ",")
	item := trim_space(raw)
	item != ""
]

# Count of a resource (e.g. "nvidia.com/gpu") in a container's limits, else its requests.
container_resource(c, res) := to_number(c.resources.limits[res])

container_resource(c, res) := to_number(c.resources.requests[res]) if not c.resources.limits[res]

# GPUs (nvidia.com/gpu) per workload: sum over containers x replicas.
gpu_resource := "nvidia.com/gpu"

gpu_count := sum([n |
	some lc in located_containers
	n := container_resource(lc.container, gpu_resource) * lc.replicas
])

requests_gpus if gpu_count > 0

# Image helpers.
image_has_digest(image) if contains(image, "@")

# The tag of an image reference, if any ("" when absent).
image_tag(image) := tag if {
	not image_has_digest(image)
	parts := split(image, "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	segs := split(last, ":")
	tag := segs[count(segs) - 1]
} else := ""

is_delete if input.review.operation == "DELETE"

_meta(obj, field) := obj.metadata[field] if {
	is_object(obj.metadata[field])
} else := {}

_default(obj, key, fallback) := obj[key] if {
	obj[key] != null
} else := fallback
