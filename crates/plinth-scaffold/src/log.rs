//! What leaves a run: Backstage-shaped events and log lines, with every
//! secret value replaced by `***` first.

use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tokio::sync::mpsc::UnboundedSender;

/// A log event of a run, as Backstage's event stream carries it
/// (`body.message`, `body.stepId`, `body.status`). The run's one
/// `completion` event is written by whoever hosts the run, once it ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEvent {
    pub body: Value,
    #[serde(rename = "createdAt", with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// Replaces secret values with `***` in text and JSON leaving the run.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: &BTreeMap<String, String>) -> Redactor {
        let mut secrets: Vec<String> = secrets.values().filter(|s| !s.is_empty()).cloned().collect();
        // Longest first so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }

    pub fn value(&self, value: &Value) -> Value {
        if self.secrets.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), self.value(v))).collect()),
            other => other.clone(),
        }
    }
}

/// Emits log lines for one step (or the run), redacted.
pub struct Logger {
    events: Option<UnboundedSender<RunEvent>>,
    redactor: Redactor,
    step: Option<String>,
    lines: parking_lot::Mutex<Vec<String>>,
}

impl Logger {
    pub fn new(events: Option<UnboundedSender<RunEvent>>, redactor: Redactor) -> Logger {
        Logger { events, redactor, step: None, lines: Default::default() }
    }

    pub(crate) fn for_step(&self, step: &str) -> Logger {
        Logger {
            events: self.events.clone(),
            redactor: self.redactor.clone(),
            step: Some(step.to_string()),
            lines: Default::default(),
        }
    }

    pub fn log(&self, message: &str) {
        let mut body = json!({"message": self.redactor.text(message)});
        if let Some(step) = &self.step {
            body["stepId"] = json!(step);
        }
        self.emit(body);
    }

    pub(crate) fn status(&self, message: &str, status: &str) {
        let body = json!({"message": self.redactor.text(message), "stepId": self.step, "status": status});
        self.emit(body);
    }

    fn emit(&self, body: Value) {
        if let Some(message) = body["message"].as_str() {
            let prefix = self.step.as_deref().map(|s| format!("[{s}] ")).unwrap_or_default();
            self.lines.lock().push(format!("{prefix}{message}"));
        }
        if let Some(events) = &self.events {
            let _ = events.send(RunEvent { body, created_at: time::OffsetDateTime::now_utc() });
        }
    }

    pub(crate) fn take_lines(&self) -> Vec<String> {
        std::mem::take(&mut self.lines.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_everywhere() {
        let secrets = BTreeMap::from([("token".to_string(), "s3cr3t-value".to_string())]);
        let redactor = Redactor::new(&secrets);
        assert_eq!(redactor.text("token=s3cr3t-value!"), "token=***!");
        assert_eq!(redactor.value(&json!({"a": ["x s3cr3t-value"]})), json!({"a": ["x ***"]}));
    }
}
