# METADATA
# title: Training — GPU compute, run time and budget
# description: >-
#   GPU training jobs stay within their team's GPU quota, use approved GPU
#   types, and have a bounded run time and budget. Applies to workloads
#   labelled plinth.io/profile: training, Jobs/CronJobs/PyTorchJobs requesting
#   GPUs, and GPU training-environment golden-path requests.
# custom:
#   points: [admission, deploy, provision, pr]
#   profile: training
package plinth.training.compute

import rego.v1

import data.plinth.lib.training

quota := data.plinth.gpu.quotas[training.team]

quota := data.plinth.gpu.quotas["default"] if not data.plinth.gpu.quotas[training.team]

# METADATA
# title: GPU requests within the team's quota
# description: GPUs are the scarcest and most expensive shared resource; per-team quotas keep one job from starving every other team.
# custom:
#   id: PL-TRN-001
#   severity: high
#   controls: [NIST-AI-RMF-MANAGE-2.1, SOC2-CC7.2, FinOps-Quotas]
deny_gpu_quota contains msg if {
	training.is_training
	training.gpu_count > quota
	msg := {
		"msg": sprintf("%s requests %v GPUs in total but team %q may use at most %v per workload (data.plinth.gpu.quotas); reduce replicas or nvidia.com/gpu limits, or ask the ML platform team for a quota increase", [training.subject, training.gpu_count, _team_name, quota]),
		"details": {"gpus": training.gpu_count, "quota": quota, "team": _team_name},
	}
}

_team_name := training.team

_team_name := "(no owner)" if not training.team

# METADATA
# title: GPU type is declared and approved
# description: Pinning jobs to approved GPU types keeps them on capacity the platform has reserved and priced, not on whatever node is free.
# custom:
#   id: PL-TRN-002
#   severity: medium
#   controls: [NIST-AI-RMF-MANAGE-2.1, FinOps-Rate-Optimization]
deny_gpu_type contains msg if {
	training.is_training
	training.gpu_count > 0
	count(training.gpu_types) == 0
	msg := sprintf("%s requests GPUs but does not say which type: set nodeSelector nvidia.com/gpu.product (or cloud.google.com/gke-accelerator, or the label plinth.io/gpu-type, or the parameter gpuType) to one of %v", [training.subject, data.plinth.gpu.allowed_types])
}

deny_gpu_type contains msg if {
	training.is_training
	some gt in training.gpu_types
	not gt.type in data.plinth.gpu.allowed_types
	msg := sprintf("%s asks for GPU type %q at %s, which is not an approved type; use one of %v", [training.subject, gt.type, gt.path, data.plinth.gpu.allowed_types])
}

# METADATA
# title: Training run time is bounded
# description: A job without a deadline can hold GPUs for days after it hangs; every training run needs a maximum run time within the platform limit.
# custom:
#   id: PL-TRN-003
#   severity: medium
#   controls: [NIST-AI-RMF-MANAGE-2.1, SOC2-CC7.2]
deny_max_runtime contains msg if {
	training.is_training
	training.bounded_kind
	not training.runtime
	msg := sprintf("%s has no maximum run time: set %s (at most %v hours)", [training.subject, training.runtime_field, data.plinth.training.max_runtime_hours])
}

deny_max_runtime contains msg if {
	training.is_training
	limit := data.plinth.training.max_runtime_hours * 3600
	training.runtime.seconds > limit
	msg := sprintf("%s may run for %v hours (%s) but training runs are limited to %v hours; checkpoint and resume in shorter runs", [training.subject, training.runtime.seconds / 3600, training.runtime.path, data.plinth.training.max_runtime_hours])
}

# METADATA
# title: Training budget is declared and within the limit
# description: Large training runs must state their budget up front so cost is approved before GPUs are spent, not after.
# custom:
#   id: PL-TRN-004
#   severity: medium
#   controls: [NIST-AI-RMF-GOVERN-1.1, FinOps-Budgeting]
deny_budget contains msg if {
	training.is_training
	not training.budget.value
	msg := sprintf("%s declares no budget: set %s to the maximum spend in USD (at most %v)", [training.subject, training.budget_field, data.plinth.training.max_budget_usd])
}

deny_budget contains msg if {
	training.is_training
	value := training.budget.value
	not _is_number(value)
	msg := sprintf("%s has budget %q at %s, which is not a number of USD", [training.subject, value, training.budget.path])
}

deny_budget contains msg if {
	training.is_training
	value := training.budget.value
	_is_number(value)
	to_number(value) > data.plinth.training.max_budget_usd
	msg := sprintf("%s has budget %v USD (%s), above the %v USD limit for a single run; split the run or get a budget exception", [training.subject, value, training.budget.path, data.plinth.training.max_budget_usd])
}

_is_number(v) if is_number(v)

_is_number(v) if {
	is_string(v)
	regex.match(`^[0-9]+(\.[0-9]+)?$`, v)
}
