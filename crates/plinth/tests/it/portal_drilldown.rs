//! The portal answers at a glance: headless Chromium journeys on
//! `plinth serve --demo`.
//!
//! - `/policies` lists the entities each rule denies or warns about, with
//!   counts that add up, and each scorecard check its failing entities by
//!   team; a team's drill-down shows what it (and its sub-teams) owns that
//!   fails; the policies page reflows at phone width (390 px).
//! - Signed in (`--auth required`, a user token issued offline), `/` is
//!   "My team": what the user's teams own, what fails, their runs, recent
//!   changes and stars; a star made there is on the home and in the API.
//!   A golden-path run's page hides "Cancel run" once the run ends and
//!   renders the template's "Next steps" Markdown; a pattern the value
//!   misses is explained with the field's help sentence, not the regex.
//! - axe-core (`PLINTH_AXE_CORE`, installed by `cargo xtask test`) finds no
//!   serious or critical violation on any page type.

use super::common::{plinth_command, repo, Launch, Run, Serve};
use plinth_testkit::browser::{url_path, Browser};
use plinth_testkit::{page_ensure as ensure, page_fail as fail};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The demo's agent the shipped policies deny (PL-AGT-003), owned by
/// team-applied-ai.
const DENIED_AGENT: &str = "agent:default/support-copilot-agent";
const AGENT_TEAM: &str = "team-applied-ai";
/// A demo user, member of team-search and team-applied-ai.
const USER: &str = "user:default/jonas.berg";

fn http() -> reqwest::Client {
    super::common::http_with_timeout(Duration::from_secs(180))
}

/// The numbers in a text.
fn numbers(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit()).filter_map(|d| d.parse().ok()).collect()
}

/// Loads `path` until `ready_css` is on it and `pending_css` is not (the
/// governance view's first evaluation runs in the background).
pub(crate) async fn wait_for_results(b: &Browser, plinth: &Serve, path: &str, ready_css: &str, pending_css: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        b.goto(&plinth.url(path)).await;
        b.wait("main").await;
        if b.find(ready_css).await.is_some() && b.find(pending_css).await.is_none() {
            return;
        }
        if Instant::now() > deadline {
            fail!(
                b,
                "{path}: no `{ready_css}` (or still `{pending_css}`) after 120 s; plinth log:\n{}",
                plinth.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

/// The rule drill-down of the page: per rule its counts, listed entities
/// and "show all" link.
pub(crate) async fn rule_rows(b: &Browser, scope: &str) -> Vec<Value> {
    let script = format!(
        "return [...document.querySelectorAll('{scope} li.drill-rule')].map(li => ({{ \
            rule: li.getAttribute('data-rule'), \
            denied: Number(li.getAttribute('data-denied')), warned: Number(li.getAttribute('data-warned')), \
            hits: [...li.querySelectorAll('li.drill-entity')].map(e => ({{ \
                ref: e.getAttribute('data-entity'), \
                effect: e.classList.contains('effect-deny') ? 'deny' : 'warn', \
                href: (e.querySelector('a.entity-link') || {{}}).getAttribute ? e.querySelector('a.entity-link').getAttribute('href') : null, \
                owner: !!e.querySelector('.drill-owner') }})), \
            showAll: li.querySelector('.show-all a') ? li.querySelector('.show-all a').getAttribute('href') : null }}))"
    );
    b.script(&script, json!([])).await.as_array().cloned().unwrap_or_default()
}

/// Checks one rule row: its counts are its listed entities (when all are
/// listed), every entity is linked. Returns the denied entity refs.
pub(crate) fn check_rule(row: &Value, problems: &mut Vec<String>) -> BTreeSet<String> {
    let rule = row["rule"].as_str().unwrap_or("?");
    let hits = row["hits"].as_array().cloned().unwrap_or_default();
    let denied: BTreeSet<String> =
        hits.iter().filter(|h| h["effect"] == "deny").filter_map(|h| h["ref"].as_str().map(str::to_string)).collect();
    let warned = hits.iter().filter(|h| h["effect"] == "warn").count() as u64;
    let total = row["denied"].as_u64().unwrap_or(0) + row["warned"].as_u64().unwrap_or(0);
    if total == 0 {
        problems.push(format!("rule {rule}: listed with 0 denied and 0 warned"));
    }
    if row["showAll"].is_null() {
        if denied.len() as u64 != row["denied"].as_u64().unwrap_or(0) || warned != row["warned"].as_u64().unwrap_or(0) {
            problems.push(format!(
                "rule {rule}: says {} denied, {} warned but lists {} and {warned}",
                row["denied"],
                row["warned"],
                denied.len()
            ));
        }
    } else if (hits.len() as u64) >= total {
        problems.push(format!("rule {rule}: a \"show all\" link although all {total} entities are listed"));
    }
    for hit in &hits {
        let href = hit["href"].as_str().unwrap_or("");
        if !href.starts_with("/catalog/") {
            problems.push(format!("rule {rule}: entity {} is not linked to its page ({href:?})", hit["ref"]));
        }
    }
    denied
}

#[tokio::test]
async fn policy_scorecard_and_team_drilldowns() {
    let started = Instant::now();
    let plinth = Serve::demo().await;
    let b = Browser::open().await;

    // /policies: per rule, the denied and warned entities.
    wait_for_results(&b, &plinth, "/policies", "#rule-failures li.drill-rule", "#policy-pending").await;
    let deny_text = b.text_of("#outcomes li[data-result=\"deny\"] .count").await;
    let deny_count = numbers(&deny_text).first().copied().unwrap_or(0);
    ensure!(b, deny_count > 0, "policies: the demo has no denied entity ({deny_text:?})");
    let rows = rule_rows(&b, "#rule-failures").await;
    ensure!(b, !rows.is_empty(), "policies: #rule-failures lists no rule");
    let mut problems = Vec::new();
    let mut denied: BTreeSet<String> = BTreeSet::new();
    let mut show_all = Vec::new();
    for row in &rows {
        denied.extend(check_rule(row, &mut problems));
        if let Some(href) = row["showAll"].as_str() {
            show_all.push((row["rule"].as_str().unwrap_or("").to_string(), href.to_string()));
        }
    }
    // A long list is bounded, and "show all" lists every entity of that rule.
    for (rule, href) in &show_all {
        ensure!(b, href.starts_with("/policies?show="), "policies: rule {rule}'s \"show all\" is {href}");
        b.goto(&plinth.url(href)).await;
        b.wait("#rule-failures").await;
        let full = rule_rows(&b, "#rule-failures").await;
        let Some(row) = full.iter().find(|r| r["rule"].as_str() == Some(rule.as_str())) else {
            fail!(b, "policies: {href} does not list rule {rule}")
        };
        ensure!(b, row["showAll"].is_null(), "policies: {href} still cuts rule {rule}'s list");
        let listed = row["hits"].as_array().map_or(0, Vec::len) as u64;
        let total = row["denied"].as_u64().unwrap_or(0) + row["warned"].as_u64().unwrap_or(0);
        ensure!(b, listed == total && listed > 10, "policies: {href} lists {listed} of rule {rule}'s {total} entities");
        denied.extend(check_rule(row, &mut problems));
    }
    ensure!(b, problems.is_empty(), "policies drill-down:\n  {}", problems.join("\n  "));
    ensure!(
        b,
        denied.len() as u64 == deny_count,
        "policies: {deny_count} entities are denied, but the rules list {} denied entities: {denied:?}",
        denied.len()
    );
    b.goto(&plinth.url("/policies?show=PL-AGT-003")).await;
    b.wait("#rule-failures").await;
    let full = rule_rows(&b, "#rule-failures").await;
    let Some(agent_rule) = full.iter().find(|r| r["rule"] == "PL-AGT-003") else {
        fail!(b, "policies: no drill-down row for PL-AGT-003")
    };
    let agent_hit = agent_rule["hits"].as_array().and_then(|h| h.iter().find(|h| h["ref"] == DENIED_AGENT).cloned());
    ensure!(
        b,
        agent_hit.as_ref().is_some_and(|h| h["effect"] == "deny" && h["owner"] == json!(true)),
        "policies: PL-AGT-003 does not list {DENIED_AGENT} as denied with its owner: {agent_rule}"
    );
    b.check_console("policies (drill-down)", &[]).await;
    b.save_screenshot(&crate::common::repo().join("docs/screenshots/policies-drilldown.png")).await;

    // Scorecards: each check names its failing entities, per team.
    b.goto(&plinth.url("/policies")).await;
    let checks = b
        .script(
            "return [...document.querySelectorAll('#check-failures li.drill-check')].map(li => ({ \
                check: li.getAttribute('data-scorecard') + '/' + li.getAttribute('data-check'), \
                failing: Number(li.getAttribute('data-failing')), \
                hidden: Number(li.getAttribute('data-more-teams-entities') || 0), \
                teams: [...li.querySelectorAll('li.drill-team')].map(t => ({ \
                    owner: t.getAttribute('data-owner'), \
                    count: Number(t.querySelector('.count').textContent), \
                    listed: t.querySelectorAll('li[data-entity] a.entity-link').length, \
                    more: t.querySelector('li.muted') ? Number(t.querySelector('li.muted').textContent.replace(/\\D+/g, '')) : 0 })) }))",
            json!([]),
        )
        .await;
    let checks = checks.as_array().cloned().unwrap_or_default();
    ensure!(b, !checks.is_empty(), "policies: #check-failures lists no failing check");
    let mut named_teams = 0;
    for check in &checks {
        let teams = check["teams"].as_array().cloned().unwrap_or_default();
        // The ten teams with the most failing entities, and the rest counted.
        ensure!(b, teams.len() <= 10, "check {}: {} teams listed", check["check"], teams.len());
        let sum: u64 = teams.iter().map(|t| t["count"].as_u64().unwrap_or(0)).sum();
        let hidden = check["hidden"].as_u64().unwrap_or(0);
        ensure!(
            b,
            sum + hidden == check["failing"].as_u64().unwrap_or(0) && sum > 0,
            "check {}: teams add to {sum} + {hidden} not listed: {check}",
            check["check"]
        );
        for team in &teams {
            let shown = team["listed"].as_u64().unwrap_or(0) + team["more"].as_u64().unwrap_or(0);
            ensure!(
                b,
                shown == team["count"].as_u64().unwrap_or(0),
                "check {}: team {team} lists {shown}",
                check["check"]
            );
            if team["owner"].as_str().is_some_and(|o| !o.is_empty()) {
                named_teams += 1;
            }
        }
    }
    ensure!(b, named_teams > 0, "policies: no failing check names a team");

    // The team's own drill-down: its denied agent, never "allow".
    let team_path = format!("/teams/default/{AGENT_TEAM}/failing");
    wait_for_results(&b, &plinth, &team_path, "#team-failures li.drill-rule", "#policy-pending").await;
    let section = b.wait("#team-failures").await;
    let team_denied: u64 = b.attribute(&section, "data-denied").await.unwrap_or_default().parse().unwrap_or(0);
    ensure!(b, team_denied >= 1, "{team_path}: data-denied is {team_denied}, but {DENIED_AGENT} is denied");
    let summary = b.text_of(".team-failures-summary").await;
    ensure!(
        b,
        summary.to_lowercase().contains("deny") && !summary.contains("No owned entity is denied"),
        "{team_path}: the summary says {summary:?} while {DENIED_AGENT} is denied"
    );
    let agent = b.find(&format!("#team-failures li.drill-entity.effect-deny[data-entity=\"{DENIED_AGENT}\"]")).await;
    ensure!(b, agent.is_some(), "{team_path}: {DENIED_AGENT} is not listed as denied");
    let rows = rule_rows(&b, "#team-failures").await;
    let mut problems = Vec::new();
    for row in &rows {
        check_rule(row, &mut problems);
        for hit in row["hits"].as_array().cloned().unwrap_or_default() {
            let href = hit["href"].as_str().unwrap_or("");
            ensure!(b, href.starts_with("/catalog/"), "{team_path}: an unlinked entity {hit}");
        }
    }
    ensure!(b, problems.is_empty(), "{team_path}:\n  {}", problems.join("\n  "));
    b.check_console("team drill-down", &[]).await;
    b.goto(&plinth.url("/teams/default/no-such-team/failing")).await;
    let heading = b.text_of("h1").await;
    ensure!(b, heading.contains("Not found"), "an unknown team's drill-down shows {heading:?}");
    b.check_console("unknown team", &["404 (Not Found)"]).await;

    // Phone width: the policies page reflows; nothing is cut off.
    if let Err(e) = b.post("/window/rect", json!({"width": 390, "height": 844})).await {
        fail!(b, "cannot resize the window: {e}");
    }
    b.goto(&plinth.url("/policies")).await;
    b.wait("#policy-list table.rules").await;
    b.save_screenshot(&crate::common::repo().join("docs/screenshots/policies-phone.png")).await;
    let layout = b
        .script(
            "const w = document.documentElement.clientWidth; \
             const wide = [...document.querySelectorAll('header.site *, main *')].filter(e => { \
                 const r = e.getBoundingClientRect(); \
                 if (r.width === 0 || e.closest('.table-wrap, pre, .graph-wrap')) return false; \
                 return r.right > w + 1; }).slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + \
                 Math.round(e.getBoundingClientRect().right)); \
             const row = document.querySelector('#policy-list table.rules tbody tr'); \
             return { width: w, scroll: document.documentElement.scrollWidth, wide: wide, \
                      rowDisplay: getComputedStyle(row).display, \
                      rowRight: Math.round(row.getBoundingClientRect().right) };",
            json!([]),
        )
        .await;
    let width = layout["width"].as_u64().unwrap_or(0);
    ensure!(b, (360..=400).contains(&width), "phone: the viewport is {width} px wide");
    ensure!(
        b,
        layout["scroll"].as_u64().unwrap_or(u64::MAX) <= width,
        "phone: /policies scrolls sideways ({} px for {width}); too wide: {}",
        layout["scroll"],
        layout["wide"]
    );
    ensure!(b, layout["wide"] == json!([]), "phone: cut off at {width} px: {}", layout["wide"]);
    ensure!(b, layout["rowDisplay"] == "block", "phone: policy rows are not cards ({})", layout["rowDisplay"]);
    ensure!(
        b,
        layout["rowRight"].as_u64().unwrap_or(u64::MAX) <= width,
        "phone: a policy row ends at {}",
        layout["rowRight"]
    );
    let nav = b
        .script(
            "return [...document.querySelectorAll('header.site nav a')].filter(a => \
                 a.getBoundingClientRect().right > document.documentElement.clientWidth).map(a => a.textContent)",
            json!([]),
        )
        .await;
    ensure!(b, nav == json!([]), "phone: nav links off-screen: {nav}");
    b.check_console("policies (phone)", &[]).await;
    eprintln!("policy_scorecard_and_team_drilldowns: {:.1} s", started.elapsed().as_secs_f64());
}

/// Issues a user token offline; returns the secret.
pub(crate) fn issue(data: &Path, args: &[&str]) -> String {
    let run: Run = plinth_command()
        .args(["token", "create", "--data-dir"])
        .arg(data)
        .args(args)
        .output()
        .expect("run plinth token create")
        .into();
    assert_eq!(run.code, 0, "plinth token create {args:?}: {}", run.stderr);
    run.stdout.lines().last().expect("the secret").trim().to_string()
}

/// Signs in through the portal's form with a token.
pub(crate) async fn sign_in(b: &Browser, plinth: &Serve, secret: &str) {
    b.goto(&plinth.url("/auth/sign-in")).await;
    b.fill("#token", secret).await;
    let submit = b.wait("form[action=\"/auth/sign-in\"] button[type=submit]").await;
    let before = b.current_url().await;
    b.click(&submit, "Sign in").await;
    b.wait_for_page_change(&before, "#session .who").await;
}

#[tokio::test]
async fn my_team_home_stars_and_a_run() {
    let started = Instant::now();
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let launch = Launch { args: &["--demo", "--auth", "required"], shipped_templates: true, ..Launch::default() };
    let plinth = Serve::launch(&data, launch).await;
    let secret = issue(&data, &["--name", "portal", "--user", USER]);
    let b = Browser::open().await;

    // Anonymous: the sign-in page.
    b.goto(&plinth.url("/")).await;
    b.wait("main").await;
    sign_in(&b, &plinth, &secret).await;

    // "My team": once the catalogue is in and evaluated.
    wait_for_results(
        &b,
        &plinth,
        "/",
        &format!("#my-failures li.drill-entity[data-entity=\"{DENIED_AGENT}\"]"),
        "#policy-pending",
    )
    .await;
    let h1 = b.text_of("h1").await;
    ensure!(b, h1 == "My team", "signed in, / shows {h1:?}");
    let identity = b.text_of("#my-identity").await;
    ensure!(b, identity.contains("Jonas Berg") || identity.contains("jonas.berg"), "#my-identity: {identity:?}");
    ensure!(
        b,
        identity.contains("Applied AI") || identity.contains(AGENT_TEAM),
        "#my-identity names no team: {identity:?}"
    );
    let owned = b.find_all("#my-owned li[data-entity]").await;
    ensure!(b, !owned.is_empty(), "My team: #my-owned lists nothing");
    let agent_row = format!("#my-owned li[data-entity=\"{DENIED_AGENT}\"]");
    ensure!(b, b.find(&agent_row).await.is_some(), "My team: {DENIED_AGENT} is not among what the teams own");
    let mut problems = Vec::new();
    for row in rule_rows(&b, "#my-failures").await {
        check_rule(&row, &mut problems);
    }
    ensure!(b, problems.is_empty(), "My team failures:\n  {}", problems.join("\n  "));
    ensure!(b, b.find("#my-stars .empty").await.is_some(), "My team: stars before any star");
    b.check_console("my team", &[]).await;

    // Star the agent from the home; it is then starred, here and in the API.
    let star = b.wait(&format!("{agent_row} form.star-form button")).await;
    ensure!(b, b.attribute(&star, "aria-pressed").await.as_deref() == Some("false"), "the agent is starred already");
    b.click(&star, "Star").await;
    let starred_css = format!("#my-stars li[data-entity=\"{DENIED_AGENT}\"]");
    b.wait(&starred_css).await;
    let pressed = b.wait(&format!("{agent_row} form.star-form button")).await;
    ensure!(
        b,
        b.attribute(&pressed, "aria-pressed").await.as_deref() == Some("true"),
        "the star button is not pressed"
    );
    let stars: Value = http()
        .get(plinth.url("/api/stars"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("GET /api/stars")
        .json()
        .await
        .expect("stars: JSON");
    let refs: Vec<&str> =
        stars["items"].as_array().into_iter().flatten().filter_map(|s| s["entityRef"].as_str()).collect();
    ensure!(b, refs == [DENIED_AGENT], "GET /api/stars: {stars}");
    // The API toggles too; an unknown entity is 404, a caller without a user 401.
    let status = |r: reqwest::Response| r.status().as_u16();
    let put =
        http().put(plinth.url("/api/stars/component/default/auth-service")).bearer_auth(&secret).send().await.unwrap();
    ensure!(b, status(put) == 200, "PUT a star");
    let missing =
        http().put(plinth.url("/api/stars/component/default/no-such-thing")).bearer_auth(&secret).send().await.unwrap();
    ensure!(b, status(missing) == 404, "PUT a star on a missing entity");
    let anonymous = http().get(plinth.url("/api/stars")).send().await.unwrap();
    ensure!(b, status(anonymous) == 401, "GET /api/stars without a token");
    let delete = http()
        .delete(plinth.url("/api/stars/component/default/auth-service"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    let body: Value = delete.json().await.unwrap_or_default();
    ensure!(b, body["starred"] == json!(false) && body["changed"] == json!(true), "DELETE a star: {body}");

    // A run from the service golden path, by this user.
    b.goto(&plinth.url("/create/templates/default/service")).await;
    b.wait("form#create-form").await;
    b.fill("#field-name", "Bad_Name!").await;
    b.fill("#field-owner", &format!("group:default/{AGENT_TEAM}")).await;
    b.fill("#field-system", "system:default/customer-support").await;
    b.fill("#field-repoUrl", "drill-svc").await;
    let create = b.wait("button#create-button").await;
    b.click(&create, "#create-button").await;
    let error = b
        .wait_until(
            "const e = document.getElementById('field-name-error'); return e && !e.hidden && e.textContent",
            Duration::from_secs(30),
            "the name's error",
        )
        .await;
    let error = error.as_str().unwrap_or("");
    ensure!(
        b,
        error.contains("Name") && error.contains("kebab-case") && !error.contains("^[a-z]"),
        "a name that misses the pattern shows {error:?}, expected the field's title and help sentence"
    );
    b.fill("#field-name", "drill-svc").await;
    let before = b.current_url().await;
    b.click(&create, "#create-button").await;
    b.wait_for_page_change(&before, "main[data-task-id]").await;
    let main = b.wait("main[data-task-id]").await;
    let id = b.attribute(&main, "data-task-id").await.unwrap_or_default();
    let finished = b
        .wait_until(
            "const m = document.querySelector('main[data-task-id]'); \
             return m.getAttribute('data-finished') === 'true' && !document.getElementById('task-result').hidden \
                 && m.getAttribute('data-task-status')",
            Duration::from_secs(90),
            "the run finishing on its page",
        )
        .await;
    ensure!(b, finished == json!("completed"), "run {id} ended {finished}; plinth log:\n{}", plinth.log_tail());
    // "Cancel run" is gone once the run ended, live and after a reload.
    let cancel = "const c = document.getElementById('cancel-run'); \
                  return c ? getComputedStyle(c).display + ' ' + c.getBoundingClientRect().height : 'absent'";
    let shown = b.script(cancel, json!([])).await;
    ensure!(b, shown == "none 0" || shown == "absent", "run {id}: after the end, Cancel run is {shown}");
    let markdown = "return [...document.querySelectorAll('#output-text .output-text')].map(s => ({ \
                        title: (s.querySelector('h3') || {}).textContent, items: s.querySelectorAll('.markdown li').length, \
                        strong: s.querySelectorAll('.markdown strong, .markdown code').length, text: s.textContent }))";
    let live = b
        .wait_until(
            "return document.querySelector('#output-text .markdown li') ? true : false",
            Duration::from_secs(30),
            "Next steps rendered on the live page",
        )
        .await;
    ensure!(b, live == json!(true), "the live page never rendered Next steps");
    let live_sections = b.script(markdown, json!([])).await;
    b.goto(&plinth.url(&format!("/create/tasks/{id}"))).await;
    b.wait("#output-text").await;
    let shown = b.script(cancel, json!([])).await;
    ensure!(b, shown == "absent", "run {id}: a reloaded finished run shows Cancel run ({shown})");
    let reloaded_sections = b.script(markdown, json!([])).await;
    for (when, sections) in [("live", live_sections), ("reloaded", reloaded_sections)] {
        let next = sections.as_array().and_then(|s| s.iter().find(|s| s["title"] == "Next steps").cloned());
        let Some(next) = next else { fail!(b, "{when} run page: no Next steps section: {sections}") };
        ensure!(
            b,
            next["items"].as_u64().unwrap_or(0) >= 3
                && next["strong"].as_u64().unwrap_or(0) >= 2
                && !next["text"].as_str().unwrap_or("").contains("**"),
            "{when} run page: Next steps is not rendered Markdown: {next}"
        );
    }
    b.check_console("run page", &[]).await;

    // Back home: the run is mine.
    b.goto(&plinth.url("/")).await;
    b.wait(&format!("#my-runs li[data-run=\"{id}\"]")).await;
    b.save_screenshot(&crate::common::repo().join("docs/screenshots/my-team.png")).await;

    // Unstar from the home's star list.
    let unstar = b.wait(&format!("{starred_css} form.star-form button")).await;
    let before = b.current_url().await;
    b.click(&unstar, "Unstar").await;
    b.wait("#my-stars").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.find(&starred_css).await.is_some() {
        if Instant::now() > deadline {
            fail!(b, "the agent stays starred after Unstar (from {before})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The star and unstar are in the audit log.
    let admin = issue(&data, &["--name", "admin", "--user", "user:default/claire.dupont", "--admin"]);
    let audit: Value = http()
        .get(plinth.url("/api/audit"))
        .query(&[("limit", "200")])
        .bearer_auth(&admin)
        .send()
        .await
        .expect("GET /api/audit")
        .json()
        .await
        .expect("audit: JSON");
    let actions: Vec<String> = audit["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["actor"] == USER)
        .filter_map(|e| e["action"].as_str().map(str::to_string))
        .collect();
    for needed in ["catalog.star.create", "catalog.star.delete"] {
        ensure!(b, actions.iter().any(|a| a == needed), "the audit log has no {needed} by {USER}: {actions:?}");
    }

    // My team, with axe-core, when it is available.
    if let Some(axe) = axe_source() {
        let violations = axe_violations(&b, &axe).await;
        ensure!(
            b,
            violations.is_empty(),
            "My team: serious or critical axe-core violations:\n  {}",
            violations.join("\n  ")
        );
    }
    eprintln!("my_team_home_stars_and_a_run: {:.1} s", started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------- axe-core

/// Where `axe.min.js` is: `PLINTH_AXE_CORE`, else where `cargo xtask test`
/// installs it.
fn axe_path() -> PathBuf {
    match std::env::var("PLINTH_AXE_CORE") {
        Ok(path) if !path.is_empty() => PathBuf::from(path),
        _ => repo().join("target/xtask/axe/4.10.3/node_modules/axe-core/axe.min.js"),
    }
}

pub(crate) fn axe_source() -> Option<String> {
    std::fs::read_to_string(axe_path()).ok()
}

/// Injects axe-core into the current page and runs it; the serious and
/// critical violations, each as `rule (impact): help — elements`.
pub(crate) async fn axe_violations(b: &Browser, axe: &str) -> Vec<String> {
    if b.script("return typeof window.axe", json!([])).await != "object" {
        b.script(&format!("{axe}\n;return true;"), json!([])).await;
    }
    let result = b
        .script(
            "return window.axe.run(document, {resultTypes: ['violations']}).then(r => r.violations \
                 .filter(v => v.impact === 'serious' || v.impact === 'critical') \
                 .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' + \
                      v.nodes.slice(0, 6).map(n => n.target.join(' ')).join(' | ') + \
                      (v.nodes.length > 6 ? ' | … ' + v.nodes.length + ' elements' : '')))",
            json!([]),
        )
        .await;
    result.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
}

/// The first entity of `kind` in the demo (its page path), if any.
async fn first_of_kind(plinth: &Serve, kind: &str) -> Option<String> {
    let entities: Value = http()
        .get(plinth.url("/api/catalog/entities"))
        .query(&[("filter", format!("kind={kind}")), ("limit", "1".to_string())])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let first = entities.as_array()?.first()?.clone();
    let namespace = first["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = first["metadata"]["name"].as_str()?;
    Some(format!("/catalog/{namespace}/{}/{name}", kind.to_lowercase()))
}

#[tokio::test]
async fn axe_core_finds_no_serious_violation_on_any_page_type() {
    let path = axe_path();
    let axe = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is missing: cannot read {} ({e}). `cargo xtask test` installs it (npm install --prefix \
             target/xtask/axe/4.10.3 axe-core@4.10.3); or set PLINTH_AXE_CORE to an axe.min.js",
            path.display()
        )
    });
    let started = Instant::now();
    let plinth = Serve::demo().await;
    // A run, for the run page (the shipped templates register in the background).
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        let (status, created) = plinth
            .post(
                "/api/scaffolder/v2/tasks",
                &json!({"templateRef": "template:default/service", "values": {"name": "axe-svc",
                        "owner": "group:default/team-orders", "system": "system:default/orders", "repoUrl": "axe-svc"}}),
            )
            .await;
        if status.is_success() {
            break created["id"].as_str().expect("the run's id").to_string();
        }
        assert!(Instant::now() < deadline, "start a run: {status} {created}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let b = Browser::open().await;
    wait_for_results(&b, &plinth, "/policies", "#rule-failures li.drill-rule", "#policy-pending").await;

    let mut pages: Vec<(String, String)> = [
        ("home", "/"),
        ("explorer", "/catalog"),
        ("search", "/search?q=auth"),
        ("graph", "/catalog/default/component/auth-service/graph"),
        ("policies", "/policies"),
        ("team drill-down", "/teams/default/team-applied-ai/failing"),
        ("create", "/create"),
        ("create form", "/create/templates/default/service"),
        ("runs", "/create/tasks"),
        ("cost", "/cost"),
        ("cost anomalies", "/cost/anomalies"),
        ("traces", "/traces"),
        ("audit", "/audit"),
        ("sign-in", "/auth/sign-in"),
        ("signals tab", "/catalog/default/agent/support-copilot-agent/signals"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    pages.push(("run".into(), format!("/create/tasks/{run}")));
    for kind in
        ["Component", "API", "System", "Domain", "Group", "User", "Resource", "Agent", "Model", "Prompt", "Dataset"]
    {
        if let Some(path) = first_of_kind(&plinth, kind).await {
            pages.push((format!("entity ({kind})"), path));
        }
    }
    if let Some(prompt) = first_of_kind(&plinth, "Prompt").await {
        let name = prompt.rsplit('/').next().unwrap_or("").to_string();
        pages.push(("prompt versions".into(), format!("/prompts/{name}/versions")));
    }
    let mut report = Vec::new();
    for (what, path) in &pages {
        b.goto(&plinth.url(path)).await;
        b.wait("main").await;
        let found = axe_violations(&b, &axe).await;
        eprintln!("axe {what} {path}: {} serious/critical", found.len());
        for violation in found {
            report.push(format!("{what} ({}): {violation}", url_path(path)));
        }
    }
    assert!(
        report.is_empty(),
        "axe-core {}: {} serious or critical violations over {} pages:\n  {}",
        path.display(),
        report.len(),
        pages.len(),
        report.join("\n  ")
    );
    eprintln!("axe_core_finds_no_serious_violation_on_any_page_type: {:.1} s", started.elapsed().as_secs_f64());
}
