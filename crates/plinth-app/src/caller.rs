//! Who is asking. Every use case takes a [`Caller`], so that authorisation
//! and audit happen here once, whatever the surface.

use std::net::IpAddr;

/// Who a caller is, as authenticated by the surface (a token, a session)
/// or decided by the mode Plinth runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No identity, on a server in local mode (loopback, no auth
    /// configured): allowed everything, as a developer's own machine.
    Local,
    /// No identity, on a server that requires one: allowed nothing.
    Anonymous,
    /// A person: their `User` entity reference (`user:default/alice`).
    User { entity_ref: String },
    /// A machine (CI, an OTLP exporter) acting with a service token.
    Service { name: String },
    /// Plinth itself (background work, the catalogue's own decisions).
    System(&'static str),
}

/// The caller of a use case: who, with which rights, from where, and
/// which request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The token the caller presented (its id, never the secret).
    pub token_id: Option<String>,
    /// The token's scopes (`read`, `write`, `admin`, `signals:ingest`, …);
    /// a signed-in session has `read` and `write` (and `admin` for admins).
    pub scopes: Vec<String>,
    /// A platform admin (with the `admin` scope this may do everything).
    pub admin: bool,
    /// The name the caller gives for itself (`X-Plinth-User`, an admission
    /// request's `userInfo`). Recorded beside the requester, never trusted
    /// for a permission, and only used as the requester in local mode.
    pub claimed_name: Option<String>,
    pub address: Option<IpAddr>,
    /// The request this call serves (for logs and the audit trail).
    pub request_id: Option<String>,
}

impl Caller {
    fn of(principal: Principal) -> Caller {
        Caller {
            principal,
            token_id: None,
            scopes: Vec::new(),
            admin: false,
            claimed_name: None,
            address: None,
            request_id: None,
        }
    }

    /// No identity on a local-mode server: allowed everything.
    pub fn local() -> Caller {
        Caller::of(Principal::Local)
    }

    /// No identity where one is required: allowed nothing.
    pub fn anonymous() -> Caller {
        Caller::of(Principal::Anonymous)
    }

    /// Plinth acting on its own (`plinth:catalog`, `golden-path`, …).
    pub fn system(name: &'static str) -> Caller {
        Caller::of(Principal::System(name))
    }

    /// A signed-in user with these scopes.
    pub fn user(entity_ref: impl Into<String>, scopes: Vec<String>, admin: bool) -> Caller {
        Caller { scopes, admin, ..Caller::of(Principal::User { entity_ref: entity_ref.into() }) }
    }

    /// A service token's holder.
    pub fn service(name: impl Into<String>, scopes: Vec<String>) -> Caller {
        Caller { scopes, ..Caller::of(Principal::Service { name: name.into() }) }
    }

    pub fn with_claimed_name(mut self, name: Option<String>) -> Caller {
        self.claimed_name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        self
    }

    /// Who this is, as the audit log and decisions record it:
    /// `user:default/alice`, `service:otel-exporter`, `system:catalog`,
    /// `local` or `anonymous`.
    pub fn actor(&self) -> String {
        match &self.principal {
            Principal::Local => "local".to_string(),
            Principal::Anonymous => "anonymous".to_string(),
            Principal::User { entity_ref } => entity_ref.clone(),
            Principal::Service { name } => format!("service:{name}"),
            Principal::System(name) => format!("system:{name}"),
        }
    }

    /// The name recorded as who asked (decision log, runs, waivers): the
    /// authenticated identity; only in local mode (where nobody signs in)
    /// the name the caller claims, if any.
    pub fn requester(&self) -> String {
        match (&self.principal, &self.claimed_name) {
            (Principal::Local, Some(name)) => name.clone(),
            (Principal::System(name), _) => (*name).to_string(),
            _ => self.actor(),
        }
    }

    /// The user's entity reference, for a signed-in user.
    pub fn user_ref(&self) -> Option<&str> {
        match &self.principal {
            Principal::User { entity_ref } => Some(entity_ref),
            _ => None,
        }
    }

    /// Whether this caller proved an identity (a user or a service).
    pub fn is_authenticated(&self) -> bool {
        matches!(self.principal, Principal::User { .. } | Principal::Service { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requester_is_the_authenticated_identity_never_a_claim() {
        let user = Caller::user("user:default/alice", vec!["write".into()], false)
            .with_claimed_name(Some("user:default/mallory".into()));
        assert_eq!(user.requester(), "user:default/alice");
        let service = Caller::service("ci", vec![]).with_claimed_name(Some("root".into()));
        assert_eq!(service.requester(), "service:ci");
        let anonymous = Caller::anonymous().with_claimed_name(Some("admin".into()));
        assert_eq!(anonymous.requester(), "anonymous");
        let local = Caller::local().with_claimed_name(Some("user:default/dev".into()));
        assert_eq!(local.requester(), "user:default/dev");
        assert_eq!(Caller::local().requester(), "local");
    }
}
