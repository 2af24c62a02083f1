package plinth.inference.serving_test

import rego.v1

import data.plinth.inference.serving

good_labels := {"plinth.io/owner": "team-search", "plinth.io/cost-centre": "cc-2200", "plinth.io/model": "product-embedder"}

isvc(labels, annotations, predictor) := {
	"apiVersion": "serving.kserve.io/v1beta1",
	"kind": "InferenceService",
	"metadata": {"name": "product-embedder", "labels": labels, "annotations": annotations},
	"spec": {"predictor": predictor},
}

good_predictor := {"minReplicas": 1, "maxReplicas": 6, "model": {"modelFormat": {"name": "pytorch"}, "resources": {"limits": {"nvidia.com/gpu": "1"}}}}

test_attribution_labels_pass if {
	count(serving.deny_cost_attribution) == 0 with input as isvc(good_labels, {}, good_predictor)
}

test_attribution_labels_missing_denied if {
	some msg in serving.deny_cost_attribution with input as isvc({"plinth.io/model": "product-embedder"}, {}, good_predictor)
	contains(msg, "plinth.io/cost-centre")
}

test_deployment_attribution_on_pod_template if {
	d := {"kind": "Deployment", "metadata": {"name": "reranker", "labels": good_labels}, "spec": {"template": {"metadata": {"labels": {"app": "reranker"}}, "spec": {"containers": []}}}}
	some msg in serving.deny_cost_attribution with input as d
	contains(msg, "spec.template.metadata.labels")
}

test_region_allowed_passes if {
	i := isvc(good_labels, {"plinth.io/region": "eu-west-1", "plinth.io/data-classification": "confidential"}, good_predictor)
	count(serving.deny_serving_region) == 0 with input as i
}

test_region_not_allowed_denied if {
	i := isvc(good_labels, {"plinth.io/region": "us-east-1", "plinth.io/data-classification": "confidential"}, good_predictor)
	count(serving.deny_serving_region) == 1 with input as i
}

test_region_from_model_classification if {
	ctx := {"catalog": true, "entities": {"model:default/product-embedder": {"kind": "Model", "spec": {"dataClassification": "restricted"}}}}
	i := object.union(isvc(good_labels, {"plinth.io/region": "eu-central-1", "plinth.io/data-classification": "internal"}, good_predictor), {"plinth": ctx})
	some v in serving.deny_serving_region with input as i
	v.details.classification == "restricted"
}

test_region_missing_for_confidential_denied if {
	i := isvc(good_labels, {"plinth.io/data-classification": "confidential"}, good_predictor)
	count(serving.deny_serving_region) == 1 with input as i
}

test_gpu_limits_pass if {
	count(serving.deny_gpu_limits) == 0 with input as isvc(good_labels, {}, good_predictor)
}

test_gpu_request_without_limit_denied if {
	p := {"minReplicas": 1, "maxReplicas": 2, "containers": [{"name": "vllm", "image": "ghcr.io/northwind-labs/vllm:0.6.3", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}
	some msg in serving.deny_gpu_limits with input as isvc(good_labels, {}, p)
	contains(msg, "spec.predictor.containers[0]")
}

test_autoscaling_bounds_pass if {
	count(serving.deny_autoscaling) == 0 with input as isvc(good_labels, {}, good_predictor)
}

test_autoscaling_bounds_missing_denied if {
	count(serving.deny_autoscaling) == 2 with input as isvc(good_labels, {}, {"model": {}})
}

test_autoscaling_inverted_or_too_high_denied if {
	count(serving.deny_autoscaling) == 1 with input as isvc(good_labels, {}, {"minReplicas": 4, "maxReplicas": 2})
	count(serving.deny_autoscaling) == 1 with input as isvc(good_labels, {}, {"minReplicas": 1, "maxReplicas": 500})
}

test_deployment_autoscaler_warned if {
	d := {"kind": "Deployment", "metadata": {"name": "reranker", "labels": good_labels}, "spec": {"template": {"spec": {"containers": []}}}}
	count(serving.warn_autoscaler) == 1 with input as d
	d2 := object.union(d, {"metadata": {"annotations": {"plinth.io/autoscaler": "hpa/reranker"}}})
	count(serving.warn_autoscaler) == 0 with input as d2
}

test_non_inference_workload_ignored if {
	d := {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": []}}}}
	count(serving.deny_cost_attribution) == 0 with input as d
	count(serving.warn_autoscaler) == 0 with input as d
}
