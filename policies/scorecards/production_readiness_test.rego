package plinth.scorecards.production_readiness_test

import rego.v1

import data.plinth.scorecards.production_readiness as pr

ready := {
	"apiVersion": "backstage.io/v1alpha1",
	"kind": "Component",
	"metadata": {
		"name": "llm-gateway",
		"annotations": {"backstage.io/techdocs-ref": "dir:.", "pagerduty.com/service-id": "PDB3DFD"},
		"links": [{"url": "https://runbooks.northwindlabs.com/ml-platform/llm-gateway", "title": "Runbook"}],
	},
	"spec": {"type": "service", "lifecycle": "production", "owner": "team-ml-platform", "providesApis": ["llm-gateway-api"]},
	"plinth": {"catalog": true, "entities": {"group:default/team-ml-platform": {"kind": "Group"}}, "docs": {"ref": "dir:.", "pages": 3}},
}

bare := {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "x"}, "spec": {"type": "service"}, "plinth": {"catalog": false}}

test_ready_component_passes_all if {
	count(pr.check_owner) == 0 with input as ready
	count(pr.check_lifecycle) == 0 with input as ready
	count(pr.check_docs) == 0 with input as ready
	count(pr.check_runbook) == 0 with input as ready
	count(pr.check_on_call) == 0 with input as ready
	count(pr.check_api_definitions) == 0 with input as ready
}

test_owner_missing_fails if {
	count(pr.check_owner) == 1 with input as bare
}

test_owner_unknown_fails_when_live if {
	c := object.union(ready, {"spec": {"owner": "team-ghost"}})
	count(pr.check_owner) == 1 with input as c
}

test_lifecycle_missing_fails if {
	count(pr.check_lifecycle) == 1 with input as bare
}

test_docs_missing_fails if {
	count(pr.check_docs) == 1 with input as bare
}

test_docs_that_do_not_render_fail_when_live if {
	c := object.union(ready, {"plinth": {"docs": {"ref": "dir:.", "pages": 0}}})
	reasons := pr.check_docs with input as c
	count(reasons) == 1
	some r in reasons
	contains(r, "docs do not render")
}

test_docs_annotation_accepted_offline if {
	c := object.union(bare, {"metadata": {"annotations": {"backstage.io/techdocs-ref": "dir:."}}})
	count(pr.check_docs) == 0 with input as c
}

test_docs_link_accepted if {
	c := object.union(bare, {"metadata": {"links": [{"url": "https://docs.northwindlabs.com/x", "title": "Docs"}]}})
	count(pr.check_docs) == 0 with input as c
}

test_runbook_missing_fails if {
	count(pr.check_runbook) == 1 with input as bare
}

test_on_call_missing_fails if {
	count(pr.check_on_call) == 1 with input as bare
}

test_opsgenie_accepted if {
	c := object.union(bare, {"metadata": {"annotations": {"opsgenie.com/team": "checkout"}}})
	count(pr.check_on_call) == 0 with input as c
}

test_service_without_api_fails if {
	count(pr.check_api_definitions) == 1 with input as bare
}

test_library_needs_no_api if {
	c := object.union(bare, {"spec": {"type": "library"}})
	count(pr.check_api_definitions) == 0 with input as c
}
