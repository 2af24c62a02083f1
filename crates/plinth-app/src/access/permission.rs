//! The permissions the access rules decide. Their names are the keys of
//! `permissions` in `policies/access/access.rego`; a test holds the two
//! lists equal.

/// One thing a caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    CatalogRead,
    CatalogLocationCreate,
    CatalogLocationRefresh,
    CatalogLocationDelete,
    CatalogEntityRefresh,
    CatalogEntityDelete,
    PolicyRead,
    PolicyCheck,
    PolicyWaiverWrite,
    PolicyReload,
    PolicyDecisionInputs,
    GoldenPathsRead,
    GoldenPathsRun,
    GoldenPathsCancel,
    SignalsRead,
    SignalsIngest,
    SignalsAlertWrite,
    SignalsTraceContent,
    AuditRead,
    AuthTokenCreate,
    AuthTokenList,
    AuthTokenRevoke,
}

impl Permission {
    /// Every permission, for listings and tests.
    pub const ALL: [Permission; 22] = [
        Permission::CatalogRead,
        Permission::CatalogLocationCreate,
        Permission::CatalogLocationRefresh,
        Permission::CatalogLocationDelete,
        Permission::CatalogEntityRefresh,
        Permission::CatalogEntityDelete,
        Permission::PolicyRead,
        Permission::PolicyCheck,
        Permission::PolicyWaiverWrite,
        Permission::PolicyReload,
        Permission::PolicyDecisionInputs,
        Permission::GoldenPathsRead,
        Permission::GoldenPathsRun,
        Permission::GoldenPathsCancel,
        Permission::SignalsRead,
        Permission::SignalsIngest,
        Permission::SignalsAlertWrite,
        Permission::SignalsTraceContent,
        Permission::AuditRead,
        Permission::AuthTokenCreate,
        Permission::AuthTokenList,
        Permission::AuthTokenRevoke,
    ];

    /// The name the rules, the audit log and error messages use.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::CatalogRead => "catalog.read",
            Permission::CatalogLocationCreate => "catalog.location.create",
            Permission::CatalogLocationRefresh => "catalog.location.refresh",
            Permission::CatalogLocationDelete => "catalog.location.delete",
            Permission::CatalogEntityRefresh => "catalog.entity.refresh",
            Permission::CatalogEntityDelete => "catalog.entity.delete",
            Permission::PolicyRead => "policy.read",
            Permission::PolicyCheck => "policy.check",
            Permission::PolicyWaiverWrite => "policy.waiver.write",
            Permission::PolicyReload => "policy.reload",
            Permission::PolicyDecisionInputs => "policy.decision.inputs",
            Permission::GoldenPathsRead => "golden_paths.read",
            Permission::GoldenPathsRun => "golden_paths.run",
            Permission::GoldenPathsCancel => "golden_paths.cancel",
            Permission::SignalsRead => "signals.read",
            Permission::SignalsIngest => "signals.ingest",
            Permission::SignalsAlertWrite => "signals.alert.write",
            Permission::SignalsTraceContent => "signals.trace.content",
            Permission::AuditRead => "audit.read",
            Permission::AuthTokenCreate => "auth.token.create",
            Permission::AuthTokenList => "auth.token.list",
            Permission::AuthTokenRevoke => "auth.token.revoke",
        }
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Permission;

    /// The Rust list and the shipped rules' `permissions` name the same set.
    #[test]
    fn every_permission_is_in_the_shipped_rules_and_back() {
        let policy = plinth_policy::AccessPolicy::builtin().unwrap();
        let _ = policy;
        let source = plinth_policy::AccessPolicy::builtin_source();
        let block = source.split("permissions := {").nth(1).and_then(|s| s.split("\n}").next()).unwrap();
        let mut in_rules: Vec<&str> =
            block.lines().filter_map(|l| l.trim().strip_prefix('"')).filter_map(|l| l.split('"').next()).collect();
        in_rules.sort_unstable();
        let mut in_code: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        in_code.sort_unstable();
        assert_eq!(in_rules, in_code);
    }
}
