# METADATA
# title: Baseline — container security
# description: >-
#   Security basics for every container Plinth deploys or admits: no privileged
#   mode, a non-root user, CPU and memory limits, pinned image tags, and images
#   only from the organisation's registries.
# custom:
#   points: [admission, deploy, provision, pr]
#   profile: baseline
package plinth.baseline.containers

import rego.v1

import data.plinth.lib.k8s

# METADATA
# title: No privileged containers
# description: A privileged container has full access to the node, so one compromised container compromises the node and every workload on it.
# custom:
#   id: PL-BASE-001
#   severity: critical
#   controls: [CIS-K8S-5.2.1, NIST-800-190-4.4.3, SOC2-CC6.8]
deny_privileged contains msg if {
	some lc in k8s.located_containers
	lc.container.securityContext.privileged == true
	msg := {
		"msg": sprintf("container %q runs privileged (%s.securityContext.privileged: true); remove privileged mode and grant only the specific capabilities it needs", [lc.name, lc.path]),
		"details": {"container": lc.name, "path": sprintf("%s.securityContext.privileged", [lc.path])},
	}
}

# METADATA
# title: Containers run as a non-root user
# description: Running as root inside the container turns any container escape or volume mount mistake into root on the node.
# custom:
#   id: PL-BASE-002
#   severity: high
#   controls: [CIS-K8S-5.2.6, NIST-800-190-4.4.3, SOC2-CC6.8]
deny_run_as_root contains msg if {
	some lc in k8s.located_containers
	not _non_root(lc)
	msg := {
		"msg": sprintf("container %q may run as root: set %s.securityContext.runAsNonRoot: true (or the pod's securityContext.runAsNonRoot: true) and a non-zero runAsUser", [lc.name, lc.path]),
		"details": {"container": lc.name, "path": sprintf("%s.securityContext.runAsNonRoot", [lc.path])},
	}
}

deny_run_as_root contains msg if {
	some lc in k8s.located_containers
	_run_as_user(lc) == 0
	msg := {
		"msg": sprintf("container %q sets runAsUser: 0 (root) at %s.securityContext; use a non-zero UID such as 10001", [lc.name, lc.path]),
		"details": {"container": lc.name, "path": sprintf("%s.securityContext.runAsUser", [lc.path])},
	}
}

_run_as_user(lc) := lc.container.securityContext.runAsUser

_run_as_user(lc) := lc.pod.securityContext.runAsUser if not lc.container.securityContext.runAsUser

_non_root(lc) if lc.container.securityContext.runAsNonRoot == true

_non_root(lc) if {
	lc.pod.securityContext.runAsNonRoot == true
	not lc.container.securityContext.runAsNonRoot == false
}

_non_root(lc) if {
	_run_as_user(lc) > 0
	not lc.container.securityContext.runAsNonRoot == false
}

# METADATA
# title: CPU and memory limits are set
# description: Without limits one container can starve its neighbours on a shared node and its cost cannot be bounded or attributed.
# custom:
#   id: PL-BASE-003
#   severity: medium
#   controls: [CIS-K8S-5.7.1, NIST-800-190-4.4.2, SOC2-CC7.2]
deny_resource_limits contains msg if {
	some lc in k8s.located_containers
	some res in ["cpu", "memory"]
	not lc.container.resources.limits[res]
	msg := {
		"msg": sprintf("container %q has no %s limit: set %s.resources.limits.%s", [lc.name, res, lc.path, res]),
		"details": {"container": lc.name, "path": sprintf("%s.resources.limits.%s", [lc.path, res])},
	}
}

# METADATA
# title: Images are pinned to a version
# description: A `latest` or missing tag makes deploys unreproducible and lets an unreviewed image reach production on the next pull.
# custom:
#   id: PL-BASE-004
#   severity: high
#   controls: [NIST-800-190-4.1.1, SOC2-CC8.1, SLSA-BUILD-L2]
deny_image_tag contains msg if {
	some lc in k8s.located_containers
	image := lc.container.image
	k8s.image_tag(image) in {"", "latest"}
	not k8s.image_has_digest(image)
	msg := {
		"msg": sprintf("container %q uses image %q without a pinned version (%s.image); use an immutable tag such as :1.4.2 or a @sha256 digest, never :latest", [lc.name, image, lc.path]),
		"details": {"container": lc.name, "image": image, "path": sprintf("%s.image", [lc.path])},
	}
}

# METADATA
# title: Images come from approved registries
# description: Only images built and scanned by your organisation's pipelines may run; public registries bypass provenance and vulnerability scanning. Applies once data.plinth.registries.allowed lists your registries.
# custom:
#   id: PL-BASE-005
#   severity: high
#   controls: [NIST-800-190-4.1.5, CIS-K8S-5.5.1, SOC2-CC8.1]
deny_image_registry contains msg if {
	# Undefined (no list configured) or empty: the rule does not apply.
	allowed := data.plinth.registries.allowed
	count(allowed) > 0
	some lc in k8s.located_containers
	image := lc.container.image
	not strings.any_prefix_match(image, allowed)
	msg := {
		"msg": sprintf("container %q uses image %q from a registry that is not allowed (%s.image); push it to one of %v", [lc.name, image, lc.path, allowed]),
		"details": {"container": lc.name, "image": image, "path": sprintf("%s.image", [lc.path]), "allowed": allowed},
	}
}

# METADATA
# title: No privilege escalation
# description: allowPrivilegeEscalation lets setuid binaries gain more privileges than the container started with.
# custom:
#   id: PL-BASE-006
#   severity: medium
#   controls: [CIS-K8S-5.2.5, NIST-800-190-4.4.3]
warn_privilege_escalation contains msg if {
	some lc in k8s.located_containers
	not lc.container.securityContext.allowPrivilegeEscalation == false
	msg := sprintf("container %q does not set %s.securityContext.allowPrivilegeEscalation: false; set it unless the container needs setuid binaries", [lc.name, lc.path])
}
