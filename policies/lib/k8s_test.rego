package plinth.lib.k8s_test

import rego.v1

import data.plinth.lib.k8s

deployment := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "web", "labels": {"app": "web", "plinth.io/owner": "team-a"}, "annotations": {"plinth.io/datasets": "a, dataset:b ,"}},
	"spec": {
		"replicas": 3,
		"template": {
			"metadata": {"labels": {"app": "web-pod", "tier": "frontend"}},
			"spec": {
				"initContainers": [{"name": "init", "image": "busybox:1.36"}],
				"containers": [{"name": "app", "image": "ghcr.io/x/app:1.0", "resources": {"limits": {"nvidia.com/gpu": "2"}}}],
			},
		},
	},
}

test_object_from_admission_review if {
	obj := k8s.object with input as {"review": {"object": deployment, "operation": "CREATE"}}
	obj.metadata.name == "web"
}

test_object_is_input_elsewhere if {
	obj := k8s.object with input as deployment
	obj.metadata.name == "web"
}

test_labels_merge_template_labels if {
	k8s.labels == {"app": "web", "plinth.io/owner": "team-a", "tier": "frontend"} with input as deployment
}

test_list_value if {
	k8s.list_value("plinth.io/datasets") == ["a", "dataset:b"] with input as deployment
}

test_containers_include_init if {
	count(k8s.containers) == 2 with input as deployment
	some lc in k8s.located_containers with input as deployment
	lc.path == "spec.template.spec.initContainers[0]"
}

test_gpu_count_times_replicas if {
	k8s.gpu_count == 6 with input as deployment
}

test_is_workload if {
	k8s.is_workload with input as deployment
	not k8s.is_workload with input as {"kind": "ConfigMap"}
}

test_cronjob_pod_spec if {
	some ps in k8s.pod_specs with input as {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}}
	ps.path == "spec.jobTemplate.spec.template.spec"
}

test_pytorchjob_pod_specs if {
	job := {"kind": "PyTorchJob", "spec": {"pytorchReplicaSpecs": {
		"Master": {"replicas": 1, "template": {"spec": {"containers": [{"name": "pytorch", "resources": {"limits": {"nvidia.com/gpu": 8}}}]}}},
		"Worker": {"replicas": 3, "template": {"spec": {"containers": [{"name": "pytorch", "resources": {"limits": {"nvidia.com/gpu": 8}}}]}}},
	}}}
	count(k8s.pod_specs) == 2 with input as job
	k8s.gpu_count == 32 with input as job
}

test_inference_service_predictor_model if {
	isvc := {"kind": "InferenceService", "spec": {"predictor": {"model": {"modelFormat": {"name": "huggingface"}, "resources": {"limits": {"nvidia.com/gpu": "1"}}}}}}
	k8s.gpu_count == 1 with input as isvc
	some lc in k8s.located_containers with input as isvc
	lc.path == "spec.predictor.model"
}

test_image_tag if {
	k8s.image_tag("registry.example.com:5000/team/app:1.2.3") == "1.2.3"
	k8s.image_tag("registry.example.com:5000/team/app") == ""
	k8s.image_tag("nginx") == ""
	k8s.image_tag("ghcr.io/x/app@sha256:abc") == ""
}
