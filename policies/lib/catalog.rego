# METADATA
# title: Catalogue helpers
# description: >-
#   Shared helpers over Plinth's context (`input.plinth`): entity references,
#   resolved catalogue entities, environment, and golden-path parameters.
package plinth.lib.catalog

import rego.v1

context := input.plinth if {
	is_object(input.plinth)
} else := {}

# True when entities were resolved against a live catalogue (not offline).
live if context.catalog == true

entities := context.entities if {
	is_object(context.entities)
} else := {}

environment := context.environment

is_production if environment == "production"

point := context.point

# ref(kind, name): "team-a" -> "group:default/team-a"; "group:x" -> "group:default/x";
# "group:ns/x" -> "group:ns/x"; "ns/x" -> "group:ns/x". Always lower case.
ref(kind, name) := lower(sprintf("%s:%s", [k, _with_namespace(rest)])) if {
	contains(name, ":")
	parts := split(name, ":")
	k := parts[0]
	rest := concat(":", array.slice(parts, 1, count(parts)))
} else := lower(sprintf("%s:%s", [kind, _with_namespace(name)]))

_with_namespace(name) := name if contains(name, "/")

_with_namespace(name) := sprintf("default/%s", [name]) if not contains(name, "/")

# The kind part of a reference (after defaulting).
ref_kind(kind, name) := split(ref(kind, name), ":")[0]

# The name part of a reference: "group:default/team-a" -> "team-a".
ref_name(kind, name) := n if {
	parts := split(ref(kind, name), "/")
	n := parts[count(parts) - 1]
}

entity(kind, name) := entities[ref(kind, name)]

exists(kind, name) if entity(kind, name)

# Golden-path parameters (`{"template": ..., "parameters": {...}}`).
is_params if {
	is_string(input.template)
	is_object(input.parameters)
}

params := input.parameters if is_params

template_name := ref_name("template", input.template) if is_params

# A parameter that may be a list or a comma-separated string -> array.
param_list(key) := [x | some x in params[key]; is_string(x); x != ""] if {
	is_array(params[key])
} else := [trim_space(x) | some x in split(params[key], ","); trim_space(x) != ""] if {
	is_string(params[key])
}

# Catalogue entity documents.
is_entity if {
	is_string(input.apiVersion)
	is_object(input.spec)
	is_string(input.metadata.name)
	_entity_api(input.apiVersion)
}

_entity_api(v) if startswith(v, "backstage.io/")

_entity_api(v) if startswith(v, "plinth.dev/")

entity_kind := lower(input.kind) if is_entity

entity_annotations := input.metadata.annotations if {
	is_entity
	is_object(input.metadata.annotations)
} else := {}

# Ranks of data classifications (data.plinth.classification_order).
classification_rank(c) := i if {
	some i, x in data.plinth.classification_order
	x == lower(c)
}

# Region helper over an annotations object.
region_of(annotations) := annotations["plinth.io/region"]

region_of(annotations) := annotations["plinth.dev/cloud-region"] if not annotations["plinth.io/region"]
