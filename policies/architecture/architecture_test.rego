package plinth.architecture_test

import rego.v1

import data.plinth.architecture

entities := {
	"group:default/team-checkout": {"kind": "Group", "metadata": {"name": "team-checkout"}},
	"component:default/cart-service": {"kind": "Component", "metadata": {"name": "cart-service"}, "spec": {"lifecycle": "production"}},
	"component:default/legacy-promo-engine": {"kind": "Component", "metadata": {"name": "legacy-promo-engine"}, "spec": {"lifecycle": "deprecated"}},
	"api:default/promotions-v1-api": {"kind": "API", "metadata": {"name": "promotions-v1-api"}, "spec": {"lifecycle": "deprecated"}},
}

component(spec) := {
	"apiVersion": "backstage.io/v1alpha1",
	"kind": "Component",
	"metadata": {"name": "checkout-service"},
	"spec": object.union({"type": "service", "lifecycle": "production", "owner": "team-checkout"}, spec),
	"plinth": {"point": "catalog", "catalog": true, "entities": entities},
}

test_live_dependencies_pass if {
	count(architecture.deny_deprecated_dependency) == 0 with input as component({"dependsOn": ["component:cart-service"]})
}

test_deprecated_dependency_denied if {
	c := component({"dependsOn": ["component:cart-service", "legacy-promo-engine"], "consumesApis": ["promotions-v1-api"]})
	count(architecture.deny_deprecated_dependency) == 2 with input as c
}

test_experimental_component_may_depend_on_deprecated if {
	c := component({"lifecycle": "experimental", "dependsOn": ["legacy-promo-engine"]})
	count(architecture.deny_deprecated_dependency) == 0 with input as c
}

test_system_with_owner_passes if {
	s := {"apiVersion": "backstage.io/v1alpha1", "kind": "System", "metadata": {"name": "checkout"}, "spec": {"owner": "team-checkout"}}
	count(architecture.deny_system_owner_missing) == 0 with input as s
}

test_system_without_owner_denied if {
	s := {"apiVersion": "backstage.io/v1alpha1", "kind": "System", "metadata": {"name": "checkout"}, "spec": {"domain": "commerce"}}
	count(architecture.deny_system_owner_missing) == 1 with input as s
}

test_known_owner_passes if {
	count(architecture.deny_owner_unknown) == 0 with input as component({})
}

test_unknown_owner_denied if {
	some msg in architecture.deny_owner_unknown with input as component({"owner": "team-chekout"})
	contains(msg, "group:default/team-chekout")
}

test_unknown_owner_not_checked_offline if {
	c := object.union(component({"owner": "team-chekout"}), {"plinth": {"catalog": false}})
	count(architecture.deny_owner_unknown) == 0 with input as c
}
