# METADATA
# title: Production readiness
# description: >-
#   Is a component ready to run in production? Bronze: owned, lifecycle and
#   docs. Silver: runbook and on-call. Gold: its service APIs are described.
# custom:
#   scorecard: production-readiness
#   kinds: [component]
package plinth.scorecards.production_readiness

import rego.v1

import data.plinth.lib.catalog

annotations := catalog.entity_annotations

links := input.metadata.links if {
	is_array(input.metadata.links)
} else := []

_link_matches(word) if {
	some l in links
	some f in ["title", "type"]
	contains(lower(l[f]), word)
}

_owner_set if trim_space(input.spec.owner) != ""

# METADATA
# title: Has an owner
# description: The component names an owning group (that exists in the catalogue, when checked against a live catalogue).
# custom:
#   level: bronze
check_owner contains "spec.owner is not set" if not _owner_set

check_owner contains reason if {
	_owner_set
	catalog.live
	ref := catalog.ref("group", input.spec.owner)
	not catalog.entities[ref]
	reason := sprintf("owner %s is not in the catalogue", [ref])
}

# METADATA
# title: Lifecycle is set
# description: spec.lifecycle says whether the component is experimental, production or deprecated.
# custom:
#   level: bronze
check_lifecycle contains "spec.lifecycle is not set" if {
	not trim_space(input.spec.lifecycle) != ""
}

# METADATA
# title: Has documentation
# description: >-
#   TechDocs that render (backstage.io/techdocs-ref naming a directory with
#   mkdocs.yml and Markdown pages, checked against a live catalogue) or a
#   documentation link.
# custom:
#   level: bronze
check_docs contains "no docs: add the backstage.io/techdocs-ref annotation or a link titled Docs" if {
	not annotations["backstage.io/techdocs-ref"]
	not _link_matches("doc")
}

# Against the live catalogue Plinth reads the docs: input.plinth.docs.pages
# counts the Markdown pages it found for the annotation (offline, where that
# fact is absent, the annotation is taken at its word).
check_docs contains reason if {
	ref := annotations["backstage.io/techdocs-ref"]
	not _link_matches("doc")
	catalog.live
	is_object(catalog.context.docs)
	not _docs_render
	reason := sprintf("docs do not render: backstage.io/techdocs-ref %q names no directory with mkdocs.yml and Markdown pages next to the catalog-info file", [ref])
}

_docs_render if catalog.context.docs.pages > 0

# METADATA
# title: Has a runbook
# description: metadata.links has a link whose title or type mentions runbook.
# custom:
#   level: silver
check_runbook contains "no runbook: add a link titled Runbook to metadata.links" if {
	not _link_matches("runbook")
}

on_call_annotations := ["pagerduty.com/service-id", "pagerduty.com/integration-key", "opsgenie.com/team", "plinth.io/on-call"]

# METADATA
# title: Has an on-call rotation
# description: An on-call annotation (pagerduty.com/service-id, opsgenie.com/team or plinth.io/on-call) so incidents reach a human.
# custom:
#   level: silver
check_on_call contains reason if {
	not _has_on_call
	reason := sprintf("no on-call rotation: add one of the annotations %v", [on_call_annotations])
}

_has_on_call if {
	some a in on_call_annotations
	trim_space(annotations[a]) != ""
}

# METADATA
# title: Service APIs are described
# description: A service component provides at least one API entity, so consumers and agents can discover its contract.
# custom:
#   level: gold
check_api_definitions contains "service provides no API: list its API entities in spec.providesApis" if {
	input.spec.type == "service"
	count(object.get(input.spec, "providesApis", [])) == 0
}
