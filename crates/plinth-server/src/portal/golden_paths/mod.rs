//! Golden paths in the portal: the template list (`/create`), a form
//! generated from a template's JSON Schema pages (with preview by dry run
//! and create, done by `portal.js`), a run's page (a server-rendered
//! snapshot that `portal.js` keeps live from the event stream) and the list
//! of recent runs.

use super::{encode, entity_href, page};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use plinth_app::golden_paths::{TaskEventRow, TaskQuery, TaskRow};
use plinth_app::{Caller, ErrorKind};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Options in one entity picker's datalist.
const PICKER_OPTIONS: usize = 500;
/// Runs on `/create/tasks`.
const RECENT_TASKS: usize = 100;
/// Log lines on a run's page.
const LOG_LINES: usize = 5000;

fn disabled(title: &str, template: &str) -> Response {
    page(StatusCode::SERVICE_UNAVAILABLE, template, json!({"title": title, "disabled": true}))
}

/// Whether this server runs golden paths.
fn enabled(app: &AppState) -> bool {
    app.platform.golden_paths().service().is_ok()
}

// ---------------------------------------------------------------- list

/// `GET /create`: every catalogued template, broken ones with their problems.
pub(super) async fn templates_page(State(app): State<AppState>, Extension(caller): Extension<Caller>) -> Response {
    let Ok(listings) = app.platform.golden_paths().templates(&caller) else {
        return page(StatusCode::OK, "create.html", json!({"title": "Create", "disabled": true, "templates": []}));
    };
    let templates: Vec<Value> = listings
        .iter()
        .map(|listing| {
            let (entity, parsed) = (&listing.entity, &listing.template);
            let metadata = &entity["metadata"];
            let namespace = metadata["namespace"].as_str().unwrap_or("default");
            let name = metadata["name"].as_str().unwrap_or_default();
            let owner = entity["spec"]["owner"].as_str();
            json!({
                "ref": format!("template:{namespace}/{name}"),
                "href": format!("/create/templates/{}/{}", encode(namespace), encode(name)),
                "title": metadata["title"].as_str().unwrap_or(name),
                "description": metadata["description"],
                "tags": metadata["tags"].as_array().cloned().unwrap_or_default(),
                "type": entity["spec"]["type"],
                "owner": owner.map(|o| owner_link(o, namespace)),
                "valid": parsed.is_ok(),
                "problems": parsed.as_ref().err(),
            })
        })
        .collect();
    page(StatusCode::OK, "create.html", json!({"title": "Create", "templates": templates}))
}

fn owner_link(owner: &str, namespace: &str) -> Value {
    let parsed = plinth_model::parse_entity_ref(
        owner,
        plinth_model::RefContext { default_kind: Some("group"), default_namespace: namespace },
    );
    match parsed {
        Ok(r) => json!({"label": owner, "href": entity_href(&r.to_string())}),
        Err(_) => json!({"label": owner}),
    }
}

// ---------------------------------------------------------------- form

/// `GET /create/templates/{namespace}/{name}`: the template's form.
pub(super) async fn template_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    if !enabled(&app) {
        return disabled("Create", "create_template.html");
    }
    let reference = format!("template:{namespace}/{name}");
    let template = match app.platform.golden_paths().template(&caller, &reference).await {
        Ok(template) => template,
        Err(error) if error.kind == ErrorKind::InvalidInput => {
            let problems = error.details.as_ref().map_or(Value::Null, |d| d["problems"].clone());
            let context = json!({"title": name, "ref": reference, "problems": problems});
            return page(StatusCode::UNPROCESSABLE_ENTITY, "create_template.html", context);
        }
        Err(error) => {
            let context = json!({"title": "Template not found", "ref": reference, "missing": error.message});
            return page(StatusCode::NOT_FOUND, "create_template.html", context);
        }
    };
    let mut pickers = Pickers::default();
    let pages: Vec<Value> = template
        .parameters
        .iter()
        .enumerate()
        .map(|(index, schema)| {
            let mut fields = Vec::new();
            object_fields(schema, "", &mut fields, &mut pickers);
            json!({
                "index": index,
                "title": schema["title"].as_str().unwrap_or("Parameters"),
                "description": schema["description"].as_str(),
                "fields": fields,
            })
        })
        .collect();
    let datalists = pickers.datalists(&app, &caller);
    let context = json!({
        "title": template.title,
        "ref": template.entity_ref,
        "description": template.description,
        "type": template.kind,
        "owner": template.owner.as_deref().map(|o| owner_link(o, &namespace)),
        "tags": template.tags,
        "pages": pages,
        "datalists": datalists,
        "steps": template.steps.iter().map(|s| json!({"id": s.id, "name": s.name, "action": s.action})).collect::<Vec<_>>(),
    });
    page(StatusCode::OK, "create_template.html", context)
}

/// Datalists wanted by the form, one per set of kinds (empty: any kind).
#[derive(Default)]
struct Pickers(BTreeMap<Vec<String>, String>);

impl Pickers {
    fn id(&mut self, kinds: Vec<String>) -> String {
        let next = format!("picker-{}", self.0.len() + 1);
        self.0.entry(kinds).or_insert(next).clone()
    }

    fn datalists(&self, app: &AppState, caller: &Caller) -> Vec<Value> {
        let state = app.platform.catalog().view(caller);
        self.0
            .iter()
            .map(|(kinds, id)| {
                let mut options: Vec<String> = state
                    .entities()
                    .filter(|r| kinds.is_empty() || kinds.iter().any(|k| r.entity_ref.kind.eq_ignore_ascii_case(k)))
                    .map(|r| {
                        format!("{}:{}/{}", r.entity_ref.kind.to_lowercase(), r.entity_ref.namespace, r.entity_ref.name)
                    })
                    .collect();
                options.sort();
                let total = options.len();
                options.truncate(PICKER_OPTIONS);
                json!({"id": id, "kinds": kinds, "options": options, "truncated": total > PICKER_OPTIONS})
            })
            .collect()
    }
}

/// Kinds of an entity picker: `ui:options.catalogFilter.kind` (a string or
/// a list, or a list of filters), or the older `allowedKinds`.
fn picker_kinds(schema: &Value, field: &str) -> Vec<String> {
    let options = &schema["ui:options"];
    let mut kinds = BTreeSet::new();
    let mut add = |value: &Value| match value {
        Value::String(k) => {
            kinds.insert(k.to_lowercase());
        }
        Value::Array(items) => {
            for k in items.iter().filter_map(Value::as_str) {
                kinds.insert(k.to_lowercase());
            }
        }
        _ => {}
    };
    match &options["catalogFilter"] {
        Value::Array(filters) => filters.iter().for_each(|f| add(&f["kind"])),
        filter => add(&filter["kind"]),
    }
    add(&options["allowedKinds"]);
    if kinds.is_empty() && field == "OwnerPicker" {
        kinds.extend(["group".to_string(), "user".to_string()]);
    }
    kinds.into_iter().collect()
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Form fields for the properties of an object schema; a nested object with
/// properties becomes a heading and its fields, with dotted names.
fn object_fields(schema: &Value, prefix: &str, out: &mut Vec<Value>, pickers: &mut Pickers) {
    let Some(properties) = schema["properties"].as_object() else { return };
    let required: BTreeSet<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    for (name, property) in properties {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        if property["ui:widget"].as_str() == Some("hidden") || property["ui:disabled"].as_bool() == Some(true) {
            continue;
        }
        if property["type"].as_str() == Some("object") && property["properties"].is_object() {
            out.push(json!({
                "widget": "heading",
                "name": path,
                "label": property["title"].as_str().unwrap_or(name),
                "help": property["description"].as_str().or(property["ui:help"].as_str()),
            }));
            object_fields(property, &path, out, pickers);
            continue;
        }
        out.push(field(&path, name, property, required.contains(name.as_str()), pickers));
    }
}

/// A JSON Schema `pattern` as an HTML `pattern` attribute. Browsers compile
/// that with the `v` flag, under which a class may not hold an unescaped
/// `( ) [ { } / | -` (other than a range's `-`) or a doubled punctuator: such
/// a pattern (`[a-z0-9-]`) is rejected with a console error and the field is
/// left unchecked. Escaping them keeps the meaning.
fn html_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut in_class = false;
    // Whether the previous class item can start a range, and whether the
    // next one ends a range.
    let (mut can_range, mut range_end) = (false, false);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            out.push(c);
            if let Some(&next) = chars.get(i + 1) {
                out.push(next);
            }
            i += 2;
            if in_class {
                // `\w`, `\d`, `\p{…}`…: a set, not a character.
                let set = chars.get(i - 1).is_some_and(|n| "dDsSwWpP".contains(*n));
                can_range = !range_end && !set;
                range_end = false;
            }
            continue;
        }
        if !in_class {
            out.push(c);
            if c == '[' {
                in_class = true;
                (can_range, range_end) = (false, false);
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
            }
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        match c {
            ']' => {
                in_class = false;
                out.push(c);
            }
            '-' if can_range && next.is_some_and(|n| n != ']') => {
                out.push(c);
                (can_range, range_end) = (false, true);
            }
            _ => {
                let reserved = matches!(c, '(' | ')' | '[' | '{' | '}' | '/' | '|' | '-')
                    || ("&!#$%*+,.:;<=>?@^`~".contains(c) && next == Some(c));
                if reserved {
                    out.push('\\');
                }
                out.push(c);
                can_range = !range_end;
                range_end = false;
            }
        }
        i += 1;
    }
    out
}

fn field(path: &str, name: &str, property: &Value, required: bool, pickers: &mut Pickers) -> Value {
    let id =
        format!("field-{}", path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect::<String>());
    let json_type = match &property["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) => {
            types.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("string").to_string()
        }
        _ if property["enum"].is_array() => "string".into(),
        _ => "string".into(),
    };
    let ui_field = property["ui:field"].as_str().unwrap_or_default();
    let ui_widget = property["ui:widget"].as_str().unwrap_or_default();
    let default = &property["default"];
    let mut help: Vec<String> = Vec::new();
    for key in ["description", "ui:help"] {
        if let Some(h) = property[key].as_str().filter(|h| !h.trim().is_empty()) {
            help.push(h.to_string());
        }
    }
    let mut value = json!({
        "id": id,
        "name": path,
        "key": name,
        "label": property["title"].as_str().unwrap_or(name),
        "help": help,
        "required": required,
        "type": json_type,
        "placeholder": property["ui:placeholder"].as_str(),
        "autofocus": property["ui:autofocus"].as_bool() == Some(true),
        "pattern": property["pattern"].as_str().map(html_pattern),
    });
    let options = |values: &[Value], labels: Option<&Vec<Value>>, selected: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let label = labels.and_then(|l| l.get(i)).and_then(text).or_else(|| text(v)).unwrap_or_default();
                json!({"value": text(v).unwrap_or_default(), "label": label, "selected": selected(v)})
            })
            .collect()
    };
    match json_type.as_str() {
        "boolean" => {
            value["widget"] = json!("checkbox");
            value["checked"] = json!(default.as_bool() == Some(true));
        }
        "integer" | "number" => {
            value["widget"] = json!("number");
            value["min"] = property["minimum"].clone();
            value["max"] = property["maximum"].clone();
            value["step"] = json!(if json_type == "integer" { "1" } else { "any" });
            if let Some(values) = property["enum"].as_array() {
                value["widget"] = json!("select");
                value["options"] = json!(options(values, property["enumNames"].as_array(), &|v| v == default));
            }
            value["default"] = json!(text(default));
        }
        "array" => {
            let items = &property["items"];
            let defaults: Vec<Value> = default.as_array().cloned().unwrap_or_default();
            value["min_items"] = property["minItems"].clone();
            if let Some(values) = items["enum"].as_array() {
                value["widget"] = json!("multiselect");
                value["options"] = json!(options(values, items["enumNames"].as_array(), &|v| defaults.contains(v)));
            } else {
                value["widget"] = json!("lines");
                value["item_type"] = json!(items["type"].as_str().unwrap_or("string"));
                value["default"] = json!(defaults.iter().filter_map(text).collect::<Vec<_>>().join("\n"));
                let item_field = items["ui:field"].as_str().unwrap_or_default();
                let picker = if matches!(ui_field, "MultiEntityPicker" | "EntityPicker" | "OwnerPicker") {
                    Some((property, ui_field))
                } else if matches!(item_field, "EntityPicker" | "OwnerPicker") {
                    Some((items, item_field))
                } else {
                    None
                };
                if let Some((schema, kind_field)) = picker {
                    value["datalist"] = json!(pickers.id(picker_kinds(schema, kind_field)));
                }
                if let Some(pattern) = items["pattern"].as_str() {
                    value["item_pattern"] = json!(pattern);
                }
            }
        }
        "string" => {
            if let Some(values) = property["enum"].as_array() {
                value["widget"] = json!("select");
                value["options"] = json!(options(values, property["enumNames"].as_array(), &|v| v == default));
                value["has_default"] = json!(!default.is_null());
            } else if ui_widget == "textarea" {
                value["widget"] = json!("textarea");
            } else {
                value["widget"] = json!("text");
                value["input_type"] = json!(match (ui_widget, property["format"].as_str()) {
                    ("password", _) => "password",
                    (_, Some("email")) => "email",
                    (_, Some("uri" | "url")) => "url",
                    (_, Some("date")) => "date",
                    _ => "text",
                });
                if matches!(ui_field, "EntityPicker" | "OwnerPicker" | "MultiEntityPicker") {
                    value["datalist"] = json!(pickers.id(picker_kinds(property, ui_field)));
                }
            }
            value["min_length"] = property["minLength"].clone();
            value["max_length"] = property["maxLength"].clone();
            value["default"] = json!(text(default));
        }
        _ => {
            // Objects without declared properties and anything else: JSON.
            value["widget"] = json!("json");
            value["default"] = json!(if default.is_null() { None } else { serde_json::to_string_pretty(default).ok() });
        }
    }
    value
}

// ---------------------------------------------------------------- runs

fn task_summary(task: &TaskRow) -> Value {
    let template_ref = task.template_ref.as_str();
    json!({
        "id": task.id,
        "href": format!("/create/tasks/{}", encode(&task.id)),
        "status": task.status.as_str(),
        "template": template_ref,
        "template_href": template_href(template_ref),
        "created_by": task.created_by,
        "created_at": task.created_at,
        "completed_at": task.completed_at,
    })
}

/// `/create/templates/{namespace}/{name}` for `template:namespace/name`.
fn template_href(template_ref: &str) -> Option<String> {
    let rest = template_ref.split_once(':').map_or(template_ref, |(_, rest)| rest);
    let (namespace, name) = rest.split_once('/')?;
    Some(format!("/create/templates/{}/{}", encode(namespace), encode(name)))
}

/// `GET /create/tasks`: recent runs.
pub(super) async fn tasks_page(State(app): State<AppState>, Extension(caller): Extension<Caller>) -> Response {
    if !enabled(&app) {
        return disabled("Runs", "create_tasks.html");
    }
    let query = TaskQuery { limit: RECENT_TASKS, ..TaskQuery::default() };
    match app.platform.golden_paths().runs(&caller, &query).await {
        Ok((tasks, total)) => {
            let tasks: Vec<Value> = tasks.iter().map(task_summary).collect();
            page(StatusCode::OK, "create_tasks.html", json!({"title": "Runs", "tasks": tasks, "total": total}))
        }
        Err(error) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "create_tasks.html",
            json!({"title": "Runs", "tasks": [], "error": error.message}),
        ),
    }
}

/// First path segments of the portal's own pages.
const SITE_SECTIONS: [&str; 6] = ["", "catalog", "search", "policies", "create", "api"];

/// Whether a `/…` URL is a page of this site rather than a path on the
/// server's disk (`publish:git` into a local directory outputs one).
fn on_site(url: &str) -> bool {
    let Some(path) = url.strip_prefix('/').filter(|p| !p.starts_with('/')) else { return false };
    let section = path.split(['/', '?', '#']).next().unwrap_or_default();
    SITE_SECTIONS.contains(&section)
}

/// A link in a run's output: `entityRef` to the entity page, `url` only
/// when it is http(s) or a page of this site (else shown as text).
fn output_link(link: &Value) -> Option<Value> {
    let title = link["title"].as_str();
    if let Some(entity_ref) = link["entityRef"].as_str().filter(|r| !r.is_empty()) {
        let href = plinth_model::parse_ref_lenient(entity_ref, Some("component"))
            .map(|r| entity_href(&r.to_string()))
            .unwrap_or_else(|_| entity_href(entity_ref));
        return Some(json!({"title": title.unwrap_or(entity_ref), "href": href, "text": entity_ref, "entity": true}));
    }
    let url = link["url"].as_str().filter(|u| !u.is_empty())?;
    let safe = url.starts_with("https://") || url.starts_with("http://") || on_site(url);
    Some(json!({"title": title.unwrap_or(url), "href": safe.then_some(url), "text": url}))
}

fn output_json(output: &Value) -> Value {
    let links: Vec<Value> =
        output["links"].as_array().map(|l| l.iter().filter_map(output_link).collect()).unwrap_or_default();
    let texts: Vec<Value> = output["text"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|item| match item {
                    Value::String(s) => Some(json!({"title": Value::Null, "content": s})),
                    Value::Object(o) => {
                        Some(json!({"title": o.get("title"), "content": o.get("content").and_then(text)}))
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    json!({"links": links, "text": texts})
}

/// `GET /create/tasks/{id}`: the run as it stands; `portal.js` follows the
/// event stream from the last stored event on.
pub(super) async fn task_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    if !enabled(&app) {
        return disabled("Run", "create_task.html");
    }
    let golden_paths = app.platform.golden_paths();
    let task = match golden_paths.run(&caller, &id).await {
        Ok(task) => task,
        Err(error) if error.kind == ErrorKind::NotFound => {
            return page(StatusCode::NOT_FOUND, "create_task.html", json!({"title": "Run not found", "missing": id}))
        }
        Err(error) => {
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "create_task.html",
                json!({"title": "Run", "missing": id, "error": error.message}),
            )
        }
    };
    let events = golden_paths.events(&caller, &id, None).await.unwrap_or_default();
    page(StatusCode::OK, "create_task.html", task_context(&task, &events))
}

fn task_context(task: &TaskRow, events: &[TaskEventRow]) -> Value {
    let mut statuses: Map<String, Value> = Map::new();
    let mut log = Vec::new();
    let mut completion: Option<&Value> = None;
    for event in events {
        match event.event_type.as_str() {
            "log" => {
                let body = &event.body;
                if let (Some(step), Some(status)) = (body["stepId"].as_str(), body["status"].as_str()) {
                    statuses.insert(step.to_string(), json!(status));
                }
                if log.len() < LOG_LINES {
                    log.push(json!({
                        "step": body["stepId"].as_str(),
                        "message": body["message"].as_str().map(str::to_string).unwrap_or_else(|| body["message"].to_string()),
                        "at": event.created_at,
                    }));
                }
            }
            "completion" => completion = Some(&event.body),
            _ => {}
        }
    }
    let finished = matches!(task.status.as_str(), "completed" | "failed" | "cancelled");
    let steps: Vec<Value> = task.spec["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    let id = s["id"].as_str().unwrap_or_default();
                    let status =
                        statuses.get(id).and_then(Value::as_str).unwrap_or(if finished { "skipped" } else { "open" });
                    // A step still "processing" when the run failed is where it failed.
                    let status = if finished && status == "processing" { "failed" } else { status };
                    json!({"id": id, "name": s["name"].as_str().unwrap_or(id), "action": s["action"], "status": status})
                })
                .collect()
        })
        .unwrap_or_default();
    let output = task.output.as_ref().or(completion.map(|c| &c["output"])).map(output_json);
    let error =
        task.error.clone().or_else(|| completion.and_then(|c| c["error"]["message"].as_str().map(str::to_string)));
    let parameters: Vec<Value> = task.spec["parameters"]
        .as_object()
        .map(|p| p.iter().map(|(k, v)| json!({"key": k, "value": text(v).unwrap_or_default()})).collect())
        .unwrap_or_default();
    let mut summary = task_summary(task);
    summary["last_event"] = json!(events.last().map_or(0, |e| e.id));
    summary["finished"] = json!(finished);
    json!({
        "title": format!("Run of {}", task.template_ref),
        "task": summary,
        "steps": steps,
        "log": log,
        "output": output,
        "error": error,
        "parameters": parameters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_patterns_compile_with_the_v_flag() {
        assert_eq!(html_pattern("^[a-z][a-z0-9-]{1,40}$"), "^[a-z][a-z0-9\\-]{1,40}$");
        assert_eq!(html_pattern("^cc-[0-9]{4}$"), "^cc-[0-9]{4}$");
        assert_eq!(html_pattern("[-a-z_.]"), "[\\-a-z_.]");
        assert_eq!(html_pattern("[^a-z-_/|(]"), "[^a-z\\-_\\/\\|\\(]");
        assert_eq!(html_pattern("[\\w.-]+@[a-z]"), "[\\w.\\-]+@[a-z]");
        assert_eq!(html_pattern("[\\w-.]"), "[\\w\\-.]");
        assert_eq!(html_pattern("^(ghcr\\.io/x/|y/)[^:@]+$"), "^(ghcr\\.io/x/|y/)[^:@]+$");
    }

    #[test]
    fn only_portal_paths_are_links() {
        for url in ["/", "/catalog/default/component/a", "/create/tasks/1", "/search?q=a"] {
            assert!(on_site(url), "{url}");
        }
        for url in ["/tmp/data/repos/a", "//evil.example", "/catalogue", "repos/a"] {
            assert!(!on_site(url), "{url}");
        }
    }
}
