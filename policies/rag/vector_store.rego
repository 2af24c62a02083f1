# METADATA
# title: RAG — vector stores
# description: >-
#   Vector databases (Resource entities of spec.type vector-database at the
#   catalog point, or vector-database golden-path requests) use a registered
#   embedding model, never hold data classified above the store, and keep
#   their source data in its residency region.
# custom:
#   points: [catalog, provision, pr]
#   profile: rag
package plinth.rag.vectorstore

import rego.v1

import data.plinth.lib.catalog

is_entity if {
	catalog.entity_kind == "resource"
	input.spec.type == "vector-database"
}

is_params if {
	catalog.is_params
	contains(catalog.template_name, "vector")
}

applies if is_entity

applies if is_params

subject := sprintf("vector database %q", [input.metadata.name]) if is_entity

subject := sprintf("vector database request (%s)", [input.template]) if is_params

embedding_model := catalog.entity_annotations["plinth.io/embedding-model"] if is_entity

embedding_model := catalog.params.embeddingModel if is_params

classification := catalog.entity_annotations["plinth.io/data-classification"] if is_entity

classification := catalog.params.dataClassification if is_params

region := catalog.region_of(catalog.entity_annotations) if is_entity

region := catalog.params.region if is_params

# Source datasets: annotation plinth.io/datasets or dataset refs in dependsOn.
datasets contains d if {
	is_entity
	some raw in split(catalog.entity_annotations["plinth.io/datasets"], ",")
	d := trim_space(raw)
	d != ""
}

datasets contains d if {
	is_entity
	is_array(input.spec.dependsOn)
	some d in input.spec.dependsOn
	startswith(lower(d), "dataset:")
}

datasets contains d if {
	is_params
	some d in catalog.param_list("datasets")
}

field(annotation, parameter) := sprintf("the annotation %s", [annotation]) if is_entity

field(annotation, parameter) := sprintf("the parameter %s", [parameter]) if is_params

# METADATA
# title: Embedding model is a registered Model
# description: Embeddings are only comparable within one model; an unregistered embedding model cannot be tracked, re-indexed on change or risk-assessed.
# custom:
#   id: PL-RAG-001
#   severity: high
#   controls: [NIST-AI-RMF-MAP-4.1, ISO-42001-A.6.2.2, EU-AI-Act-Art11]
deny_embedding_model contains msg if {
	applies
	not embedding_model
	msg := sprintf("%s does not declare its embedding model: set %s to a catalogue Model (e.g. model:text-embedding-3-large)", [subject, field("plinth.io/embedding-model", "embeddingModel")])
}

deny_embedding_model contains msg if {
	applies
	catalog.live
	embedding_model
	not catalog.exists("model", embedding_model)
	msg := sprintf("%s uses embedding model %q (%s), which is not a registered Model; register it first", [subject, embedding_model, catalog.ref("model", embedding_model)])
}

# METADATA
# title: Source data does not exceed the store's classification
# description: Retrieval returns stored chunks verbatim, so a store must be classified at least as high as the most sensitive data embedded in it.
# custom:
#   id: PL-RAG-002
#   severity: high
#   controls: [ISO-27001-A.5.12, SOC2-C1.1, NIST-AI-RMF-MAP-4.1, OWASP-LLM02]
deny_classification contains msg if {
	applies
	not classification
	count(datasets) > 0
	msg := sprintf("%s embeds datasets %v but declares no data classification: set %s to public, internal, confidential or restricted", [subject, datasets, field("plinth.io/data-classification", "dataClassification")])
}

deny_classification contains msg if {
	applies
	store_rank := catalog.classification_rank(classification)
	some d in datasets
	e := catalog.entity("dataset", d)
	dc := lower(e.spec.dataClassification)
	catalog.classification_rank(dc) > store_rank
	msg := {
		"msg": sprintf("%s is classified %s but embeds dataset %s classified %s; raise the store's classification or exclude the dataset", [subject, classification, catalog.ref("dataset", d), dc]),
		"details": {"dataset": catalog.ref("dataset", d), "dataset_classification": dc, "store_classification": classification},
	}
}

# METADATA
# title: Vector store residency matches its source data
# description: Embeddings can be inverted to recover source text, so they inherit the residency constraints of the data they were computed from.
# custom:
#   id: PL-RAG-003
#   severity: high
#   controls: [GDPR-Art44, ISO-27001-A.5.34]
deny_residency contains msg if {
	applies
	some d in datasets
	e := catalog.entity("dataset", d)
	residency := object.get(e, ["spec", "residency"], [])
	count(residency) > 0
	not region
	msg := sprintf("%s embeds dataset %s, which must stay in %v, but declares no region: set %s", [subject, catalog.ref("dataset", d), residency, field("plinth.io/region", "region")])
}

deny_residency contains msg if {
	applies
	some d in datasets
	e := catalog.entity("dataset", d)
	residency := object.get(e, ["spec", "residency"], [])
	count(residency) > 0
	region
	not region in residency
	msg := sprintf("%s is in region %q but embeds dataset %s, which may only be stored in %v; host the store in an allowed region", [subject, region, catalog.ref("dataset", d), residency])
}
