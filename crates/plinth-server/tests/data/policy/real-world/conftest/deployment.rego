package main

import rego.v1

# METADATA
# title: Containers must not run as root
# description: Running as root turns a container escape into root on the node.
# custom:
#   id: ACME-K8S-001
#   severity: critical
#   controls: [CIS-K8S-5.2.6, ACME-SEC-12]
deny contains msg if {
	input.kind == "Deployment"
	not input.spec.template.spec.securityContext.runAsNonRoot
	msg := sprintf("Deployment %s: containers must not run as root (set spec.template.spec.securityContext.runAsNonRoot: true)", [input.metadata.name])
}

# METADATA
# title: Images are pinned to a version
# custom:
#   id: ACME-K8S-002
#   severity: high
#   controls: [SLSA-BUILD-L2]
deny_latest contains msg if {
	input.kind == "Deployment"
	some container in input.spec.template.spec.containers
	endswith(container.image, ":latest")
	msg := {
		"msg": sprintf("container %s uses the mutable image %s", [container.name, container.image]),
		"details": {"container": container.name, "image": container.image},
	}
}

warn contains msg if {
	input.kind == "Deployment"
	not input.metadata.labels["app.kubernetes.io/name"]
	msg := sprintf("Deployment %s should carry the recommended label app.kubernetes.io/name", [input.metadata.name])
}

exception contains rules if {
	input.metadata.annotations["acme.io/allow-latest"] == "true"
	rules := ["latest"]
}
