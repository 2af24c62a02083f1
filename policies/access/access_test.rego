package plinth.access_test

import rego.v1

import data.plinth.access

alice := {"kind": "user", "ref": "user:default/alice", "admin": false, "scopes": ["write"], "memberOf": ["group:default/payments"]}

root := {"kind": "user", "ref": "user:default/root", "admin": true, "scopes": ["admin"], "memberOf": []}

exporter := {"kind": "service", "ref": "service:otel", "admin": false, "scopes": ["signals:ingest"], "memberOf": []}

checkout := {"ref": "component:default/checkout", "owners": ["group:default/payments"], "ownerChain": ["group:default/payments", "group:default/commerce"]}

ledger := {"ref": "component:default/ledger", "owners": ["group:default/finance"], "ownerChain": ["group:default/finance"]}

ask(who, permission, resource) := d if {
	d := access.decision with input as {"caller": who, "permission": permission, "resource": resource}
}

test_reads_are_open_to_users if ask(alice, "catalog.read", {}).allow

test_owner_deletes_own_entity if {
	d := ask(alice, "catalog.entity.delete", checkout)
	d.allow
	d.rule == "owner"
}

test_other_team_cannot_delete if {
	d := ask(alice, "catalog.entity.delete", ledger)
	not d.allow
	d.rule == "owner-only"
	contains(d.reason, "group:default/finance")
}

test_parent_group_member_owns_child_teams_entities if {
	lead := object.union(alice, {"ref": "user:default/lead", "memberOf": ["group:default/commerce"]})
	ask(lead, "catalog.entity.delete", checkout).allow
}

test_admin_may_do_everything if {
	d := ask(root, "policy.reload", {})
	d.allow
	d.rule == "admin"
}

test_admin_flag_needs_admin_scope if {
	read_only := object.union(root, {"scopes": ["read"]})
	not ask(read_only, "policy.reload", {}).allow
	ask(read_only, "catalog.read", {}).allow
}

test_service_token_only_its_scope if {
	ask(exporter, "signals.ingest", {}).allow
	d := ask(exporter, "catalog.read", {})
	not d.allow
	d.rule == "missing-scope"
}

test_service_tokens_own_nothing if {
	writer := object.union(exporter, {"scopes": ["write"]})
	d := ask(writer, "catalog.entity.delete", checkout)
	not d.allow
	contains(d.reason, "service tokens own nothing")
}

test_audit_is_for_admins if {
	d := ask(alice, "audit.read", {})
	not d.allow
	d.rule == "admin-only"
}

test_own_tokens_only if {
	ask(alice, "auth.token.revoke", {"subject": "user:default/alice"}).allow
	not ask(alice, "auth.token.revoke", {"subject": "user:default/bob"}).allow
}

test_unknown_permission_is_refused if {
	d := ask(root, "catalog.everything", {})
	not d.allow
	d.rule == "unknown-permission"
}

test_anonymous_is_refused if {
	d := ask({"kind": "anonymous", "ref": "", "admin": false, "scopes": ["read"], "memberOf": []}, "catalog.read", {})
	not d.allow
}
