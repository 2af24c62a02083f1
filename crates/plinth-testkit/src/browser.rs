//! A real headless Chromium driven by chromedriver over the W3C WebDriver
//! protocol (spoken here with `reqwest`), for end-to-end tests of the web
//! portal from any crate.
//!
//! [`Browser::open`] starts a [`Driver`] (chromedriver on a free loopback
//! port) and one browser session with a throw-away profile; dropping the
//! `Browser` ends the session, then chromedriver. Element references are
//! the WebDriver ids (`String`); pass one to a script as
//! `json!({ELEMENT: id})`. Every wait polls up to [`WAIT`]. Failures panic
//! with the page's URL and a snippet of its source ([`page_fail!`],
//! [`page_ensure!`]).
//!
//! Needs [`CHROMIUM`] and [`CHROMEDRIVER`]
//! (`apt-get install chromium chromium-driver`; `.ci/run` installs them).

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C name of the key under which an element reference travels.
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The WebDriver code of the Enter key.
pub const ENTER: &str = "\u{E007}";
/// How long an explicit wait polls for an element.
pub const WAIT: Duration = Duration::from_secs(10);
/// How often a wait polls.
pub const POLL: Duration = Duration::from_millis(100);

/// Panics with the message, the page's URL and a snippet of its source:
/// `page_fail!(browser, "format", args…)` (in an async context).
#[macro_export]
macro_rules! page_fail {
    ($browser:expr, $($arg:tt)+) => {{
        let message = format!($($arg)+);
        let context = $browser.context().await;
        panic!("{message}\n{context}")
    }};
}

/// `assert!` with the page's URL and source snippet on failure:
/// `page_ensure!(browser, condition, "format", args…)`.
#[macro_export]
macro_rules! page_ensure {
    ($browser:expr, $cond:expr, $($arg:tt)+) => {
        if !$cond {
            $crate::page_fail!($browser, $($arg)+)
        }
    };
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(180)).build().expect("reqwest client")
}

/// The first `n` bytes of a text (on a character boundary).
fn head(text: &str, n: usize) -> &str {
    let mut end = n.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Decodes `%XX` escapes and `+` (as a space).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The (decoded) value of a query parameter in a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1.split('#').next().unwrap_or("");
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

/// The path of a URL (no scheme, host, query or fragment).
pub fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let rest = if url.contains("://") { format!("/{rest}") } else { rest.to_string() };
    rest.split(['?', '#']).next().unwrap_or("").to_string()
}

/// A plain HTTP/1.1 request without an async runtime, for `Drop`.
fn raw_request(port: u16, method: &str, path: &str) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    }
}

/// A running chromedriver, shut down (with its browsers) on drop.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        raw_request(self.port, "GET", "/shutdown");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts chromedriver on a free port and waits (up to 30 s) until it
    /// is ready; panics if Chromium or chromedriver is not installed.
    pub async fn start() -> Driver {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: install it with `apt-get install -y chromium chromium-driver`"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver { child, port };
        let client = http();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = client.get(format!("http://127.0.0.1:{port}/status")).send().await;
            if let Ok(response) = status {
                if let Ok(body) = response.json::<Value>().await {
                    if body["value"]["ready"] == json!(true) {
                        return driver;
                    }
                }
            }
            assert!(Instant::now() < deadline, "chromedriver on port {port} was not ready within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The loopback port chromedriver listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// One browser session. Drop ends the session, then chromedriver.
pub struct Browser {
    client: reqwest::Client,
    session: String,
    driver: Driver,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let path = url_path(&self.session);
        raw_request(self.driver.port, "DELETE", &path);
    }
}

impl Browser {
    /// A headless Chromium (1400×900, fresh profile, console logged) in a
    /// session of its own chromedriver.
    pub async fn open() -> Browser {
        let driver = Driver::start().await;
        let profile = tempfile::tempdir().unwrap();
        let client = http();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1400,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let base = format!("http://127.0.0.1:{}", driver.port);
        let response = client.post(format!("{base}/session")).json(&capabilities).send().await.expect("new session");
        let body: Value = response.json().await.expect("new session: JSON");
        let id = body["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {body}")).to_string();
        let browser = Browser { client, session: format!("{base}/session/{id}"), driver, _profile: profile };
        browser
            .call(
                reqwest::Method::POST,
                "/timeouts",
                Some(json!({"pageLoad": 120_000, "script": 30_000, "implicit": 0})),
            )
            .await
            .expect("set timeouts");
        browser
    }

    /// One WebDriver command on the session (`path` after
    /// `/session/{id}`); `Err` carries the WebDriver error and message.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let response = request.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| format!("{method} {path}: bad JSON: {e}"))?;
        if status.is_success() {
            Ok(body["value"].clone())
        } else {
            Err(format!(
                "{method} {path}: {} ({}): {}",
                status,
                body["value"]["error"].as_str().unwrap_or("?"),
                head(body["value"]["message"].as_str().unwrap_or(""), 400)
            ))
        }
    }

    /// A GET command; panics on a WebDriver error.
    pub async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// A POST command.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn current_url(&self) -> String {
        self.get("/url").await.as_str().unwrap_or("").to_string()
    }

    /// The URL and a snippet of the page source, for failure messages.
    pub async fn context(&self) -> String {
        let url = self.call(reqwest::Method::GET, "/url", None).await.unwrap_or_default();
        let source = self.call(reqwest::Method::GET, "/source", None).await.unwrap_or_default();
        let source = source.as_str().unwrap_or("");
        let from = source.find("<main").unwrap_or(0);
        format!("  page URL: {}\n  page source (from <main>, 2000 bytes):\n{}", url, head(&source[from..], 2000))
    }

    /// Loads `url` (waiting for the page load).
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.post("/url", json!({"url": url})).await {
            page_fail!(self, "cannot load {url}: {e}");
        }
    }

    /// Runs a synchronous script; `args` is a JSON array.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        match self.post("/execute/sync", json!({"script": script, "args": args})).await {
            Ok(value) => value,
            Err(e) => page_fail!(self, "script failed: {e}\nscript: {script}"),
        }
    }

    /// The element id in a WebDriver element reference.
    pub fn element_id(value: &Value) -> String {
        value[ELEMENT].as_str().unwrap_or_else(|| panic!("not an element: {value}")).to_string()
    }

    /// Every element matching a CSS selector, now (no wait).
    pub async fn find_all(&self, css: &str) -> Vec<String> {
        match self.post("/elements", json!({"using": "css selector", "value": css})).await {
            Ok(Value::Array(items)) => items.iter().map(Self::element_id).collect(),
            _ => Vec::new(),
        }
    }

    /// Every element matching a CSS selector inside `parent`.
    pub async fn find_all_in(&self, parent: &str, css: &str) -> Vec<String> {
        let path = format!("/element/{parent}/elements");
        match self.post(&path, json!({"using": "css selector", "value": css})).await {
            Ok(Value::Array(items)) => items.iter().map(Self::element_id).collect(),
            _ => Vec::new(),
        }
    }

    /// The first element matching a CSS selector, now (no wait).
    pub async fn find(&self, css: &str) -> Option<String> {
        self.find_all(css).await.into_iter().next()
    }

    /// Polls for an element up to [`WAIT`]; fails the test without one.
    pub async fn wait(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(element) = self.find(css).await {
                return element;
            }
            if Instant::now() > deadline {
                page_fail!(self, "no element `{css}` within {WAIT:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The rendered text of an element.
    pub async fn text(&self, element: &str) -> String {
        match self.call(reqwest::Method::GET, &format!("/element/{element}/text"), None).await {
            Ok(value) => value.as_str().unwrap_or("").to_string(),
            Err(e) => page_fail!(self, "cannot read the text of an element: {e}"),
        }
    }

    /// The text of the first element matching `css` (waited for), falling
    /// back to its text content (hidden elements, SVG); trimmed.
    pub async fn text_of(&self, css: &str) -> String {
        let element = self.wait(css).await;
        let text = self.text(&element).await;
        if !text.trim().is_empty() {
            return text.trim().to_string();
        }
        let value = self.script("return arguments[0].textContent", json!([{ELEMENT: element}])).await;
        value.as_str().unwrap_or("").trim().to_string()
    }

    pub async fn attribute(&self, element: &str, name: &str) -> Option<String> {
        let value = self.call(reqwest::Method::GET, &format!("/element/{element}/attribute/{name}"), None).await;
        value.ok().and_then(|v| v.as_str().map(str::to_string))
    }

    /// The resolved (absolute) href of a link (HTML or SVG).
    pub async fn href(&self, element: &str) -> String {
        let script = "const a = arguments[0]; \
            const raw = a.getAttribute('href') || a.getAttribute('xlink:href') || ''; \
            return raw ? new URL(raw, document.baseURI).href : '';";
        self.script(script, json!([{ELEMENT: element}])).await.as_str().unwrap_or("").to_string()
    }

    /// A PNG of the viewport.
    pub async fn screenshot_png(&self) -> Vec<u8> {
        use base64::Engine as _;
        let data = self.get("/screenshot").await;
        base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap_or("")).expect("screenshot: base64 PNG")
    }

    /// Saves a PNG of the viewport at `path` (creating its directory).
    pub async fn save_screenshot(&self, path: &Path) {
        let png = self.screenshot_png().await;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Clicks an element; fails the test if WebDriver cannot.
    pub async fn click(&self, element: &str, what: &str) {
        if let Err(e) = self.post(&format!("/element/{element}/click"), json!({})).await {
            page_fail!(self, "cannot click {what}: {e}");
        }
    }

    /// Clicks `element` (a link) and waits for the next page to show `css`.
    pub async fn follow(&self, element: &str, css: &str) {
        let before = self.current_url().await;
        if let Err(e) = self.post(&format!("/element/{element}/click"), json!({})).await {
            page_fail!(self, "cannot click: {e}");
        }
        self.wait_for_page_change(&before, css).await;
    }

    /// Waits (up to [`WAIT`]) for a loaded page other than `before` that
    /// shows `css`.
    pub async fn wait_for_page_change(&self, before: &str, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.current_url().await;
            let ready = self.script("return document.readyState", json!([])).await == json!("complete");
            if now != before && ready && self.find(css).await.is_some() {
                return;
            }
            if Instant::now() > deadline {
                page_fail!(self, "after leaving {before}, no page with `{css}` within {WAIT:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Drains the browser console; fails on any SEVERE entry except those
    /// whose message contains one of `allowed`.
    pub async fn check_console(&self, page: &str, allowed: &[&str]) {
        let entries = match self.post("/se/log", json!({"type": "browser"})).await {
            Ok(Value::Array(entries)) => entries,
            Ok(other) => panic!("se/log answered {other}"),
            Err(e) => panic!("cannot read the browser console: {e}"),
        };
        let severe: Vec<String> = entries
            .iter()
            .filter(|e| e["level"] == json!("SEVERE"))
            .map(|e| e["message"].as_str().unwrap_or("").to_string())
            .filter(|m| !allowed.iter().any(|a| m.contains(a)))
            .collect();
        page_ensure!(self, severe.is_empty(), "console errors on the {page} page:\n  {}", severe.join("\n  "));
    }

    /// Replaces the value of an input by typing `text`, as a user would.
    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.wait(css).await;
        if let Err(e) = self.post(&format!("/element/{input}/clear"), json!({})).await {
            page_fail!(self, "cannot clear `{css}`: {e}");
        }
        if let Err(e) = self.post(&format!("/element/{input}/value"), json!({"text": text})).await {
            page_fail!(self, "cannot type into `{css}`: {e}");
        }
        let value = self.value(css).await;
        page_ensure!(self, value == text, "`{css}` holds {value:?} after typing {text:?}");
    }

    /// Picks an option of a select by clicking it.
    pub async fn choose(&self, css: &str, value: &str) {
        let option = self.wait(&format!("{css} option[value=\"{value}\"]")).await;
        self.click(&option, &format!("option {value} of `{css}`")).await;
        let now = self.value(css).await;
        page_ensure!(self, now == value, "`{css}` is {now:?} after picking {value:?}");
    }

    /// The current value of a form control.
    pub async fn value(&self, css: &str) -> String {
        let element = self.wait(css).await;
        let value = self.script("return arguments[0].value", json!([{ELEMENT: element}])).await;
        value.as_str().unwrap_or("").to_string()
    }

    /// Polls a script until it returns something truthy, up to `timeout`.
    pub async fn wait_until(&self, script: &str, timeout: Duration, what: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.script(script, json!([])).await;
            if !matches!(value, Value::Null | Value::Bool(false)) {
                return value;
            }
            if Instant::now() > deadline {
                page_fail!(self, "{what}: not within {timeout:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every `pattern` attribute compiles as the browser compiles it (with
    /// the `v` flag); one that does not leaves its field unchecked. Returns
    /// how many there are.
    pub async fn check_patterns(&self, page: &str) -> usize {
        let script = "return [...document.querySelectorAll('[pattern]')].flatMap(i => { \
            try { new RegExp('^(?:' + i.getAttribute('pattern') + ')$', 'v'); return []; } \
            catch (e) { return [i.id + ': ' + e.message]; } })";
        let bad = self.script(script, json!([])).await;
        page_ensure!(self, bad == json!([]), "{page}: pattern attributes the browser rejects: {bad}");
        self.find_all("[pattern]").await.len()
    }

    /// Scrolls the first element matching `css` to the top of the viewport.
    pub async fn scroll_to(&self, css: &str) {
        let element = self.wait(css).await;
        self.script("arguments[0].scrollIntoView({block: 'start'})", json!([{ELEMENT: element}])).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{query_param, url_path};

    #[test]
    fn reads_urls() {
        assert_eq!(
            query_param("http://x/catalog?kind=component&owner=group%3Adefault%2Fteam-1", "owner").as_deref(),
            Some("group:default/team-1")
        );
        assert_eq!(query_param("http://x/search?q=a+b#top", "q").as_deref(), Some("a b"));
        assert_eq!(query_param("http://x/search?q=a", "owner"), None);
        assert_eq!(url_path("http://127.0.0.1:1/catalog/default/component/a?x=1#y"), "/catalog/default/component/a");
        assert_eq!(url_path("/catalog?kind=api"), "/catalog");
    }
}
