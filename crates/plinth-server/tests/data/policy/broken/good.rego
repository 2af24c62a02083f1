# METADATA
# title: Acme deploy checks
# custom:
#   points: [deploy]
package acme.good

import rego.v1

# METADATA
# title: Replicas are bounded
# custom:
#   id: ACME-GOOD-001
#   severity: medium
deny_replicas contains msg if {
	input.spec.replicas > 10
	msg := sprintf("%d replicas is more than the 10 allowed", [input.spec.replicas])
}
