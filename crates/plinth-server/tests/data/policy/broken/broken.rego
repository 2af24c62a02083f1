# METADATA
# title: Broken on purpose
# custom:
#   points: [admission]
package acme.broken

import rego.v1

deny contains "broken" if input.kind == )
