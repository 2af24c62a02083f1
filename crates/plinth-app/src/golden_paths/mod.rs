//! Golden paths: catalogued templates, runs (validated, recorded, executed
//! in the background, followed live), cancellation and dry runs. One
//! method per use case.

pub mod service;

use futures::Stream;
use plinth_scaffold::params::{self, FieldError as ParamError};
use plinth_scaffold::{ActionInfo, DirectoryEntry, RunEvent, RunReport, Template, TemplateFiles, TemplateProblem};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

pub use plinth_scaffold::{ForgeIntegration, ForgeKind, Forges};
pub use plinth_store::{TaskEventRow, TaskEventType, TaskQuery, TaskRow, TaskStatus};
pub use service::{GoldenPathsConfig, Scaffolder, ScaffolderMetrics, RESTART_REASON};

use crate::access::{Permission, Resource};
use crate::audit::AuditOutcome;
use crate::{AppError, AppResult, Caller, FieldError, Platform, Principal};

/// Who a run is recorded as started by (and whose `User` entity the
/// template sees): the signed-in user, a service, or in local mode the
/// name the caller gives.
fn runner(caller: &Caller) -> Option<String> {
    match &caller.principal {
        Principal::User { .. } | Principal::Service { .. } => Some(caller.actor()),
        Principal::Local => caller.claimed_name.clone(),
        Principal::Anonymous | Principal::System(_) => None,
    }
}

/// A catalogued template, checked.
#[derive(Debug, Clone)]
pub struct TemplateListing {
    /// The Template entity as catalogued.
    pub entity: Value,
    pub template: Result<Template, Vec<TemplateProblem>>,
}

/// A run to start.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    /// `template:default/service`, `default/service` or `service`.
    pub template_ref: String,
    pub values: Value,
    /// Secret values: usable as `${{ secrets.x }}`, never stored or logged.
    pub secrets: BTreeMap<String, String>,
}

/// A dry run: a catalogued template, or an inline one with its files.
#[derive(Debug, Clone, Default)]
pub struct DryRun {
    pub template: Option<Value>,
    pub template_ref: Option<String>,
    pub values: Value,
    pub secrets: BTreeMap<String, String>,
    pub directory_contents: Vec<DirectoryEntry>,
}

/// What a dry run did.
#[derive(Debug, Clone)]
pub struct DryRunReport {
    pub report: RunReport,
    pub events: Vec<RunEvent>,
    /// The worst policy result (`allow`, `warn`, `deny`, or `none`).
    pub policy_result: &'static str,
    /// Every violation, with the document (`subject`) it was found in.
    pub violations: Vec<Value>,
}

/// The golden-path use cases.
pub struct GoldenPaths<'a> {
    pub(crate) platform: &'a Platform,
}

impl<'a> GoldenPaths<'a> {
    /// The service, or `Unavailable` when the server runs without it.
    pub fn service(&self) -> AppResult<&'a Arc<Scaffolder>> {
        self.platform.golden_paths.as_ref().ok_or_else(|| {
            AppError::unavailable("golden paths are not enabled on this server; start it with `plinth serve`")
        })
    }

    fn read(&self, caller: &Caller) -> AppResult<()> {
        self.platform.access.check(caller, Permission::GoldenPathsRead, &Resource::none())
    }

    /// Every Template entity in the catalogue, checked.
    pub fn templates(&self, caller: &Caller) -> AppResult<Vec<TemplateListing>> {
        self.read(caller)?;
        Ok(self
            .service()?
            .templates()
            .into_iter()
            .map(|(entity, template)| TemplateListing { entity, template })
            .collect())
    }

    /// One catalogued template, checked (400 with its problems when broken).
    pub async fn template(&self, caller: &Caller, reference: &str) -> AppResult<Arc<Template>> {
        self.read(caller)?;
        Ok(self.service()?.template(reference).await.map_err(start_error)?.0)
    }

    /// The installed actions with their input and output schemas.
    pub fn actions(&self) -> Vec<ActionInfo> {
        plinth_scaffold::list_actions()
    }

    /// Validates and records a run, then executes it in the background.
    pub async fn start(&self, caller: &Caller, run: NewRun) -> AppResult<String> {
        let service = self.service()?;
        self.platform.access.check(caller, Permission::GoldenPathsRun, &Resource::none())?;
        let values = match run.values {
            Value::Null => json!({}),
            values @ Value::Object(_) => values,
            _ => return Err(AppError::invalid_field("values", "must be an object of parameter values")),
        };
        let template_ref = run.template_ref.clone();
        let id =
            service.create_task(&run.template_ref, values, run.secrets, runner(caller)).await.map_err(start_error)?;
        let detail = json!({"template": template_ref});
        self.platform.record(caller, "golden_paths.run", &id, AuditOutcome::Allowed, detail).await;
        Ok(id)
    }

    /// Runs, newest first.
    pub async fn runs(&self, caller: &Caller, query: &TaskQuery) -> AppResult<(Vec<TaskRow>, u64)> {
        self.read(caller)?;
        Ok(self.service()?.store().list_tasks(query).await?)
    }

    /// One run: its spec (parameters without secrets), status and output.
    pub async fn run(&self, caller: &Caller, id: &str) -> AppResult<TaskRow> {
        self.read(caller)?;
        self.service()?
            .store()
            .get_task(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no task `{id}`; list runs with GET /api/scaffolder/v2/tasks")))
    }

    /// Cancels a run: the step in progress is stopped, nothing after it runs.
    pub async fn cancel(&self, caller: &Caller, id: &str) -> AppResult<()> {
        let service = self.service()?;
        let task = self.run(caller, id).await?;
        let resource = Resource::created_by(format!("run {id}"), task.created_by.clone());
        self.platform.access.check(caller, Permission::GoldenPathsCancel, &resource)?;
        if service.cancel(id, Some(&caller.requester())) {
            self.platform.record(caller, "golden_paths.cancel", id, AuditOutcome::Allowed, json!({})).await;
            return Ok(());
        }
        Err(AppError::conflict(match task.status {
            TaskStatus::Open | TaskStatus::Processing => {
                format!("run {id} is executing on another replica; cancel it there")
            }
            status => format!("run {id} has already finished ({}); nothing to cancel", status.as_str()),
        }))
    }

    /// A run's events after `after` (Backstage's polling alternative).
    pub async fn events(&self, caller: &Caller, id: &str, after: Option<i64>) -> AppResult<Vec<TaskEventRow>> {
        self.run(caller, id).await?;
        Ok(self.service()?.store().task_events(id, after).await?)
    }

    /// A run's events as they happen, from `after` to its completion: the
    /// stored ones, then live ones — fed by this process while it runs
    /// the task, and from the store when another replica does.
    pub async fn follow(
        &self,
        caller: &Caller,
        id: &str,
        after: Option<i64>,
    ) -> AppResult<impl Stream<Item = TaskEventRow> + Send + 'static> {
        self.run(caller, id).await?;
        let scaffolder = self.service()?.clone();
        let id = id.to_string();
        let mut last = after.unwrap_or(0);
        // Subscribe before reading what is stored, so nothing falls between.
        let live = scaffolder.subscribe(&id);
        let (sender, receiver) = tokio::sync::mpsc::channel::<TaskEventRow>(256);
        tokio::spawn(async move {
            let mut live = live;
            let mut idle = 0u32;
            loop {
                let stored = scaffolder.store().task_events(&id, Some(last)).await.unwrap_or_default();
                for event in stored.iter().cloned() {
                    last = event.id;
                    let done = event.event_type == TaskEventType::Completion;
                    if sender.send(event).await.is_err() || done {
                        return;
                    }
                }
                let Some(receiver) = live.as_mut() else {
                    // Not running in this process: on another replica, or
                    // between its last stored event and its completion. The
                    // store has everything: poll it.
                    if let Some(next) = scaffolder.subscribe(&id) {
                        live = Some(next);
                        continue;
                    }
                    if sender.is_closed() {
                        return;
                    }
                    if stored.is_empty() {
                        idle += 1;
                        // A finished run whose completion event never got
                        // stored (the store failed then): end, don't wait.
                        if idle > 8 {
                            let finished = scaffolder
                                .store()
                                .get_task(&id)
                                .await
                                .ok()
                                .flatten()
                                .is_some_and(|t| !matches!(t.status, TaskStatus::Open | TaskStatus::Processing));
                            if finished {
                                return;
                            }
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    } else {
                        idle = 0;
                    }
                    continue;
                };
                loop {
                    match receiver.recv().await {
                        Ok(event) if event.id > last => {
                            last = event.id;
                            let done = event.event_type == TaskEventType::Completion;
                            if sender.send(event).await.is_err() || done {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => {
                            live = None;
                            break;
                        }
                    }
                }
            }
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(receiver))
    }

    /// Runs a template without publishing or registering anything. Invalid
    /// parameters are an `InvalidInput` with every field's problem, as for
    /// a real run.
    pub async fn dry_run(&self, caller: &Caller, request: DryRun) -> AppResult<DryRunReport> {
        let service = self.service()?;
        self.platform.access.check(caller, Permission::GoldenPathsRun, &Resource::none())?;
        let (template, files) = match (&request.template, &request.template_ref) {
            (Some(entity), _) => {
                let template = Template::from_entity(entity).map_err(bad_template)?;
                let files = if request.directory_contents.is_empty() {
                    TemplateFiles::None
                } else {
                    TemplateFiles::from_entries(&request.directory_contents)
                        .map_err(|e| AppError::invalid_field("directoryContents", e))?
                };
                (Arc::new(template), files)
            }
            (None, Some(reference)) => service.template(reference).await.map_err(start_error)?,
            (None, None) => {
                return Err(AppError::invalid("give `template` (an inline Template entity) or `templateRef`"))
            }
        };
        let values = match request.values {
            Value::Null => json!({}),
            values @ Value::Object(_) => values,
            _ => return Err(AppError::invalid_field("values", "must be an object of parameter values")),
        };
        let errors = params::validate(&template.parameters, &params::apply_defaults(&template.parameters, &values));
        if !errors.is_empty() {
            return Err(bad_values(errors));
        }
        let (report, events) = service.dry_run(template, files, values, request.secrets, runner(caller)).await;
        let policy_result = report
            .decisions
            .iter()
            .filter_map(|d| d["result"].as_str())
            .max_by_key(|r| match *r {
                "deny" => 2,
                "warn" => 1,
                _ => 0,
            })
            .map(|r| match r {
                "deny" => "deny",
                "warn" => "warn",
                _ => "allow",
            })
            .unwrap_or("none");
        let violations: Vec<Value> = report
            .decisions
            .iter()
            .flat_map(|d| {
                let subject = d["subject"].clone();
                d["violations"].as_array().cloned().unwrap_or_default().into_iter().map(move |mut v| {
                    v["subject"] = subject.clone();
                    v
                })
            })
            .collect();
        Ok(DryRunReport { report, events, policy_result, violations })
    }
}

/// Why a run could not start.
#[derive(Debug)]
pub enum StartError {
    NotFound(String),
    BadTemplate(Vec<TemplateProblem>),
    BadValues(Vec<ParamError>),
    Store(plinth_store::StoreError),
}

fn start_error(error: StartError) -> AppError {
    match error {
        StartError::NotFound(message) => AppError::not_found(message),
        StartError::BadTemplate(problems) => bad_template(problems),
        StartError::BadValues(errors) => bad_values(errors),
        StartError::Store(error) => error.into(),
    }
}

fn bad_template(problems: Vec<TemplateProblem>) -> AppError {
    let message = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    let fields = problems.iter().map(|p| FieldError { field: p.field.clone(), message: p.message.clone() }).collect();
    AppError::invalid(format!("the template is invalid: {message}"))
        .with_fields(fields)
        .with_details(json!({"problems": problems}))
}

fn bad_values(errors: Vec<ParamError>) -> AppError {
    let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    let fields = errors.iter().map(|e| FieldError { field: e.field.clone(), message: e.message.clone() }).collect();
    AppError::invalid(format!("invalid parameters: {message}"))
        .with_fields(fields)
        .with_details(json!({"errors": errors}))
}
