package plinth.training.data_test

import rego.v1

import data.plinth.training.data as tdata

tickets := {"apiVersion": "plinth.dev/v1alpha1", "kind": "Dataset", "metadata": {"name": "support-tickets-2023"}, "spec": {"dataClassification": "confidential", "residency": ["eu-west-1"], "containsPii": true}}

articles := {"apiVersion": "plinth.dev/v1alpha1", "kind": "Dataset", "metadata": {"name": "help-center-articles"}, "spec": {"dataClassification": "public", "residency": ["eu-west-1"], "containsPii": false}}

ctx := {"point": "deploy", "catalog": true, "entities": {
	"dataset:default/support-tickets-2023": tickets,
	"dataset:default/help-center-articles": articles,
}}

job(annotations) := {
	"apiVersion": "batch/v1",
	"kind": "Job",
	"metadata": {"name": "support-llm-lora", "labels": {"plinth.io/profile": "training", "plinth.io/owner": "team-applied-ai"}, "annotations": annotations},
	"spec": {"template": {"spec": {"containers": [{"name": "train"}]}}},
	"plinth": ctx,
}

good := {
	"plinth.io/datasets": "support-tickets-2023, dataset:help-center-articles",
	"plinth.io/region": "eu-west-1",
	"plinth.io/data-classification": "confidential",
	"plinth.io/purpose": "Fine-tune the support reply model on resolved tickets (DPIA-2024-017)",
}

test_good_job_passes if {
	count(tdata.deny_dataset_unregistered) == 0 with input as job(good)
	count(tdata.deny_dataset_residency) == 0 with input as job(good)
	count(tdata.deny_pii_classification) == 0 with input as job(good)
	count(tdata.deny_pii_purpose) == 0 with input as job(good)
}

test_unregistered_dataset_denied if {
	a := object.union(good, {"plinth.io/datasets": "support-tickets-2024"})
	some msg in tdata.deny_dataset_unregistered with input as job(a)
	contains(msg, "dataset:default/support-tickets-2024")
}

test_unregistered_not_checked_offline if {
	a := object.union(good, {"plinth.io/datasets": "support-tickets-2024"})
	j := object.union(job(a), {"plinth": {"catalog": false, "entities": {}}})
	count(tdata.deny_dataset_unregistered) == 0 with input as j
}

test_wrong_region_denied if {
	a := object.union(good, {"plinth.io/region": "us-east-1"})
	count(tdata.deny_dataset_residency) == 2 with input as job(a)
}

test_missing_region_denied if {
	a := object.remove(good, ["plinth.io/region"])
	count(tdata.deny_dataset_residency) == 2 with input as job(a)
}

test_pii_low_classification_denied if {
	a := object.union(good, {"plinth.io/data-classification": "internal"})
	count(tdata.deny_pii_classification) == 1 with input as job(a)
}

test_no_pii_no_classification_needed if {
	a := {"plinth.io/datasets": "help-center-articles", "plinth.io/region": "eu-west-1"}
	count(tdata.deny_pii_classification) == 0 with input as job(a)
	count(tdata.deny_pii_purpose) == 0 with input as job(a)
}

test_pii_purpose_missing_denied if {
	a := object.remove(good, ["plinth.io/purpose"])
	count(tdata.deny_pii_purpose) == 1 with input as job(a)
}

test_params_residency if {
	p := {"template": "template:default/gpu-training-environment", "parameters": {"owner": "team-applied-ai", "datasets": ["support-tickets-2023"], "region": "us-west-2", "dataClassification": "restricted", "purpose": "x"}, "plinth": ctx}
	count(tdata.deny_dataset_residency) == 1 with input as p
	count(tdata.deny_pii_classification) == 0 with input as p
}
