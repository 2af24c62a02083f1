//! `/audit`: the audit log for platform admins, newest first, filtered by
//! actor, action prefix or target, a page at a time.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use plinth_app::audit::{AuditEntry, AuditQuery};
use plinth_app::Caller;

use super::view::When;
use super::{error_page, page, query};
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;

/// Rows per page.
const PAGE: usize = 100;

/// The audit page.
#[derive(serde::Serialize)]
struct AuditView {
    title: &'static str,
    actor: String,
    action: String,
    target: String,
    rows: Vec<AuditRow>,
    next: Option<String>,
}

/// One row as shown.
#[derive(serde::Serialize)]
struct AuditRow {
    seq: i64,
    at: When,
    actor: String,
    action: String,
    target: String,
    outcome: &'static str,
    request_id: String,
    detail: String,
}

impl From<&AuditEntry> for AuditRow {
    fn from(e: &AuditEntry) -> AuditRow {
        AuditRow {
            seq: e.seq,
            at: When::at(e.at),
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            outcome: e.outcome.as_str(),
            request_id: e.request_id.clone().unwrap_or_default(),
            detail: if e.detail.as_object().is_some_and(|o| o.is_empty()) {
                String::new()
            } else {
                e.detail.to_string()
            },
        }
    }
}

pub(super) async fn audit_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Response {
    let text = |key: &str| {
        params.one(key).map(str::trim).filter(|v| !v.is_empty()).map(|v| v.chars().take(512).collect::<String>())
    };
    let (actor, action, target) = (text("actor"), text("action"), text("target"));
    let before_seq = match params.one("before").map(str::parse::<i64>) {
        Some(Ok(seq)) if seq > 0 => Some(seq),
        Some(_) => return error_page(ApiError::bad_request("`before` must be a row number from this page's links")),
        None => None,
    };
    let (action_exact, action_prefix) = match &action {
        Some(a) if a.ends_with('*') => (None, Some(a.trim_end_matches('*').to_string())),
        Some(a) => (Some(a.clone()), None),
        None => (None, None),
    };
    let query_rows = AuditQuery {
        actor: actor.clone(),
        action: action_exact,
        action_prefix,
        target: target.clone(),
        before_seq,
        limit: PAGE,
        ..AuditQuery::default()
    };
    let (entries, next) = match app.platform.audit().entries(&caller, &query_rows).await {
        Ok(found) => found,
        Err(error) => return error_page(error.into()),
    };
    let (actor, action, target) = (actor.unwrap_or_default(), action.unwrap_or_default(), target.unwrap_or_default());
    let next = next.map(|seq| {
        format!(
            "/audit?{}",
            query(&[("actor", &actor), ("action", &action), ("target", &target), ("before", &seq.to_string())])
        )
    });
    let view = AuditView {
        title: "Audit log",
        rows: entries.iter().map(AuditRow::from).collect(),
        actor,
        action,
        target,
        next,
    };
    page(StatusCode::OK, "audit.html", &view)
}
