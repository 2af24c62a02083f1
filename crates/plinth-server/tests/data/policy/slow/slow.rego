# METADATA
# title: Quadratic on purpose
# custom:
#   points: [deploy]
package acme.slow

import rego.v1

# METADATA
# title: No pair of indexes multiplies to -1 (never true; forces n*n work)
# custom:
#   id: ACME-SLOW-001
deny_pairs contains msg if {
	n := input.spec.size
	some i in numbers.range(1, n)
	some j in numbers.range(1, n)
	i * j == -1
	msg := "unreachable"
}
