# METADATA
# title: Acme rollout checks
# description: Rules at different enforcement modes, for the mode tests.
# custom:
#   points: [deploy, admission]
package acme.rollout

import rego.v1

# The workload: the manifest itself (deploy) or the admission request's object.
workload := object.get(input, ["review", "object"], input)

containers := object.get(workload, ["spec", "template", "spec", "containers"], [])

# METADATA
# title: Containers declare resource limits
# description: Being rolled out, so it only warns for now.
# custom:
#   id: ACME-RES-001
#   severity: medium
#   enforcement: warn
deny_no_limits contains msg if {
	some c in containers
	not c.resources.limits
	msg := sprintf("container %s declares no resource limits", [c.name])
}

# METADATA
# title: Containers are not privileged
# custom:
#   id: ACME-PRIV-001
#   severity: critical
deny_privileged contains msg if {
	some c in containers
	c.securityContext.privileged == true
	msg := sprintf("container %s runs privileged", [c.name])
}

# METADATA
# title: Images are pinned to a version
# custom:
#   id: ACME-TAG-001
#   severity: high
deny_latest contains msg if {
	some c in containers
	endswith(c.image, ":latest")
	msg := sprintf("container %s uses the mutable image %s", [c.name, c.image])
}
