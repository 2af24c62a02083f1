# METADATA
# title: Training workload helpers
# description: >-
#   A single view of a training workload, whether it is a Kubernetes manifest
#   (Job, CronJob, PyTorchJob, Pod, ...) or golden-path parameters for a GPU
#   training environment.
package plinth.lib.training

import rego.v1

import data.plinth.lib.catalog
import data.plinth.lib.k8s

run_to_completion_kinds := {"Job", "CronJob", "PyTorchJob", "Pod"}

# Is the input a training workload?
is_training if {
	k8s.is_workload
	not k8s.is_delete
	_k8s_training
}

is_training if {
	catalog.is_params
	_params_training
}

_k8s_training if k8s.labels["plinth.io/profile"] == "training"

_k8s_training if catalog.context.profile == "training"

_k8s_training if {
	k8s.kind in {"Job", "CronJob", "PyTorchJob"}
	k8s.requests_gpus
}

_params_training if catalog.context.profile == "training"

_params_training if contains(catalog.template_name, "training")

# Human-readable subject for messages.
subject := sprintf("%s %q", [k8s.kind, k8s.name]) if k8s.is_workload

subject := sprintf("golden-path request (%s)", [input.template]) if catalog.is_params

owner := k8s.labels["plinth.io/owner"] if k8s.is_workload

owner := catalog.params.owner if catalog.is_params

team := catalog.ref_name("group", owner)

gpu_count := k8s.gpu_count if k8s.is_workload

gpu_count := to_number(catalog.params.gpuCount) * _param_nodes if catalog.is_params

_param_nodes := to_number(catalog.params.nodes) if catalog.params.nodes

_param_nodes := 1 if not catalog.params.nodes

gpu_selector_keys := ["nvidia.com/gpu.product", "cloud.google.com/gke-accelerator"]

# Declared GPU types, with where they were declared.
gpu_types contains {"type": t, "path": sprintf("%s.nodeSelector[%q]", [ps.path, key])} if {
	k8s.is_workload
	some ps in k8s.pod_specs
	some key in gpu_selector_keys
	t := ps.spec.nodeSelector[key]
}

gpu_types contains {"type": t, "path": "metadata.labels[\"plinth.io/gpu-type\"]"} if {
	k8s.is_workload
	t := k8s.labels["plinth.io/gpu-type"]
}

gpu_types contains {"type": t, "path": "parameters.gpuType"} if {
	catalog.is_params
	t := catalog.params.gpuType
}

region := k8s.meta_value("plinth.io/region") if k8s.is_workload

region := r if {
	k8s.is_workload
	not k8s.meta_value("plinth.io/region")
	some ps in k8s.pod_specs
	r := ps.spec.nodeSelector["topology.kubernetes.io/region"]
}

region := catalog.params.region if catalog.is_params

datasets := k8s.list_value("plinth.io/datasets") if k8s.is_workload

datasets := catalog.param_list("datasets") if catalog.is_params

classification := k8s.meta_value("plinth.io/data-classification") if k8s.is_workload

classification := catalog.params.dataClassification if catalog.is_params

purpose := k8s.annotations["plinth.io/purpose"] if k8s.is_workload

purpose := catalog.params.purpose if catalog.is_params

# Maximum run time in seconds, with the field it came from.
runtime := {"seconds": s, "path": "spec.activeDeadlineSeconds"} if {
	k8s.kind in {"Job", "Pod"}
	s := k8s.object.spec.activeDeadlineSeconds
}

runtime := {"seconds": s, "path": "spec.jobTemplate.spec.activeDeadlineSeconds"} if {
	k8s.kind == "CronJob"
	s := k8s.object.spec.jobTemplate.spec.activeDeadlineSeconds
}

runtime := {"seconds": s, "path": "spec.runPolicy.activeDeadlineSeconds"} if {
	k8s.kind == "PyTorchJob"
	s := k8s.object.spec.runPolicy.activeDeadlineSeconds
}

runtime := {"seconds": to_number(h) * 3600, "path": "parameters.maxRuntimeHours"} if {
	catalog.is_params
	h := catalog.params.maxRuntimeHours
}

runtime_field := "spec.activeDeadlineSeconds" if k8s.kind in {"Job", "Pod"}

runtime_field := "spec.jobTemplate.spec.activeDeadlineSeconds" if k8s.kind == "CronJob"

runtime_field := "spec.runPolicy.activeDeadlineSeconds" if k8s.kind == "PyTorchJob"

runtime_field := "parameters.maxRuntimeHours" if catalog.is_params

# Jobs that end: only these get a run-time limit.
bounded_kind if k8s.kind in run_to_completion_kinds

bounded_kind if catalog.is_params

budget := {"value": k8s.annotations["plinth.io/budget-usd"], "path": "metadata.annotations[\"plinth.io/budget-usd\"]"} if k8s.is_workload

budget := {"value": catalog.params.budgetUsd, "path": "parameters.budgetUsd"} if catalog.is_params

budget_field := "the annotation plinth.io/budget-usd" if k8s.is_workload

budget_field := "the parameter budgetUsd" if catalog.is_params
