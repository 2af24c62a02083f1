package plinth.lib.catalog_test

import rego.v1

import data.plinth.lib.catalog

test_ref_normalises_short_names if {
	catalog.ref("group", "team-a") == "group:default/team-a"
	catalog.ref("group", "Team-A") == "group:default/team-a"
}

test_ref_passes_full_refs_through if {
	catalog.ref("group", "group:default/x") == "group:default/x"
	catalog.ref("group", "group:x") == "group:default/x"
	catalog.ref("group", "user:ops/jane") == "user:ops/jane"
	catalog.ref("api", "other/search-api") == "api:other/search-api"
}

test_ref_name if {
	catalog.ref_name("group", "group:default/team-a") == "team-a"
	catalog.ref_kind("api", "component:x") == "component"
}

test_entity_lookup if {
	ctx := {"catalog": true, "entities": {"group:default/team-a": {"kind": "Group"}}}
	catalog.exists("group", "team-a") with input as {"plinth": ctx}
	not catalog.exists("group", "team-b") with input as {"plinth": ctx}
	catalog.live with input as {"plinth": ctx}
}

test_not_live_offline if {
	not catalog.live with input as {"plinth": {"catalog": false}}
	not catalog.live with input as {}
}

test_is_production if {
	catalog.is_production with input as {"plinth": {"environment": "production"}}
	not catalog.is_production with input as {"plinth": {"environment": "staging"}}
}

test_params if {
	catalog.template_name == "vector-database" with input as {"template": "template:default/vector-database", "parameters": {}}
	catalog.param_list("datasets") == ["a", "b"] with input as {"template": "t", "parameters": {"datasets": "a, b"}}
	catalog.param_list("datasets") == ["a"] with input as {"template": "t", "parameters": {"datasets": ["a"]}}
}

test_classification_rank if {
	catalog.classification_rank("Confidential") > catalog.classification_rank("internal")
}

test_region_of if {
	catalog.region_of({"plinth.dev/cloud-region": "eu-west-1"}) == "eu-west-1"
	catalog.region_of({"plinth.io/region": "us-east-1", "plinth.dev/cloud-region": "eu-west-1"}) == "us-east-1"
}
