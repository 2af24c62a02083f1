//! The golden-path service: templates come from the catalogue, runs are
//! recorded in the store (task row + ordered events), executed in the
//! background by `plinth-scaffold` and streamed to watchers. At start, runs
//! a previous process left unfinished are marked failed with the reason.

use super::StartError;
use crate::lease::{Flow, Job, Leadership};
use crate::policy::service::{PolicyService, RequestContext};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use plinth_catalog::git::GitSource;
use plinth_catalog::{Catalog, EntityFilter};
use plinth_policy::{Decision, Point};
use plinth_scaffold::params;
use plinth_scaffold::Limits;
use plinth_scaffold::{
    Forges, Host, PolicyRequest, RegisterTarget, RunEvent, RunReport, RunRequest, ScaffoldError, Template,
    TemplateFiles,
};
use plinth_store::{Backend, NewLocation, NewTask, NewTaskEvent, Store, TaskEventRow, TaskEventType, TaskStatus};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch, Semaphore};

/// How often a running (or queued) run proves its runner is alive.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A run whose heartbeat is older than this lost its runner.
const STALE_AFTER: Duration = Duration::from_secs(20);

async fn fail_stale_runs(store: &Store, stale_after: Option<Duration>) {
    let now = time::OffsetDateTime::now_utc();
    let before = stale_after.map(|age| now - age);
    match store.fail_interrupted_tasks(RESTART_REASON, now, before).await {
        Ok(ids) if !ids.is_empty() => {
            tracing::warn!(
                runs = ids.len(),
                ?ids,
                "golden-path runs whose runner stopped (restart or crash) marked failed"
            )
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "cannot mark interrupted golden-path runs"),
    }
}

/// Reason recorded on runs a previous process did not finish.
pub const RESTART_REASON: &str =
    "the server restarted while this run was in progress; nothing after its last logged step happened — start it again";

#[derive(Debug, Clone)]
pub struct GoldenPathsConfig {
    /// Run workspaces live under `<work_dir>/<task id>` and are removed after.
    pub work_dir: PathBuf,
    /// Local repositories created by `publish:git` live under this root.
    pub repo_root: PathBuf,
    /// Where git catalogue checkouts are (the catalogue's data directory).
    pub data_dir: PathBuf,
    pub run_timeout: Duration,
    pub limits: Limits,
    /// Runs executing at once; more wait their turn (status `open`).
    pub concurrency: usize,
    /// GitHub and GitLab integrations for `publish:github`, `publish:gitlab`
    /// and their pull/merge-request forms, with the outbound allowlist
    /// their REST calls pass. Default: from `PLINTH_GITHUB_*` and
    /// `PLINTH_GITLAB_*`, public addresses only; the server replaces it
    /// with one over its own allowlist.
    pub forges: Arc<Forges>,
}

impl GoldenPathsConfig {
    pub fn new(data_dir: PathBuf) -> GoldenPathsConfig {
        GoldenPathsConfig {
            work_dir: data_dir.join("scaffolder").join("work"),
            repo_root: data_dir.join("repos"),
            data_dir,
            run_timeout: Duration::from_secs(600),
            limits: Limits::default(),
            concurrency: 4,
            forges: Arc::new(Forges::from_env(Arc::new(plinth_confine::OutboundPolicy::default_for(false)))),
        }
    }
}

/// A run this process executes: its watchers' channel and its cancel switch.
struct Running {
    events: broadcast::Sender<TaskEventRow>,
    cancel: watch::Sender<bool>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ScaffolderMetrics {
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub cancelled: AtomicU64,
    /// Runs stopped by a `plinth:policy` deny (also counted as failed).
    pub denied: AtomicU64,
    pub dry_runs: AtomicU64,
    pub run_millis_total: AtomicU64,
}

impl std::fmt::Debug for Scaffolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scaffolder").field("config", &self.config).finish_non_exhaustive()
    }
}

pub struct Scaffolder {
    config: GoldenPathsConfig,
    store: Store,
    catalog: Arc<Catalog>,
    host: Arc<ServerHost>,
    /// Runs this process is executing (or has queued).
    running: Mutex<HashMap<String, Running>>,
    pub metrics: ScaffolderMetrics,
    permits: Arc<Semaphore>,
}

impl Scaffolder {
    pub async fn start(
        config: GoldenPathsConfig,
        store: Store,
        catalog: Arc<Catalog>,
        policy: Option<Arc<PolicyService>>,
        leadership: &Arc<Leadership>,
    ) -> Arc<Scaffolder> {
        let _ = std::fs::create_dir_all(&config.repo_root);
        // Workspaces of runs the last process did not finish.
        let _ = std::fs::remove_dir_all(&config.work_dir);
        // A SQLite store belongs to this process alone: whatever was running
        // was interrupted. On PostgreSQL other replicas may be running
        // theirs, so only runs whose heartbeat stopped are failed — here
        // and by the sweeper below, which runs on the replica leading it.
        let stale = match store.backend() {
            Backend::Sqlite => None,
            Backend::Postgres => Some(STALE_AFTER),
        };
        fail_stale_runs(&store, stale).await;
        let sweeper = store.clone();
        leadership.spawn_job(Job::RunSweeper, HEARTBEAT_INTERVAL, move |term| {
            let sweeper = sweeper.clone();
            async move {
                if term.holds() {
                    fail_stale_runs(&sweeper, Some(STALE_AFTER)).await;
                }
                Flow::Continue
            }
        });
        let host = Arc::new(ServerHost {
            policy,
            catalog: catalog.clone(),
            repo_root: config.repo_root.clone(),
            forges: config.forges.clone(),
        });
        Arc::new(Scaffolder {
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
            store,
            catalog,
            host,
            running: Mutex::new(HashMap::new()),
            metrics: ScaffolderMetrics::default(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &GoldenPathsConfig {
        &self.config
    }

    /// Every Template entity in the catalogue, parsed (or its problems).
    pub fn templates(&self) -> Vec<(Value, Result<Template, Vec<plinth_scaffold::TemplateProblem>>)> {
        let state = self.catalog.read();
        // The filter index's kind bitmap: no walk over the whole catalogue.
        let templates = state.filters().matching(&EntityFilter::equals("kind", "template"), state.live());
        let mut out: Vec<_> = templates
            .iter()
            .filter_map(|node| state.entity(node))
            .filter_map(|record| serde_json::from_str::<Value>(&state.render_json(record)).ok())
            .map(|entity| {
                let parsed = Template::from_entity(&entity);
                (entity, parsed)
            })
            .collect();
        out.sort_by(|a, b| a.0["metadata"]["name"].as_str().cmp(&b.0["metadata"]["name"].as_str()));
        out
    }

    /// A catalogued template and its files, by ref (`template:default/x`,
    /// `default/x` or `x`).
    pub async fn template(&self, reference: &str) -> Result<(Arc<Template>, TemplateFiles), StartError> {
        let key = plinth_model::parse_ref_lenient(reference, Some("template"))
            .map_err(|e| StartError::NotFound(format!("`{reference}` is not a template reference: {e}")))?
            .key();
        let (entity, location_id) = {
            let state = self.catalog.read();
            let record = state.get(&key).ok_or_else(|| {
                StartError::NotFound(format!(
                    "no template `{key}` in the catalogue; list them with `plinth template ls` or GET /api/scaffolder/v2/templates"
                ))
            })?;
            let entity: Value = serde_json::from_str(&state.render_json(record)).unwrap_or(Value::Null);
            (entity, record.location_id.to_string())
        };
        let template = Template::from_entity(&entity).map_err(StartError::BadTemplate)?;
        let files = self.template_files(&entity, &location_id).await;
        Ok((Arc::new(template), files))
    }

    /// The directory a catalogued template was read from: its file's
    /// directory, or the same place inside the git checkout.
    async fn template_files(&self, entity: &Value, location_id: &str) -> TemplateFiles {
        let annotation = entity["metadata"]["annotations"][plinth_model::ANNOTATION_MANAGED_BY_LOCATION]
            .as_str()
            .unwrap_or_default();
        if let Some(path) = annotation.strip_prefix("file:") {
            return match std::path::Path::new(path).parent() {
                Some(dir) => TemplateFiles::Dir(dir.to_path_buf()),
                None => TemplateFiles::None,
            };
        }
        let Ok(Some(location)) = self.store.get_location(location_id).await else { return TemplateFiles::None };
        if location.kind != crate::catalog::LocationKind::Git {
            return TemplateFiles::None;
        }
        let source = GitSource::from_target(&location.target, location.branch.as_deref());
        let checkout = self.config.data_dir.join("git").join(source.checkout_name());
        // `url:…#rev:path/template.yaml` or `url:https://host/o/r/blob/rev/path/template.yaml`.
        let relative = annotation
            .rsplit_once(':')
            .filter(|_| annotation.contains('#'))
            .map(|(_, path)| path.to_string())
            .or_else(|| {
                annotation.split_once("/blob/").and_then(|(_, rest)| rest.split_once('/')).map(|(_, p)| p.to_string())
            });
        let Ok(root) = plinth_confine::Root::new(&checkout) else { return TemplateFiles::None };
        let dir = relative.and_then(|r| std::path::Path::new(&r).parent().map(|p| p.to_string_lossy().into_owned()));
        match dir.map(|d| root.resolve(root.path(), &d)) {
            Some(Ok(dir)) => TemplateFiles::Dir(dir),
            _ => TemplateFiles::None,
        }
    }

    /// Validates and records a run, then executes it in the background.
    pub async fn create_task(
        self: &Arc<Self>,
        template_ref: &str,
        values: Value,
        secrets: BTreeMap<String, String>,
        user: Option<String>,
    ) -> Result<String, StartError> {
        let (template, files) = self.template(template_ref).await?;
        let values = params::apply_defaults(&template.parameters, &values);
        let errors = params::validate(&template.parameters, &values);
        if !errors.is_empty() {
            return Err(StartError::BadValues(errors));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let redactor = plinth_scaffold::Redactor::new(&secrets);
        let spec = json!({
            "apiVersion": plinth_scaffold::API_VERSION,
            "templateInfo": {"entityRef": template.entity_ref},
            "parameters": redactor.value(&values),
            "steps": template.steps,
            "output": template.output,
            "user": {"ref": user},
        });
        let created_at = time::OffsetDateTime::now_utc();
        self.store
            .create_task(&NewTask {
                id: id.clone(),
                template_ref: template.entity_ref.clone(),
                spec,
                created_by: user.clone(),
                created_at,
            })
            .await
            .map_err(StartError::Store)?;
        tracing::info!(
            target: "plinth::audit",
            task = %id, template = %template.entity_ref, requested_by = user.as_deref().unwrap_or("anonymous"),
            secrets = secrets.len(), "golden-path run created"
        );
        let (events, _) = broadcast::channel(1024);
        let (cancel, cancelled) = watch::channel(false);
        self.running.lock().insert(id.clone(), Running { events, cancel });
        let request = RunRequest {
            task_id: id.clone(),
            user_entity: user.as_deref().and_then(|u| self.entity(u)),
            template,
            files,
            values,
            secrets,
            user_ref: user,
            dry_run: false,
            workspace_dir: self.config.work_dir.join(&id),
            limits: self.config.limits,
            timeout: self.config.run_timeout,
            cancel: Some(cancelled),
        };
        tokio::spawn(self.clone().execute(request));
        Ok(id)
    }

    async fn execute(self: Arc<Self>, request: RunRequest) {
        let id = request.task_id.clone();
        // Beats while queued too, so other replicas' sweepers leave it be.
        let heartbeat = {
            let (store, id) = (self.store.clone(), id.clone());
            tokio::spawn(async move {
                loop {
                    let _ = store.heartbeat_task(&id, time::OffsetDateTime::now_utc()).await;
                    tokio::time::sleep(HEARTBEAT_INTERVAL).await;
                }
            })
        };
        let _permit = self.permits.clone().acquire_owned().await;
        let _ = self.store.set_task_status(&id, TaskStatus::Processing, time::OffsetDateTime::now_utc()).await;
        let (events, receiver) = mpsc::unbounded_channel();
        let writer = tokio::spawn(self.clone().write_events(id.clone(), receiver));
        let started = std::time::Instant::now();
        let report = plinth_scaffold::run(request, self.host.as_ref(), Some(events)).await;
        heartbeat.abort();
        // Every step event is stored before the run is recorded as ended, so
        // whoever sees the final status also sees the whole log.
        let _ = writer.await;
        self.metrics.run_millis_total.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        let counter = match (report.completed, report.cancelled) {
            (true, _) => &self.metrics.completed,
            (false, true) => &self.metrics.cancelled,
            (false, false) => &self.metrics.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if report.decisions.iter().any(|d| d["result"] == "deny") {
            self.metrics.denied.fetch_add(1, Ordering::Relaxed);
        }
        let status = match (report.completed, report.cancelled) {
            (true, _) => TaskStatus::Completed,
            (false, true) => TaskStatus::Cancelled,
            (false, false) => TaskStatus::Failed,
        };
        let mut output = report.output.clone();
        if !output.is_object() {
            output = json!({});
        }
        output["steps"] = json!(report.steps);
        output["policy"] = json!(report.decisions);
        let finished = time::OffsetDateTime::now_utc();
        if let Err(error) = self.store.finish_task(&id, status, finished, Some(&output), report.error.as_deref()).await
        {
            tracing::error!(task = %id, %error, "cannot record the end of a golden-path run");
        }
        let mut body = json!({"message": format!("Run completed with status: {}", status.as_str()), "status": status.as_str(), "output": output});
        if let Some(error) = &report.error {
            body["error"] = json!({"name": "Error", "message": error});
        }
        let completion = NewTaskEvent { event_type: TaskEventType::Completion, body, created_at: finished };
        self.record_events(&id, vec![completion]).await;
        self.running.lock().remove(&id);
        tracing::info!(task = %id, status = status.as_str(), error = report.error.as_deref().unwrap_or(""), "golden-path run finished");
    }

    /// Persists a run's events in order (in batches) as they come.
    async fn write_events(self: Arc<Self>, id: String, mut receiver: mpsc::UnboundedReceiver<RunEvent>) {
        let mut batch = Vec::new();
        while receiver.recv_many(&mut batch, 256).await > 0 {
            let rows = batch
                .drain(..)
                .map(|e| NewTaskEvent { event_type: TaskEventType::Log, body: e.body, created_at: e.created_at })
                .collect();
            self.record_events(&id, rows).await;
        }
    }

    /// Stores events, then hands them to this process's watchers: a
    /// watcher never sees an event the store does not have.
    async fn record_events(&self, id: &str, rows: Vec<NewTaskEvent>) {
        let ids = match self.store.append_task_events(id, &rows).await {
            Ok(ids) => ids,
            Err(error) => {
                tracing::error!(task = %id, %error, "cannot record golden-path run events");
                return;
            }
        };
        let sender = self.running.lock().get(id).map(|r| r.events.clone());
        if let Some(sender) = sender {
            for (event, event_id) in rows.into_iter().zip(ids) {
                let _ = sender.send(TaskEventRow {
                    id: event_id,
                    task_id: id.to_string(),
                    event_type: event.event_type,
                    body: event.body,
                    created_at: event.created_at,
                });
            }
        }
    }

    /// Cancels a run this process is executing (or has queued); false when
    /// it is not running here (finished, unknown, or on another replica).
    pub fn cancel(&self, id: &str, by: Option<&str>) -> bool {
        let Some(switch) = self.running.lock().get(id).map(|r| r.cancel.clone()) else { return false };
        tracing::info!(target: "plinth::audit", task = %id, cancelled_by = by.unwrap_or("anonymous"), "golden-path run cancelled");
        switch.send(true).is_ok()
    }

    /// Runs executing (or queued) in this process.
    pub fn running(&self) -> usize {
        self.running.lock().len()
    }

    /// Live events of a running task (`None` once it has finished).
    pub fn subscribe(&self, id: &str) -> Option<broadcast::Receiver<TaskEventRow>> {
        self.running.lock().get(id).map(|r| r.events.subscribe())
    }

    /// A dry run: the whole template in a throw-away workspace, policy
    /// evaluated, nothing published or registered.
    pub async fn dry_run(
        &self,
        template: Arc<Template>,
        files: TemplateFiles,
        values: Value,
        secrets: BTreeMap<String, String>,
        user: Option<String>,
    ) -> (RunReport, Vec<RunEvent>) {
        let id = format!("dry-run-{}", uuid::Uuid::now_v7());
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let request = RunRequest {
            workspace_dir: self.config.work_dir.join(&id),
            task_id: id,
            user_entity: user.as_deref().and_then(|u| self.entity(u)),
            template,
            files,
            values,
            secrets,
            user_ref: user,
            dry_run: true,
            limits: self.config.limits,
            timeout: self.config.run_timeout,
            cancel: None,
        };
        let report = plinth_scaffold::run(request, self.host.as_ref(), Some(sender)).await;
        self.metrics.dry_runs.fetch_add(1, Ordering::Relaxed);
        let mut events = Vec::new();
        while let Ok(event) = receiver.try_recv() {
            events.push(event);
        }
        (report, events)
    }

    fn entity(&self, reference: &str) -> Option<Value> {
        let key = plinth_model::parse_ref_lenient(reference, Some("user")).ok()?.key();
        let state = self.catalog.read();
        let record = state.get(&key)?;
        serde_json::from_str(&state.render_json(record)).ok()
    }
}

/// The engine's view of the server: policy decisions and registration.
struct ServerHost {
    policy: Option<Arc<PolicyService>>,
    catalog: Arc<Catalog>,
    repo_root: PathBuf,
    forges: Arc<Forges>,
}

impl Host for ServerHost {
    fn decide<'a>(
        &'a self,
        input: Value,
        request: &'a PolicyRequest,
    ) -> BoxFuture<'a, Result<(String, Decision), ScaffoldError>> {
        Box::pin(async move {
            let policy = self.policy.as_ref().ok_or_else(|| ScaffoldError::Host(
                "the policy engine is not running on this server, so plinth:policy cannot check the request (it fails closed)".into(),
            ))?;
            let context = RequestContext {
                environment: request.environment.clone(),
                user: request.user.clone(),
                profile: request.profile.clone(),
                entities: Vec::new(),
                pending: request.pending_entities.clone(),
            };
            let requested_by = request.user.clone().unwrap_or_else(|| "golden-path".into());
            Ok(policy.decide(Point::Provision, input, &context, &requested_by).await)
        })
    }

    fn register<'a>(&'a self, target: RegisterTarget) -> BoxFuture<'a, Result<Vec<String>, ScaffoldError>> {
        Box::pin(async move {
            let location = NewLocation {
                kind: "git".into(),
                target: format!("{}#{}", target.repo, target.path),
                branch: target.branch.clone(),
            };
            let (row, _, report) =
                self.catalog.add_location(location).await.map_err(|e| ScaffoldError::Host(e.to_string()))?;
            if row.status.entities == 0 {
                return Err(ScaffoldError::Host(format!(
                    "registered {} but it produced no entities ({} error(s); see GET /api/catalog/errors)",
                    row.target, report.errors
                )));
            }
            let state = self.catalog.read();
            let mut refs: Vec<String> = state
                .entities()
                .filter(|record| *record.location_id == *row.id)
                .map(|record| record.key.to_string())
                .collect();
            refs.sort();
            Ok(refs)
        })
    }

    fn repo_root(&self) -> PathBuf {
        self.repo_root.clone()
    }

    fn forges(&self) -> Arc<Forges> {
        self.forges.clone()
    }
}
