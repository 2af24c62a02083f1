//! Golden paths in the portal: the template list (`/create`), a form
//! generated from a template's JSON Schema pages (with preview by dry run
//! and create, done by `portal.js`), a run's page (a server-rendered
//! snapshot that `portal.js` keeps live from the event stream) and the list
//! of recent runs.
//!
//! Each page renders a typed view: `list` (`create.html`), `form`
//! (`create_template.html`) and `runs` (`create_tasks.html`,
//! `create_task.html`). The JSON that remains is input only: a template's
//! parameter schemas and a run's spec and output, read into typed rows.

mod form;
mod list;
mod runs;

pub(super) use form::template_page;
pub(super) use list::templates_page;
pub(super) use runs::{task_page, tasks_page};

use crate::AppState;
use serde::Serialize;
use serde_json::Value;

/// Whether this server runs golden paths.
fn enabled(app: &AppState) -> bool {
    app.platform.golden_paths().service().is_ok()
}

/// A problem of an invalid template, with the field it is in.
#[derive(Debug, Serialize)]
struct ProblemRow {
    /// The field, e.g. `spec.steps[2].action`.
    field: String,
    message: String,
}

/// A JSON value as text: a string as it is, anything else as JSON; `None`
/// for null.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Renders a view through the portal's environment (strict undefined
/// values, the real `base.html`), failing the test when it does not render.
#[cfg(test)]
fn rendered<T: Serialize>(template: &str, view: &T) -> String {
    use axum::http::StatusCode;
    let response = super::page(StatusCode::IM_A_TEAPOT, template, view);
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT, "{template} did not render (see the log)");
    let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).expect("body");
    String::from_utf8(body.to_vec()).expect("utf-8")
}
