//! The entity page and the catalogue pages in headless Chromium, against
//! `plinth serve --demo` (the large catalogue is `portal_large`): action links
//! from annotations, relations with human labels that collapse with a link
//! to the explorer filtered to the same relation, the Docs tab (headings,
//! code, an image, a relative link, the docs in the main search), API
//! definitions rendered, and the pages at phone width (390 px).

use super::common::{repo, Serve};
use plinth_testkit::browser::{query_param, url_path, Browser, ELEMENT};
use plinth_testkit::{page_ensure as ensure, page_fail as fail};
use serde_json::json;
use std::time::{Duration, Instant};

const AUTH: &str = "/catalog/default/component/auth-service";

/// The numbers in a text (`1,234` is one number).
pub(crate) fn numbers(text: &str) -> Vec<u64> {
    text.replace([',', '\u{a0}', '\u{202f}'], "")
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The total an explorer page reports ("Showing 1–50 of 62 entities").
pub(crate) async fn explorer_total(b: &Browser) -> u64 {
    let text = b.text_of("#result-count").await;
    match numbers(&text).into_iter().max() {
        Some(n) => n,
        None => fail!(b, "#result-count shows no number: {text:?}"),
    }
}

/// The `href` of the first element matching `css`, or a failure.
pub(crate) async fn href_of(b: &Browser, css: &str) -> String {
    let element = b.wait(css).await;
    b.href(&element).await
}

/// Narrows the window to a phone's width (390 px): the window, else the
/// device metrics through Chromium's DevTools protocol.
pub(crate) async fn phone_width(b: &Browser) {
    let _ = b.post("/window/rect", json!({"width": 390, "height": 844})).await;
    let width = b.script("return window.innerWidth", json!([])).await.as_u64().unwrap_or(0);
    if width > 400 {
        let metrics = json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
            "width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}});
        if let Err(e) = b.post("/goog/cdp/execute", metrics).await {
            fail!(b, "cannot narrow the window to 390 px (innerWidth {width}): {e}");
        }
    }
}

#[tokio::test]
async fn entity_page_docs_and_apis_on_the_demo() {
    let started = Instant::now();
    let plinth = Serve::demo().await;
    let b = Browser::open().await;

    // ---- auth-service: header, owner by title, relative time, actions.
    b.goto(&plinth.url(AUTH)).await;
    b.wait("h1#entity-title").await;
    let owner = b.text_of("#entity-owner a.entity-link").await;
    ensure!(b, owner == "Team Identity", "owner shown as {owner:?}, expected the team's title \"Team Identity\"");
    let owner_href = href_of(&b, "#entity-owner a.entity-link").await;
    ensure!(b, url_path(&owner_href) == "/catalog/default/group/team-identity", "owner links to {owner_href}");
    let time = b.wait("#entity-updated time").await;
    let (datetime, title, shown) = (
        b.attribute(&time, "datetime").await.unwrap_or_default(),
        b.attribute(&time, "title").await.unwrap_or_default(),
        b.text(&time).await,
    );
    ensure!(b, datetime.ends_with('Z') && !datetime.contains('.'), "datetime {datetime:?}: RFC 3339 to the second");
    ensure!(b, title.ends_with(" UTC"), "the exact time on hover: title {title:?}");
    ensure!(b, shown == "just now" || shown.ends_with(" ago"), "a relative time: {shown:?}");

    let actions = [
        ("source", "https://github.com/northwind-labs/identity/tree/main/services/auth-service/"),
        ("oncall", "https://app.pagerduty.com/service-directory/P7AC60D"),
        ("dashboard", "https://grafana.northwindlabs.com/d/auth-service/overview"),
    ];
    for (kind, expected) in actions {
        let href = href_of(&b, &format!("#entity-actions li[data-action=\"{kind}\"] a")).await;
        ensure!(b, href == expected, "action {kind}: {href}, expected {expected}");
    }
    let kubernetes = b.text_of("#entity-actions li[data-action=\"kubernetes\"]").await;
    ensure!(b, kubernetes.contains("backstage.io/kubernetes-id=auth-service"), "kubernetes action: {kubernetes:?}");
    let docs_action = href_of(&b, "#entity-actions li[data-action=\"docs\"] a").await;
    ensure!(b, query_param(&docs_action, "docs").as_deref() == Some("index.md"), "docs action: {docs_action}");
    // The annotations are no longer the only place these live, and no
    // relation heading shows an internal name.
    let headings = b.script(
        "return [...document.querySelectorAll('#relations section[data-relation] > h3')].map(h => h.textContent)",
        json!([]),
    );
    let headings = headings.await;
    let headings: Vec<String> =
        headings.as_array().into_iter().flatten().filter_map(|h| h.as_str().map(str::to_string)).collect();
    for internal in ["dependencyOf", "dependsOn", "ownedBy", "providesApi", "apiConsumedBy"] {
        ensure!(b, !headings.iter().any(|h| h.contains(internal)), "relation heading {internal} in {headings:?}");
    }
    ensure!(b, headings.iter().any(|h| h.starts_with("Depends on")), "no \"Depends on\" in {headings:?}");
    b.check_console("entity", &[]).await;
    b.save_screenshot(&repo().join("docs/screenshots/entity-actions.png")).await;

    // ---- "Used by": collapsed behind its count, with the explorer link.
    let used_by = "#relations section[data-relation=\"dependencyOf\"]";
    let heading = b.text_of(&format!("{used_by} > h3")).await;
    ensure!(b, heading.starts_with("Used by"), "dependents heading: {heading:?}");
    let count = numbers(&heading).into_iter().next().unwrap_or(0);
    ensure!(b, count > 10, "auth-service has {count} dependents; the demo should give it more than 10");
    let details = b.wait(&format!("{used_by} details.relation-list")).await;
    let open = b.script("return arguments[0].open", json!([{ELEMENT: details}])).await;
    ensure!(b, open == json!(false), "a list of {count} starts collapsed");
    let visible =
        b.script("return arguments[0].querySelector('a.entity-link').checkVisibility()", json!([{ELEMENT: details}]));
    ensure!(b, visible.await == json!(false), "collapsed targets are not drawn");
    let listed = b.find_all(&format!("{used_by} a.entity-link")).await.len() as u64;
    ensure!(b, listed == count, "{listed} targets listed for a count of {count}");
    let explorer = b.wait(&format!("{used_by} .relation-explorer a")).await;
    b.follow(&explorer, "table#entities").await;
    let url = b.current_url().await;
    ensure!(
        b,
        query_param(&url, "rel").as_deref() == Some("dependsOn:component:default/auth-service"),
        "explorer link: {url}"
    );
    let total = explorer_total(&b).await;
    ensure!(
        b,
        total == count,
        "the explorer filtered to dependents of auth-service lists {total}, the page said {count}"
    );
    let chip = b.text_of("ul.chips").await;
    ensure!(b, chip.contains("Depends on") && chip.contains("Auth Service"), "relation chip: {chip:?}");
    b.check_console("explorer (relation)", &[]).await;

    // ---- The Docs tab: nav, headings with anchors, code, image, links.
    b.goto(&plinth.url(AUTH)).await;
    let tab = b.wait("a#docs-tab").await;
    b.follow(&tab, "#docs-content").await;
    let h1 = b.text_of("#docs-content h1").await;
    ensure!(b, h1.starts_with("Identity"), "docs home h1: {h1:?}");
    let anchors = b.find_all("#docs-content h2[id] a.anchor").await;
    ensure!(b, !anchors.is_empty(), "docs headings have no anchors");
    let nav = b.find_all("#docs-nav a").await.len();
    ensure!(b, nav >= 4, "docs nav: {nav} links, expected the mkdocs nav (4 pages)");
    // A relative link in the page (architecture.md) opens that page.
    let link = b.wait("#docs-content a[href*=\"docs=architecture.md\"]").await;
    b.follow(&link, "#docs-content img").await;
    let h1 = b.text_of("#docs-content h1").await;
    ensure!(b, h1.starts_with("Architecture"), "after the relative link: h1 {h1:?}");
    let image = b.wait("#docs-content img").await;
    let loaded = b
        .wait_until(
            "const i = document.querySelector('#docs-content img'); return i.complete && i.naturalWidth > 0",
            Duration::from_secs(10),
            "the docs image loads",
        )
        .await;
    ensure!(b, loaded == json!(true), "docs image did not load");
    let src = b.attribute(&image, "src").await.unwrap_or_default();
    ensure!(b, src.contains("docs_asset=images%2Farchitecture.svg"), "image src {src}");
    let runbook = b.wait("#docs-nav a[href*=\"docs=runbook.md\"]").await;
    b.follow(&runbook, "#docs-content pre.code").await;
    let comment = b.find_all("#docs-content pre.code span.tok-c").await;
    ensure!(b, !comment.is_empty(), "runbook code is not highlighted");
    // Paths that leave the docs directory are refused.
    let escape = reqwest::get(plinth.url(&format!("{AUTH}?docs_asset=..%2F..%2Fcatalog-info.yaml"))).await.unwrap();
    ensure!(b, escape.status().is_client_error(), "docs_asset=../.. answered {}", escape.status());
    let escape = reqwest::get(plinth.url(&format!("{AUTH}?docs=..%2Fcatalog-info.yaml"))).await.unwrap();
    let body = escape.text().await.unwrap_or_default();
    ensure!(b, !body.contains("kind: Component"), "docs=../catalog-info.yaml showed the file");
    b.check_console("docs", &[]).await;
    b.save_screenshot(&repo().join("docs/screenshots/entity-docs.png")).await;

    // ---- The main search finds docs pages.
    b.goto(&plinth.url("/search?q=rollout")).await;
    let hit = b.wait("#docs-results a.docs-link[href*=\"docs=runbook.md\"]").await;
    b.follow(&hit, "#docs-content").await;
    let h1 = b.text_of("#docs-content h1").await;
    ensure!(b, h1 == "Runbook" || h1.starts_with("Runbook"), "docs search hit opened {h1:?}");

    // ---- API pages: OpenAPI operations, AsyncAPI channels, gRPC methods.
    b.goto(&plinth.url("/catalog/default/api/auth-api")).await;
    let rows = b.find_all("table#api-operations tr.operation").await;
    ensure!(b, rows.len() >= 2, "auth-api: {} operations", rows.len());
    let summary = b.wait("table#api-operations details.operation-detail summary").await;
    b.click(&summary, "an operation").await;
    let schema = b.find_all("table#api-operations details[open] table.schema tr").await;
    ensure!(b, !schema.is_empty(), "auth-api: an opened operation shows no schema rows");
    let raw = b.wait("details#api-raw").await;
    let open = b.script("return arguments[0].open", json!([{ELEMENT: raw}])).await;
    ensure!(b, open == json!(false), "the raw definition is behind a toggle");
    b.save_screenshot(&repo().join("docs/screenshots/entity-api.png")).await;
    b.goto(&plinth.url("/catalog/default/api/order-events")).await;
    let channels = b.find_all("#api-channels li.channel").await;
    ensure!(b, !channels.is_empty(), "order-events: no AsyncAPI channels");
    b.goto(&plinth.url("/catalog/default/api/payment-methods-api")).await;
    let methods = b.find_all("#api-services .grpc-service li").await;
    ensure!(b, !methods.is_empty(), "payment-methods-api: no gRPC methods");
    b.check_console("api pages", &[]).await;

    // ---- Phone width.
    phone_width(&b).await;
    b.goto(&plinth.url("/catalog?kind=component")).await;
    b.wait("table#entities").await;
    let drawer = b.wait("details#facets-drawer").await;
    let open = b.script("return arguments[0].open", json!([{ELEMENT: drawer}])).await;
    ensure!(b, open == json!(false), "390 px: the facets drawer starts closed");
    let facet_visible = b.script("return document.querySelector('#facet-kind').checkVisibility()", json!([])).await;
    ensure!(b, facet_visible == json!(false), "390 px: facets are drawn before the toggle");
    let owner_cell = b
        .script(
            "const c = document.querySelector('#entities td.owner'); const r = c.getBoundingClientRect(); \
             return {w: r.width, right: r.right, vw: document.documentElement.clientWidth, text: c.textContent}",
            json!([]),
        )
        .await;
    let (width, right, viewport) = (
        owner_cell["w"].as_f64().unwrap_or(0.0),
        owner_cell["right"].as_f64().unwrap_or(0.0),
        owner_cell["vw"].as_f64().unwrap_or(0.0),
    );
    ensure!(b, width > 0.0 && right <= viewport + 1.0, "390 px: the owner cell is cut off: {owner_cell}");
    let toggle = b.wait("#facets-toggle").await;
    b.click(&toggle, "the facets toggle").await;
    let facet_visible = b.script("return document.querySelector('#facet-kind').checkVisibility()", json!([])).await;
    ensure!(b, facet_visible == json!(true), "390 px: the toggle does not open the facets");
    b.save_screenshot(&repo().join("docs/screenshots/explorer-phone.png")).await;

    b.goto(&plinth.url(&format!("{AUTH}/graph"))).await;
    b.wait("svg#graph").await;
    let centred = b
        .script(
            "const w = document.querySelector('.graph-wrap').getBoundingClientRect(); \
             const r = document.querySelector('.node.root rect').getBoundingClientRect(); \
             const cx = r.left + r.width / 2; \
             return {inside: cx >= w.left && cx <= w.right && r.top >= w.top && r.bottom <= w.bottom, \
                     offset: Math.abs(cx - (w.left + w.width / 2))}",
            json!([]),
        )
        .await;
    ensure!(b, centred["inside"] == json!(true), "390 px: the graph's own node is off-screen: {centred}");
    b.save_screenshot(&repo().join("docs/screenshots/graph-phone.png")).await;
    b.check_console("phone", &[]).await;
    eprintln!("entity_page_docs_and_apis_on_the_demo: {:.1} s", started.elapsed().as_secs_f64());
}
