//! `/create`: every catalogued template, broken ones with their problems.

use super::{text, ProblemRow};
use crate::portal::view::OwnerLink;
use crate::portal::{encode, page};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use plinth_app::catalog::CatalogState;
use plinth_app::golden_paths::TemplateListing;
use plinth_app::Caller;
use serde::Serialize;

/// `create.html`: the template cards.
#[derive(Debug, Serialize)]
struct TemplatesView {
    title: &'static str,
    /// Golden paths are off on this server (or the caller may not list them).
    disabled: bool,
    templates: Vec<TemplateCard>,
}

/// One template on `/create`.
#[derive(Debug, Serialize)]
struct TemplateCard {
    /// `template:namespace/name`.
    #[serde(rename = "ref")]
    template_ref: String,
    /// The template's form.
    href: String,
    /// `metadata.title`, else the name.
    title: String,
    /// `spec.type` (service, resource, …).
    #[serde(rename = "type")]
    spec_type: Option<String>,
    owner: Option<OwnerLink>,
    description: Option<String>,
    tags: Vec<String>,
    /// Whether the template can run; else `problems` says why not.
    valid: bool,
    problems: Vec<ProblemRow>,
}

impl TemplateCard {
    /// The card of a template; its owner shown by the team's title when
    /// `state` (the catalogue) has the team.
    fn of(listing: &TemplateListing, state: Option<&CatalogState>) -> TemplateCard {
        let (entity, parsed) = (&listing.entity, &listing.template);
        let metadata = &entity["metadata"];
        let namespace = metadata["namespace"].as_str().unwrap_or("default");
        let name = metadata["name"].as_str().unwrap_or_default();
        TemplateCard {
            template_ref: format!("template:{namespace}/{name}"),
            href: format!("/create/templates/{}/{}", encode(namespace), encode(name)),
            title: metadata["title"].as_str().unwrap_or(name).to_string(),
            spec_type: entity["spec"]["type"].as_str().map(str::to_string),
            owner: entity["spec"]["owner"].as_str().map(|o| OwnerLink::shown(state, o, namespace)),
            description: metadata["description"].as_str().map(str::to_string),
            tags: metadata["tags"].as_array().map(|tags| tags.iter().filter_map(text).collect()).unwrap_or_default(),
            valid: parsed.is_ok(),
            problems: parsed
                .as_ref()
                .err()
                .map(|problems| {
                    problems.iter().map(|p| ProblemRow { field: p.field.clone(), message: p.message.clone() }).collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// `GET /create`: every catalogued template, broken ones with their problems.
pub(crate) async fn templates_page(State(app): State<AppState>, Extension(caller): Extension<Caller>) -> Response {
    let view = match app.platform.golden_paths().templates(&caller) {
        Ok(listings) => {
            let state = app.platform.catalog().view(&caller).ok();
            TemplatesView {
                title: "Create",
                disabled: false,
                templates: listings.iter().map(|l| TemplateCard::of(l, state.as_deref())).collect(),
            }
        }
        Err(_) => TemplatesView { title: "Create", disabled: true, templates: Vec::new() },
    };
    page(StatusCode::OK, "create.html", &view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn listing(entity: serde_json::Value) -> TemplateListing {
        TemplateListing { template: plinth_scaffold::Template::from_entity(&entity), entity }
    }

    #[test]
    fn valid_and_broken_templates_render() {
        let listings = [
            listing(json!({
                "apiVersion": "scaffolder.backstage.io/v1beta3",
                "kind": "Template",
                "metadata": {"name": "hello", "title": "<b>Hello</b>", "description": "Says hello", "tags": ["demo"]},
                "spec": {"type": "service", "owner": "team-a", "steps": [{"id": "greet", "action": "debug:log"}]},
            })),
            listing(json!({
                "apiVersion": "scaffolder.backstage.io/v1beta3",
                "kind": "Template",
                "metadata": {"name": "broken", "namespace": "ops"},
                "spec": {"steps": [{"id": "a", "action": "does:not-exist"}]},
            })),
        ];
        let view = TemplatesView {
            title: "Create",
            disabled: false,
            templates: listings.iter().map(|l| TemplateCard::of(l, None)).collect(),
        };
        assert!(view.templates[0].valid && !view.templates[1].valid, "{view:?}");
        let html = crate::portal::golden_paths::rendered("create.html", &view);
        for expected in [
            r#"<li class="template-card" data-template-ref="template:default/hello">"#,
            r#"<h2><a href="/create/templates/default/hello">&lt;b&gt;Hello&lt;/b&gt;</a></h2>"#,
            r#"<span class="template-type">service</span> · owner <a class="entity-link owner-link" href="/catalog/default/group/team-a">team-a</a>"#,
            r#"<p class="description">Says hello</p>"#,
            r#"<a href="/catalog?kind=template&amp;tag=demo">demo</a>"#,
            r#"<li class="template-card invalid" data-template-ref="template:ops/broken">"#,
            "does:not-exist",
        ] {
            assert!(html.contains(expected), "{expected} in {html}");
        }
        let empty = TemplatesView { title: "Create", disabled: false, templates: Vec::new() };
        assert!(crate::portal::golden_paths::rendered("create.html", &empty).contains(r#"id="no-templates""#));
        let disabled = TemplatesView { title: "Create", disabled: true, templates: Vec::new() };
        assert!(crate::portal::golden_paths::rendered("create.html", &disabled).contains(r#"id="create-disabled""#));
    }
}
