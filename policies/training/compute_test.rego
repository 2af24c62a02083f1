package plinth.training.compute_test

import rego.v1

import data.plinth.training.compute

job(gpus, replicas, extra_meta, extra_spec) := object.union({
	"apiVersion": "kubeflow.org/v1",
	"kind": "PyTorchJob",
	"metadata": object.union({"name": "ranker-finetune", "labels": {"plinth.io/owner": "team-search", "plinth.io/profile": "training"}, "annotations": {"plinth.io/budget-usd": "1200"}}, extra_meta),
	"spec": {
		"runPolicy": {"activeDeadlineSeconds": 43200},
		"pytorchReplicaSpecs": {"Worker": {"replicas": replicas, "template": {"spec": {
			"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
			"containers": [{"name": "pytorch", "image": "ghcr.io/northwind-labs/ranker-train:0.9.0", "resources": {"limits": {"nvidia.com/gpu": gpus}}}],
		}}}},
	},
}, {"spec": extra_spec})

demo_quotas := {"team-search": 16, "team-analytics": 8, "default": 4}

test_within_quota_passes if {
	count(compute.deny_gpu_quota) == 0 with input as job(8, 2, {}, {}) with data.plinth.gpu.quotas as demo_quotas
}

test_over_quota_denied if {
	some v in compute.deny_gpu_quota with input as job(8, 4, {}, {}) with data.plinth.gpu.quotas as demo_quotas
	v.details.gpus == 32
	v.details.quota == 16
}

test_unknown_team_gets_default_quota if {
	count(compute.deny_gpu_quota) == 1 with input as job(8, 1, {"labels": {"plinth.io/owner": "team-web", "plinth.io/profile": "training"}}, {}) with data.plinth.gpu.quotas as demo_quotas
}

test_quota_table_from_data if {
	count(compute.deny_gpu_quota) == 0 with input as job(8, 4, {}, {}) with data.plinth.gpu.quotas as {"team-search": 64, "default": 1}
}

test_params_quota if {
	count(compute.deny_gpu_quota) == 1 with input as {"template": "template:default/gpu-training-environment", "parameters": {"owner": "team-analytics", "gpuCount": 8, "nodes": 2}} with data.plinth.gpu.quotas as demo_quotas
}

test_approved_gpu_type_passes if {
	count(compute.deny_gpu_type) == 0 with input as job(8, 1, {}, {})
}

test_unapproved_gpu_type_denied if {
	j := job(8, 1, {"labels": {"plinth.io/owner": "team-search", "plinth.io/profile": "training", "plinth.io/gpu-type": "RTX-4090"}}, {})
	some msg in compute.deny_gpu_type with input as j
	contains(msg, "RTX-4090")
}

test_missing_gpu_type_denied if {
	j := {"kind": "Job", "metadata": {"name": "t", "labels": {"plinth.io/owner": "team-search"}}, "spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 1}}}]}}}}
	count(compute.deny_gpu_type) == 1 with input as j
}

test_cpu_job_is_not_training if {
	j := {"kind": "Job", "metadata": {"name": "t"}, "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}
	count(compute.deny_max_runtime) == 0 with input as j
	count(compute.deny_budget) == 0 with input as j
}

test_runtime_within_limit_passes if {
	count(compute.deny_max_runtime) == 0 with input as job(8, 1, {}, {})
}

test_runtime_over_limit_denied if {
	count(compute.deny_max_runtime) == 1 with input as job(8, 1, {}, {"runPolicy": {"activeDeadlineSeconds": 604800}})
}

test_runtime_missing_denied if {
	j := {"kind": "Job", "metadata": {"name": "t", "labels": {"plinth.io/profile": "training"}}, "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}
	some msg in compute.deny_max_runtime with input as j
	contains(msg, "spec.activeDeadlineSeconds")
}

test_budget_within_limit_passes if {
	count(compute.deny_budget) == 0 with input as job(8, 1, {}, {})
}

test_budget_over_limit_denied if {
	count(compute.deny_budget) == 1 with input as job(8, 1, {"annotations": {"plinth.io/budget-usd": "90000"}}, {})
}

test_budget_missing_denied if {
	j := {"kind": "Job", "metadata": {"name": "t", "labels": {"plinth.io/profile": "training"}}, "spec": {"activeDeadlineSeconds": 3600, "template": {"spec": {"containers": [{"name": "c"}]}}}}
	count(compute.deny_budget) == 1 with input as j
}

test_budget_not_a_number_denied if {
	count(compute.deny_budget) == 1 with input as job(8, 1, {"annotations": {"plinth.io/budget-usd": "lots"}}, {})
}
