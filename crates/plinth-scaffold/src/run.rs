//! One run of a template: parameters validated, steps executed in order in
//! a private workspace (removed afterwards), every log line and step
//! transition emitted as a Backstage-shaped event, secrets redacted from
//! everything that leaves the run, the whole run bounded in time.

use crate::actions::{self, ActionContext};
use crate::error::ScaffoldError;
use crate::expr::{truthy, Expressions};
use crate::files::{directory_contents, DirectoryEntry, TemplateFiles};
use crate::host::Host;
use crate::log::{Logger, Redactor, RunEvent};
use crate::params;
use crate::registry;
use crate::template::Template;
use crate::workspace::{Limits, Workspace};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

pub struct RunRequest {
    pub task_id: String,
    pub template: Arc<Template>,
    pub files: TemplateFiles,
    pub values: Value,
    pub secrets: BTreeMap<String, String>,
    /// `user.ref` and `user.entity` in expressions.
    pub user_ref: Option<String>,
    pub user_entity: Option<Value>,
    pub dry_run: bool,
    /// The run's private directory; created, then removed at the end.
    pub workspace_dir: PathBuf,
    pub limits: Limits,
    pub timeout: Duration,
    /// Becomes `true` when someone cancels the run; the step in progress is
    /// dropped (git children are killed) and nothing after it runs.
    pub cancel: Option<tokio::sync::watch::Receiver<bool>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Completed,
    Skipped,
    Failed,
    Open,
    Processing,
    Cancelled,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub id: String,
    pub name: String,
    pub action: String,
    pub status: StepStatus,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub output: Value,
    #[serde(rename = "durationMs")]
    pub duration_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub completed: bool,
    /// Stopped by a cancellation.
    pub cancelled: bool,
    pub output: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Parameter problems, when the run stopped before its first step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameter_errors: Vec<params::FieldError>,
    pub steps: Vec<StepReport>,
    /// Every log line, redacted (the dry-run response's `log`).
    pub log: Vec<String>,
    /// Policy decisions taken by `plinth:policy` steps.
    pub decisions: Vec<Value>,
    /// The workspace at the end of a dry run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub directory_contents: Vec<DirectoryEntry>,
}

/// Runs a template to the end (or its first failure) and reports. The
/// `completion` event is the caller's to emit, after it has recorded the
/// result.
pub async fn run(request: RunRequest, host: &dyn Host, events: Option<UnboundedSender<RunEvent>>) -> RunReport {
    // Forge integration tokens are no run's secrets (expressions cannot
    // read them), but nothing leaving the run may show them either.
    let mut hidden = request.secrets.clone();
    for (index, token) in host.forges().secret_values().into_iter().enumerate() {
        hidden.insert(format!("forge-token-{index}"), token);
    }
    let redactor = Redactor::new(&hidden);
    let logger = Logger::new(events, redactor.clone());
    let template = request.template.clone();
    let mut report = RunReport {
        completed: false,
        cancelled: false,
        output: Value::Null,
        error: None,
        parameter_errors: Vec::new(),
        steps: template
            .steps
            .iter()
            .map(|s| StepReport {
                id: s.id.clone(),
                name: s.name.clone(),
                action: s.action.clone(),
                status: StepStatus::Open,
                output: Value::Null,
                duration_ms: 0.0,
            })
            .collect(),
        log: Vec::new(),
        decisions: Vec::new(),
        directory_contents: Vec::new(),
    };
    let values = params::apply_defaults(&template.parameters, &request.values);
    let errors = params::validate(&template.parameters, &values);
    if !errors.is_empty() {
        let message = errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
        logger.log(&format!("parameters rejected: {message}"));
        report.error = Some(redactor.text(&format!("invalid parameters: {message}")));
        report.parameter_errors = errors;
        report.log = logger.take_lines();
        return report;
    }
    if let Err(e) = std::fs::create_dir_all(&request.workspace_dir) {
        report.error = Some(format!("cannot create the workspace {}: {e}", request.workspace_dir.display()));
        return report;
    }
    let mut workspace = Workspace::new(request.workspace_dir.clone(), request.limits);
    let deadline = request.timeout;
    let mut cancel = request.cancel.clone();
    let cancelled = async {
        match cancel.as_mut() {
            Some(receiver) => {
                let _ = receiver.wait_for(|cancelled| *cancelled).await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let outcome = tokio::select! {
        biased;
        _ = cancelled => None,
        outcome = tokio::time::timeout(
            deadline,
            execute(&request, &template, &values, host, &logger, &mut workspace, &mut report),
        ) => Some(outcome),
    };
    let interrupted = match outcome {
        Some(Ok(Ok(output))) => {
            report.completed = true;
            report.output = redactor.value(&output);
            None
        }
        Some(Ok(Err(error))) => {
            report.error = Some(redactor.text(&error.to_string()));
            None
        }
        Some(Err(_)) => {
            Some((StepStatus::Failed, format!("the run took longer than {}s and was stopped", deadline.as_secs())))
        }
        None => {
            report.cancelled = true;
            Some((StepStatus::Cancelled, "the run was cancelled; nothing after the step in progress ran".to_string()))
        }
    };
    if let Some((status, message)) = interrupted {
        for step in report.steps.iter_mut().filter(|s| s.status == StepStatus::Processing) {
            step.status = status;
            logger
                .for_step(&step.id)
                .status(&message, if status == StepStatus::Cancelled { "cancelled" } else { "failed" });
        }
        report.error = Some(message);
    }
    if request.dry_run {
        report.directory_contents = directory_contents(workspace.root(), &redactor);
    }
    let _ = std::fs::remove_dir_all(workspace.root());
    let _ = std::fs::remove_dir_all(workspace.root().with_extension("publish"));
    report.log = logger.take_lines();
    report
}

async fn execute(
    request: &RunRequest,
    template: &Template,
    values: &Value,
    host: &dyn Host,
    logger: &Logger,
    workspace: &mut Workspace,
    report: &mut RunReport,
) -> Result<Value, ScaffoldError> {
    let expressions = Expressions::new();
    let mut scope = json!({
        "parameters": values,
        "steps": {},
        "user": {"ref": request.user_ref, "entity": request.user_entity},
        "secrets": request.secrets,
        "context": {"task": {"id": request.task_id}},
    });
    for (index, step) in template.steps.iter().enumerate() {
        let started = Instant::now();
        let step_logger = logger.for_step(&step.id);
        if let Some(condition) = &step.condition {
            let value =
                expressions.render_value(condition, &scope).map_err(|e| e.context(format!("step {}: if", step.id)))?;
            if !truthy(&value) {
                step_logger
                    .status(&format!("Skipping step {} because its if condition was false", step.name), "skipped");
                report.steps[index].status = StepStatus::Skipped;
                continue;
            }
        }
        step_logger.status(&format!("Beginning step {}", step.name), "processing");
        report.steps[index].status = StepStatus::Processing;
        let items: Vec<Option<(Value, Value)>> = match &step.each {
            None => vec![None],
            Some(each) => {
                let value =
                    expressions.render_value(each, &scope).map_err(|e| e.context(format!("step {}: each", step.id)))?;
                match value {
                    Value::Array(items) => items.into_iter().enumerate().map(|(i, v)| Some((json!(i), v))).collect(),
                    Value::Object(map) => map.into_iter().map(|(k, v)| Some((json!(k), v))).collect(),
                    other => {
                        return fail(
                            &step_logger,
                            report,
                            index,
                            ScaffoldError::Expression(format!(
                                "step {}: each must give a list or an object, got {other}",
                                step.id
                            )),
                        )
                    }
                }
            }
        };
        let mut output = Map::new();
        for item in items {
            if let Some((key, value)) = &item {
                scope["each"] = json!({"key": key, "value": value});
            }
            let input = match expressions.render_value(&step.input, &scope) {
                Ok(input) => input,
                Err(e) => return fail(&step_logger, report, index, e.context(format!("step {}: input", step.id))),
            };
            let info = registry::describe(&step.action);
            if request.dry_run && info.as_ref().is_some_and(|i| !i.supports_dry_run) {
                step_logger
                    .log(&format!("dry run: {} makes changes outside the run; showing what it would do", step.action));
            }
            let mut ctx = ActionContext {
                workspace,
                files: &request.files,
                expressions: &expressions,
                host,
                logger: &step_logger,
                dry_run: request.dry_run,
                template,
                parameters: values,
                task_id: &request.task_id,
                user_ref: request.user_ref.as_deref(),
                decisions: &mut report.decisions,
            };
            match actions::run(&step.action, &mut ctx, &input).await {
                Ok(Value::Object(map)) => output.extend(map),
                Ok(_) => {}
                Err(error) => {
                    return fail(
                        &step_logger,
                        report,
                        index,
                        error.context(format!("step {} ({}) failed", step.id, step.action)),
                    )
                }
            }
        }
        if let Some(map) = scope.as_object_mut() {
            map.remove("each");
        }
        scope["steps"][&step.id] = json!({"output": output});
        report.steps[index].status = StepStatus::Completed;
        report.steps[index].output = Value::Object(output);
        report.steps[index].duration_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
        step_logger.status(&format!("Finished step {}", step.name), "completed");
    }
    expressions.render_value(&template.output, &scope).map_err(|e| e.context("output"))
}

fn fail(logger: &Logger, report: &mut RunReport, index: usize, error: ScaffoldError) -> Result<Value, ScaffoldError> {
    logger.status(&error.to_string(), "failed");
    report.steps[index].status = StepStatus::Failed;
    Err(error)
}
