//! End-to-end browser tests of the web portal: a real headless Chromium,
//! driven by chromedriver over the W3C WebDriver protocol (spoken here with
//! `reqwest`), against a real `plinth serve`. They walk the portal's DOM
//! contract (ids and classes the pages promise), fail on any browser console
//! error, and save the screenshots in `docs/screenshots/`.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver`
//! (`apt-get install chromium chromium-driver`; `.ci/run` installs them).
//!
//! The WebDriver client and the Chromium/chromedriver launcher are
//! `plinth_testkit::browser`; the portal's journeys and the DOM contract
//! they check are here.

use super::common::{generate_catalog, http_with_timeout, repo, Launch, Serve};
use plinth_testkit::browser::{percent_decode, query_param, url_path, Browser, ELEMENT, ENTER, POLL};
use plinth_testkit::{page_ensure as ensure, page_fail as fail};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn http() -> reqwest::Client {
    http_with_timeout(Duration::from_secs(180))
}

/// The first `n` bytes of a text (on a character boundary).
fn head(text: &str, n: usize) -> &str {
    let mut end = n.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The numbers in a text, reading `24,118` or `24 118` (narrow or no-break
/// space) as one number.
fn numbers(text: &str) -> Vec<u64> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut digits = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let joins = matches!(c, ',' | '_' | '\u{a0}' | '\u{202f}' | '\u{2009}')
            && !digits.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !joins && !digits.is_empty() {
            out.extend(digits.parse::<u64>().ok());
            digits.clear();
        }
    }
    out.extend(digits.parse::<u64>().ok());
    out
}

fn first_number(text: &str) -> Option<u64> {
    numbers(text).first().copied()
}

/// Whether a text names an entity, by its name (`auth-service`) or as a
/// title made of the same words (`Auth Service`).
fn mentions(text: &str, name: &str) -> bool {
    let words = |s: &str| {
        s.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
    };
    text.contains(name) || format!(" {} ", words(text)).contains(&format!(" {} ", words(name)))
}

/// An owner as the short name: `group:default/team-a`, `default/team-a` and
/// `team-a` are all `team-a`.
fn short_name(owner: &str) -> String {
    let owner = owner.trim();
    let owner = owner.rsplit('/').next().unwrap_or(owner);
    owner.rsplit(':').next().unwrap_or(owner).trim().to_string()
}

/// The portal's DOM contract and screenshots, on a [`Browser`].
trait Portal {
    /// Every page: a search box, the portal's stylesheet and script.
    async fn check_chrome(&self, page: &str);
    /// The key elements of an entity page; returns its `data-entity-ref`.
    async fn check_entity_page(&self) -> String;
    /// The number `#impact-count` shows.
    async fn impact_count(&self) -> u64;
    /// Loads a graph page and returns its node count and impact count.
    async fn check_graph_page(&self) -> (usize, u64);
    /// Explorer rows: `(owner cell texts, result count)`.
    async fn explorer_rows(&self) -> (Vec<String>, u64);
    /// Saves the viewport as `docs/screenshots/NAME.png`.
    async fn screenshot(&self, name: &str);
}

impl Portal for Browser {
    async fn check_chrome(&self, page: &str) {
        for css in ["input[name=\"q\"]", "link[href*=\"/assets/portal.css\"]", "script[src*=\"/assets/portal.js\"]"] {
            ensure!(self, self.find(css).await.is_some(), "the {page} page has no `{css}`");
        }
    }

    async fn check_entity_page(&self) -> String {
        let main = self.wait("main[data-entity-ref]").await;
        let entity_ref = self.attribute(&main, "data-entity-ref").await.unwrap_or_default();
        for css in
            ["h1#entity-title", "#entity-kind", "#entity-description", "#relations", "#impact-count", "a#graph-link"]
        {
            ensure!(self, self.find(css).await.is_some(), "entity page {entity_ref}: no `{css}`");
        }
        self.check_chrome("entity").await;
        entity_ref
    }

    async fn impact_count(&self) -> u64 {
        let text = self.text_of("#impact-count").await;
        match first_number(&text) {
            Some(n) => n,
            None => fail!(self, "#impact-count shows no number: {text:?}"),
        }
    }

    async fn check_graph_page(&self) -> (usize, u64) {
        self.wait("svg#graph").await;
        for css in
            ["#impact-count", "#depth-control", "a#direction-upstream", "a#direction-downstream", "a#direction-both"]
        {
            ensure!(self, self.find(css).await.is_some(), "graph page: no `{css}`");
        }
        self.check_chrome("graph").await;
        let nodes = self.find_all("svg#graph a.node").await.len();
        (nodes, self.impact_count().await)
    }

    async fn explorer_rows(&self) -> (Vec<String>, u64) {
        self.wait("table#entities").await;
        self.wait("#facets").await;
        self.check_chrome("explorer").await;
        let script = r#"
            const table = document.querySelector('table#entities');
            const heads = [...table.querySelectorAll('thead th')].map(th => th.textContent.trim().toLowerCase());
            const col = heads.findIndex(h => h.includes('owner'));
            const rows = [...table.querySelectorAll('tbody tr')];
            return rows.map(tr => {
                const cell = tr.querySelector('td.owner, [data-column="owner"]')
                    || (col >= 0 ? tr.querySelectorAll('td, th')[col] : null);
                const link = tr.querySelector('a.entity-link');
                // An owner link names the owner in its href; its text may be a title.
                const ownerLink = cell ? cell.querySelector('a[href]') : null;
                const owner = ownerLink
                    ? decodeURIComponent(new URL(ownerLink.href).pathname.split('/').pop())
                    : (cell ? cell.textContent.trim() : null);
                return {owner, link: !!link};
            });"#;
        let rows = self.script(script, json!([])).await;
        let rows = rows.as_array().cloned().unwrap_or_default();
        let mut owners = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            ensure!(self, row["link"] == json!(true), "explorer row {i} has no a.entity-link");
            match row["owner"].as_str() {
                Some(owner) => owners.push(owner.to_string()),
                None => fail!(self, "explorer row {i} has no owner cell (no `Owner` column header, no td.owner)"),
            }
        }
        let count_text = self.text_of("#result-count").await;
        // "Showing 1–50 of 1,234 entities": the total is the largest number.
        let Some(count) = numbers(&count_text).into_iter().max() else {
            fail!(self, "#result-count shows no number: {count_text:?}")
        };
        (owners, count)
    }

    async fn screenshot(&self, name: &str) {
        self.save_screenshot(&repo().join(format!("docs/screenshots/{name}.png"))).await;
    }
}

#[tokio::test]
async fn journey_on_the_demo_catalogue() {
    let started = Instant::now();
    let plinth = Serve::demo().await;
    let b = Browser::open().await;

    // Home.
    b.goto(&plinth.url("/")).await;
    b.wait("form#search-form").await;
    b.wait("input#search-input").await;
    for css in ["#recent-changes", "#ingestion-errors"] {
        b.wait(css).await;
    }
    let form = b.wait("form#search-form").await;
    let action = b.script("return arguments[0].action", json!([{ELEMENT: form}])).await;
    ensure!(
        b,
        url_path(action.as_str().unwrap_or("")) == "/search",
        "home: form#search-form submits to {action}, expected /search"
    );
    let totals = b.text_of("#kind-totals").await;
    ensure!(b, totals.contains("Component"), "home: #kind-totals does not mention Component: {totals:?}");
    let kind_links = b.find_all("#kind-totals a[href*=\"/catalog?kind=\"]").await;
    ensure!(b, !kind_links.is_empty(), "home: #kind-totals has no links to /catalog?kind=KIND");
    ensure!(b, first_number(&totals).is_some(), "home: #kind-totals shows no counts: {totals:?}");
    b.check_chrome("home").await;
    b.check_console("home", &[]).await;
    b.screenshot("home").await;

    // Search "auth" by typing and pressing Enter.
    let input = b.wait("input#search-input").await;
    let before = b.current_url().await;
    if let Err(e) = b.post(&format!("/element/{input}/value"), json!({"text": format!("auth{ENTER}")})).await {
        fail!(b, "cannot type into #search-input: {e}");
    }
    b.wait_for_page_change(&before, "#search-results").await;
    let url = b.current_url().await;
    ensure!(
        b,
        url_path(&url) == "/search" && query_param(&url, "q").as_deref() == Some("auth"),
        "search: landed on {url}, expected /search?q=auth"
    );
    b.wait("#facets").await;
    let results = b.find_all("#search-results li.result").await;
    ensure!(b, !results.is_empty(), "search for auth: no li.result in #search-results");
    let mut target = None;
    for result in &results {
        let links = b.find_all_in(result, "a.entity-link").await;
        ensure!(b, !links.is_empty(), "search: an li.result without a.entity-link");
        for link in links {
            // The link shows the entity's title ("Auth Service") or its name.
            if target.is_none() && mentions(&b.text(&link).await, "auth-service") {
                target = Some(link);
            }
        }
    }
    let Some(target) = target else { fail!(b, "search for auth: no a.entity-link whose text names auth-service") };
    b.check_chrome("search").await;
    b.check_console("search", &[]).await;
    b.screenshot("search").await;

    // The entity page of auth-service.
    b.follow(&target, "h1#entity-title").await;
    let root_ref = b.check_entity_page().await;
    let entity_url = b.current_url().await;
    ensure!(
        b,
        url_path(&entity_url) == "/catalog/default/component/auth-service",
        "search result for auth-service led to {entity_url}, expected /catalog/default/component/auth-service"
    );
    let title = b.text_of("h1#entity-title").await;
    ensure!(b, mentions(&title, "auth-service"), "entity page: #entity-title is {title:?}, expected auth-service");
    ensure!(b, root_ref.contains("auth-service"), "entity page: data-entity-ref is {root_ref:?}");
    let kind = b.text_of("#entity-kind").await;
    ensure!(b, kind.to_lowercase().contains("component"), "entity page: #entity-kind is {kind:?}");
    let owner_text = b.text_of("#entity-owner a.entity-link").await;
    ensure!(b, !owner_text.is_empty(), "entity page: #entity-owner a.entity-link is empty");
    // The link's text may be the group's title; its href names the owner.
    let owner_link = b.wait("#entity-owner a.entity-link").await;
    let owner = percent_decode(url_path(&b.href(&owner_link).await).rsplit('/').next().unwrap_or(""));
    ensure!(b, !owner.is_empty(), "entity page: #entity-owner a.entity-link has no href to the owner's page");
    let relation_links = b.find_all("#relations section[data-relation] a.entity-link").await;
    ensure!(b, !relation_links.is_empty(), "entity page: no a.entity-link in #relations section[data-relation]");
    b.check_console("entity", &[]).await;
    b.screenshot("entity").await;

    // Its graph.
    let graph_link = b.wait("a#graph-link").await;
    b.follow(&graph_link, "svg#graph").await;
    let (nodes, impact) = b.check_graph_page().await;
    ensure!(b, nodes > 1, "graph of auth-service: {nodes} a.node, expected more than 1");
    ensure!(b, impact > 0, "graph of auth-service: #impact-count is {impact}, expected > 0");
    b.check_console("graph", &[]).await;
    b.screenshot("graph").await;

    // Follow a node that is not auth-service itself.
    let node_elements = b.find_all("svg#graph a.node").await;
    let mut other = None;
    for node in &node_elements {
        let href = b.href(node).await;
        let path = url_path(&href);
        if !href.is_empty() && path != url_path(&entity_url) && path.starts_with("/catalog/") {
            other = Some((node.clone(), path));
            break;
        }
    }
    let Some((node, node_path)) = other else { fail!(b, "graph: no a.node links to an entity other than the root") };
    let before = b.current_url().await;
    if let Err(e) = b.post(&format!("/element/{node}/click"), json!({})).await {
        eprintln!("note: WebDriver could not click the graph node ({e}); clicking it by script");
        b.script(
            "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, view: window}))",
            json!([{ELEMENT: node}]),
        )
        .await;
    }
    b.wait_for_page_change(&before, "main[data-entity-ref]").await;
    let landed = b.current_url().await;
    ensure!(
        b,
        url_path(&landed) == node_path && node_path.trim_matches('/').split('/').count() == 4,
        "graph node {node_path}: landed on {landed}, expected the entity page /catalog/NS/KIND/NAME"
    );
    let other_ref = b.check_entity_page().await;
    ensure!(b, other_ref != root_ref, "graph node led back to {root_ref}");
    b.check_console("entity (via graph)", &[]).await;

    // The explorer, filtered by auth-service's owner through its owner facet.
    let owner_short = short_name(&owner);
    b.goto(&plinth.url("/catalog")).await;
    b.wait("section#facet-owner").await;
    let mut facet = None;
    let mut offered = Vec::new();
    for link in b.find_all("section#facet-owner a").await {
        let href = b.href(&link).await;
        if query_param(&href, "owner").is_some_and(|o| short_name(&o) == owner_short) {
            facet = Some(link);
            break;
        }
        offered.push(href);
    }
    // The facet is the journey: without it the test fails, it does not
    // take another way to the filtered list.
    let Some(facet) = facet else {
        fail!(b, "/catalog: section#facet-owner has no link to owner {owner}; its links: {offered:?}")
    };
    b.follow(&facet, "table#entities").await;
    let url = b.current_url().await;
    ensure!(
        b,
        url_path(&url) == "/catalog" && query_param(&url, "owner").is_some_and(|o| short_name(&o) == owner_short),
        "owner facet led to {url}, expected /catalog?owner={owner_short}"
    );
    let (owners, count) = b.explorer_rows().await;
    ensure!(b, !owners.is_empty(), "explorer for owner {owner}: no rows");
    for cell in &owners {
        ensure!(b, short_name(cell) == owner_short, "explorer for owner {owner}: a row's owner cell is {cell:?}");
    }
    if b.find("a#next-page").await.is_none() {
        ensure!(
            b,
            count == owners.len() as u64,
            "explorer: #result-count says {count}, the table has {} rows",
            owners.len()
        );
    } else {
        ensure!(b, count > owners.len() as u64, "explorer: #result-count says {count} yet there is a next page");
    }
    b.check_console("explorer", &[]).await;
    b.screenshot("explorer").await;

    // Paging: all Components do not fit on one page.
    b.goto(&plinth.url("/catalog?kind=Component")).await;
    let (rows, count) = b.explorer_rows().await;
    ensure!(
        b,
        count > rows.len() as u64,
        "explorer kind=Component: {count} in total, all {} rows on one page",
        rows.len()
    );
    let first_row = b.text_of("table#entities tbody tr a.entity-link").await;
    let next = b.wait("a#next-page").await;
    b.follow(&next, "table#entities").await;
    let (next_rows, next_count) = b.explorer_rows().await;
    let next_first = b.text_of("table#entities tbody tr a.entity-link").await;
    ensure!(b, !next_rows.is_empty(), "explorer: the next page has no rows");
    ensure!(b, next_count == count, "explorer: the next page says {next_count} in total, the first said {count}");
    ensure!(b, next_first != first_row, "explorer: the next page starts with the same row {first_row:?}");
    b.check_console("explorer (page 2)", &[]).await;

    // The 404 page of an unknown entity suggests others.
    let missing = plinth.url("/catalog/default/component/does-not-exist");
    let status = http().get(&missing).send().await.expect("GET the 404 page").status();
    b.goto(&missing).await;
    b.wait("#suggestions").await;
    b.check_chrome("not-found").await;
    ensure!(b, status == reqwest::StatusCode::NOT_FOUND, "{missing} answered {status}, expected 404");
    // The document's own 404 is reported on the console by Chromium.
    b.check_console("not-found", &["/catalog/default/component/does-not-exist"]).await;
    b.screenshot("not-found").await;
    eprintln!("journey_on_the_demo_catalogue: {:.1} s", started.elapsed().as_secs_f64());
}

/// The demo's agent without tracing: denied by PL-AGT-003 at the catalog point.
const GOVERNED_AGENT: &str = "/catalog/default/agent/support-copilot-agent";

#[tokio::test]
async fn policy_panel_and_policies_page() {
    let started = Instant::now();
    let plinth = Serve::demo().await;
    let b = Browser::open().await;

    // The agent's page, once the governance view has evaluated it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        b.goto(&plinth.url(GOVERNED_AGENT)).await;
        b.wait("section#policy-panel").await;
        if b.find("section#policy-panel[data-policy-state=\"evaluated\"]").await.is_some() {
            break;
        }
        if Instant::now() > deadline {
            fail!(b, "{GOVERNED_AGENT}: #policy-panel not evaluated within 60 s; plinth log:\n{}", plinth.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    b.check_entity_page().await;
    let result = b.text_of("#policy-result").await;
    ensure!(b, result.to_lowercase().contains("deny"), "agent page: #policy-result is {result:?}, expected deny");
    let violation = b.wait("#policy-violations li.violation[data-policy-id=\"PL-AGT-003\"]").await;
    let text = b.text(&violation).await;
    ensure!(b, text.contains("PL-AGT-003") && text.contains("tracing"), "agent page: PL-AGT-003 shows {text:?}");
    let cards = b.find_all("#policy-scorecards section.scorecard").await;
    ensure!(b, !cards.is_empty(), "agent page: no section.scorecard in #policy-scorecards");
    let levels = b.find_all("#policy-scorecards section.scorecard h4 .badge.level").await;
    ensure!(b, levels.len() == cards.len(), "agent page: {} scorecards, {} level badges", cards.len(), levels.len());
    let checks = b.find_all("#policy-scorecards li.check").await;
    ensure!(b, !checks.is_empty(), "agent page: no li.check in #policy-scorecards");
    b.check_console("entity (policy)", &[]).await;
    let panel = b.wait("section#policy-panel").await;
    b.script("arguments[0].scrollIntoView({block: 'start'})", json!([{ELEMENT: panel}])).await;
    b.screenshot("entity-policy").await;

    // The owning team's roll-up.
    // (Entity panels are evaluated on request; roll-ups come from the
    // background view, which may still be catching up with the demo load.)
    let owner_link = b.wait("#entity-owner a.entity-link").await;
    b.follow(&owner_link, "section#policy-panel").await;
    let team_url = b.current_url().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.find("#team-scorecards section.rollup").await.is_none() {
        if Instant::now() > deadline {
            fail!(b, "team page: no roll-up within 60 s; plinth log:\n{}", plinth.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.goto(&team_url).await;
        b.wait("section#policy-panel").await;
    }
    let rollup = b.text_of("#team-scorecards section.rollup").await;
    ensure!(b, rollup.contains("score"), "team page: the roll-up shows no score: {rollup:?}");
    b.check_console("team", &[]).await;
    let team = b.wait("#team-scorecards-heading").await;
    b.script("arguments[0].scrollIntoView({block: 'start'})", json!([{ELEMENT: team}])).await;
    b.screenshot("team-scorecards").await;

    // The policies page, from the nav.
    let nav = b.wait("a#nav-policies").await;
    b.follow(&nav, "#policy-list").await;
    let url = b.current_url().await;
    ensure!(b, url_path(&url) == "/policies", "the Policies nav link led to {url}");
    b.check_chrome("policies").await;
    for css in ["#load-problems", "#outcomes", "#scorecard-definitions", "#waivers"] {
        b.wait(css).await;
    }
    let problems = b.find_all("#load-problems tr.problem").await;
    ensure!(b, problems.is_empty(), "policies: the shipped policies have {} load problems", problems.len());
    let rule = b.wait("#policy-list tr[data-policy-id=\"PL-BASE-001\"]").await;
    let rule_text = b.text(&rule).await;
    ensure!(b, rule_text.contains("containers.rego:"), "policies: PL-BASE-001 row shows {rule_text:?}");
    let profiles = b.find_all("#policy-list section.profile").await;
    ensure!(b, profiles.len() > 1, "policies: {} profile sections, expected several", profiles.len());
    let outcomes = b.text_of("#outcomes").await;
    ensure!(b, numbers(&outcomes).iter().sum::<u64>() > 0, "policies: #outcomes shows no counts: {outcomes:?}");
    b.check_console("policies", &[]).await;
    b.screenshot("policies").await;
    eprintln!("policy_panel_and_policies_page: {:.1} s", started.elapsed().as_secs_f64());
}

const LIVE_ENTITY: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: live-widget
  description: DESCRIPTION
spec:
  type: service
  lifecycle: production
  owner: team-live
"#;

#[tokio::test]
async fn live_update_reaches_an_open_entity_page() {
    let started = Instant::now();
    let fixture = tempfile::tempdir().unwrap();
    let file = fixture.path().join("catalog-info.yaml");
    std::fs::write(&file, LIVE_ENTITY.replace("DESCRIPTION", "The first description")).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut plinth = Serve::launch(&scratch.path().join("data"), Launch::default()).await;
    let client = http();
    let response = client
        .post(plinth.url("/api/catalog/locations"))
        .json(&json!({"type": "file", "target": file.to_str().unwrap()}))
        .send()
        .await
        .expect("POST /api/catalog/locations");
    assert!(response.status().is_success(), "registering the fixture: {}", response.status());
    plinth.wait_ok("/api/catalog/entities/by-name/component/default/live-widget", Duration::from_secs(30)).await;

    let b = Browser::open().await;
    b.goto(&plinth.url("/catalog/default/component/live-widget")).await;
    b.check_entity_page().await;
    let description = b.text_of("#entity-description").await;
    ensure!(b, description.contains("The first description"), "#entity-description is {description:?}");
    b.script("window.__plinthE2eMarker = 'still here'; return true", json!([])).await;
    let page = b.current_url().await;

    let fresh = format!("Rewritten by the browser test {}", std::process::id());
    std::fs::write(&file, LIVE_ENTITY.replace("DESCRIPTION", &fresh)).unwrap();
    let clock = Instant::now();
    let response = client
        .post(plinth.url("/api/catalog/refresh"))
        .json(&json!({"entityRef": "component:default/live-widget"}))
        .send()
        .await
        .expect("POST /api/catalog/refresh");
    assert!(response.status().is_success(), "refresh: {}", response.status());
    let refreshed = clock.elapsed();
    // A generous bound on the update reaching the page; how fast it
    // arrives is for the benchmarks, not for a debug build on a busy machine.
    let bound = Duration::from_secs(60);
    let seen = loop {
        let element = b.wait("#entity-description").await;
        let text = b.text(&element).await;
        if text.contains(&fresh) {
            break clock.elapsed();
        }
        if clock.elapsed() > bound {
            fail!(b, "the open page did not show the new description within {bound:?} of the refresh; #entity-description: {text:?}")
        }
        tokio::time::sleep(POLL).await;
    };
    let marker = b.script("return window.__plinthE2eMarker || null", json!([])).await;
    ensure!(b, marker == json!("still here"), "the page was reloaded (marker lost), not updated in place");
    ensure!(b, b.current_url().await == page, "the page navigated away from {page}");
    b.check_console("entity (live)", &[]).await;
    eprintln!(
        "live_update_reaches_an_open_entity_page: refresh answered in {} ms, page updated after {} ms; test {:.1} s",
        refreshed.as_millis(),
        seen.as_millis(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn journey_at_100k_entities() {
    let started = Instant::now();
    let catalogue = tempfile::tempdir().unwrap();
    let manifest = generate_catalog(catalogue.path(), 100_000);
    let entities = manifest["entities"].as_u64().expect("manifest.json: entities");
    let hub = manifest["most_depended_upon"].as_str().expect("manifest.json: most_depended_upon").to_string();
    let generated = started.elapsed();

    let all = catalogue.path().join("all.yaml");
    let scratch = tempfile::tempdir().unwrap();
    let launch = Launch { locations: &[all.as_path()], ready_within: Duration::from_secs(240), ..Launch::default() };
    let mut plinth = Serve::launch(&scratch.path().join("data"), launch).await;
    let client = http();
    let deadline = started + generated + Duration::from_secs(240);
    let mut total = 0;
    while total < entities {
        if let Some(status) = plinth.exit_status() {
            panic!("plinth serve exited ({status}) during ingest; log:\n{}", plinth.log_tail());
        }
        assert!(
            Instant::now() < deadline,
            "ingest: {total} of {entities} entities after 240 s; plinth log:\n{}",
            plinth.log_tail()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Ok(response) = client.get(plinth.url("/api/catalog/entity-facets?facet=kind")).send().await else {
            continue;
        };
        let Ok(body) = response.json::<Value>().await else { continue };
        total = body["facets"]["kind"]
            .as_array()
            .map(|kinds| {
                kinds
                    .iter()
                    .filter(|k| !k["value"].as_str().unwrap_or("").eq_ignore_ascii_case("location"))
                    .filter_map(|k| k["count"].as_u64())
                    .sum()
            })
            .unwrap_or(0);
    }
    let ingested = started.elapsed() - generated;
    let journey = Instant::now();
    let b = Browser::open().await;

    b.goto(&plinth.url("/")).await;
    b.wait("#kind-totals").await;
    b.check_chrome("home").await;
    b.check_console("home (100k)", &[]).await;

    let input = b.wait("input#search-input").await;
    let before = b.current_url().await;
    if let Err(e) = b.post(&format!("/element/{input}/value"), json!({"text": format!("payment{ENTER}")})).await {
        fail!(b, "cannot type into #search-input: {e}");
    }
    b.wait_for_page_change(&before, "#search-results").await;
    let first = b.wait("#search-results li.result a.entity-link").await;
    b.check_console("search (100k)", &[]).await;

    b.follow(&first, "h1#entity-title").await;
    b.check_entity_page().await;
    b.check_console("entity (100k)", &[]).await;

    let graph_link = b.wait("a#graph-link").await;
    b.follow(&graph_link, "svg#graph").await;
    let (nodes, _) = b.check_graph_page().await;
    ensure!(b, nodes >= 1, "graph (100k): no a.node");
    b.check_console("graph (100k)", &[]).await;

    b.goto(&plinth.url("/catalog?kind=component&owner=team-1")).await;
    let (owners, count) = b.explorer_rows().await;
    ensure!(b, !owners.is_empty(), "explorer kind=component owner=team-1 (100k): no rows");
    for cell in &owners {
        ensure!(b, short_name(cell) == "team-1", "explorer owner=team-1 (100k): a row's owner cell is {cell:?}");
    }
    ensure!(b, count >= owners.len() as u64, "explorer (100k): #result-count {count} < {} rows", owners.len());
    b.check_console("explorer (100k)", &[]).await;

    // The hub: ~24k dependents, summarised rather than drawn.
    let (kind, name) = hub.split_once(':').map(|(k, r)| (k, r.rsplit('/').next().unwrap())).unwrap();
    let mut hub_nodes = Vec::new();
    for query in ["", "?depth=3&direction=both"] {
        let load = Instant::now();
        b.goto(&plinth.url(&format!("/catalog/default/{kind}/{name}/graph{query}"))).await;
        let (nodes, impact) = b.check_graph_page().await;
        // The portal draws at most 60 entities (graph.rs MAX_DRAWN) and
        // collapses the rest; a hub has far more, so the cap is reached.
        ensure!(b, (2..=60).contains(&nodes), "hub graph{query}: {nodes} a.node drawn, expected 2 to 60 (the cap)");
        ensure!(b, impact > 10_000, "hub graph{query}: #impact-count {impact}, expected > 10000");
        b.check_console("hub graph (100k)", &[]).await;
        hub_nodes.push(format!("{query:?}: {nodes} nodes, impact {impact}, {} ms", load.elapsed().as_millis()));
    }
    eprintln!(
        "journey_at_100k_entities: generated {:.1} s, ingested {entities} in {:.1} s, journey {:.1} s; hub {}",
        generated.as_secs_f64(),
        ingested.as_secs_f64(),
        journey.elapsed().as_secs_f64(),
        hub_nodes.join("; ")
    );
}

/// The golden-path templates the demo ships.
const TEMPLATES: [&str; 8] = [
    "service",
    "postgresql-database",
    "kubernetes-namespace",
    "ci-pipeline",
    "gpu-training-environment",
    "vector-database",
    "model-serving-endpoint",
    "ai-agent",
];

/// The ids of the runs the server knows.
async fn task_ids(plinth: &Serve) -> Vec<String> {
    let body: Value = http()
        .get(plinth.url("/api/scaffolder/v2/tasks"))
        .send()
        .await
        .expect("GET /api/scaffolder/v2/tasks")
        .json()
        .await
        .expect("tasks: JSON");
    body["tasks"].as_array().expect("tasks[]").iter().filter_map(|t| t["id"].as_str().map(str::to_string)).collect()
}

#[tokio::test]
async fn create_flow_preview_and_run() {
    let started = Instant::now();
    let plinth = Serve::demo().await;
    let b = Browser::open().await;

    // 1. The template list, from the nav; the demo may still be ingesting.
    b.goto(&plinth.url("/")).await;
    let nav = b.wait("a#nav-create").await;
    b.follow(&nav, "main").await;
    let url = b.current_url().await;
    ensure!(b, url_path(&url) == "/create", "the Create nav link led to {url}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let refs = loop {
        let refs = b
            .script(
                "return [...document.querySelectorAll('#templates li.template-card')]\
                 .map(li => li.getAttribute('data-template-ref'))",
                json!([]),
            )
            .await;
        let refs: Vec<String> = refs
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect();
        if TEMPLATES.iter().all(|t| refs.contains(&format!("template:default/{t}"))) {
            break refs;
        }
        if Instant::now() > deadline {
            fail!(b, "/create lists {refs:?} after 60 s, expected all of {TEMPLATES:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.goto(&plinth.url("/create")).await;
    };
    ensure!(b, refs.len() == TEMPLATES.len(), "/create lists {} templates: {refs:?}", refs.len());
    let invalid = b.find_all("#templates li.template-card.invalid").await;
    ensure!(b, invalid.is_empty(), "/create: {} shipped templates are marked invalid", invalid.len());
    for name in TEMPLATES {
        let card = b.wait(&format!("#templates li.template-card[data-template-ref=\"template:default/{name}\"]")).await;
        let links = b.find_all_in(&card, "h2 a").await;
        ensure!(b, links.len() == 1, "/create: the {name} card has {} title links", links.len());
        let href = url_path(&b.href(&links[0]).await);
        ensure!(b, href == format!("/create/templates/default/{name}"), "/create: the {name} card links to {href}");
        let title = b.text(&links[0]).await;
        ensure!(b, !title.trim().is_empty(), "/create: the {name} card has an empty title");
    }
    b.check_chrome("create").await;
    b.check_console("create", &[]).await;
    b.screenshot("create-templates").await;
    // Every form renders, with buttons, without console errors, and with
    // patterns the browser can check.
    let mut patterns = 0;
    for name in TEMPLATES {
        b.goto(&plinth.url(&format!("/create/templates/default/{name}"))).await;
        b.wait("form#create-form fieldset.form-page [data-field]").await;
        for css in ["button#preview-button", "button#create-button", "#preview[hidden]"] {
            ensure!(b, b.find(css).await.is_some(), "the {name} form has no `{css}`");
        }
        patterns += b.check_patterns(&format!("the {name} form")).await;
        b.check_console(&format!("create form ({name})"), &[]).await;
    }
    ensure!(b, patterns > 0, "no template form has a pattern attribute");
    b.goto(&plinth.url("/create")).await;

    // 2. The GPU form, over team-analytics' quota: the dry run is denied.
    let card = b.wait("li.template-card[data-template-ref=\"template:default/gpu-training-environment\"] h2 a").await;
    b.follow(&card, "form#create-form").await;
    let form_url = b.current_url().await;
    ensure!(
        b,
        url_path(&form_url) == "/create/templates/default/gpu-training-environment",
        "the GPU card led to {form_url}"
    );
    b.check_chrome("create form").await;
    ensure!(b, b.find("#preview:not([hidden])").await.is_none(), "the preview shows before any dry run");
    b.fill("#field-name", "ranker-experiments").await;
    b.fill("#field-owner", "group:default/team-analytics").await;
    b.fill("#field-system", "system:default/analytics").await;
    b.fill(
        "#field-purpose",
        "Train the learning-to-rank reranker on pseudonymised clickstream and relevance judgments",
    )
    .await;
    b.choose("#field-gpuType", "NVIDIA-A100-SXM4-80GB").await;
    b.fill("#field-gpuCount", "8").await;
    b.fill("#field-nodes", "2").await;
    b.choose("#field-region", "eu-west-1").await;
    b.fill("#field-maxRuntimeHours", "48").await;
    b.fill("#field-budgetUsd", "6000").await;
    b.fill("#field-costCentre", "cc-4120").await;
    b.fill("#field-image", "nvcr.io/nvidia/pytorch:24.07-py3").await;
    // The datasets through the catalogue picker's "Add" box, committed
    // with Enter, which must add the entry and not submit the form.
    let tasks_before = task_ids(&plinth).await;
    for dataset in ["dataset:default/search-clickstream", "dataset:default/search-relevance-judgments"] {
        let add = b.wait("#field-datasets-add").await;
        if let Err(e) = b.post(&format!("/element/{add}/value"), json!({"text": format!("{dataset}{ENTER}")})).await {
            fail!(b, "cannot type into #field-datasets-add: {e}");
        }
        let focused = b.script("return document.activeElement && document.activeElement.id", json!([])).await;
        ensure!(b, focused == json!("field-datasets-add"), "Enter in the Add box moved the focus to {focused}");
    }
    let datasets = b.value("#field-datasets").await;
    ensure!(
        b,
        datasets == "dataset:default/search-clickstream\ndataset:default/search-relevance-judgments",
        "#field-datasets holds {datasets:?} after adding two datasets"
    );
    ensure!(b, b.value("#field-datasets-add").await.is_empty(), "the Add box was not emptied");
    ensure!(b, b.current_url().await == form_url, "pressing Enter in the Add box left the form");
    ensure!(b, task_ids(&plinth).await == tasks_before, "pressing Enter in the Add box started a run");
    b.choose("#field-dataClassification", "confidential").await;
    b.fill("#field-dataVolumeSize", "500Gi").await;
    b.fill("#field-repoUrl", "ranker-experiments").await;
    let preview = b.wait("button#preview-button").await;
    ensure!(b, b.text(&preview).await.contains("Preview (dry run)"), "#preview-button does not say Preview (dry run)");
    b.click(&preview, "#preview-button").await;
    b.wait_until(
        "const p = document.getElementById('preview'); \
         return !p.hidden && !!document.querySelector('#preview-result') \
             && document.getElementById('preview-button').disabled === false",
        Duration::from_secs(30),
        "the dry run's preview",
    )
    .await;
    let result = b.text_of("#preview-result").await;
    ensure!(b, result.eq_ignore_ascii_case("deny"), "preview: #preview-result is {result:?}, expected deny");
    let violations = b.find_all("#preview-policy li.violation").await;
    let mut quota = None;
    for violation in &violations {
        let text = b.text(violation).await;
        if text.contains("PL-TRN-001") {
            quota = Some(text);
        }
    }
    let Some(quota) = quota else { fail!(b, "preview: no li.violation names PL-TRN-001 ({} shown)", violations.len()) };
    ensure!(
        b,
        quota.to_lowercase().contains("deny") && quota.contains("team-analytics") && quota.contains("16 GPUs"),
        "preview: the PL-TRN-001 violation reads {quota:?}"
    );
    let status = b.text_of("#preview-status").await;
    ensure!(b, status.contains("did not complete"), "preview: #preview-status is {status:?} for a denied run");
    let mut files = Vec::new();
    for button in b.find_all("#preview-files ul.file-list li button").await {
        files.push((b.text(&button).await, button));
    }
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    for expected in ["README.md", "catalog-info.yaml", "deploy/training-job.yaml"] {
        ensure!(b, names.contains(&expected), "preview: the file list {names:?} lacks {expected}");
    }
    let (_, job) = files.iter().find(|(name, _)| name == "deploy/training-job.yaml").unwrap();
    b.click(job, "deploy/training-job.yaml in the file list").await;
    let contents = b.text_of("#preview-files pre.file-contents").await;
    ensure!(
        b,
        contents.contains("ranker-experiments") && contents.contains("nvidia.com/gpu"),
        "preview: deploy/training-job.yaml shows {:?}",
        head(&contents, 300)
    );
    let log = b.text_of("#preview-log pre").await;
    ensure!(b, log.contains("[policy]"), "preview: the log has no [policy] line: {:?}", head(&log, 300));
    let errors = b.find_all(".field-error:not([hidden])").await;
    ensure!(b, errors.is_empty(), "preview: {} field errors shown for valid values", errors.len());
    ensure!(b, task_ids(&plinth).await == tasks_before, "the dry run started a run");
    ensure!(b, b.current_url().await == form_url, "the dry run left the form");
    b.check_console("create form (preview)", &[]).await;
    b.scroll_to("#preview").await;
    b.screenshot("create-preview-denied").await;

    // 3. The service form: create, watch the run, open what it made.
    b.goto(&plinth.url("/create")).await;
    let card = b.wait("li.template-card[data-template-ref=\"template:default/service\"] h2 a").await;
    b.follow(&card, "form#create-form").await;
    b.fill("#field-name", "browser-svc").await;
    b.fill("#field-owner", "group:default/team-orders").await;
    b.fill("#field-system", "system:default/orders").await;
    b.fill("#field-repoUrl", "browser-svc").await;
    let create = b.wait("button#create-button").await;
    let before = b.current_url().await;
    b.click(&create, "#create-button").await;
    b.wait_for_page_change(&before, "main[data-task-id]").await;
    let run_url = b.current_url().await;
    let main = b.wait("main[data-task-id]").await;
    let id = b.attribute(&main, "data-task-id").await.unwrap_or_default();
    ensure!(b, url_path(&run_url) == format!("/create/tasks/{id}"), "Create led to {run_url} (run {id:?})");
    // What the server rendered: `data-last-event` is not touched by the script.
    let rendered_last: u64 = b.attribute(&main, "data-last-event").await.unwrap_or_default().parse().unwrap_or(0);
    let rendered_status = b.attribute(&main, "data-task-status").await.unwrap_or_default();
    let finished = b
        .wait_until(
            "const m = document.querySelector('main[data-task-id]'); \
             return m.getAttribute('data-finished') === 'true' \
                 && !document.getElementById('task-result').hidden \
                 && !!document.querySelector('#output-links a.entity-link')",
            Duration::from_secs(60),
            "the run finishing on its page",
        )
        .await;
    ensure!(b, finished == json!(true), "the run did not finish");
    let status = b.text_of("#task-status").await;
    ensure!(
        b,
        status.eq_ignore_ascii_case("completed"),
        "run {id}: #task-status is {status:?}; plinth log:\n{}",
        plinth.log_tail()
    );
    // A relative time, with the exact one in `datetime` and on hover.
    let finished_at = b.text_of("#task-finished").await;
    let time = b.wait("#task-finished time").await;
    let datetime = b.attribute(&time, "datetime").await.unwrap_or_default();
    let title = b.attribute(&time, "title").await.unwrap_or_default();
    ensure!(
        b,
        datetime.starts_with("20")
            && title.ends_with(" UTC")
            && (finished_at == "just now" || finished_at.ends_with(" ago")),
        "run {id}: #task-finished shows {finished_at:?} ({datetime:?}, {title:?}) after completion"
    );
    let steps = b
        .script(
            "return [...document.querySelectorAll('#task-steps li.step')]\
             .map(li => [li.getAttribute('data-step-id'), li.getAttribute('data-status'), \
                         li.querySelector('.step-status').textContent])",
            json!([]),
        )
        .await;
    let steps = steps.as_array().cloned().unwrap_or_default();
    ensure!(b, steps.len() >= 4, "run {id}: {} steps shown", steps.len());
    for step in &steps {
        let (name, state, badge) = (&step[0], &step[1], &step[2]);
        ensure!(
            b,
            (state == "completed" || state == "skipped") && badge == state,
            "run {id}: step {name} is {state} (badge {badge}) after completion"
        );
    }
    for needed in ["policy", "publish", "register"] {
        let done = steps.iter().any(|s| s[0] == json!(needed) && s[1] == json!("completed"));
        ensure!(b, done, "run {id}: step {needed} is not completed: {steps:?}");
    }
    // The log shows every stored log event once (the stream resumes after
    // the last event the server rendered).
    let events: Value = http()
        .get(plinth.url(&format!("/api/scaffolder/v2/tasks/{id}/events")))
        .send()
        .await
        .expect("GET events")
        .json()
        .await
        .expect("events: JSON");
    let events = events.as_array().cloned().unwrap_or_default();
    let log_events = events.iter().filter(|e| e["type"] == json!("log")).count();
    let last_event = events.iter().filter_map(|e| e["id"].as_u64()).max().unwrap_or(0);
    let lines = b.find_all("#log-lines span.log-line").await.len();
    ensure!(b, lines == log_events, "run {id}: the log shows {lines} lines, the run has {log_events} log events");
    let live = rendered_last < last_event;
    let entity = b.wait("#output-links a.entity-link").await;
    let entity_href = url_path(&b.href(&entity).await);
    ensure!(
        b,
        entity_href == "/catalog/default/component/browser-svc",
        "run {id}: the output's entity link goes to {entity_href}"
    );
    // Every output link leads somewhere that answers.
    for link in b.find_all("#output-links a").await {
        let href = b.href(&link).await;
        let status = http().get(&href).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
        ensure!(b, status == 200, "run {id}: the output link {href} answers {status}");
    }
    let outputs = b.text_of("#output-links").await;
    ensure!(
        b,
        outputs.contains("Repository") && outputs.contains("repos/browser-svc"),
        "run {id}: the outputs do not show the repository: {outputs:?}"
    );
    let next = b.text_of("#output-text").await;
    ensure!(b, next.contains("browser-svc"), "run {id}: #output-text is {:?}", head(&next, 300));
    b.check_console("create run", &[]).await;
    b.screenshot("create-run").await;
    // The page as the script left it equals the page the server renders now.
    let snapshot = "const m = document.querySelector('main[data-task-id]'); \
        return JSON.stringify([m.getAttribute('data-task-status'), m.getAttribute('data-finished'), \
            document.getElementById('task-status').textContent, \
            !!document.querySelector('#task-finished time[datetime]'), \
            [...document.querySelectorAll('#task-steps li.step')].map(li => [li.className, li.getAttribute('data-status')]), \
            [...document.querySelectorAll('#output-links li')].map(li => [li.textContent.trim(), \
                [...li.querySelectorAll('a')].map(a => [a.className, a.getAttribute('href')])]), \
            document.getElementById('task-result').hidden, \
            [...document.querySelectorAll('#log-lines span.log-line')].map(s => s.textContent)])";
    let by_script = b.script(snapshot, json!([])).await;
    b.goto(&run_url).await;
    b.wait("main[data-task-id][data-finished=\"true\"]").await;
    let by_server = b.script(snapshot, json!([])).await;
    ensure!(
        b,
        by_script == by_server,
        "run {id}: the live page differs from the server's\n  live:   {by_script}\n  server: {by_server}"
    );
    let entity = b.wait("#output-links a.entity-link").await;
    b.follow(&entity, "main[data-entity-ref]").await;
    let entity_ref = b.check_entity_page().await;
    ensure!(b, entity_ref.contains("browser-svc"), "the run's entity link led to {entity_ref}");
    let title = b.text_of("h1#entity-title").await;
    ensure!(b, mentions(&title, "browser-svc"), "the new component's page is titled {title:?}");
    let owner = b.text_of("#entity-owner").await;
    ensure!(b, mentions(&owner, "team-orders"), "the new component's owner shows {owner:?}");
    b.check_console("new component", &[]).await;
    eprintln!(
        "create_flow_preview_and_run: run {id} rendered as {rendered_status} after event {rendered_last} of \
         {last_event} ({}); test {:.1} s",
        if live { "finished live from the event stream" } else { "already finished when served" },
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn text_helpers_read_what_the_pages_show() {
    assert_eq!(numbers("Showing 1–14 of 14 entities"), vec![1, 14, 14]);
    assert_eq!(first_number("24,118 entities depend on it"), Some(24_118));
    assert_eq!(first_number("impact: 24\u{202f}118"), Some(24_118));
    assert_eq!(numbers("3, 4"), vec![3, 4]);
    assert_eq!(short_name("group:default/team-identity"), "team-identity");
    assert!(mentions("Auth Service", "auth-service") && mentions("auth-service", "auth-service"));
    assert!(!mentions("Authz API", "auth-service"));
    assert_eq!(
        query_param("http://x/catalog?kind=component&owner=group%3Adefault%2Fteam-1", "owner").as_deref(),
        Some("group:default/team-1")
    );
    assert_eq!(url_path("http://127.0.0.1:1/catalog/default/component/a?x=1#y"), "/catalog/default/component/a");
}

/// OTLP/JSON spans of one agent run of `agent-runtime`, started `ago_s`
/// seconds ago: invoke_agent → chat, execute_tool, retrieval.
fn agent_run_export(trace_id: &str, ago_s: i64, input_tokens: i64) -> Value {
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    let base = now_ns - ago_s * 1_000_000_000;
    let text = |key: &str, value: &str| json!({"key": key, "value": {"stringValue": value}});
    let int = |key: &str, value: i64| json!({"key": key, "value": {"intValue": value.to_string()}});
    let span = |id: &str, parent: &str, name: &str, start_ms: i64, end_ms: i64, attributes: Vec<Value>| {
        json!({"traceId": trace_id, "spanId": id, "parentSpanId": parent, "name": name, "kind": 1,
               "startTimeUnixNano": (base + start_ms * 1_000_000).to_string(),
               "endTimeUnixNano": (base + end_ms * 1_000_000).to_string(), "attributes": attributes})
    };
    let root = &trace_id[16..];
    let spans = vec![
        span(
            root,
            "",
            "invoke_agent support-triage",
            0,
            2400,
            vec![text("gen_ai.operation.name", "invoke_agent"), text("gen_ai.agent.name", "support-triage")],
        ),
        span(
            "1000000000000001",
            root,
            "chat gpt-4o-mini",
            50,
            1250,
            vec![
                text("gen_ai.operation.name", "chat"),
                text("gen_ai.provider.name", "openai"),
                text("gen_ai.request.model", "gpt-4o-mini"),
                int("gen_ai.usage.input_tokens", input_tokens),
                int("gen_ai.usage.output_tokens", 300),
                text("gen_ai.agent.name", "support-triage"),
                text("gen_ai.prompt.name", "support-reply-draft"),
                text("gen_ai.prompt.version", "3"),
            ],
        ),
        span(
            "1000000000000002",
            root,
            "execute_tool lookup_order",
            1300,
            1700,
            vec![
                text("gen_ai.operation.name", "execute_tool"),
                text("gen_ai.tool.name", "lookup_order"),
                text("gen_ai.tool.call.arguments", r#"{"order_id":"NW-1042"}"#),
                text("gen_ai.tool.call.result", r#"{"status":"shipped"}"#),
            ],
        ),
        span(
            "1000000000000003",
            root,
            "retrieval kb-articles",
            1750,
            2300,
            vec![
                text("gen_ai.operation.name", "retrieval"),
                text("gen_ai.data_source.id", "kb-articles"),
                text("gen_ai.retrieval.documents", r#"[{"id":"kb-17","score":0.82},{"id":"kb-4","score":0.61}]"#),
            ],
        ),
    ];
    json!({"resourceSpans": [{
        "resource": {"attributes": [text("service.name", "agent-runtime")]},
        "scopeSpans": [{"scope": {"name": "portal-browser-test"}, "spans": spans}],
    }]})
}

#[tokio::test]
async fn signals_tab_trace_cost_and_anomalies() {
    let started = Instant::now();
    let plinth = Serve::demo().await;
    let client = http();
    let post = |body: Value| {
        let client = client.clone();
        let url = plinth.url("/v1/traces");
        async move {
            let response = client
                .post(url)
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("POST /v1/traces");
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "OTLP export answered {status}: {text}");
        }
    };
    // The run the test clicks through to. Attribution follows the demo
    // catalogue a moment after it loads; until then spans carry no
    // Component, so a run is sent again until the summary counts it.
    let mut trace_id = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for attempt in 0.. {
        trace_id = format!("{:032x}", 0xabcd_0000_u64 + attempt);
        post(agent_run_export(&trace_id, 5, 1200)).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let summary: Value = client
            .get(plinth.url("/api/signals/summary?entity=component:default/agent-runtime"))
            .send()
            .await
            .expect("summary")
            .json()
            .await
            .expect("summary JSON");
        if summary["requests"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "agent-runtime was not attributed within 60 s: {summary}");
    }
    // History for the anomaly page: the same hour on three previous days,
    // then a spike of tokens per request in the last whole hour.
    for day in 1..=3 {
        post(agent_run_export(&format!("{:032x}", 0xfeed_0000 + day), day * 86_400 + 3600, 1_000_000)).await;
    }
    post(agent_run_export(&format!("{:032x}", 0xfeed_1000_i64), 3600, 20_000_000)).await;

    let b = Browser::open().await;
    b.goto(&plinth.url("/catalog/default/component/agent-runtime")).await;
    b.check_entity_page().await;
    let tab = b.wait("a#signals-tab").await;
    b.follow(&tab, "#signals-headline").await;
    let url = b.current_url().await;
    ensure!(b, url_path(&url) == "/catalog/default/component/agent-runtime/signals", "the Signals tab led to {url}");
    b.check_chrome("signals").await;
    let requests = first_number(&b.text_of("#signals-headline [data-stat=\"requests\"]").await).unwrap_or(0);
    ensure!(b, requests >= 1, "signals: {requests} requests shown");
    let cost = b.text_of("#signals-headline [data-stat=\"cost\"]").await;
    ensure!(b, cost.contains('$'), "signals: the cost tile shows {cost:?}");
    for css in
        ["#chart-requests svg", "#chart-latency svg", "#chart-cost svg", "#top-models tr[data-model=\"gpt-4o-mini\"]"]
    {
        b.wait(css).await;
    }
    let bars = b.find_all("#chart-requests rect.bar").await;
    ensure!(b, !bars.is_empty(), "signals: the requests chart draws no bar");
    let prompt = b.text_of("#top-prompts").await;
    ensure!(b, prompt.contains("support-reply-draft@3"), "signals: top prompt versions show {prompt:?}");
    b.check_console("signals", &[]).await;
    b.screenshot("signals-entity").await;

    // Through the recent-traces table to the waterfall.
    let link = b.wait(&format!("#recent-traces a.trace-link[href=\"/traces/{trace_id}\"]")).await;
    b.follow(&link, "#trace-tree").await;
    b.check_chrome("trace").await;
    let rows = b
        .script(
            "return [...document.querySelectorAll('#trace-tree li.span-row')] \
             .map(li => li.dataset.operation + '@' + li.dataset.depth)",
            json!([]),
        )
        .await;
    ensure!(
        b,
        rows == json!(["invoke_agent@0", "chat@1", "execute_tool@1", "retrieval@1"]),
        "trace: rows are {rows}, expected invoke_agent → chat, execute_tool, retrieval"
    );
    let chat = b.text_of("#trace-tree li[data-operation=\"chat\"] .span-head").await;
    ensure!(
        b,
        chat.contains("gpt-4o-mini") && chat.contains("1,200 in / 300 out"),
        "trace: the chat row shows {chat:?}"
    );
    let summary = b.wait("#trace-tree li[data-operation=\"execute_tool\"] details.tool-arguments summary").await;
    b.click(&summary, "the tool arguments").await;
    let arguments = b.text_of("#trace-tree li[data-operation=\"execute_tool\"] details.tool-arguments pre").await;
    ensure!(b, arguments.contains("NW-1042"), "trace: the opened arguments show {arguments:?}");
    let documents = b.text_of("#trace-tree li[data-operation=\"retrieval\"] details.documents").await;
    ensure!(b, documents.contains("kb-17") && documents.contains("0.82"), "trace: documents show {documents:?}");
    b.check_console("trace", &[]).await;
    b.screenshot("signals-trace").await;

    // Team cost, from the nav.
    let nav = b.wait("a#nav-cost").await;
    b.follow(&nav, "#team-costs").await;
    let team = b.text_of("#team-costs tr[data-team=\"group:default/team-applied-ai\"]").await;
    ensure!(b, team.contains("agent-runtime") && team.contains('$'), "cost: the team row shows {team:?}");
    b.check_console("cost", &[]).await;
    b.screenshot("signals-cost").await;

    // Anomalies: the spike, explained.
    let anomalies = b.wait("a#anomalies-link").await;
    b.follow(&anomalies, "h1").await;
    let first = b.text_of("#anomalies li.anomaly").await;
    ensure!(b, first.contains("agent-runtime") && first.contains("Tokens per request"), "anomalies: {first:?}");
    b.wait("#anomalies li.anomaly .badge.anomaly-kind").await;
    b.check_console("anomalies", &[]).await;
    b.screenshot("signals-anomalies").await;
    eprintln!("signals_tab_trace_cost_and_anomalies: {:.1} s", started.elapsed().as_secs_f64());
}
