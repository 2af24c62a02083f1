package plinth.baseline.ownership_test

import rego.v1

import data.plinth.baseline.ownership

workload(labels) := {
	"apiVersion": "batch/v1",
	"kind": "Job",
	"metadata": {"name": "nightly-export", "labels": labels},
	"spec": {"template": {"spec": {"containers": [{"name": "export", "image": "ghcr.io/northwind-labs/export:1.0.0"}]}}},
}

good_labels := {"plinth.io/owner": "team-data-eng", "plinth.io/cost-centre": "cc-3100"}

live_ctx := {"catalog": true, "entities": {"group:default/team-data-eng": {"kind": "Group", "metadata": {"name": "team-data-eng"}}}}

test_owner_present_passes if {
	count(ownership.deny_owner_missing) == 0 with input as workload(good_labels)
}

test_owner_missing_denied if {
	count(ownership.deny_owner_missing) == 1 with input as workload({"plinth.io/cost-centre": "cc-3100"})
}

test_owner_on_pod_template_accepted if {
	job := {"kind": "Job", "metadata": {"name": "j"}, "spec": {"template": {"metadata": {"labels": good_labels}, "spec": {"containers": []}}}}
	count(ownership.deny_owner_missing) == 0 with input as job
	count(ownership.deny_cost_centre_missing) == 0 with input as job
}

test_params_owner_missing_denied if {
	count(ownership.deny_owner_missing) == 1 with input as {"template": "template:default/postgres-database", "parameters": {"name": "orders-db"}}
	count(ownership.deny_owner_missing) == 0 with input as {"template": "template:default/postgres-database", "parameters": {"owner": "team-orders"}}
}

test_owner_known_passes if {
	w := object.union(workload(good_labels), {"plinth": live_ctx})
	count(ownership.deny_owner_unknown) == 0 with input as w
}

test_owner_unknown_denied if {
	w := object.union(workload({"plinth.io/owner": "team-dta-eng", "plinth.io/cost-centre": "cc-3100"}), {"plinth": live_ctx})
	some msg in ownership.deny_owner_unknown with input as w
	contains(msg, "group:default/team-dta-eng")
}

test_owner_unknown_not_checked_offline if {
	w := object.union(workload({"plinth.io/owner": "team-dta-eng"}), {"plinth": {"catalog": false, "entities": {}}})
	count(ownership.deny_owner_unknown) == 0 with input as w
}

test_cost_centre_present_passes if {
	count(ownership.deny_cost_centre_missing) == 0 with input as workload(good_labels)
}

test_cost_centre_missing_denied if {
	count(ownership.deny_cost_centre_missing) == 1 with input as workload({"plinth.io/owner": "team-data-eng"})
}
