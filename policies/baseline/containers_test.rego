package plinth.baseline.containers_test

import rego.v1

import data.plinth.baseline.containers

good_container := {
	"name": "api",
	"image": "ghcr.io/northwind-labs/orders-api:2.14.1",
	"securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "allowPrivilegeEscalation": false},
	"resources": {"limits": {"cpu": "1", "memory": "512Mi"}},
}

approved := ["ghcr.io/northwind-labs/", "registry.example.com/"]

deployment(c) := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "orders-api"},
	"spec": {"template": {"spec": {"containers": [c]}}},
}

test_good_container_passes if {
	count(containers.deny_privileged) == 0 with input as deployment(good_container)
	count(containers.deny_run_as_root) == 0 with input as deployment(good_container)
	count(containers.deny_resource_limits) == 0 with input as deployment(good_container)
	count(containers.deny_image_tag) == 0 with input as deployment(good_container)
	count(containers.deny_image_registry) == 0 with input as deployment(good_container) with data.plinth.registries.allowed as approved
	count(containers.warn_privilege_escalation) == 0 with input as deployment(good_container)
}

test_privileged_denied if {
	c := object.union(good_container, {"securityContext": {"privileged": true, "runAsNonRoot": true}})
	some v in containers.deny_privileged with input as deployment(c)
	contains(v.msg, "spec.template.spec.containers[0]")
}

test_privileged_denied_at_admission if {
	c := object.union(good_container, {"securityContext": {"privileged": true, "runAsNonRoot": true}})
	count(containers.deny_privileged) == 1 with input as {"review": {"object": deployment(c), "operation": "CREATE"}}
}

test_root_denied_when_unset if {
	c := object.remove(good_container, ["securityContext"])
	count(containers.deny_run_as_root) == 1 with input as deployment(c)
}

test_root_denied_for_uid_zero if {
	c := object.union(good_container, {"securityContext": {"runAsNonRoot": true, "runAsUser": 0}})
	count(containers.deny_run_as_root) == 1 with input as deployment(c)
}

test_pod_level_non_root_accepted if {
	c := object.remove(good_container, ["securityContext"])
	d := {"kind": "Deployment", "metadata": {"name": "x"}, "spec": {"template": {"spec": {"securityContext": {"runAsNonRoot": true}, "containers": [c]}}}}
	count(containers.deny_run_as_root) == 0 with input as d
}

test_missing_limits_denied if {
	c := object.union(object.remove(good_container, ["resources"]), {"resources": {"limits": {"cpu": "1"}}})
	msgs := containers.deny_resource_limits with input as deployment(c)
	count(msgs) == 1
	some v in msgs
	contains(v.msg, "memory")
}

test_latest_tag_denied if {
	c := object.union(good_container, {"image": "ghcr.io/northwind-labs/orders-api:latest"})
	count(containers.deny_image_tag) == 1 with input as deployment(c)
}

test_missing_tag_denied if {
	c := object.union(good_container, {"image": "ghcr.io/northwind-labs/orders-api"})
	count(containers.deny_image_tag) == 1 with input as deployment(c)
}

test_digest_accepted if {
	c := object.union(good_container, {"image": "ghcr.io/northwind-labs/orders-api@sha256:0123abcd"})
	count(containers.deny_image_tag) == 0 with input as deployment(c)
}

test_unapproved_registry_denied if {
	c := object.union(good_container, {"image": "docker.io/library/nginx:1.25"})
	count(containers.deny_image_registry) == 1 with input as deployment(c) with data.plinth.registries.allowed as approved
}

test_no_registry_list_means_no_registry_rule if {
	c := object.union(good_container, {"image": "docker.io/library/nginx:1.25"})
	count(containers.deny_image_registry) == 0 with input as deployment(c) with data.plinth.registries as {}
}

test_registry_list_from_data if {
	c := object.union(good_container, {"image": "docker.io/library/nginx:1.25"})
	count(containers.deny_image_registry) == 0 with input as deployment(c) with data.plinth.registries.allowed as ["docker.io/library/"]
}

test_privilege_escalation_warned if {
	c := object.union(object.remove(good_container, ["securityContext"]), {"securityContext": {"runAsNonRoot": true}})
	count(containers.warn_privilege_escalation) == 1 with input as deployment(c)
}

test_non_workloads_ignored if {
	count(containers.deny_resource_limits) == 0 with input as {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}}
}
