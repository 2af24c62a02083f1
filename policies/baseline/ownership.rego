# METADATA
# title: Baseline — ownership and cost attribution
# description: >-
#   Every workload and every golden-path request names an owning team that
#   exists in the catalogue, and every workload carries a cost centre.
# custom:
#   points: [admission, deploy, provision, pr]
#   profile: baseline
package plinth.baseline.ownership

import rego.v1

import data.plinth.lib.catalog
import data.plinth.lib.k8s

owner_key := "plinth.io/owner"

cost_centre_keys := ["plinth.io/cost-centre", "plinth.io/cost-center"]

# The declared owner: label on a workload, `owner` parameter on a golden-path request.
owner := k8s.labels[owner_key] if k8s.is_workload

owner := catalog.params.owner if catalog.is_params

_subject_applies if {
	k8s.is_workload
	not k8s.is_delete
}

_subject_applies if catalog.is_params

# METADATA
# title: Workloads declare an owner
# description: Unowned workloads cannot be paged, costed or cleaned up; every workload must name its owning team.
# custom:
#   id: PL-BASE-010
#   severity: high
#   controls: [SOC2-CC1.3, ISO-27001-A.5.9, NIST-AI-RMF-GOVERN-2.1]
deny_owner_missing contains msg if {
	_subject_applies
	k8s.is_workload
	not owner
	msg := sprintf("%s %q has no owner: add the label %s: <team> (e.g. team-ml-platform) to metadata.labels", [k8s.kind, k8s.name, owner_key])
}

deny_owner_missing contains msg if {
	catalog.is_params
	not owner
	msg := sprintf("golden-path request for %s has no owner: set the parameter `owner` to a catalogue group, e.g. group:default/team-ml-platform", [input.template])
}

# METADATA
# title: The owner exists in the catalogue
# description: An owner that is not a catalogue Group or User is as good as none; misspelt or disbanded teams must be caught before deploy.
# custom:
#   id: PL-BASE-011
#   severity: high
#   controls: [SOC2-CC1.3, ISO-27001-A.5.9]
deny_owner_unknown contains msg if {
	_subject_applies
	catalog.live
	is_string(owner)
	ref := catalog.ref("group", owner)
	not catalog.entities[ref]
	msg := sprintf("owner %q (%s) is not in the catalogue; use an existing group or user, or register the team first", [owner, ref])
}

# METADATA
# title: Workloads carry a cost centre
# description: Compute and token spend is charged back by cost centre; workloads without one end up in unallocated spend.
# custom:
#   id: PL-BASE-012
#   severity: medium
#   controls: [SOC2-CC1.3, FinOps-Allocation]
deny_cost_centre_missing contains msg if {
	_subject_applies
	k8s.is_workload
	not _has_cost_centre
	msg := sprintf("%s %q has no cost centre: add the label plinth.io/cost-centre: <code> (e.g. cc-4120) to metadata.labels", [k8s.kind, k8s.name])
}

_has_cost_centre if {
	some key in cost_centre_keys
	k8s.labels[key] != ""
}
