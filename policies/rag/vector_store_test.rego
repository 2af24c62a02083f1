package plinth.rag.vectorstore_test

import rego.v1

import data.plinth.rag.vectorstore

entities := {
	"model:default/text-embedding-3-large": {"kind": "Model", "spec": {"type": "embedding"}},
	"dataset:default/help-center-articles": {"kind": "Dataset", "spec": {"dataClassification": "public", "residency": ["eu-west-1"]}},
	"dataset:default/support-tickets-2023": {"kind": "Dataset", "spec": {"dataClassification": "confidential", "residency": ["eu-west-1"], "containsPii": true}},
}

store(annotations) := {
	"apiVersion": "backstage.io/v1alpha1",
	"kind": "Resource",
	"metadata": {"name": "support-kb-vectors", "annotations": annotations},
	"spec": {"type": "vector-database", "owner": "team-applied-ai", "dependsOn": ["dataset:help-center-articles"]},
	"plinth": {"point": "catalog", "catalog": true, "entities": entities},
}

good := {
	"plinth.io/embedding-model": "text-embedding-3-large",
	"plinth.io/data-classification": "internal",
	"plinth.dev/cloud-region": "eu-west-1",
}

test_good_store_passes if {
	count(vectorstore.deny_embedding_model) == 0 with input as store(good)
	count(vectorstore.deny_classification) == 0 with input as store(good)
	count(vectorstore.deny_residency) == 0 with input as store(good)
}

test_embedding_model_missing_denied if {
	count(vectorstore.deny_embedding_model) == 1 with input as store(object.remove(good, ["plinth.io/embedding-model"]))
}

test_embedding_model_unregistered_denied if {
	count(vectorstore.deny_embedding_model) == 1 with input as store(object.union(good, {"plinth.io/embedding-model": "model:bge-m3"}))
}

test_other_resources_ignored if {
	r := {"apiVersion": "backstage.io/v1alpha1", "kind": "Resource", "metadata": {"name": "orders-db"}, "spec": {"type": "database"}}
	count(vectorstore.deny_embedding_model) == 0 with input as r
}

test_dataset_above_store_classification_denied if {
	a := object.union(good, {"plinth.io/datasets": "support-tickets-2023"})
	some v in vectorstore.deny_classification with input as store(a)
	v.details.dataset_classification == "confidential"
}

test_classification_missing_denied if {
	count(vectorstore.deny_classification) == 1 with input as store(object.remove(good, ["plinth.io/data-classification"]))
}

test_residency_mismatch_denied if {
	count(vectorstore.deny_residency) == 1 with input as store(object.union(good, {"plinth.dev/cloud-region": "us-east-1"}))
}

test_residency_region_missing_denied if {
	count(vectorstore.deny_residency) == 1 with input as store(object.remove(good, ["plinth.dev/cloud-region"]))
}

test_provision_params if {
	p := {
		"template": "template:default/vector-database",
		"parameters": {"name": "support-kb", "owner": "team-applied-ai", "embeddingModel": "text-embedding-3-large", "dataClassification": "internal", "datasets": ["support-tickets-2023"], "region": "eu-west-1"},
		"plinth": {"point": "provision", "catalog": true, "entities": entities},
	}
	count(vectorstore.deny_embedding_model) == 0 with input as p
	count(vectorstore.deny_classification) == 1 with input as p
	count(vectorstore.deny_residency) == 0 with input as p
}
