//! Request and response bodies of the scaffolder API (Backstage's
//! `/api/scaffolder/v2`), each with its schema.

use plinth_app::golden_paths::{DryRunReport, TaskEventRow, TaskRow, TemplateListing};
use plinth_scaffold::{ActionInfo, DirectoryEntry, StepReport};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The catalogued templates, each checked.
#[derive(Serialize, ToSchema)]
#[schema(as = Templates)]
pub(crate) struct TemplatesDto {
    pub items: Vec<TemplateSummaryDto>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = TemplateSummary)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TemplateSummaryDto {
    pub entity_ref: String,
    pub name: String,
    pub title: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    #[serde(rename = "type")]
    pub template_type: Option<String>,
    pub owner: Option<String>,
    /// The template loads and can run.
    pub valid: bool,
    /// Why it cannot (field and message).
    pub problems: Option<Vec<ProblemDto>>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Problem)]
pub(crate) struct ProblemDto {
    /// The field, e.g. `spec.steps[2].action`.
    pub field: String,
    pub message: String,
}

impl From<&TemplateListing> for TemplateSummaryDto {
    fn from(listing: &TemplateListing) -> Self {
        let metadata = &listing.entity["metadata"];
        let name = metadata["name"].as_str().unwrap_or_default().to_string();
        TemplateSummaryDto {
            entity_ref: format!("template:{}/{name}", metadata["namespace"].as_str().unwrap_or("default")),
            title: metadata["title"].as_str().unwrap_or(&name).to_string(),
            name,
            description: metadata["description"].as_str().map(str::to_string),
            tags: metadata["tags"]
                .as_array()
                .map(|t| t.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
            template_type: listing.entity["spec"]["type"].as_str().map(str::to_string),
            owner: listing.entity["spec"]["owner"].as_str().map(str::to_string),
            valid: listing.template.is_ok(),
            problems: listing.template.as_ref().err().map(|problems| {
                problems.iter().map(|p| ProblemDto { field: p.field.clone(), message: p.message.clone() }).collect()
            }),
        }
    }
}

/// Backstage's parameter schema: the template's form pages.
#[derive(Serialize, ToSchema)]
#[schema(as = ParameterSchema)]
pub(crate) struct ParameterSchemaDto {
    pub title: String,
    pub description: String,
    pub steps: Vec<ParameterPageDto>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ParameterPage)]
pub(crate) struct ParameterPageDto {
    pub title: String,
    pub description: Option<String>,
    /// A JSON Schema (with `ui:*` form hints).
    #[schema(value_type = Object)]
    pub schema: Value,
}

/// An action with its input and output schemas.
#[derive(Serialize, ToSchema)]
#[schema(as = Action)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActionDto {
    pub id: String,
    pub description: String,
    /// `{input, output}` JSON Schemas.
    #[schema(value_type = Object)]
    pub schema: Value,
    /// Runs (without side effects) in a dry run.
    pub supports_dry_run: bool,
}

impl From<&ActionInfo> for ActionDto {
    fn from(a: &ActionInfo) -> Self {
        ActionDto {
            id: a.id.to_string(),
            description: a.description.to_string(),
            schema: a.schema.clone(),
            supports_dry_run: a.supports_dry_run,
        }
    }
}

/// `POST /tasks`: run a catalogued template.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewTask)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewTaskDto {
    /// `template:default/service` (or `default/service`, or `service`).
    #[schema(min_length = 1, max_length = 512)]
    pub template_ref: String,
    /// Parameter values (an object; `null` is none).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub values: Value,
    /// Secret values (tokens): usable as `${{ secrets.x }}`, never stored or logged.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

/// The id of a started run.
#[derive(Serialize, ToSchema)]
pub(crate) struct TaskCreated {
    pub id: String,
}

/// Runs, newest first.
#[derive(Serialize, ToSchema)]
#[schema(as = Tasks)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TasksDto {
    pub tasks: Vec<TaskDto>,
    pub total_tasks: u64,
}

/// A run's time as the API writes it: RFC 3339 UTC with milliseconds, as
/// Backstage's scaffolder does.
fn timestamp(at: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.to_offset(time::UtcOffset::UTC).format(FORMAT).unwrap_or_default()
}

/// One run.
#[derive(Serialize, ToSchema)]
#[schema(as = Task)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskDto {
    pub id: String,
    /// The template, its steps and the parameters (without secrets).
    #[schema(value_type = Object)]
    pub spec: Value,
    /// `open`, `processing`, `completed`, `failed` or `cancelled`.
    pub status: String,
    pub created_at: String,
    pub last_heartbeat_at: Option<String>,
    pub completed_at: Option<String>,
    pub created_by: Option<String>,
    /// The template's output, with `steps` and `policy`.
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    pub error: Option<TaskError>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct TaskError {
    pub name: String,
    pub message: String,
}

impl From<&TaskRow> for TaskDto {
    fn from(task: &TaskRow) -> Self {
        TaskDto {
            id: task.id.clone(),
            spec: task.spec.clone(),
            status: task.status.as_str().into(),
            created_at: timestamp(task.created_at),
            last_heartbeat_at: task.last_heartbeat_at.map(timestamp),
            completed_at: task.completed_at.map(timestamp),
            created_by: task.created_by.clone(),
            output: task.output.clone(),
            error: task.error.as_ref().map(|message| TaskError { name: "Error".into(), message: message.clone() }),
        }
    }
}

/// `{status: "cancelled"}`: the run stops within moments.
#[derive(Serialize, ToSchema)]
#[schema(as = Cancelled)]
pub(crate) struct CancelledDto {
    pub status: String,
}

/// An event of a run: a `log` line or step transition, or the `completion`.
#[derive(Serialize, ToSchema)]
#[schema(as = TaskEvent)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskEventDto {
    pub id: i64,
    pub task_id: String,
    /// `log` or `completion`.
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = Object)]
    pub body: Value,
    pub created_at: String,
}

impl From<&TaskEventRow> for TaskEventDto {
    fn from(e: &TaskEventRow) -> Self {
        TaskEventDto {
            id: e.id,
            task_id: e.task_id.clone(),
            event_type: e.event_type.as_str().into(),
            body: e.body.clone(),
            created_at: timestamp(e.created_at),
        }
    }
}

/// `POST /dry-run`: what the document says of its body (an inline
/// `template` or a `templateRef`; the inline one wins when both are given).
pub(crate) struct DryRunBody;

impl utoipa::PartialSchema for DryRunBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use serde_json::json;
        crate::api::schema::from_json(json!({
            "description": "An inline Template entity (Backstage) with its `directoryContents`, or a `templateRef` (Plinth); parameter `values` and `secrets`",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "template": {"type": ["object", "null"], "description": "An inline Template entity (Backstage); wins over `templateRef`"},
                "templateRef": {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_TEMPLATE_REF, "description": "A catalogued template (Plinth): its own directory supplies the files"},
                "values": {"type": ["object", "null"], "description": "Parameter values"},
                "secrets": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Usable as `${{ secrets.x }}`, never stored or logged"},
                "directoryContents": {"type": "array", "items": {"$ref": "#/components/schemas/DirectoryEntry"}, "description": "The inline template's files"}
            },
            "anyOf": [
                {"title": "InlineTemplate", "required": ["template"], "properties": {"template": {"type": "object"}}},
                {"title": "CataloguedTemplate", "required": ["templateRef"], "properties": {"templateRef": {"type": "string"}}}
            ]
        }))
    }
}

impl ToSchema for DryRunBody {}

/// Most characters of a template ref.
pub(crate) const MAX_TEMPLATE_REF: usize = 512;

/// `POST /dry-run` as read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DryRunRequest {
    /// An inline Template entity (Backstage) — or use `templateRef`.
    #[serde(default)]
    pub template: Option<Value>,
    /// A catalogued template (Plinth): its own directory supplies the files.
    #[serde(default)]
    pub template_ref: Option<String>,
    #[serde(default)]
    pub values: Value,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// The template's files.
    #[serde(default)]
    pub directory_contents: Vec<DirectoryEntryDto>,
}

/// One file, as Backstage's dry-run API carries it.
#[derive(Deserialize, Serialize, ToSchema)]
#[schema(as = DirectoryEntry)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryEntryDto {
    pub path: String,
    pub base64_content: String,
    #[serde(default)]
    pub executable: bool,
}

impl From<DirectoryEntryDto> for DirectoryEntry {
    fn from(e: DirectoryEntryDto) -> Self {
        DirectoryEntry { path: e.path, base64_content: e.base64_content, executable: e.executable }
    }
}

impl From<&DirectoryEntry> for DirectoryEntryDto {
    fn from(e: &DirectoryEntry) -> Self {
        DirectoryEntryDto { path: e.path.clone(), base64_content: e.base64_content.clone(), executable: e.executable }
    }
}

/// What a dry run did: the log, the files it would produce, its output,
/// its steps and the policy decision.
#[derive(Serialize, ToSchema)]
#[schema(as = DryRun)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DryRunDto {
    pub log: Vec<DryRunLogLine>,
    pub directory_contents: Vec<DirectoryEntryDto>,
    #[schema(value_type = Object)]
    pub output: Value,
    pub steps: Vec<StepDto>,
    pub completed: bool,
    pub error: Option<String>,
    pub policy: DryRunPolicy,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct DryRunLogLine {
    #[schema(value_type = Object)]
    pub body: Value,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Step)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StepDto {
    pub id: String,
    pub name: String,
    pub action: String,
    /// `completed`, `skipped`, `failed`, `open`, `processing` or `cancelled`.
    pub status: String,
    #[serde(skip_serializing_if = "Value::is_null")]
    #[schema(value_type = Option<Object>)]
    pub output: Value,
    pub duration_ms: f64,
}

impl From<&StepReport> for StepDto {
    fn from(s: &StepReport) -> Self {
        StepDto {
            id: s.id.clone(),
            name: s.name.clone(),
            action: s.action.clone(),
            status: serde_json::to_value(s.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            output: s.output.clone(),
            duration_ms: s.duration_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct DryRunPolicy {
    /// `allow`, `warn`, `deny`, or `none` (no `plinth:policy` step).
    pub result: String,
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    pub violations: Vec<Value>,
}

impl From<DryRunReport> for DryRunDto {
    fn from(d: DryRunReport) -> Self {
        DryRunDto {
            log: d.events.iter().map(|e| DryRunLogLine { body: e.body.clone() }).collect(),
            directory_contents: d.report.directory_contents.iter().map(DirectoryEntryDto::from).collect(),
            output: d.report.output,
            steps: d.report.steps.iter().map(StepDto::from).collect(),
            completed: d.report.completed,
            error: d.report.error,
            policy: DryRunPolicy {
                result: d.policy_result.to_string(),
                decisions: d.report.decisions,
                violations: d.violations,
            },
        }
    }
}
