//! The signed-in user's "My team" home (`/` once signed in as a user;
//! anyone else keeps the catalogue home): what the user's teams own, what
//! fails by rule, the user's golden-path runs, recent changes to what the
//! teams own, and starred entities. Stars are toggled with a form
//! (`POST /stars/{namespace}/{kind}/{name}`, the `star_button.html`
//! partial), which comes back to the page it was sent from.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use plinth_app::catalog::CatalogState;
use plinth_app::Caller;
use plinth_model::EntityRef;
use serde::{Deserialize, Serialize};

use super::super::policy::team::{rule_view, RuleFailuresView};
use super::super::view::{timestamp, EntityLink, When};
use super::super::{encode, entity_href, error_page, page};
use super::safe_next;
use crate::params::Params;
use crate::AppState;

/// Owned entities the home lists before linking to the explorer.
const OWNED_ON_HOME: usize = 30;

/// The star toggle of one entity: the `star_button.html` partial.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StarButton {
    /// The form's action.
    action: String,
    starred: bool,
    /// Where the form comes back to.
    next: String,
    /// The entity, for the button's accessible name.
    label: String,
}

/// The star toggle for `entity` on the page at `next`, or `None` when the
/// caller is not signed in as a user (stars are per person). For the entity
/// page: `view.star = auth::my_team::star_button(&app, &caller, &entity_ref, &view.href).await;`
pub(crate) async fn star_button(app: &AppState, caller: &Caller, entity: &EntityRef, next: &str) -> Option<StarButton> {
    caller.user_ref()?;
    let starred = app.platform.stars().is_starred(caller, entity).await.ok()?;
    Some(StarButton {
        action: format!(
            "/stars/{}/{}/{}",
            encode(&entity.namespace),
            encode(&entity.kind.to_lowercase()),
            encode(&entity.name)
        ),
        starred,
        next: next.to_string(),
        label: entity.name.clone(),
    })
}

#[derive(Debug, Deserialize)]
pub(in crate::portal) struct StarForm {
    /// `star` or `unstar`.
    action: String,
    next: Option<String>,
}

/// `POST /stars/{namespace}/{kind}/{name}`: stars or unstars, then back.
pub(in crate::portal) async fn toggle_star(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    Form(form): Form<StarForm>,
) -> Response {
    let entity = EntityRef::new(&kind, &namespace, &name);
    let stars = app.platform.stars();
    let done = match form.action.as_str() {
        "star" => stars.star(&caller, &entity).await,
        "unstar" => stars.unstar(&caller, &entity).await,
        _ => Err(plinth_app::AppError::invalid_field("action", "must be `star` or `unstar`")),
    };
    match done {
        Ok(_) => {
            let fallback = entity_href(&entity.to_string());
            let next = match form.next.as_deref() {
                Some(next) => safe_next(Some(next)).to_string(),
                None => fallback,
            };
            Redirect::to(&next).into_response()
        }
        Err(error) => error_page(error.into()),
    }
}

/// A run of the user's.
#[derive(Debug, Serialize)]
struct RunRow {
    id: String,
    href: String,
    template: String,
    status: String,
    created_at: When,
}

/// A recent change to an owned entity.
#[derive(Debug, Serialize)]
struct ChangeRow {
    entity: EntityLink,
    op: &'static str,
    at: When,
}

/// A starred entity, with its toggle.
#[derive(Debug, Serialize)]
struct StarRow {
    entity: EntityLink,
    starred_at: String,
    star: StarButton,
}

/// An owned entity, with its toggle.
#[derive(Debug, Serialize)]
struct OwnedRow {
    entity: EntityLink,
    star: StarButton,
}

/// The "My team" home.
#[derive(Debug, Serialize)]
struct MyTeamView {
    title: &'static str,
    user: EntityLink,
    teams: Vec<EntityLink>,
    /// The teams and their sub-teams.
    groups: usize,
    owned: Vec<OwnedRow>,
    owned_total: usize,
    /// The explorer, filtered to what the teams own.
    owned_href: Option<String>,
    failures: Option<RuleFailuresView>,
    runs: Option<Vec<RunRow>>,
    changes: Vec<ChangeRow>,
    stars: Vec<StarRow>,
}

fn link(state: &CatalogState, key: &str) -> EntityLink {
    EntityLink::of_key(state, key)
}

fn button(key: &str, starred: bool, next: &str) -> StarButton {
    let parsed = plinth_model::parse_ref_lenient(key, Some("component")).ok();
    let (namespace, kind, name) = match &parsed {
        Some(r) => (r.namespace.as_str(), r.kind.to_lowercase(), r.name.as_str()),
        None => ("default", "component".to_string(), key),
    };
    StarButton {
        action: format!("/stars/{}/{}/{}", encode(namespace), encode(&kind), encode(name)),
        starred,
        next: next.to_string(),
        label: name.to_string(),
    }
}

/// `GET /`: "My team" for a signed-in user, the catalogue home otherwise.
pub(in crate::portal) async fn home(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Response {
    let Some(user) = caller.user_ref().map(str::to_string) else {
        return super::super::catalog::home(State(app), Extension(caller)).await;
    };
    let mine = match app.platform.my_team(&caller).await {
        Ok(mine) => mine,
        Err(error) => return error_page(error.into()),
    };
    let state = match app.platform.catalog().view(&caller) {
        Ok(state) => state,
        Err(error) => return error_page(error.into()),
    };
    let starred: std::collections::HashSet<&str> = mine.stars.iter().map(|s| s.entity_ref.as_str()).collect();
    let owned = mine
        .owned
        .iter()
        .take(OWNED_ON_HOME)
        .map(|key| OwnedRow { entity: link(&state, key), star: button(key, starred.contains(key.as_str()), "/") })
        .collect();
    let owned_href = explorer_of(&state, &mine.owned);
    let changes = mine
        .changes
        .iter()
        .map(|c| {
            let key = plinth_model::parse_ref_lenient(&c.entity_ref, None).map(|r| r.key()).unwrap_or_default();
            let live = state.get(&key).is_some();
            ChangeRow { entity: link(&state, &key), op: if live { "updated" } else { "deleted" }, at: When::at(c.at) }
        })
        .collect();
    let stars = mine
        .stars
        .iter()
        .map(|s| StarRow {
            entity: link(&state, &s.entity_ref),
            starred_at: timestamp(s.starred_at),
            star: button(&s.entity_ref, true, "/"),
        })
        .collect();
    let runs = mine.runs.as_ref().map(|runs| {
        runs.iter()
            .map(|r| RunRow {
                href: format!("/create/tasks/{}", encode(&r.id)),
                id: r.id.clone(),
                template: r.template_ref.clone(),
                status: r.status.as_str().to_string(),
                created_at: When::at(r.created_at),
            })
            .collect()
    });
    let failures = mine.failures.as_ref().map(|f| rule_view(&state, f, "/", params.one("show")));
    let view = MyTeamView {
        title: "My team",
        user: link(&state, &user.to_lowercase()),
        teams: mine.teams.iter().map(|t| link(&state, t)).collect(),
        groups: mine.groups,
        owned,
        owned_total: mine.owned_total,
        owned_href,
        failures,
        runs,
        changes,
        stars,
    };
    drop(state);
    page(StatusCode::OK, "my_team.html", &view)
}

/// Most `owner=` values in the "All N in the catalogue" link.
const MAX_OWNER_VALUES: usize = 20;

/// The explorer filtered to `owned`: its owner facet matches `spec.owner`
/// as each entity writes it (`team-a`, `group:team-a` or the full ref), so
/// the link carries every form the owned entities use, one `owner=` each.
/// No link when they use more than [`MAX_OWNER_VALUES`] forms.
fn explorer_of(state: &CatalogState, owned: &[String]) -> Option<String> {
    let owners: std::collections::BTreeSet<&str> =
        owned.iter().filter_map(|key| state.get(key)).filter_map(|r| r.summary.owner.as_deref()).collect();
    if owners.is_empty() || owners.len() > MAX_OWNER_VALUES {
        return None;
    }
    let pairs: Vec<(&str, &str)> = owners.into_iter().map(|o| ("owner", o)).collect();
    Some(format!("/catalog?{}", super::super::query(&pairs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(view: &MyTeamView) -> String {
        let chrome =
            crate::portal::Chrome { view, asset_version: "test", nav: "", header_q: "", session: Default::default() };
        let template = crate::portal::templates().get_template("my_team.html").expect("the template");
        template.render(minijinja::Value::from_serialize(&chrome)).unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn entity(key: &str) -> EntityLink {
        let state = CatalogState::new();
        link(&state, key)
    }

    #[test]
    fn my_team_renders_full_and_empty() {
        let view = MyTeamView {
            title: "My team",
            user: entity("user:default/jo"),
            teams: vec![entity("group:default/a"), entity("group:default/b")],
            groups: 3,
            owned: vec![OwnedRow {
                entity: entity("component:default/x"),
                star: button("component:default/x", false, "/"),
            }],
            owned_total: 40,
            owned_href: Some("/catalog?owner=group%3Adefault%2Fa".into()),
            failures: Some(RuleFailuresView::default()),
            runs: Some(vec![RunRow {
                id: "r1".into(),
                href: "/create/tasks/r1".into(),
                template: "template:default/service".into(),
                status: "completed".into(),
                created_at: When::at(time::macros::datetime!(2030-01-01 00:00 UTC)),
            }]),
            changes: vec![ChangeRow {
                entity: entity("component:default/x"),
                op: "deleted",
                at: When::at(time::macros::datetime!(2030-01-01 00:00 UTC)),
            }],
            stars: vec![StarRow {
                entity: entity("api:ns/y"),
                starred_at: "2030".into(),
                star: button("api:ns/y", true, "/"),
            }],
        };
        let html = render(&view);
        for expected in [
            r#"<form class="star-form" method="post" action="/stars/default/component/x">"#,
            r#"<input type="hidden" name="action" value="star">"#,
            r#"action="/stars/ns/api/y""#,
            r#"aria-pressed="true" aria-label="Unstar y""#,
            r#"<li data-run="r1"><a href="/create/tasks/r1">template:default/service</a>"#,
            "All 40 in the catalogue",
            "<del>",
            "Nothing denied or warned so far",
        ] {
            assert!(html.contains(expected), "{expected} in {html}");
        }
        let empty = MyTeamView {
            teams: Vec::new(),
            owned: Vec::new(),
            owned_total: 0,
            owned_href: None,
            failures: None,
            runs: None,
            changes: Vec::new(),
            stars: Vec::new(),
            ..view
        };
        let html = render(&empty);
        for expected in [
            "Nothing starred yet",
            "The policy engine is not enabled",
            "not a member of any team",
            "Golden paths are not enabled",
            "No recent changes",
        ] {
            assert!(html.contains(expected), "{expected} in {html}");
        }
    }
}
