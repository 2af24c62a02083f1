//! Who is asking. Every use case takes a [`Caller`], so that authorisation
//! and audit happen here once, whatever the surface.

use std::net::IpAddr;

/// Who a caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No identity was presented (local mode).
    Anonymous,
    /// Plinth itself (background work, the catalogue's own decisions).
    System(&'static str),
}

/// The caller of a use case: who, from where, and which request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The name the caller gives for itself (`X-Plinth-User`, an admission
    /// request's `userInfo`). Recorded as the requester, never trusted for
    /// a permission.
    pub claimed_name: Option<String>,
    pub address: Option<IpAddr>,
    /// The request this call serves (for logs and the audit trail).
    pub request_id: Option<String>,
}

impl Caller {
    pub fn anonymous() -> Caller {
        Caller { principal: Principal::Anonymous, claimed_name: None, address: None, request_id: None }
    }

    /// Plinth acting on its own (`plinth:catalog`, `golden-path`, …).
    pub fn system(name: &'static str) -> Caller {
        Caller { principal: Principal::System(name), claimed_name: None, address: None, request_id: None }
    }

    pub fn with_claimed_name(mut self, name: Option<String>) -> Caller {
        self.claimed_name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        self
    }

    /// The name recorded as who asked (decision log, runs, waivers).
    pub fn requester(&self) -> String {
        match (&self.principal, &self.claimed_name) {
            (_, Some(name)) => name.clone(),
            (Principal::System(name), None) => (*name).to_string(),
            (Principal::Anonymous, None) => "anonymous".to_string(),
        }
    }
}
