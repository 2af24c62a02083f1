//! Forges: the GitHub and GitLab REST calls behind `publish:github`,
//! `publish:gitlab`, `publish:github:pull-request` and
//! `publish:gitlab:merge-request`. Repositories are created, branches
//! protected and pull/merge requests opened through the forge's API; the
//! files travel with the real git client (`crate::git`).
//!
//! Every request goes through the server's outbound allowlist. Tokens are
//! [`SecretString`]s: sent only in headers (marked sensitive) and in the
//! environment of `git push`, never in a URL, a log line, an event, an
//! output or an error.

use crate::error::ScaffoldError;
use base64::Engine;
use plinth_confine::OutboundPolicy;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Largest forge answer read (a repository or pull request is a few KiB).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Longest a forge may take to answer one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgeKind {
    GitHub,
    GitLab,
}

impl ForgeKind {
    pub fn name(self) -> &'static str {
        match self {
            ForgeKind::GitHub => "GitHub",
            ForgeKind::GitLab => "GitLab",
        }
    }
}

/// One forge Plinth may publish to: its host as written in `repoUrl`
/// (`github.com`, `ghe.example.com`, `gitlab.example.com`), where its REST
/// API and its git repositories are, and the integration token.
#[derive(Clone)]
pub struct ForgeIntegration {
    pub kind: ForgeKind,
    pub host: String,
    /// `https://api.github.com`, `https://ghe.example.com/api/v3`,
    /// `https://gitlab.example.com/api/v4`.
    pub api_base: String,
    /// Repositories are pushed to `<git_base>/<owner>/<repo>.git`.
    pub git_base: String,
    pub token: Option<SecretString>,
}

impl std::fmt::Debug for ForgeIntegration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgeIntegration")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("api_base", &self.api_base)
            .field("git_base", &self.git_base)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ForgeIntegration {
    /// github.com (API at api.github.com) or GitHub Enterprise Server (API
    /// at `https://<host>/api/v3`).
    pub fn github(host: &str, token: Option<SecretString>) -> ForgeIntegration {
        let host = host.trim().to_ascii_lowercase();
        let api_base =
            if host == "github.com" { "https://api.github.com".to_string() } else { format!("https://{host}/api/v3") };
        ForgeIntegration { kind: ForgeKind::GitHub, git_base: format!("https://{host}"), host, api_base, token }
    }

    /// gitlab.com or a self-hosted GitLab (API at `https://<host>/api/v4`).
    pub fn gitlab(host: &str, token: Option<SecretString>) -> ForgeIntegration {
        let host = host.trim().to_ascii_lowercase();
        ForgeIntegration {
            kind: ForgeKind::GitLab,
            api_base: format!("https://{host}/api/v4"),
            git_base: format!("https://{host}"),
            host,
            token,
        }
    }

    pub fn with_api_base(mut self, api_base: &str) -> ForgeIntegration {
        self.api_base = api_base.trim().trim_end_matches('/').to_string();
        self
    }

    pub fn with_git_base(mut self, git_base: &str) -> ForgeIntegration {
        self.git_base = git_base.trim().trim_end_matches('/').to_string();
        self
    }
}

/// The configured forges and the HTTP client (through the outbound
/// allowlist) their calls use.
#[derive(Clone)]
pub struct Forges {
    integrations: Vec<ForgeIntegration>,
    outbound: Arc<OutboundPolicy>,
    client: reqwest::Client,
}

impl std::fmt::Debug for Forges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forges").field("integrations", &self.integrations).finish_non_exhaustive()
    }
}

impl Default for Forges {
    /// github.com and gitlab.com without tokens (a run passes `token`),
    /// public addresses only.
    fn default() -> Forges {
        Forges::new(Vec::new(), Arc::new(OutboundPolicy::default_for(false)))
    }
}

impl Forges {
    /// The given integrations; github.com and gitlab.com are known too
    /// (without a token) unless configured.
    pub fn new(integrations: Vec<ForgeIntegration>, outbound: Arc<OutboundPolicy>) -> Forges {
        let client = outbound.client(CALL_TIMEOUT);
        Forges { integrations, outbound, client }
    }

    /// Integrations from the environment: `PLINTH_GITHUB_TOKEN`,
    /// `PLINTH_GITHUB_HOST` (GitHub Enterprise), `PLINTH_GITHUB_API_URL`,
    /// `PLINTH_GITHUB_GIT_URL`, and the same with `GITLAB`.
    pub fn from_env(outbound: Arc<OutboundPolicy>) -> Forges {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut integrations = Vec::new();
        for kind in [ForgeKind::GitHub, ForgeKind::GitLab] {
            let prefix = match kind {
                ForgeKind::GitHub => "PLINTH_GITHUB",
                ForgeKind::GitLab => "PLINTH_GITLAB",
            };
            let token = var(&format!("{prefix}_TOKEN")).map(SecretString::from);
            let host = var(&format!("{prefix}_HOST"));
            let (api, git) = (var(&format!("{prefix}_API_URL")), var(&format!("{prefix}_GIT_URL")));
            if token.is_none() && host.is_none() && api.is_none() {
                continue;
            }
            let default_host = if kind == ForgeKind::GitHub { "github.com" } else { "gitlab.com" };
            let host = host.as_deref().unwrap_or(default_host);
            let mut integration = match kind {
                ForgeKind::GitHub => ForgeIntegration::github(host, token),
                ForgeKind::GitLab => ForgeIntegration::gitlab(host, token),
            };
            if let Some(api) = api {
                integration = integration.with_api_base(&api);
            }
            if let Some(git) = git {
                integration = integration.with_git_base(&git);
            }
            integrations.push(integration);
        }
        Forges::new(integrations, outbound)
    }

    /// The integration for `host`, of `kind`.
    pub(crate) fn find(&self, kind: ForgeKind, host: &str) -> Result<ForgeIntegration, ScaffoldError> {
        let host = host.to_ascii_lowercase();
        if let Some(found) = self.integrations.iter().find(|i| i.host == host) {
            if found.kind != kind {
                return Err(ScaffoldError::Input(format!(
                    "repoUrl: {host} is configured as a {} forge, not {}; use the {} action",
                    found.kind.name(),
                    kind.name(),
                    match found.kind {
                        ForgeKind::GitHub => "publish:github",
                        ForgeKind::GitLab => "publish:gitlab",
                    }
                )));
            }
            return Ok(found.clone());
        }
        match (kind, host.as_str()) {
            (ForgeKind::GitHub, "github.com") => Ok(ForgeIntegration::github("github.com", None)),
            (ForgeKind::GitLab, "gitlab.com") => Ok(ForgeIntegration::gitlab("gitlab.com", None)),
            _ => Err(ScaffoldError::Input(format!(
                "repoUrl: no {} integration for the host {host}; configure one (PLINTH_{}_HOST, _API_URL, _TOKEN) or use {}",
                kind.name(),
                kind.name().to_ascii_uppercase(),
                if kind == ForgeKind::GitHub { "github.com" } else { "gitlab.com" }
            ))),
        }
    }

    /// Every configured token, for redaction of anything leaving a run.
    pub fn secret_values(&self) -> Vec<String> {
        self.integrations.iter().filter_map(|i| i.token.as_ref().map(|t| t.expose_secret().to_string())).collect()
    }

    /// One REST call: `(status, JSON answer)`; the answer is read up to
    /// [`MAX_ANSWER_BYTES`]. Transport failures name the action and field.
    pub(crate) async fn call(
        &self,
        call: &ForgeCall<'_>,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ScaffoldError> {
        let url = format!("{}{path}", call.integration.api_base);
        let checked = self.outbound.check_url(&url).map_err(|e| {
            ScaffoldError::Publish(format!("{}: {} API {url} is not reachable: {e}", call.action, call.forge()))
        })?;
        let mut request =
            self.client.request(method.clone(), checked).header(reqwest::header::USER_AGENT, "plinth-scaffolder");
        request = match call.integration.kind {
            ForgeKind::GitHub => request
                .header(reqwest::header::ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28"),
            ForgeKind::GitLab => request.header(reqwest::header::ACCEPT, "application/json"),
        };
        let (name, value) = match call.integration.kind {
            ForgeKind::GitHub => ("authorization", format!("Bearer {}", call.token.expose_secret())),
            ForgeKind::GitLab => ("private-token", call.token.expose_secret().to_string()),
        };
        let mut value = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
            ScaffoldError::Input(format!("{}: token: it holds characters a header cannot carry", call.action))
        })?;
        value.set_sensitive(true);
        request = request.header(name, value);
        if let Some(body) = body {
            request = request.json(body);
        }
        let mut response = request.send().await.map_err(|e| {
            ScaffoldError::Publish(format!(
                "{}: {method} {url}: {} did not answer: {}",
                call.action,
                call.forge(),
                describe_transport_error(&e)
            ))
        })?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            ScaffoldError::Publish(format!("{}: {method} {url}: reading the answer failed: {e}", call.action))
        })? {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ScaffoldError::Publish(format!(
                    "{}: {method} {url}: the answer is larger than {} KiB",
                    call.action,
                    MAX_ANSWER_BYTES / 1024
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let answer = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(&bytes);
            json!({"message": text.chars().take(300).collect::<String>()})
        });
        Ok((status, answer))
    }
}

fn describe_transport_error(error: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

/// The context of one action's forge calls.
pub(crate) struct ForgeCall<'a> {
    pub action: &'a str,
    pub integration: &'a ForgeIntegration,
    pub token: &'a SecretString,
}

impl ForgeCall<'_> {
    pub(crate) fn forge(&self) -> String {
        format!("{} ({})", self.integration.kind.name(), self.integration.host)
    }

    /// An error for a forge answer that is not the one expected: the
    /// action, the field, the call, the status and the forge's own words,
    /// with a hint for the usual causes.
    pub(crate) fn refused(&self, field: &str, what: &str, status: u16, answer: &Value) -> ScaffoldError {
        let said = forge_message(answer);
        let hint = match status {
            401 => "; the token is missing, expired or wrong: pass `token` (e.g. ${{ secrets.token }}) or configure the integration's token",
            403 => "; the token lacks the permission (GitHub: repo/administration scopes; GitLab: api scope and Maintainer role)",
            404 => "; it does not exist, or the token cannot see it",
            _ => "",
        };
        ScaffoldError::Publish(format!(
            "{}: {field}: {what} failed: {} answered {status}: {said}{hint}",
            self.action,
            self.forge()
        ))
    }
}

/// The words of a GitHub or GitLab error answer.
pub(crate) fn forge_message(answer: &Value) -> String {
    let mut parts = Vec::new();
    match &answer["message"] {
        Value::String(message) => parts.push(message.clone()),
        // GitLab: {"message": {"name": ["has already been taken"]}}
        Value::Object(fields) => {
            for (field, problems) in fields {
                let problems = match problems {
                    Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "),
                    other => other.as_str().unwrap_or_default().to_string(),
                };
                parts.push(format!("{field} {problems}"));
            }
        }
        Value::Array(items) => parts.extend(items.iter().filter_map(Value::as_str).map(str::to_string)),
        _ => {}
    }
    if let Some(error) = answer["error"].as_str() {
        parts.push(error.to_string());
    }
    // GitHub: {"errors": [{"message": "name already exists on this account"}]}
    if let Some(errors) = answer["errors"].as_array() {
        for error in errors {
            match error {
                Value::String(text) => parts.push(text.clone()),
                other => {
                    if let Some(message) = other["message"].as_str() {
                        parts.push(message.to_string());
                    } else if let (Some(field), Some(code)) = (other["field"].as_str(), other["code"].as_str()) {
                        parts.push(format!("{field} {code}"));
                    }
                }
            }
        }
    }
    let text = parts.join("; ");
    let text = if text.is_empty() { "no message".to_string() } else { text };
    text.chars().take(500).collect()
}

/// Backstage's `repoUrl`: `github.com?owner=o&repo=r`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RepoSpec {
    pub host: String,
    pub owner: String,
    pub repo: String,
}

impl RepoSpec {
    pub(crate) fn parse(raw: &str, kind: ForgeKind) -> Result<RepoSpec, ScaffoldError> {
        let bad = |why: &str| {
            ScaffoldError::Input(format!(
                "repoUrl `{}`: {why}; write it as `{}?owner=<owner>&repo=<name>`",
                raw.chars().take(200).collect::<String>(),
                if kind == ForgeKind::GitHub { "github.com" } else { "gitlab.com" }
            ))
        };
        let (host, query) = raw.trim().split_once('?').ok_or_else(|| bad("it has no `?owner=…&repo=…`"))?;
        let host = host.trim().to_ascii_lowercase();
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && !host.starts_with(['-', '.'])
            && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        if !host_ok {
            return Err(bad("the host is not a host name"));
        }
        let (mut owner, mut repo) = (None, None);
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "owner" | "organization" | "group" => owner = Some(value.into_owned()),
                "repo" | "project" => repo = Some(value.into_owned()),
                _ => {}
            }
        }
        let owner = owner.filter(|o| !o.is_empty()).ok_or_else(|| bad("`owner` is missing"))?;
        let repo = repo.filter(|r| !r.is_empty()).ok_or_else(|| bad("`repo` is missing"))?;
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && !s.starts_with(['.', '-'])
                && !s.ends_with(".git")
                && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        if !name_ok(&repo) {
            return Err(bad("`repo` must be letters, digits, dots, dashes and underscores (at most 100), not starting with a dot or dash"));
        }
        // GitLab groups nest (`platform/backend`); GitHub owners do not.
        let nested = kind == ForgeKind::GitLab;
        if !owner.split('/').all(name_ok) || (!nested && owner.contains('/')) {
            return Err(bad(
                "`owner` must be letters, digits, dots, dashes and underscores (GitLab groups may nest with `/`)",
            ));
        }
        Ok(RepoSpec { host, owner, repo })
    }

    pub(crate) fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }
}

/// A path segment, percent-encoded (GitLab's `group%2Fproject` ids).
pub(crate) fn encode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>().replace('+', "%20")
}

/// The HTTP header git sends with a push over https: Basic credentials
/// with the token (GitHub `x-access-token`, GitLab `oauth2`).
pub(crate) fn git_auth_header(kind: ForgeKind, token: &SecretString) -> SecretString {
    let user = match kind {
        ForgeKind::GitHub => "x-access-token",
        ForgeKind::GitLab => "oauth2",
    };
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", token.expose_secret()));
    SecretString::from(format!("Authorization: Basic {credentials}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_urls_follow_backstage() {
        let spec = RepoSpec::parse("github.com?owner=acme&repo=shop", ForgeKind::GitHub).unwrap();
        assert_eq!(spec, RepoSpec { host: "github.com".into(), owner: "acme".into(), repo: "shop".into() });
        let spec = RepoSpec::parse("gitlab.example.com?owner=platform/backend&repo=svc", ForgeKind::GitLab).unwrap();
        assert_eq!(spec.full_name(), "platform/backend/svc");
        for bad in [
            "github.com",
            "github.com?owner=acme",
            "github.com?owner=acme&repo=../x",
            "github.com?owner=a/b&repo=x",
            "github.com?owner=acme&repo=-x",
            "-h?owner=a&repo=b",
            "github.com/x?owner=a&repo=b",
        ] {
            assert!(RepoSpec::parse(bad, ForgeKind::GitHub).is_err(), "{bad}");
        }
        assert_eq!(encode("platform/backend/svc"), "platform%2Fbackend%2Fsvc");
    }

    #[test]
    fn forge_answers_are_read_in_both_shapes() {
        let github = json!({"message": "Repository creation failed.", "errors": [{"resource": "Repository", "code": "custom", "field": "name", "message": "name already exists on this account"}]});
        assert_eq!(forge_message(&github), "Repository creation failed.; name already exists on this account");
        let gitlab = json!({"message": {"name": ["has already been taken"]}});
        assert_eq!(forge_message(&gitlab), "name has already been taken");
        assert_eq!(forge_message(&json!({"error": "invalid_token"})), "invalid_token");
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let forge = ForgeIntegration::github("ghe.example.com", Some(SecretString::from("s3cr3t-token")));
        assert_eq!(forge.api_base, "https://ghe.example.com/api/v3");
        let text =
            format!("{forge:?} {:?}", Forges::new(vec![forge.clone()], Arc::new(OutboundPolicy::default_for(false))));
        assert!(!text.contains("s3cr3t-token"), "{text}");
        let header = git_auth_header(ForgeKind::GitHub, forge.token.as_ref().unwrap());
        assert!(header.expose_secret().starts_with("Authorization: Basic "));
        assert!(!format!("{header:?}").contains("Basic"));
    }
}
