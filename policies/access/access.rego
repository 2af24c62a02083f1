# METADATA
# title: Plinth access rules
# description: >-
#   Who may do what in Plinth. Every surface (REST, the portal, the CLI,
#   agents) asks this package through the application layer, so they all get
#   the same answer. Edit it (or add files to policies/access/) to change the
#   rules without a rebuild; `plinth policy test policies/` runs its tests.
#   The answer is `decision`: {"allow", "rule", "reason"}.
package plinth.access

import rego.v1

# Each permission: the token scope it needs and who may use it.
#   any     every signed-in caller (users, and services with the scope)
#   user    signed-in users
#   owner   users in a group that owns the resource (or a parent group of it)
#   creator the user who created the resource
#   self    the user the resource belongs to (their own tokens)
#   admin   platform admins only
permissions := {
	"catalog.read": {"scope": "read", "who": "any"},
	"catalog.location.create": {"scope": "write", "who": "user"},
	"catalog.location.refresh": {"scope": "catalog:refresh", "who": "any"},
	"catalog.location.delete": {"scope": "write", "who": "owner"},
	"catalog.entity.refresh": {"scope": "catalog:refresh", "who": "any"},
	"catalog.entity.delete": {"scope": "write", "who": "owner"},
	"policy.read": {"scope": "read", "who": "any"},
	"policy.check": {"scope": "policy:check", "who": "any"},
	"policy.waiver.write": {"scope": "write", "who": "owner"},
	"policy.reload": {"scope": "admin", "who": "admin"},
	"policy.decision.inputs": {"scope": "read", "who": "admin"},
	"golden_paths.read": {"scope": "read", "who": "any"},
	"golden_paths.run": {"scope": "write", "who": "user"},
	"golden_paths.cancel": {"scope": "write", "who": "creator"},
	"signals.read": {"scope": "read", "who": "any"},
	"signals.ingest": {"scope": "signals:ingest", "who": "any"},
	"signals.alert.write": {"scope": "write", "who": "owner"},
	"signals.trace.content": {"scope": "read", "who": "owner"},
	"audit.read": {"scope": "read", "who": "admin"},
	"auth.token.create": {"scope": "write", "who": "self"},
	"auth.token.list": {"scope": "read", "who": "self"},
	"auth.token.revoke": {"scope": "write", "who": "self"},
}

# What a token scope also grants: `write` covers reading and the narrow
# scopes; `admin` covers everything.
implied := {
	"read": {"read", "policy:check"},
	"write": {"read", "write", "policy:check", "catalog:refresh", "signals:ingest"},
	"admin": {"read", "write", "admin", "policy:check", "catalog:refresh", "signals:ingest"},
	"policy:check": {"policy:check"},
	"catalog:refresh": {"catalog:refresh"},
	"signals:ingest": {"signals:ingest"},
}

default asked := ""

asked := input.permission if is_string(input.permission)

default caller := {"kind": "anonymous", "ref": "", "admin": false, "scopes": [], "memberOf": []}

caller := input.caller if is_object(input.caller)

permission := permissions[asked]

granted_scopes contains s if {
	some held in caller.scopes
	some s in implied[held]
}

has_scope if permission.scope in granted_scopes

is_admin if {
	caller.admin == true
	"admin" in granted_scopes
}

# The caller is the owner, or in a group that owns the resource or one of
# its ancestors (ownership is transitive down the group tree: a member of a
# parent group owns what its child groups own).
owns if caller.ref in input.resource.ownerChain

owns if {
	some group in caller.memberOf
	group in input.resource.ownerChain
}

who_ok("any") if caller.kind in {"user", "service"}

who_ok("user") if caller.kind == "user"

who_ok("owner") if {
	caller.kind == "user"
	owns
}

who_ok("creator") if {
	caller.kind == "user"
	input.resource.createdBy == caller.ref
}

who_ok("self") if {
	caller.kind == "user"
	input.resource.subject == caller.ref
}

owners_text := concat(", ", input.resource.owners) if count(input.resource.owners) > 0

else := "nobody"

refusal("user") := "service tokens cannot do this; use a user's token or sign in"

refusal("owner") := sprintf("only the owning team may do this to %s (owned by %s)", [input.resource.ref, owners_text]) if caller.kind == "user"

else := "service tokens own nothing; use a token of a user in the owning team"

refusal("creator") := sprintf("only %s, who created it, or an admin may do this", [input.resource.createdBy])

refusal("self") := sprintf("only %s or an admin may do this", [input.resource.subject])

refusal("admin") := "only platform admins may do this"

refusal("any") := "sign in first"

# Anything the chain below does not answer is denied.
default decision := {"allow": false, "rule": "default-deny", "reason": "no access rule allows this"}

decision := {"allow": false, "rule": "unknown-permission", "reason": sprintf("%q is not a permission Plinth knows", [asked])} if {
	not permissions[asked]
} else := {"allow": false, "rule": "missing-scope", "reason": sprintf("the token lacks the `%s` scope this needs", [permission.scope])} if {
	not has_scope
} else := {"allow": true, "rule": "admin", "reason": "platform admins may do everything"} if {
	is_admin
} else := {"allow": true, "rule": permission.who, "reason": ""} if {
	who_ok(permission.who)
} else := {"allow": false, "rule": sprintf("%s-only", [permission.who]), "reason": refusal(permission.who)}
