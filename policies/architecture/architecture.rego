# METADATA
# title: Architecture — dependencies and ownership
# description: >-
#   Catalogue-level architecture rules: production components do not depend
#   on deprecated entities, and systems (and every other owned entity) have an
#   owner that exists. Dependency targets are looked up in
#   input.plinth.entities, which Plinth fills with every relation target.
# custom:
#   points: [catalog, pr]
#   profile: architecture
package plinth.architecture

import rego.v1

import data.plinth.lib.catalog

kind := catalog.entity_kind

name := input.metadata.name

# Relation targets of the entity with their default kinds.
dependencies contains {"ref": catalog.ref("component", t), "field": "spec.dependsOn"} if {
	is_array(input.spec.dependsOn)
	some t in input.spec.dependsOn
}

dependencies contains {"ref": catalog.ref("api", t), "field": "spec.consumesApis"} if {
	is_array(input.spec.consumesApis)
	some t in input.spec.consumesApis
}

# METADATA
# title: Production components do not depend on deprecated entities
# description: A production service resting on a deprecated component, API or resource inherits its end of support; the dependency must be migrated first.
# custom:
#   id: PL-ARCH-001
#   severity: medium
#   controls: [SOC2-CC8.1, ISO-27001-A.8.32]
deny_deprecated_dependency contains msg if {
	kind == "component"
	input.spec.lifecycle == "production"
	some dep in dependencies
	target := catalog.entities[dep.ref]
	target.spec.lifecycle == "deprecated"
	msg := {
		"msg": sprintf("production component %q depends on %s (%s), which is deprecated; migrate off it or mark the component as deprecated too", [name, dep.ref, dep.field]),
		"details": {"dependency": dep.ref, "field": dep.field},
	}
}

# METADATA
# title: Systems have an owner
# description: A system without an owner has nobody accountable for its architecture, budget and incidents.
# custom:
#   id: PL-ARCH-002
#   severity: high
#   controls: [SOC2-CC1.3, ISO-27001-A.5.9, NIST-AI-RMF-GOVERN-2.1]
deny_system_owner_missing contains msg if {
	kind == "system"
	not _has_owner
	msg := sprintf("system %q has no owner: set spec.owner to the accountable group (e.g. group:team-sre)", [name])
}

_has_owner if trim_space(input.spec.owner) != ""

# METADATA
# title: Owners exist in the catalogue
# description: A dangling owner reference (renamed or disbanded team) leaves the entity effectively unowned.
# custom:
#   id: PL-ARCH-003
#   severity: high
#   controls: [SOC2-CC1.3, ISO-27001-A.5.9]
deny_owner_unknown contains msg if {
	catalog.live
	kind
	_has_owner
	owner_ref := catalog.ref("group", input.spec.owner)
	not catalog.entities[owner_ref]
	msg := sprintf("%s %q is owned by %s, which is not in the catalogue; point spec.owner at an existing Group or User", [input.kind, name, owner_ref])
}
