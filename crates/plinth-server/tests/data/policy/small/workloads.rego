# METADATA
# title: Acme workload checks
# custom:
#   points: [deploy, admission]
package acme.workloads

import rego.v1

containers := object.get(input, ["spec", "template", "spec", "containers"], [])

# METADATA
# title: Images are pinned to a version
# custom:
#   id: ACME-IMG-001
#   severity: high
#   controls: [SLSA-BUILD-L2]
deny_latest contains msg if {
	some c in containers
	endswith(c.image, ":latest")
	msg := sprintf("container %s uses the mutable image %s", [c.name, c.image])
}

# METADATA
# title: More than one replica
# custom:
#   id: ACME-REP-002
#   severity: low
warn_single_replica contains msg if {
	input.kind == "Deployment"
	input.spec.replicas == 1
	msg := sprintf("Deployment %s runs a single replica", [input.metadata.name])
}
