//! Drill-downs: the entities behind each count. Per rule, the entities it
//! denies or warns about; per scorecard check, the failing entities by
//! team; and for one team (a Group and its sub-teams), what it owns that
//! fails. `/policies` shows the first two over the whole catalogue,
//! `/teams/{namespace}/{name}/failing` and the group's entity page the
//! third (the `team_failures.html` partial).

use super::super::view::{EntityLink, OwnerLink};
use super::super::{encode, error_page, page, query};
use crate::params::Params;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use plinth_app::catalog::CatalogState;
use plinth_app::policy::drilldown::{CheckFailures, Failures, Scope};
use plinth_app::Caller;
use plinth_model::EntityRef;
use plinth_policy::Outcome;
use serde::Serialize;

/// Entities shown per rule or per (check, team) before "show all".
pub(crate) const LIST_LIMIT: usize = 10;
/// Teams shown per scorecard check (those with the most failing entities
/// first); `?show=` lists them all. At 100k entities a check can fail in
/// over a thousand teams, and listing every one made `/policies` 18 MB.
pub(crate) const TEAM_LIMIT: usize = 10;

/// One failing entity of a rule.
#[derive(Debug, Serialize)]
struct HitRow {
    entity: EntityLink,
    /// `deny` or `warn`.
    effect: &'static str,
    message: String,
}

/// A rule and the entities it denies or warns about.
#[derive(Debug, Serialize)]
struct RuleDrill {
    rule: String,
    /// For element ids and anchors.
    anchor: String,
    title: Option<String>,
    severity: Option<String>,
    policy: String,
    denied: usize,
    warned: usize,
    hits: Vec<HitRow>,
    /// Entities not listed (beyond the limit).
    more: usize,
    /// Lists them all.
    show_all_href: Option<String>,
}

/// The rule failures of a scope, as the `rule_failures.html` partial shows them.
#[derive(Debug, Default, Serialize)]
pub(crate) struct RuleFailuresView {
    rules: Vec<RuleDrill>,
    denied_entities: usize,
    warned_entities: usize,
    unexamined: usize,
    complete: bool,
}

/// A team's failing entities for one check.
#[derive(Debug, Serialize)]
struct TeamCheckRow {
    /// `None`: entities without an owner.
    owner: Option<OwnerLink>,
    entities: Vec<EntityLink>,
    count: usize,
    more: usize,
}

/// A scorecard check and its failing entities, per team.
#[derive(Debug, Serialize)]
struct CheckDrill {
    scorecard: String,
    scorecard_title: String,
    check: String,
    anchor: String,
    title: String,
    level: String,
    applies: usize,
    failing: usize,
    /// Passing entities of `applies`.
    passed: usize,
    teams: Vec<TeamCheckRow>,
    /// Teams not shown (beyond [`TEAM_LIMIT`]) and their failing entities.
    more_teams: usize,
    more_teams_entities: usize,
    show_all_href: Option<String>,
}

/// The check failures of a scope, as the `check_failures.html` partial shows them.
#[derive(Debug, Default, Serialize)]
pub(crate) struct CheckFailuresView {
    checks: Vec<CheckDrill>,
    /// The governance view covers the catalogue as it is (else "no failing
    /// check" only means "none so far").
    complete: bool,
}

/// What one team owns that fails: the `team_failures.html` partial.
#[derive(Debug, Default, Serialize)]
pub(crate) struct TeamFailuresView {
    team: String,
    /// The team page of the drill-down (`…/failing`).
    href: String,
    /// Groups covered: the team and its sub-teams.
    groups: usize,
    /// Entities of the team the governance view holds as denied.
    denied: usize,
    warned: usize,
    failures: RuleFailuresView,
    checks: CheckFailuresView,
}

fn anchor(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' }).collect()
}

fn link(state: &CatalogState, key: &str) -> EntityLink {
    EntityLink::of_key(state, key)
}

/// `base?show=KEY#anchor`: the same page with one list in full.
fn show_all(base: &str, key: &str, anchor: &str) -> String {
    format!("{base}?{}#{anchor}", query(&[("show", key)]))
}

/// The rule drill-down view: at most [`LIST_LIMIT`] entities per rule,
/// except the rule named by `show`.
pub(crate) fn rule_view(state: &CatalogState, failures: &Failures, base: &str, show: Option<&str>) -> RuleFailuresView {
    let rules = failures
        .rules
        .iter()
        .map(|rule| {
            let anchor = format!("rule-{}", anchor(&rule.rule));
            let limit = if show == Some(rule.rule.as_str()) { usize::MAX } else { LIST_LIMIT };
            let hits: Vec<HitRow> = rule
                .hits
                .iter()
                .take(limit)
                .map(|h| HitRow {
                    entity: link(state, &h.entity),
                    effect: if h.effect == Outcome::Deny { "deny" } else { "warn" },
                    message: h.message.clone(),
                })
                .collect();
            let more = rule.hits.len() - hits.len();
            RuleDrill {
                show_all_href: (more > 0).then(|| show_all(base, &rule.rule, &anchor)),
                anchor,
                rule: rule.rule.clone(),
                title: rule.title.clone(),
                severity: rule.severity.clone(),
                policy: rule.policy.clone(),
                denied: rule.denied,
                warned: rule.warned,
                hits,
                more,
            }
        })
        .collect();
    RuleFailuresView {
        rules,
        denied_entities: failures.denied_entities,
        warned_entities: failures.warned_entities,
        unexamined: failures.unexamined,
        complete: failures.complete,
    }
}

/// The check drill-down view: at most [`LIST_LIMIT`] entities per team
/// and check, except the check named by `show` (`scorecard/check`).
pub(crate) fn check_view(
    state: &CatalogState,
    checks: &[CheckFailures],
    base: &str,
    show: Option<&str>,
    complete: bool,
) -> CheckFailuresView {
    let checks = checks
        .iter()
        .map(|c| {
            let key = format!("{}/{}", c.scorecard, c.check);
            let anchor = format!("check-{}-{}", anchor(&c.scorecard), anchor(&c.check));
            let shown = show == Some(key.as_str());
            let limit = if shown { usize::MAX } else { LIST_LIMIT };
            let team_limit = if shown { usize::MAX } else { TEAM_LIMIT };
            let mut more_any = false;
            // The teams come with the most failing first.
            let hidden = &c.teams[c.teams.len().min(team_limit)..];
            let more_teams = hidden.len();
            let more_teams_entities = hidden.iter().map(|t| t.entities.len()).sum();
            more_any |= more_teams > 0;
            let teams = c
                .teams
                .iter()
                .take(team_limit)
                .map(|t| {
                    let entities: Vec<EntityLink> = t.entities.iter().take(limit).map(|e| link(state, e)).collect();
                    let more = t.entities.len() - entities.len();
                    more_any |= more > 0;
                    TeamCheckRow {
                        owner: t.owner.as_deref().map(|o| owner_link(state, o)),
                        count: t.entities.len(),
                        entities,
                        more,
                    }
                })
                .collect();
            CheckDrill {
                show_all_href: more_any.then(|| show_all(base, &key, &anchor)),
                scorecard: c.scorecard.clone(),
                scorecard_title: c.scorecard_title.clone(),
                check: c.check.clone(),
                anchor,
                title: c.title.clone(),
                level: c.level.clone(),
                applies: c.applies,
                failing: c.failing,
                passed: c.applies.saturating_sub(c.failing),
                teams,
                more_teams,
                more_teams_entities,
            }
        })
        .collect();
    CheckFailuresView { checks, complete }
}

/// An owner key as a link with the group's title when the catalogue has it.
fn owner_link(state: &CatalogState, key: &str) -> OwnerLink {
    OwnerLink::resolved(state, key, "default")
}

/// What the team `group` (and its sub-teams) owns that fails, by rule and
/// by check. `show` lifts the list limit of one rule or check.
pub(crate) fn team_failures(
    app: &AppState,
    caller: &Caller,
    group: &EntityRef,
    show: Option<&str>,
) -> Result<TeamFailuresView, plinth_app::AppError> {
    let policy = app.platform.policy();
    let scope = policy.team_scope(caller, group)?;
    let groups = match &scope {
        Scope::Owners(owners) => owners.len(),
        Scope::All => 0,
    };
    let failures = policy.rule_failures(caller, &scope)?;
    let checks = policy.check_failures(caller, &scope)?;
    let href = format!("/teams/{}/{}/failing", encode(&group.namespace), encode(&group.name));
    let state = app.platform.catalog().view(caller)?;
    Ok(TeamFailuresView {
        team: group.to_string(),
        groups,
        denied: failures.denied_entities,
        warned: failures.warned_entities,
        failures: rule_view(&state, &failures, &href, show),
        checks: check_view(&state, &checks, &href, show, failures.complete),
        href,
    })
}

/// The team drill-down page.
#[derive(Debug, Serialize)]
struct TeamFailingPage {
    title: String,
    team: EntityLink,
    team_failures: TeamFailuresView,
    /// Star the team (signed-in users).
    star: Option<super::super::auth::my_team::StarButton>,
}

/// `GET /teams/{namespace}/{name}/failing[?show=RULE|SCORECARD/CHECK]`.
pub(crate) async fn team_failing_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
    params: Params,
) -> Response {
    let group = EntityRef::new("group", &namespace, &name);
    let team_failures = match team_failures(&app, &caller, &group, params.one("show")) {
        Ok(view) => view,
        Err(error) => return error_page(error.into()),
    };
    let team = match app.platform.catalog().view(&caller) {
        Ok(state) => link(&state, &group.key()),
        Err(error) => return error_page(error.into()),
    };
    let here = format!("/teams/{}/{}/failing", encode(&namespace), encode(&name));
    let star = super::super::auth::my_team::star_button(&app, &caller, &group, &here).await;
    let view = TeamFailingPage { title: format!("What {} owns that fails", team.label), team, team_failures, star };
    page(StatusCode::OK, "team_failing.html", &view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plinth_app::policy::drilldown::TeamCheckFailures;

    fn render(template: &str, view: &impl Serialize) -> String {
        let chrome = crate::portal::Chrome {
            view,
            asset_version: "test",
            nav: "policies",
            header_q: "",
            session: Default::default(),
        };
        let template = crate::portal::templates().get_template(template).expect("the template");
        template.render(minijinja::Value::from_serialize(&chrome)).unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn entity(name: &str, href: bool) -> EntityLink {
        EntityLink {
            entity_ref: format!("component:default/{name}"),
            href: href.then(|| format!("/catalog/default/component/{name}")),
            label: name.to_string(),
            name: name.to_string(),
            kind: "Component".into(),
            spec_type: None,
            lifecycle: None,
            owner: href.then(|| OwnerLink { label: "Team A".into(), href: Some("/catalog/default/group/a".into()) }),
            description: None,
            missing: !href,
        }
    }

    fn full_view() -> TeamFailuresView {
        let rule = |name: &str, more: usize| RuleDrill {
            rule: name.into(),
            anchor: format!("rule-{}", anchor(name)),
            title: (more == 0).then(|| "Has an owner".to_string()),
            severity: (more > 0).then(|| "high".to_string()),
            policy: "plinth.baseline".into(),
            denied: 1,
            warned: 1 + more,
            hits: vec![
                HitRow { entity: entity("a", true), effect: "deny", message: "no <owner>".into() },
                HitRow { entity: entity("b", false), effect: "warn", message: "w".into() },
            ],
            more,
            show_all_href: (more > 0).then(|| show_all("/policies", name, "rule-x")),
        };
        TeamFailuresView {
            team: "group:default/a".into(),
            href: "/teams/default/a/failing".into(),
            groups: 2,
            denied: 1,
            warned: 1,
            failures: RuleFailuresView {
                rules: vec![rule("PL-1", 0), rule("p.deny_x", 4)],
                denied_entities: 1,
                warned_entities: 1,
                unexamined: 3,
                complete: true,
            },
            checks: CheckFailuresView {
                checks: vec![CheckDrill {
                    scorecard: "basics".into(),
                    scorecard_title: "Basics".into(),
                    check: "docs".into(),
                    anchor: "check-basics-docs".into(),
                    title: "Has docs".into(),
                    level: "bronze".into(),
                    applies: 5,
                    failing: 3,
                    passed: 2,
                    teams: vec![
                        TeamCheckRow {
                            owner: Some(OwnerLink { label: "Team A".into(), href: None }),
                            entities: vec![entity("a", true)],
                            count: 2,
                            more: 1,
                        },
                        TeamCheckRow { owner: None, entities: vec![entity("c", false)], count: 1, more: 0 },
                    ],
                    more_teams: 4,
                    more_teams_entities: 9,
                    show_all_href: Some("/policies?show=basics%2Fdocs#check-basics-docs".into()),
                }],
                complete: true,
            },
        }
    }

    #[test]
    fn the_team_drill_down_renders_every_part() {
        let page = TeamFailingPage {
            title: "What Team A owns that fails".into(),
            team: entity("a", true),
            team_failures: full_view(),
            star: None,
        };
        let html = render("team_failing.html", &page);
        for expected in [
            r#"data-denied="1" data-warned="1""#,
            r#"<li class="drill-rule" id="rule-pl-1" data-rule="PL-1" data-denied="1" data-warned="1">"#,
            r#"<a class="entity-link" href="/catalog/default/component/a">a</a>"#,
            "no &lt;owner&gt;",
            r#"href="/policies?show=p.deny_x#rule-x">Show all 6 entities</a>"#,
            "3 more failing entities were not examined",
            r#"data-failing="3""#,
            "and 1 more",
            "and 4 more teams with 9 failing entities",
            r#"data-more-teams="4" data-more-teams-entities="9""#,
            "No owner",
            "owned entity is denied",
        ] {
            assert!(html.contains(expected), "{expected} in {html}");
        }
        assert!(!html.contains("No owned entity is denied or warned"), "{html}");
    }

    #[test]
    fn empty_drill_downs_say_so() {
        let view = TeamFailuresView { groups: 1, ..TeamFailuresView::default() };
        let page = TeamFailingPage { title: "t".into(), team: entity("a", false), team_failures: view, star: None };
        let html = render("team_failing.html", &page);
        assert!(html.contains("No owned entity is denied or warned"), "{html}");
        assert!(html.contains("results are still being computed"), "{html}");
        // Until the governance view covers the catalogue, "no failing check"
        // only means "none so far".
        assert!(html.contains("No failing check so far") && !html.contains("Every scorecard check passes"), "{html}");
        let mut view = TeamFailuresView { groups: 1, ..TeamFailuresView::default() };
        view.failures.complete = true;
        view.checks.complete = true;
        let page = TeamFailingPage { title: "t".into(), team: entity("a", false), team_failures: view, star: None };
        let html = render("team_failing.html", &page);
        assert!(html.contains("Every scorecard check passes") && !html.contains("so far"), "{html}");
    }

    #[test]
    fn a_check_lists_its_ten_worst_teams_and_counts_the_rest() {
        let teams: Vec<TeamCheckFailures> = (0..12)
            .map(|i| TeamCheckFailures {
                owner: Some(format!("group:default/team-{i}")),
                entities: (0..(12 - i)).map(|e| format!("component:default/c-{i}-{e}")).collect(),
            })
            .collect();
        let failing = teams.iter().map(|t| t.entities.len()).sum();
        let checks = vec![CheckFailures {
            scorecard: "basics".into(),
            scorecard_title: "Basics".into(),
            check: "docs".into(),
            title: "Has docs".into(),
            level: "bronze".into(),
            applies: 100,
            failing,
            teams,
        }];
        let state = CatalogState::new();
        let view = check_view(&state, &checks, "/policies", None, true);
        let drill = &view.checks[0];
        assert_eq!(drill.teams.len(), TEAM_LIMIT);
        assert_eq!((drill.more_teams, drill.more_teams_entities), (2, 2 + 1));
        let listed: usize = drill.teams.iter().map(|t| t.count).sum();
        assert_eq!(listed + drill.more_teams_entities, failing);
        assert!(drill.show_all_href.is_some());
        // `?show=` lifts both limits for that check.
        let view = check_view(&state, &checks, "/policies", Some("basics/docs"), true);
        assert_eq!((view.checks[0].teams.len(), view.checks[0].more_teams), (12, 0));
        assert!(view.checks[0].teams.iter().all(|t| t.more == 0));
    }

    #[test]
    fn anchors_and_show_all_links() {
        assert_eq!(anchor("PL-BASE.003/x"), "pl-base-003-x");
        assert_eq!(show_all("/policies", "a b/c", "rule-a"), "/policies?show=a+b%2Fc#rule-a");
    }
}
