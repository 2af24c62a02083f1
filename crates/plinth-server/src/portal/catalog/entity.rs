//! The entity page: facts, action links from well-known annotations, impact,
//! the policy panel, relations with human labels, the API definition
//! rendered, the Docs tab, source, ingestion errors and annotations.

use super::relations::{self, RelationGroup};
use super::*;
use crate::portal::markdown::{self, Links};
use axum::http::header;
use axum::response::IntoResponse;

/// An entity page: one panel per kind (`api`, `ai`) that is `Some` only for
/// that kind; `docs` is `Some` on the Docs tab.
#[derive(Debug, Serialize)]
pub(super) struct EntityView {
    pub(super) title: String,
    #[serde(rename = "ref")]
    pub(super) entity_ref: String,
    pub(super) href: String,
    pub(super) summary: Facts,
    /// The `ownedBy` target (by its title), else `spec.owner` as written.
    pub(super) owner: Option<Link>,
    pub(super) system: Option<Link>,
    pub(super) domain: Option<Link>,
    /// View source, Docs, On-call, dashboards, Kubernetes.
    pub(super) actions: Vec<Action>,
    /// `metadata.links` that are not dashboards (those are actions).
    pub(super) links: Vec<ExternalLink>,
    pub(super) annotations: Vec<KeyValue>,
    pub(super) labels: Vec<KeyValue>,
    /// Relation targets per relation type, labelled, in reading order.
    pub(super) relations: Vec<RelationGroup>,
    pub(super) source: Option<Source>,
    pub(super) errors: Vec<ErrorRow>,
    /// Transitive dependents.
    pub(super) impact: usize,
    /// Transitive dependencies.
    pub(super) dependencies: usize,
    pub(super) updated: When,
    pub(super) kind_lower: String,
    pub(super) policy: policy::PolicyPanel,
    /// The entity's signals tab, for AI kinds.
    pub(super) signals_href: Option<String>,
    /// The Docs tab, when the entity's techdocs-ref leads to docs.
    pub(super) docs_href: Option<String>,
    /// `overview` or `docs`.
    pub(super) tab: &'static str,
    pub(super) docs: Option<DocsTab>,
    pub(super) api: Option<ApiPanel>,
    pub(super) ai: Option<AiPanel>,
    /// The star toggle, for a signed-in user.
    pub(super) star: Option<crate::portal::auth::my_team::StarButton>,
}

/// What the header and "About" list show of the entity.
#[derive(Debug, Serialize)]
pub(super) struct Facts {
    pub(super) kind: String,
    pub(super) namespace: String,
    pub(super) name: String,
    #[serde(rename = "type")]
    pub(super) spec_type: Option<String>,
    pub(super) lifecycle: Option<String>,
    pub(super) description: Option<String>,
    pub(super) tags: Vec<String>,
}

/// A `metadata.links` entry; `url` is `None` unless it is http(s).
#[derive(Debug, Serialize)]
pub(super) struct ExternalLink {
    pub(super) url: Option<String>,
    pub(super) text: String,
}

/// An annotation or label.
#[derive(Debug, Serialize)]
pub(super) struct KeyValue {
    pub(super) key: String,
    pub(super) value: String,
}

/// A button in the entity header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Action {
    /// `source`, `docs`, `oncall`, `dashboard`, `kubernetes`.
    pub(super) kind: &'static str,
    pub(super) label: String,
    /// Only http(s) URLs and the portal's own pages.
    pub(super) href: Option<String>,
    /// Shown on hover (and as text when there is no link).
    pub(super) detail: Option<String>,
    /// Opens another site.
    pub(super) external: bool,
}

/// Where the entity came from; `url` when that is an http(s) URL.
#[derive(Debug, Serialize)]
pub(super) struct Source {
    pub(super) text: String,
    pub(super) url: Option<String>,
}

/// The definition of an API entity, rendered for its format, with the raw
/// text (highlighted) behind a toggle.
#[derive(Debug, Serialize)]
pub(super) struct ApiPanel {
    /// `openapi`, `asyncapi`, `grpc`, or the type as written.
    pub(super) format: String,
    pub(super) title: Option<String>,
    pub(super) version: Option<String>,
    pub(super) servers: Vec<String>,
    pub(super) lines: Vec<highlight::Line>,
    /// Only the first [`MAX_DEFINITION_BYTES`] are shown.
    pub(super) truncated: bool,
    pub(super) bytes: usize,
    pub(super) operations: Vec<apidoc::Operation>,
    pub(super) channels: Vec<apidoc::Channel>,
    pub(super) services: Vec<apidoc::GrpcService>,
}

/// Governance facts of a model, dataset, prompt, agent or tool (its AI
/// relations are in the relations section).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AiPanel {
    pub(super) risk_tier: Option<String>,
    pub(super) data_classification: Option<String>,
    pub(super) residency: Option<String>,
    pub(super) autonomy: Option<String>,
    pub(super) provider: Option<String>,
}

/// The Docs tab: the site's navigation and one rendered page.
#[derive(Debug, Serialize)]
pub(super) struct DocsTab {
    pub(super) site_name: String,
    pub(super) nav: Vec<NavLink>,
    pub(super) page_title: String,
    pub(super) path: String,
    /// Sanitised HTML (see `markdown.rs`).
    pub(super) html: String,
    pub(super) toc: Vec<TocEntry>,
    /// Why the page could not be shown.
    pub(super) error: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct NavLink {
    pub(super) title: String,
    pub(super) href: Option<String>,
    pub(super) depth: usize,
    pub(super) current: bool,
    pub(super) external: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct TocEntry {
    pub(super) level: u8,
    pub(super) text: String,
    pub(super) id: String,
}

pub(in crate::portal) async fn entity_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    params: Params,
) -> Response {
    let key = lookup_key(&kind, &namespace, &name);
    if let Some(asset) = params.one("docs_asset") {
        return docs_asset(&app, &caller, &key, asset);
    }
    let errors = app.platform.catalog().errors(&caller, None, None).await.unwrap_or_default();
    let (mut view, entity_ref) = {
        let state = match app.platform.catalog().view(&caller) {
            Ok(state) => state,
            Err(error) => return error_page(error.into()),
        };
        let Some(record) = state.get(&key).cloned() else {
            drop(state);
            return not_found_entity(&app, &caller, &kind, &namespace, &name);
        };
        let own_errors: Vec<ErrorRow> = errors
            .iter()
            .filter(|e| {
                e.diagnostic.entity_ref.as_deref().is_some_and(|r| {
                    parse_ref_lenient(r, Some("component")).map(|r| r.key()).unwrap_or_else(|_| r.to_lowercase()) == key
                })
            })
            .map(|e| ErrorRow::of(&state, e))
            .collect();
        (entity_view(&state, &record, own_errors), record.entity_ref.clone())
    };
    // Docs: the site is read outside the catalogue lock.
    let site = app.platform.catalog().docs(&caller, &key).ok().flatten();
    if let Some(site) = &site {
        if let Some(home) = site.home() {
            let docs_href = format!("{}?{}", view.href, query(&[("docs", home)]));
            view.actions.insert(
                view.actions.iter().position(|a| a.kind != "source").unwrap_or(view.actions.len()),
                Action {
                    kind: "docs",
                    label: "Docs".into(),
                    href: Some(docs_href.clone()),
                    detail: Some(site.site_name.clone()),
                    external: false,
                },
            );
            view.docs_href = Some(docs_href);
        }
    }
    if let Some(page) = params.one("docs") {
        view.tab = "docs";
        view.docs = Some(match &site {
            Some(site) => docs_tab(site, &view.href, page),
            None => DocsTab {
                site_name: String::new(),
                nav: Vec::new(),
                page_title: "No documentation".into(),
                path: page.to_string(),
                html: String::new(),
                toc: Vec::new(),
                error: Some(
                    "This entity has no documentation Plinth can render: its backstage.io/techdocs-ref must be \
                     `dir:<path>` naming a directory with mkdocs.yml next to its catalog-info file."
                        .into(),
                ),
            },
        });
    } else {
        view.policy = policy::entity_panel(&app, &caller, &entity_ref);
    }
    view.star = crate::portal::auth::my_team::star_button(&app, &caller, &entity_ref, &view.href).await;
    if signals::SIGNAL_KINDS.contains(&view.kind_lower.as_str()) {
        view.signals_href = Some(format!("{}/signals", view.href));
    }
    page(StatusCode::OK, "entity.html", &view)
}

fn docs_tab(site: &plinth_app::catalog::docs::DocsSite, entity_href: &str, path: &str) -> DocsTab {
    let page_href = |page: &str| format!("{entity_href}?{}", query(&[("docs", page)]));
    let current = plinth_app::catalog::docs::clean_page_path(path).unwrap_or_default();
    let nav = site
        .nav
        .iter()
        .map(|n| NavLink {
            title: n.title.clone(),
            href: n.page.as_deref().map(page_href).or_else(|| n.url.clone()),
            depth: n.depth.min(4),
            current: n.page.as_deref() == Some(current.as_str()),
            external: n.url.is_some(),
        })
        .collect();
    match site.page(path) {
        Ok(page) => {
            let rendered = markdown::render(&page.markdown, Links::Docs { entity_href, page: &page.path });
            DocsTab {
                site_name: site.site_name.clone(),
                nav,
                page_title: page.title,
                path: page.path,
                html: rendered.html,
                toc: rendered
                    .headings
                    .into_iter()
                    .filter(|(level, _, _)| (2..=3).contains(level))
                    .map(|(level, text, id)| TocEntry { level, text, id })
                    .collect(),
                error: None,
            }
        }
        Err(error) => DocsTab {
            site_name: site.site_name.clone(),
            nav,
            page_title: "Page not found".into(),
            path: path.to_string(),
            html: String::new(),
            toc: Vec::new(),
            error: Some(error.to_string()),
        },
    }
}

/// An image of the entity's docs. SVG is sandboxed so a script in it never
/// runs with the portal's origin.
fn docs_asset(app: &AppState, caller: &Caller, key: &str, path: &str) -> Response {
    let site = match app.platform.catalog().docs(caller, key) {
        Ok(Some(site)) => site,
        Ok(None) => return error_page(plinth_app::AppError::not_found("this entity has no docs").into()),
        Err(error) => return error_page(error.into()),
    };
    match site.asset(path) {
        Ok(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; sandbox"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CACHE_CONTROL, "private, max-age=60"),
            ],
            asset.bytes,
        )
            .into_response(),
        Err(error) => error_page(plinth_app::AppError::from(error).into()),
    }
}

fn is_http(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Action links from well-known annotations and dashboard links.
pub(super) fn actions(annotations: &Value, links: &Value) -> Vec<Action> {
    let annotation = |key: &str| annotations[key].as_str().map(str::trim).filter(|v| !v.is_empty());
    let mut out = Vec::new();
    if let Some(location) = annotation("backstage.io/source-location") {
        let url = location.strip_prefix("url:").unwrap_or(location);
        out.push(Action {
            kind: "source",
            label: "View source".into(),
            href: is_http(url).then(|| url.to_string()),
            detail: Some(location.to_string()),
            external: true,
        });
    }
    let id_like = |v: &str| v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if let Some(service) = annotation("pagerduty.com/service-id") {
        out.push(Action {
            kind: "oncall",
            label: "On-call".into(),
            href: id_like(service).then(|| format!("https://app.pagerduty.com/service-directory/{service}")),
            detail: Some(format!("PagerDuty service {service}")),
            external: true,
        });
    } else if let Some(team) = annotation("opsgenie.com/team") {
        out.push(Action {
            kind: "oncall",
            label: "On-call".into(),
            href: Some(format!("https://app.opsgenie.com/teams?{}", query(&[("query", team)]))),
            detail: Some(format!("Opsgenie team {team}")),
            external: true,
        });
    } else if let Some(on_call) = annotation("plinth.io/on-call") {
        out.push(Action {
            kind: "oncall",
            label: "On-call".into(),
            href: is_http(on_call).then(|| on_call.to_string()),
            detail: Some(on_call.to_string()),
            external: true,
        });
    }
    for link in links.as_array().into_iter().flatten() {
        let Some(url) = link["url"].as_str() else { continue };
        if !is_dashboard(link) {
            continue;
        }
        let title = link["title"].as_str().unwrap_or("Dashboard");
        out.push(Action {
            kind: "dashboard",
            label: title.to_string(),
            href: is_http(url).then(|| url.to_string()),
            detail: Some(url.to_string()),
            external: true,
        });
    }
    if let Some(id) = annotation("backstage.io/kubernetes-id") {
        let selector = annotation("backstage.io/kubernetes-label-selector")
            .map_or_else(|| format!("backstage.io/kubernetes-id={id}"), str::to_string);
        let namespace = annotation("backstage.io/kubernetes-namespace").map(|n| format!(" -n {n}")).unwrap_or_default();
        out.push(Action {
            kind: "kubernetes",
            label: "Kubernetes".into(),
            href: None,
            detail: Some(format!("kubectl get all{namespace} -l {selector}")),
            external: false,
        });
    }
    out
}

fn is_dashboard(link: &Value) -> bool {
    let field = |f: &str| link[f].as_str().unwrap_or("").to_lowercase();
    field("icon") == "dashboard"
        || field("type") == "dashboard"
        || ["dashboard", "grafana"].iter().any(|w| field("title").contains(w))
}

pub(super) fn entity_view(state: &CatalogState, record: &EntityRecord, errors: Vec<ErrorRow>) -> EntityView {
    let body: Value = serde_json::from_str(&record.body).unwrap_or(Value::Null);
    let s = &record.summary;
    let entity_ref = record.entity_ref.to_string();
    let href = entity_href(&entity_ref);
    let relations = state.relations_of(record.node);
    let owner = relations
        .iter()
        .find(|(rel, _)| rel.name() == "ownedBy")
        .map(|(_, node)| Link::from(EntityLink::node_in_state(state, *node)))
        .or_else(|| s.owner.as_deref().map(|o| OwnerLink::resolved(state, o, &s.namespace).into()));

    // The entity's own body: free-form YAML/JSON, read field by field.
    let metadata = &body["metadata"];
    let spec = &body["spec"];
    let links: Vec<ExternalLink> = metadata["links"]
        .as_array()
        .map(|links| {
            links
                .iter()
                .filter(|l| !is_dashboard(l))
                .filter_map(|l| {
                    let url = l["url"].as_str()?;
                    Some(ExternalLink {
                        url: is_http(url).then(|| url.to_string()),
                        text: l["title"].as_str().unwrap_or(url).to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let pairs = |value: &Value| -> Vec<KeyValue> {
        value
            .as_object()
            .map(|a| a.iter().map(|(k, v)| KeyValue { key: k.clone(), value: value_text(v) }).collect())
            .unwrap_or_default()
    };
    let spec_ref = |field: &str, default_kind: &str| -> Option<Link> {
        let text = spec[field].as_str()?;
        let parsed = plinth_model::parse_entity_ref(
            text,
            plinth_model::RefContext { default_kind: Some(default_kind), default_namespace: &s.namespace },
        )
        .ok()?;
        match state.get(&parsed.key()) {
            Some(target) => Some(Link {
                label: super::super::view::display_name(target),
                href: Some(entity_href(&parsed.to_string())),
                missing: false,
            }),
            None => Some(Link { label: text.to_string(), href: None, missing: true }),
        }
    };
    let impact = state.impact_count(&record.key, Direction::Dependents).unwrap_or(0);
    let dependencies = state.impact_count(&record.key, Direction::Dependencies).unwrap_or(0);

    let kind = s.kind.to_lowercase();
    let mut view = EntityView {
        title: s.title.clone().unwrap_or_else(|| s.name.clone()),
        entity_ref,
        href,
        summary: Facts {
            kind: s.kind.to_string(),
            namespace: s.namespace.to_string(),
            name: s.name.clone(),
            spec_type: s.spec_type.as_deref().map(str::to_string),
            lifecycle: s.lifecycle.as_deref().map(str::to_string),
            description: s.description.clone(),
            tags: s.tags.clone(),
        },
        owner,
        system: spec_ref("system", "system"),
        domain: spec_ref("domain", "domain"),
        actions: actions(&metadata["annotations"], &metadata["links"]),
        links,
        annotations: pairs(&metadata["annotations"]),
        labels: pairs(&metadata["labels"]),
        relations: relations::groups(state, record.node, &relations),
        source: source(&record.managed_by),
        errors,
        impact,
        dependencies,
        updated: When::at(record.updated_at),
        kind_lower: kind.clone(),
        policy: policy::PolicyPanel::default(),
        signals_href: None,
        docs_href: None,
        tab: "overview",
        docs: None,
        api: None,
        ai: None,
        star: None,
    };

    match kind.as_str() {
        "api" => {
            let definition = spec["definition"].as_str().unwrap_or("");
            view.api = Some(api_panel(definition, s.spec_type.as_deref().unwrap_or("")));
        }
        "model" | "dataset" | "prompt" | "agent" | "tool" => {
            let field = |name: &str| -> Option<String> {
                match &spec[name] {
                    Value::Null => None,
                    Value::Array(items) => Some(items.iter().map(value_text).collect::<Vec<_>>().join(", ")),
                    other => Some(value_text(other)),
                }
            };
            view.ai = Some(AiPanel {
                risk_tier: field("riskTier"),
                data_classification: field("dataClassification"),
                residency: field("residency"),
                autonomy: field("autonomy"),
                provider: field("provider"),
            });
        }
        _ => {}
    }
    view
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `url:https://…/blob/…` as a link; anything else as text.
fn source(managed_by: &str) -> Option<Source> {
    if managed_by.is_empty() {
        return None;
    }
    let url = managed_by.strip_prefix("url:").filter(|u| is_http(u));
    Some(Source { text: managed_by.to_string(), url: url.map(str::to_string) })
}

pub(super) const MAX_DEFINITION_BYTES: usize = 120 * 1024;

pub(super) fn api_panel(definition: &str, api_type: &str) -> ApiPanel {
    let truncated = definition.len() > MAX_DEFINITION_BYTES;
    let mut shown = definition;
    if truncated {
        let mut cut = MAX_DEFINITION_BYTES;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown = &shown[..cut];
    }
    let lower = api_type.to_ascii_lowercase();
    let mut panel = ApiPanel {
        format: lower.clone(),
        title: None,
        version: None,
        servers: Vec::new(),
        lines: highlight::lines(shown),
        truncated,
        bytes: definition.len(),
        operations: Vec::new(),
        channels: Vec::new(),
        services: Vec::new(),
    };
    match lower.as_str() {
        "grpc" => panel.services = apidoc::proto(shown),
        "openapi" | "asyncapi" => {
            let Some(document) = apidoc::parse(definition) else { return panel };
            panel.title = document["info"]["title"].as_str().map(str::to_string);
            panel.version = document["info"]["version"].as_str().map(str::to_string);
            let servers = match &document["servers"] {
                Value::Array(list) => list.iter().filter_map(|s| s["url"].as_str().map(str::to_string)).collect(),
                Value::Object(map) => {
                    map.values().filter_map(|s| s["url"].as_str().or(s["host"].as_str()).map(str::to_string)).collect()
                }
                _ => Vec::new(),
            };
            panel.servers = servers.into_iter().take(10).collect();
            if lower == "openapi" {
                panel.operations = apidoc::openapi(&document);
            } else {
                panel.channels = apidoc::asyncapi(&document);
            }
        }
        _ => {}
    }
    panel
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_from_annotations_and_links() {
        let annotations = json!({
            "backstage.io/source-location": "url:https://github.com/acme/auth/tree/main/",
            "pagerduty.com/service-id": "P7AC60D",
            "backstage.io/kubernetes-id": "auth-service",
        });
        let links = json!([
            {"url": "https://grafana.example.com/d/auth", "title": "Grafana dashboard", "icon": "dashboard"},
            {"url": "javascript:alert(1)", "title": "Evil dashboard"},
            {"url": "https://runbooks.example.com/auth", "title": "Runbook"},
        ]);
        let found = actions(&annotations, &links);
        let shape: Vec<(&str, &str, Option<&str>)> =
            found.iter().map(|a| (a.kind, a.label.as_str(), a.href.as_deref())).collect();
        assert_eq!(
            shape,
            [
                ("source", "View source", Some("https://github.com/acme/auth/tree/main/")),
                ("oncall", "On-call", Some("https://app.pagerduty.com/service-directory/P7AC60D")),
                ("dashboard", "Grafana dashboard", Some("https://grafana.example.com/d/auth")),
                ("dashboard", "Evil dashboard", None),
                ("kubernetes", "Kubernetes", None),
            ]
        );
        assert_eq!(found[4].detail.as_deref(), Some("kubectl get all -l backstage.io/kubernetes-id=auth-service"));
        // Unsafe schemes and odd ids never become links.
        let odd = actions(
            &json!({"backstage.io/source-location": "url:file:///etc/passwd", "pagerduty.com/service-id": "x/../y"}),
            &json!([]),
        );
        assert!(odd.iter().all(|a| a.href.is_none()), "{odd:?}");
        let opsgenie = actions(&json!({"opsgenie.com/team": "payments team"}), &Value::Null);
        assert_eq!(opsgenie[0].href.as_deref(), Some("https://app.opsgenie.com/teams?query=payments+team"));
    }

    #[test]
    fn api_panels_per_format() {
        let grpc = api_panel("service S { rpc A (B) returns (C); }", "grpc");
        assert_eq!(grpc.services[0].methods[0].name, "A");
        let openapi =
            api_panel("openapi: 3.0.0\ninfo: {title: T, version: '1'}\npaths: {/x: {get: {summary: s}}}\n", "openapi");
        assert_eq!((openapi.title.as_deref(), openapi.operations.len()), (Some("T"), 1));
        let asyncapi = api_panel(
            r#"{"asyncapi": "2.6.0", "channels": {"c": {"publish": {"message": {"name": "m"}}}}}"#,
            "asyncapi",
        );
        assert_eq!(asyncapi.channels[0].messages[0].name, "m");
        let broken = api_panel("openapi: [", "openapi");
        assert!(broken.operations.is_empty() && !broken.lines.is_empty());
    }
}
