//! `/create/templates/{namespace}/{name}`: a form generated from the
//! template's parameter pages (JSON Schema), with entity pickers filled
//! from the catalogue. `portal.js` previews (dry run) and creates.

use super::{enabled, text, ProblemRow};
use crate::portal::page;
use crate::portal::view::OwnerLink;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use plinth_app::{Caller, ErrorKind};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Options in one entity picker's datalist.
const PICKER_OPTIONS: usize = 500;

/// `create_template.html`: the form of a template, or why there is none
/// (golden paths off, no such template, an invalid template).
#[derive(Debug, Default, Serialize)]
struct TemplateFormView {
    title: String,
    /// Golden paths are off on this server.
    disabled: bool,
    /// Why the template was not found.
    missing: Option<String>,
    /// Why the template cannot run; no form when there are any.
    problems: Vec<ProblemRow>,
    /// `template:namespace/name`.
    #[serde(rename = "ref")]
    template_ref: String,
    /// `spec.type` (service, resource, …).
    #[serde(rename = "type")]
    spec_type: String,
    owner: Option<OwnerLink>,
    description: String,
    tags: Vec<String>,
    /// One fieldset per parameter page.
    pages: Vec<FormPage>,
    /// The entity pickers' options.
    datalists: Vec<Datalist>,
}

/// One parameter page (a JSON Schema object): a fieldset.
#[derive(Debug, Serialize)]
struct FormPage {
    index: usize,
    title: String,
    description: Option<String>,
    fields: Vec<FormField>,
}

/// A control of the form, or (`widget` "heading") the heading of a nested
/// object, whose fields follow with dotted names. Only the fields its
/// widget uses are filled in.
#[derive(Debug, Default, Serialize)]
struct FormField {
    /// `heading`, `checkbox`, `number`, `select`, `multiselect`, `lines`
    /// (an array, one item per line), `textarea`, `json` or `text`.
    widget: &'static str,
    /// The element id, `field-` and the path; empty for a heading.
    id: String,
    /// The dotted path of the parameter.
    name: String,
    label: String,
    /// The description and `ui:help` (a heading: the first of them).
    help: Vec<String>,
    required: bool,
    /// The JSON type the value is sent as.
    #[serde(rename = "type")]
    json_type: String,
    placeholder: Option<String>,
    autofocus: bool,
    /// The schema's `pattern`, as an HTML `pattern` attribute.
    pattern: Option<String>,
    /// A checkbox: its default.
    checked: bool,
    /// A select or multiselect: its choices.
    options: Vec<FormOption>,
    /// A string select: whether a default is chosen (else a "choose" option comes first).
    has_default: bool,
    /// A number: `1` for integers, else `any`.
    step: &'static str,
    /// Bounds as written in the schema.
    min: Option<String>,
    max: Option<String>,
    min_length: Option<String>,
    max_length: Option<String>,
    min_items: Option<String>,
    /// The initial value (a list: one item per line; JSON: pretty-printed).
    default: Option<String>,
    /// A text input's `type`: `text`, `password`, `email`, `url` or `date`.
    input_type: Option<&'static str>,
    /// A list: its items' JSON type.
    item_type: Option<String>,
    /// A list: its items' pattern (checked by `portal.js`).
    item_pattern: Option<String>,
    /// The id of the entity picker's datalist.
    datalist: Option<String>,
}

/// A choice of a select.
#[derive(Debug, Serialize)]
struct FormOption {
    value: String,
    label: String,
    selected: bool,
}

/// The options of an entity picker: the catalogue's entities of `kinds`
/// (any kind when empty), as references, at most [`PICKER_OPTIONS`].
#[derive(Debug, Serialize)]
struct Datalist {
    id: String,
    kinds: Vec<String>,
    options: Vec<String>,
}

/// `GET /create/templates/{namespace}/{name}`: the template's form.
pub(crate) async fn template_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    if !enabled(&app) {
        let view = TemplateFormView { title: "Create".into(), disabled: true, ..TemplateFormView::default() };
        return page(StatusCode::SERVICE_UNAVAILABLE, "create_template.html", &view);
    }
    let reference = format!("template:{namespace}/{name}");
    let template = match app.platform.golden_paths().template(&caller, &reference).await {
        Ok(template) => template,
        Err(error) if error.kind == ErrorKind::InvalidInput => {
            let mut problems: Vec<ProblemRow> = error
                .fields
                .iter()
                .map(|f| ProblemRow { field: f.field.clone(), message: f.message.clone() })
                .collect();
            if problems.is_empty() {
                problems.push(ProblemRow { field: "template".into(), message: error.message });
            }
            let view =
                TemplateFormView { title: name, template_ref: reference, problems, ..TemplateFormView::default() };
            return page(StatusCode::UNPROCESSABLE_ENTITY, "create_template.html", &view);
        }
        Err(error) => {
            let view = TemplateFormView {
                title: "Template not found".into(),
                template_ref: reference,
                missing: Some(error.message),
                ..TemplateFormView::default()
            };
            return page(StatusCode::NOT_FOUND, "create_template.html", &view);
        }
    };
    let mut pickers = Pickers::default();
    let pages = form_pages(&template.parameters, &mut pickers);
    let view = TemplateFormView {
        title: template.title.clone(),
        disabled: false,
        missing: None,
        problems: Vec::new(),
        template_ref: template.entity_ref.clone(),
        spec_type: template.kind.clone(),
        owner: template
            .owner
            .as_deref()
            .map(|o| OwnerLink::shown(app.platform.catalog().view(&caller).ok().as_deref(), o, &namespace)),
        description: template.description.clone(),
        tags: template.tags.clone(),
        pages,
        datalists: pickers.datalists(&app, &caller),
    };
    page(StatusCode::OK, "create_template.html", &view)
}

/// The fieldsets of a template's parameter pages.
fn form_pages(parameters: &[Value], pickers: &mut Pickers) -> Vec<FormPage> {
    parameters
        .iter()
        .enumerate()
        .map(|(index, schema)| {
            let mut fields = Vec::new();
            object_fields(schema, "", &mut fields, pickers);
            FormPage {
                index,
                title: schema["title"].as_str().unwrap_or("Parameters").to_string(),
                description: schema["description"].as_str().map(str::to_string),
                fields,
            }
        })
        .collect()
}

/// Datalists wanted by the form, one per set of kinds (empty: any kind).
#[derive(Default)]
struct Pickers(BTreeMap<Vec<String>, String>);

impl Pickers {
    fn id(&mut self, kinds: Vec<String>) -> String {
        let next = format!("picker-{}", self.0.len() + 1);
        self.0.entry(kinds).or_insert(next).clone()
    }

    fn datalists(&self, app: &AppState, caller: &Caller) -> Vec<Datalist> {
        let Ok(state) = app.platform.catalog().view(caller) else { return Vec::new() };
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
                options.truncate(PICKER_OPTIONS);
                Datalist { id: id.clone(), kinds: kinds.clone(), options }
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

/// Form fields for the properties of an object schema; a nested object with
/// properties becomes a heading and its fields, with dotted names.
fn object_fields(schema: &Value, prefix: &str, out: &mut Vec<FormField>, pickers: &mut Pickers) {
    let Some(properties) = schema["properties"].as_object() else { return };
    let required: BTreeSet<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    for (name, property) in properties {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        if property["ui:widget"].as_str() == Some("hidden") || property["ui:disabled"].as_bool() == Some(true) {
            continue;
        }
        if property["type"].as_str() == Some("object") && property["properties"].is_object() {
            let help = property["description"].as_str().or(property["ui:help"].as_str()).filter(|h| !h.is_empty());
            out.push(FormField {
                widget: "heading",
                name: path.clone(),
                label: property["title"].as_str().unwrap_or(name).to_string(),
                help: help.map(str::to_string).into_iter().collect(),
                ..FormField::default()
            });
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

/// The choices of an `enum` (labelled by `enumNames` where given).
fn options(values: &[Value], labels: Option<&Vec<Value>>, selected: impl Fn(&Value) -> bool) -> Vec<FormOption> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let label = labels.and_then(|l| l.get(i)).and_then(text).or_else(|| text(v)).unwrap_or_default();
            FormOption { value: text(v).unwrap_or_default(), label, selected: selected(v) }
        })
        .collect()
}

/// The control for one property.
fn field(path: &str, name: &str, property: &Value, required: bool, pickers: &mut Pickers) -> FormField {
    let id =
        format!("field-{}", path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect::<String>());
    let json_type = match &property["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) => {
            types.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("string").to_string()
        }
        _ => "string".into(),
    };
    let ui_field = property["ui:field"].as_str().unwrap_or_default();
    let ui_widget = property["ui:widget"].as_str().unwrap_or_default();
    let default = &property["default"];
    let help = ["description", "ui:help"]
        .into_iter()
        .filter_map(|key| property[key].as_str().filter(|h| !h.trim().is_empty()))
        .map(str::to_string)
        .collect();
    let mut f = FormField {
        id,
        name: path.to_string(),
        label: property["title"].as_str().unwrap_or(name).to_string(),
        help,
        required,
        placeholder: property["ui:placeholder"].as_str().map(str::to_string),
        autofocus: property["ui:autofocus"].as_bool() == Some(true),
        pattern: property["pattern"].as_str().map(html_pattern),
        ..FormField::default()
    };
    match json_type.as_str() {
        "boolean" => {
            f.widget = "checkbox";
            f.checked = default.as_bool() == Some(true);
        }
        "integer" | "number" => {
            f.widget = "number";
            f.min = text(&property["minimum"]);
            f.max = text(&property["maximum"]);
            f.step = if json_type == "integer" { "1" } else { "any" };
            if let Some(values) = property["enum"].as_array() {
                f.widget = "select";
                f.options = options(values, property["enumNames"].as_array(), |v| v == default);
            }
            f.default = text(default);
        }
        "array" => {
            let items = &property["items"];
            let defaults: Vec<Value> = default.as_array().cloned().unwrap_or_default();
            f.min_items = text(&property["minItems"]);
            if let Some(values) = items["enum"].as_array() {
                f.widget = "multiselect";
                f.options = options(values, items["enumNames"].as_array(), |v| defaults.contains(v));
            } else {
                f.widget = "lines";
                f.item_type = Some(items["type"].as_str().unwrap_or("string").to_string());
                f.default = Some(defaults.iter().filter_map(text).collect::<Vec<_>>().join("\n"));
                let item_field = items["ui:field"].as_str().unwrap_or_default();
                let picker = if matches!(ui_field, "MultiEntityPicker" | "EntityPicker" | "OwnerPicker") {
                    Some((property, ui_field))
                } else if matches!(item_field, "EntityPicker" | "OwnerPicker") {
                    Some((items, item_field))
                } else {
                    None
                };
                if let Some((schema, kind_field)) = picker {
                    f.datalist = Some(pickers.id(picker_kinds(schema, kind_field)));
                }
                f.item_pattern = items["pattern"].as_str().map(str::to_string);
            }
        }
        "string" => {
            if let Some(values) = property["enum"].as_array() {
                f.widget = "select";
                f.options = options(values, property["enumNames"].as_array(), |v| v == default);
                f.has_default = !default.is_null();
            } else if ui_widget == "textarea" {
                f.widget = "textarea";
            } else {
                f.widget = "text";
                f.input_type = Some(match (ui_widget, property["format"].as_str()) {
                    ("password", _) => "password",
                    (_, Some("email")) => "email",
                    (_, Some("uri" | "url")) => "url",
                    (_, Some("date")) => "date",
                    _ => "text",
                });
                if matches!(ui_field, "EntityPicker" | "OwnerPicker" | "MultiEntityPicker") {
                    f.datalist = Some(pickers.id(picker_kinds(property, ui_field)));
                }
            }
            f.min_length = text(&property["minLength"]);
            f.max_length = text(&property["maxLength"]);
            f.default = text(default);
        }
        _ => {
            // Objects without declared properties and anything else: JSON.
            f.widget = "json";
            f.default = if default.is_null() { None } else { serde_json::to_string_pretty(default).ok() };
        }
    }
    f.json_type = json_type;
    f
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

    /// A page with every widget, rendered with strict undefined values.
    #[test]
    fn every_widget_renders() {
        let schema = serde_json::json!({
            "title": "Everything",
            "required": ["name", "flag"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z-]+$", "minLength": 2, "description": "The name", "ui:help": "Lower case"},
                "flag": {"type": "boolean", "default": true},
                "count": {"type": "integer", "minimum": 0, "maximum": 10, "default": 3},
                "size": {"type": "integer", "enum": [1, 2], "default": 2},
                "color": {"type": "string", "enum": ["red", "green"]},
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "default": ["b"]},
                "owners": {"type": "array", "items": {"type": "string", "ui:field": "OwnerPicker", "pattern": "^g"}, "minItems": 1},
                "notes": {"type": "string", "ui:widget": "textarea", "maxLength": 100},
                "secret": {"type": "string", "ui:widget": "password"},
                "system": {"type": "string", "ui:field": "EntityPicker", "ui:options": {"allowedKinds": ["System"]}},
                "free": {"type": "object", "default": {"a": 1}},
                "hidden": {"type": "string", "ui:widget": "hidden"},
                "nested": {"type": "object", "title": "Nested", "description": "A group", "properties": {"inner": {"type": "string"}}},
            },
        });
        let mut pickers = Pickers::default();
        let pages = form_pages(&[schema], &mut pickers);
        let datalists = pickers
            .0
            .iter()
            .map(|(kinds, id)| Datalist {
                id: id.clone(),
                kinds: kinds.clone(),
                options: vec!["group:default/a".into()],
            })
            .collect();
        let view = TemplateFormView {
            title: "Everything".into(),
            template_ref: "template:default/everything".into(),
            spec_type: "service".into(),
            owner: Some(OwnerLink::new("team-a", "default")),
            tags: vec!["x".into()],
            pages,
            datalists,
            ..TemplateFormView::default()
        };
        let html = crate::portal::golden_paths::rendered("create_template.html", &view);
        for expected in [
            r#"<fieldset class="form-page" id="page-0" data-page="Everything">"#,
            r#"pattern="^[a-z\-]+$""#,
            r#"<p class="field-help" id="field-name-help">The name Lower case</p>"#,
            r#"id="field-flag" name="flag" data-field="flag" data-type="boolean" required"#,
            r#" checked>"#,
            r#"min="0" max="10" value="3">"#,
            r#"<option value="2" selected>2</option>"#,
            r#"<option value="">— choose —</option>"#,
            r#"data-widget="multiselect""#,
            r#"data-item-pattern="^g" data-min-items="1""#,
            r#"list="picker-1""#,
            r#"<datalist id="picker-1" data-kinds="group,user"><option value="group:default/a"></option></datalist>"#,
            r#"data-kinds="system""#,
            r#"<input type="password""#,
            r#"maxlength="100""#,
            "{\n  &quot;a&quot;: 1\n}</textarea>",
            r#"<h3 class="field-heading" data-group="nested">Nested</h3><p class="field-help">A group</p>"#,
            r#"name="nested.inner""#,
            r#"<a class="entity-link owner-link" href="/catalog/default/group/team-a">team-a</a>"#,
        ] {
            assert!(html.contains(expected), "{expected} in {html}");
        }
        assert!(!html.contains("field-hidden"), "{html}");
    }

    #[test]
    fn a_missing_an_invalid_and_a_disabled_template_render() {
        let html = crate::portal::golden_paths::rendered(
            "create_template.html",
            &TemplateFormView { title: "Create".into(), disabled: true, ..TemplateFormView::default() },
        );
        assert!(html.contains(r#"id="create-disabled""#), "{html}");
        let view = TemplateFormView {
            title: "Template not found".into(),
            template_ref: "template:default/x".into(),
            missing: Some("no template `template:default/x`".into()),
            ..TemplateFormView::default()
        };
        let html = crate::portal::golden_paths::rendered("create_template.html", &view);
        assert!(html.contains(r#"<p class="empty" id="template-missing">no template `template:default/x`</p>"#));
        let view = TemplateFormView {
            title: "x".into(),
            template_ref: "template:default/x".into(),
            problems: vec![ProblemRow { field: "spec.steps[0].action".into(), message: "unknown action".into() }],
            ..TemplateFormView::default()
        };
        let html = crate::portal::golden_paths::rendered("create_template.html", &view);
        assert!(html.contains(r#"id="template-problems""#) && !html.contains("create-form"), "{html}");
        assert!(html.contains("<li><code>spec.steps[0].action</code>: unknown action</li>"), "{html}");
    }
}
