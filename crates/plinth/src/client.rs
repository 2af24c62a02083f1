//! Client verbs: talk to a running `plinth serve` over its HTTP API.
//!
//! Refs may be shortened everywhere (`checkout`, `team-payments`,
//! `group:default/team-payments` all work), and a name the catalogue does
//! not know ends with "did you mean" suggestions and the not-found exit
//! code instead of an empty answer.

use crate::output::{did_you_mean, outln, Format, OutputArgs};
use anyhow::{Context, Result};
use plinth_app::ErrorKind;
use plinth_model::EntityRef;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(clap::Args, Clone)]
pub(crate) struct ServerArgs {
    /// The Plinth server.
    #[arg(long, env = "PLINTH_URL", default_value = "http://127.0.0.1:7007")]
    pub(crate) server: String,
    /// An API token (`plinth token create`); sent as `Authorization: Bearer`.
    #[arg(long, env = "PLINTH_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

impl ServerArgs {
    /// Adds the token, when there is one, to a request.
    pub(crate) fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub(crate) fn format(&self) -> Format {
        self.output.format()
    }

    /// The server cannot be reached: the unavailable exit code.
    pub(crate) fn unreachable(&self, error: reqwest::Error) -> anyhow::Error {
        Failure::new(
            ErrorKind::Unavailable,
            format!(
                "cannot reach the Plinth server at {} ({error}); start it with `plinth serve` or pass --server",
                self.server
            ),
        )
        .into()
    }
}

/// The server refused a request: its status and message. The CLI exits
/// with the code of the matching application error kind (401 → 5,
/// 403 → 6, …), so scripts can tell them apart.
#[derive(Debug)]
pub(crate) struct ServerRefusal {
    pub(crate) status: reqwest::StatusCode,
    pub(crate) message: String,
}

impl std::fmt::Display for ServerRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)?;
        if self.status == reqwest::StatusCode::UNAUTHORIZED {
            write!(f, " (pass --token or set PLINTH_TOKEN)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerRefusal {}

impl ServerRefusal {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self.status.as_u16() {
            400 | 413 | 415 | 422 => ErrorKind::InvalidInput,
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            429 => ErrorKind::Overloaded,
            503 => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }

    pub(crate) fn exit_code(&self) -> u8 {
        self.kind().exit_code()
    }
}

/// A verb failed for a reason with an exit code of its own (an unknown
/// name, an unreachable server, a path with nothing in it …).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Failure {
        Failure { code: kind.exit_code(), message: message.into() }
    }

    /// Exit 1: the verb ran and found something wrong.
    pub(crate) fn findings(message: impl Into<String>) -> Failure {
        Failure { code: 1, message: message.into() }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Most entities one `catalog ls` lists.
const MAX_LIST: u32 = 10_000;

#[derive(clap::Args)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Backstage filter, e.g. `kind=component,spec.type=service` (repeat for OR).
    #[arg(long)]
    filter: Vec<String>,
    /// Only entities of this kind (`component`, `API`, …).
    #[arg(long)]
    kind: Option<String>,
    /// Only entities owned by this group or user: `team-payments`,
    /// `group:default/team-payments` or `user:alice`.
    #[arg(long)]
    owner: Option<String>,
    /// Most entities listed.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=MAX_LIST as i64))]
    limit: u32,
}

#[derive(clap::Args)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// `kind:namespace/name`, `kind:name` or a component name.
    entity_ref: String,
}

#[derive(clap::Args)]
pub(crate) struct ImpactArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// `kind:namespace/name`, `kind:name` or a component name.
    entity_ref: String,
    /// `dependents` (what breaks if it breaks) or `dependencies`.
    #[arg(long, default_value = "dependents", value_parser = ["dependents", "dependencies"])]
    direction: String,
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    max_depth: Option<u32>,
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=MAX_LIST as i64))]
    limit: u32,
}

#[derive(clap::Args)]
pub(crate) struct SearchArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[arg(required = true)]
    query: Vec<String>,
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    limit: u32,
}

#[derive(clap::Args)]
pub(crate) struct RefreshArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// `kind:namespace/name`, `kind:name` or a component name.
    entity_ref: String,
}

#[derive(clap::Args)]
pub(crate) struct AddLocationArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// A file, a directory, or a git repository URL.
    target: String,
    /// Git branch to read.
    #[arg(long)]
    branch: Option<String>,
    /// Register a file or directory that does not exist (yet).
    #[arg(long)]
    allow_missing: bool,
}

#[derive(clap::Args)]
pub(crate) struct RemoveLocationArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The location's id, as `plinth catalog locations ls` shows.
    id: String,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// One request; a non-2xx answer becomes an error carrying the server's message.
pub(crate) fn call(
    server: &ServerArgs,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<Value>,
) -> Result<Value> {
    let url = format!("{}{}", server.server.trim_end_matches('/'), path);
    runtime()?.block_on(async {
        let client = reqwest::Client::new();
        let mut request = server.authorize(client.request(method, &url).query(query));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| server.unreachable(e))?;
        let status = response.status();
        let text = response.text().await.context("reading the server's answer")?;
        let value: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if !status.is_success() {
            let message = value["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
            return Err(ServerRefusal { status, message }.into());
        }
        Ok(value)
    })
}

fn get_json(server: &ServerArgs, path: &str, query: &[(&str, String)]) -> Result<Value> {
    call(server, reqwest::Method::GET, path, query, None)
}

/// `kind:ns/name`, `kind:name` or a bare name (of `default_kind`).
fn parse_ref(raw: &str, default_kind: &str) -> Result<EntityRef> {
    plinth_model::parse_ref_lenient(raw.trim(), Some(default_kind))
        .map_err(|e| Failure::new(ErrorKind::InvalidInput, format!("`{raw}` is not an entity ref: {e}")).into())
}

/// `kind/namespace/name`, each part percent-encoded, for URL paths.
fn url_path(entity: &EntityRef) -> String {
    format!("{}/{}/{}", segment(&entity.kind), segment(&entity.namespace), segment(&entity.name))
}

/// One URL path segment: every byte but the unreserved ones percent-encoded,
/// so no user input adds a segment, a query or a `..`.
pub(crate) fn segment(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => out.push(byte as char),
            b'.' if part != "." && part != ".." => out.push('.'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The values of one facet, over the entities matching `filter`.
fn facet(server: &ServerArgs, name: &str, filter: Option<String>) -> Result<Vec<String>> {
    let mut query = vec![("facet", name.to_string())];
    if let Some(filter) = filter {
        query.push(("filter", filter));
    }
    let answer = get_json(server, "/api/catalog/entity-facets", &query)?;
    Ok(answer["facets"][name]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["value"].as_str().map(str::to_string))
        .collect())
}

/// Fetches `path` about `entity`; a 404 becomes the not-found exit with
/// the names the catalogue has that are closest to it.
fn about_entity(server: &ServerArgs, entity: &EntityRef, fetch: impl FnOnce() -> Result<Value>) -> Result<Value> {
    match fetch() {
        Err(error) if error.downcast_ref::<ServerRefusal>().is_some_and(|r| r.kind() == ErrorKind::NotFound) => {
            let suggestions = suggest_entities(server, entity).unwrap_or_default();
            Err(Failure::new(ErrorKind::NotFound, format!("{error}{}", did_you_mean(&suggestions))).into())
        }
        other => other,
    }
}

/// Refs close to `entity`: the same name in other kinds or namespaces
/// first, then names of its kind and namespace within a typo or two.
fn suggest_entities(server: &ServerArgs, entity: &EntityRef) -> Result<Vec<String>> {
    let same_name = get_json(
        server,
        "/api/catalog/entities/by-query",
        &[
            ("filter", format!("metadata.name={}", entity.name)),
            ("limit", "3".into()),
            ("fields", "kind,metadata.namespace,metadata.name".into()),
        ],
    )?;
    let mut found: Vec<String> = same_name["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let kind = e["kind"].as_str()?.to_lowercase();
            let ns = e["metadata"]["namespace"].as_str().unwrap_or("default");
            Some(format!("{kind}:{ns}/{}", e["metadata"]["name"].as_str()?))
        })
        .collect();
    if found.len() < 3 {
        let filter = format!("kind={},metadata.namespace={}", entity.kind, entity.namespace);
        let names = facet(server, "metadata.name", Some(filter))?;
        for name in crate::output::closest(&entity.name, names) {
            found.push(format!("{}:{}/{name}", entity.kind.to_lowercase(), entity.namespace));
        }
    }
    found.dedup();
    found.truncate(3);
    Ok(found)
}

/// A kind as the catalogue spells it; an unknown one is not found, with
/// the closest kinds suggested.
fn resolve_kind(server: &ServerArgs, raw: &str) -> Result<String> {
    let raw = raw.trim();
    if let Some(known) = plinth_model::kinds::kind_names().into_iter().find(|k| k.eq_ignore_ascii_case(raw)) {
        return Ok(known.to_string());
    }
    // Kinds beyond the built-in ones, as the catalogue has them.
    let mut kinds = facet(server, "kind", None)?;
    if let Some(found) = kinds.iter().find(|k| k.eq_ignore_ascii_case(raw)) {
        return Ok(found.clone());
    }
    kinds.extend(plinth_model::kinds::kind_names().into_iter().map(str::to_string));
    kinds.sort_by_key(|k| k.to_lowercase());
    kinds.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    let suggestions = crate::output::closest(raw, kinds.iter().cloned());
    let hint = if suggestions.is_empty() {
        format!("; the kinds are {}", kinds.join(", "))
    } else {
        did_you_mean(&suggestions)
    };
    Err(Failure::new(ErrorKind::NotFound, format!("unknown kind `{raw}`{hint}")).into())
}

/// An owner as a full ref (`group:default/team-payments`), from a bare name
/// or a full or partial ref. One that owns nothing and is not in the
/// catalogue is not found, with the closest owners suggested.
fn resolve_owner(server: &ServerArgs, raw: &str) -> Result<String> {
    let owner = parse_ref(raw, "group")?;
    let key = owner.key();
    let owners = facet(server, "relations.ownedBy", None)?;
    if let Some(found) = owners.iter().find(|o| o.eq_ignore_ascii_case(&key)) {
        return Ok(found.to_lowercase());
    }
    // A bare name may be a user's.
    if !raw.contains(':') {
        let user = format!("user:{}/{}", owner.namespace, owner.name).to_lowercase();
        if owners.iter().any(|o| o.eq_ignore_ascii_case(&user)) {
            return Ok(user);
        }
    }
    // A group or user that owns nothing yet.
    match get_json(server, &format!("/api/catalog/entities/by-name/{}", url_path(&owner)), &[]) {
        Ok(_) => return Ok(key),
        Err(error) if error.downcast_ref::<ServerRefusal>().is_some_and(|r| r.kind() == ErrorKind::NotFound) => {}
        Err(error) => return Err(error),
    }
    let by_name: BTreeMap<String, String> =
        owners.iter().map(|o| (o.rsplit(['/', ':']).next().unwrap_or(o).to_string(), o.to_lowercase())).collect();
    let suggestions: Vec<String> = if raw.contains(':') || raw.contains('/') {
        crate::output::closest(&key, owners.iter().map(|o| o.to_lowercase()))
    } else {
        crate::output::closest(&owner.name, by_name.keys().cloned())
            .into_iter()
            .filter_map(|name| by_name.get(&name).cloned())
            .collect()
    };
    Err(Failure::new(ErrorKind::NotFound, format!("no owner `{key}` in the catalogue{}", did_you_mean(&suggestions)))
        .into())
}

fn text<'a>(value: &'a Value, fallback: &'a str) -> &'a str {
    value.as_str().filter(|s| !s.is_empty()).unwrap_or(fallback)
}

fn entity_ref_of(entity: &Value) -> String {
    let kind = text(&entity["kind"], "?").to_lowercase();
    let ns = text(&entity["metadata"]["namespace"], "default");
    format!("{kind}:{ns}/{}", text(&entity["metadata"]["name"], "?"))
}

/// Rows as a table with a header, each column as wide as its widest cell.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    outln!("{}", line(header.to_vec()));
    for row in rows {
        outln!("{}", line(row.iter().map(String::as_str).collect()));
    }
}

pub(crate) fn ls(args: LsArgs) -> Result<ExitCode> {
    let mut group: Vec<String> = Vec::new();
    if let Some(kind) = &args.kind {
        group.push(format!("kind={}", resolve_kind(&args.server, kind)?));
    }
    if let Some(owner) = &args.owner {
        group.push(format!("relations.ownedBy={}", resolve_owner(&args.server, owner)?));
    }
    let mut filters = args.filter.clone();
    if !group.is_empty() {
        if filters.is_empty() {
            filters.push(group.join(","));
        } else {
            filters = filters.into_iter().map(|f| format!("{f},{}", group.join(","))).collect();
        }
    }
    let mut query: Vec<(&str, String)> = filters.into_iter().map(|f| ("filter", f)).collect();
    query.push(("limit", args.limit.to_string()));
    let page = get_json(&args.server, "/api/catalog/entities/by-query", &query)?;
    if args.server.output.structured(&page) {
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entity| {
            vec![
                entity_ref_of(entity),
                text(&entity["spec"]["type"], "-").to_string(),
                text(&entity["spec"]["owner"], "-").to_string(),
                text(&entity["metadata"]["title"], "").to_string(),
            ]
        })
        .collect();
    print_table(&["ENTITY", "TYPE", "OWNER", "TITLE"], &rows);
    outln!("({} of {})", rows.len(), page["totalItems"]);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn get(args: GetArgs) -> Result<ExitCode> {
    let entity = parse_ref(&args.entity_ref, "component")?;
    let path = format!("/api/catalog/entities/by-name/{}", url_path(&entity));
    let body = about_entity(&args.server, &entity, || get_json(&args.server, &path, &[]))?;
    if !args.server.output.structured(&body) {
        print_card(&body);
    }
    Ok(ExitCode::SUCCESS)
}

/// The summary card of `catalog get`: what the entity is, who owns it,
/// how it is connected, where to go next.
fn print_card(entity: &Value) {
    let metadata = &entity["metadata"];
    let spec = &entity["spec"];
    let reference = entity_ref_of(entity);
    match metadata["title"].as_str().filter(|t| !t.is_empty()) {
        Some(title) => outln!("{reference}  {title}"),
        None => outln!("{reference}"),
    }
    if let Some(description) = metadata["description"].as_str().filter(|d| !d.trim().is_empty()) {
        for line in description.trim().lines() {
            outln!("  {}", line.trim_end());
        }
    }
    let mut fields: Vec<(&str, String)> = vec![("kind", text(&entity["kind"], "?").to_string())];
    for (label, value) in [
        ("type", &spec["type"]),
        ("owner", &spec["owner"]),
        ("lifecycle", &spec["lifecycle"]),
        ("system", &spec["system"]),
        ("domain", &spec["domain"]),
    ] {
        if let Some(value) = value.as_str().filter(|v| !v.is_empty()) {
            fields.push((label, value.to_string()));
        }
    }
    let tags: Vec<&str> = metadata["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if !tags.is_empty() {
        fields.push(("tags", tags.join(", ")));
    }
    let mut relations: BTreeMap<&str, usize> = BTreeMap::new();
    for relation in entity["relations"].as_array().into_iter().flatten() {
        // Who owns it and what it is part of are shown above.
        if let Some(kind) = relation["type"].as_str().filter(|k| !matches!(*k, "ownedBy" | "partOf")) {
            *relations.entry(relation_label(kind)).or_default() += 1;
        }
    }
    if !relations.is_empty() {
        let counts: Vec<String> = relations.iter().map(|(label, n)| format!("{label} {n}")).collect();
        fields.push(("relations", counts.join(", ")));
    }
    let annotations = &metadata["annotations"];
    for (label, key) in [
        ("source", "backstage.io/source-location"),
        ("docs", "backstage.io/techdocs-ref"),
        ("on-call", "pagerduty.com/service-id"),
        ("on-call", "opsgenie.com/team"),
    ] {
        if let Some(value) = annotations[key].as_str().filter(|v| !v.is_empty()) {
            fields.push((label, value.trim_start_matches("url:").to_string()));
        }
    }
    for link in metadata["links"].as_array().into_iter().flatten() {
        if let Some(url) = link["url"].as_str() {
            let title = link["title"].as_str().filter(|t| !t.is_empty());
            fields.push(("link", title.map_or_else(|| url.to_string(), |t| format!("{t} <{url}>"))));
        }
    }
    let width = fields.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    for (label, value) in fields {
        outln!("  {label:<width$}  {value}");
    }
}

/// A relation type in words ("dependencyOf" → "used by").
fn relation_label(kind: &str) -> &str {
    match kind {
        "dependsOn" => "depends on",
        "dependencyOf" => "used by",
        "providesApi" => "provides API",
        "apiProvidedBy" => "API provided by",
        "consumesApi" => "consumes API",
        "apiConsumedBy" => "API consumed by",
        "ownerOf" => "owns",
        "hasPart" => "has part",
        "parentOf" => "parent of",
        "childOf" => "child of",
        "memberOf" => "member of",
        "hasMember" => "has member",
        "usesModel" => "uses model",
        "modelUsedBy" => "model used by",
        "usesPrompt" => "uses prompt",
        "promptUsedBy" => "prompt used by",
        "usesTool" => "uses tool",
        "toolUsedBy" => "tool used by",
        "trainedOn" => "trained on",
        "trainingDataFor" => "training data for",
        other => other,
    }
}

pub(crate) fn impact(args: ImpactArgs) -> Result<ExitCode> {
    let entity = parse_ref(&args.entity_ref, "component")?;
    let mut query = vec![("direction", args.direction.clone()), ("limit", args.limit.to_string())];
    if let Some(depth) = args.max_depth {
        query.push(("maxDepth", depth.to_string()));
    }
    let path = format!("/api/catalog/impact/{}", url_path(&entity));
    let impact = about_entity(&args.server, &entity, || get_json(&args.server, &path, &query))?;
    if args.server.output.structured(&impact) {
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{} {}: {} entities", text(&impact["entityRef"], ""), text(&impact["direction"], ""), impact["count"]);
    for item in impact["items"].as_array().into_iter().flatten() {
        let path: Vec<&str> = item["path"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        outln!("  {:>2}  {:<50} via {}", item["depth"], text(&item["entityRef"], ""), path.join(" <- "));
    }
    for cycle in impact["cycles"].as_array().into_iter().flatten() {
        let cycle: Vec<&str> = cycle.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        outln!("  cycle: {}", cycle.join(" -> "));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn search(args: SearchArgs) -> Result<ExitCode> {
    let query = vec![("q", args.query.join(" ")), ("limit", args.limit.to_string())];
    let result = get_json(&args.server, "/api/catalog/search", &query)?;
    if args.server.output.structured(&result) {
        return Ok(ExitCode::SUCCESS);
    }
    for item in result["items"].as_array().into_iter().flatten() {
        outln!(
            "{:>7.2}  {:<50} {}",
            item["score"].as_f64().unwrap_or(0.0),
            text(&item["entityRef"], ""),
            text(&item["summary"]["description"], "")
        );
    }
    outln!("({} matches)", result["totalItems"]);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn refresh(args: RefreshArgs) -> Result<ExitCode> {
    let entity = parse_ref(&args.entity_ref, "component")?;
    let body = json!({"entityRef": entity.to_string()});
    let report = about_entity(&args.server, &entity, || {
        call(&args.server, reqwest::Method::POST, "/api/catalog/refresh", &[], Some(body))
    })?;
    if !args.server.output.structured(&report) {
        outln!(
            "refreshed {entity}: {} files read, {} entities found, {} written, {} deleted, {} unchanged, {} errors, {} warnings ({} ms)",
            report["filesRead"],
            report["entitiesFound"],
            report["written"],
            report["deleted"],
            report["unchanged"],
            report["errors"],
            report["warnings"],
            report["durationMs"]
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn errors(args: ServerArgs) -> Result<ExitCode> {
    let errors = get_json(&args, "/api/catalog/errors", &[])?;
    let items = errors["items"].as_array().cloned().unwrap_or_default();
    let code = if items.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) };
    if args.output.structured(&errors) {
        return Ok(code);
    }
    for e in &items {
        let line = e["line"].as_u64().map(|l| format!(":{l}")).unwrap_or_default();
        let entity = e["entityRef"].as_str().map(|r| format!(" {r}")).unwrap_or_default();
        let field = e["field"].as_str().map(|f| format!(" {f}:")).unwrap_or_default();
        outln!(
            "{}{line}: {}:{entity}{field} {}",
            text(&e["location"], ""),
            text(&e["severity"], "error"),
            text(&e["message"], "")
        );
    }
    outln!("({} problem(s))", items.len());
    Ok(code)
}

/// A target that names a repository rather than a local path.
fn is_remote(target: &str) -> bool {
    target.contains("://") || (target.starts_with("git@") && target.contains(':'))
}

pub(crate) fn add_location(args: AddLocationArgs) -> Result<ExitCode> {
    let target = if is_remote(&args.target) {
        args.target.clone()
    } else {
        let path = std::path::Path::new(&args.target);
        if !path.exists() && !args.allow_missing {
            return Err(Failure::findings(format!(
                "{} does not exist; pass --allow-missing to register it anyway (it is read at each refresh)",
                args.target
            ))
            .into());
        }
        std::path::absolute(path)
            .with_context(|| format!("cannot make {} absolute", args.target))?
            .to_string_lossy()
            .to_string()
    };
    let body = json!({"target": target, "branch": args.branch});
    let result = match call(&args.server, reqwest::Method::POST, "/api/catalog/locations", &[], Some(body)) {
        Ok(result) => result,
        // Registering twice is a conflict for the API; for the CLI the
        // wish is already granted.
        Err(error) if error.downcast_ref::<ServerRefusal>().is_some_and(|r| r.kind() == ErrorKind::Conflict) => {
            let message = error.downcast_ref::<ServerRefusal>().map(|r| r.message.clone()).unwrap_or_default();
            let answer = json!({"exists": true, "target": target, "message": message});
            if !args.server.output.structured(&answer) {
                outln!("already registered: {message}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        Err(error) => return Err(error),
    };
    if args.server.output.structured(&result) {
        return Ok(ExitCode::SUCCESS);
    }
    let location = &result["location"];
    let report = &result["refresh"];
    outln!(
        "{} {} ({}): {} entities written, {} errors",
        if result["exists"].as_bool() == Some(true) { "already registered" } else { "registered" },
        text(&location["target"], ""),
        text(&location["id"], ""),
        report["written"],
        report["errors"]
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn list_locations(args: ServerArgs) -> Result<ExitCode> {
    let locations = get_json(&args, "/api/catalog/locations", &[])?;
    if args.output.structured(&locations) {
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = locations
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let data = &l["data"];
            vec![
                text(&data["id"], "").to_string(),
                text(&data["type"], "").to_string(),
                data["status"]["entities"].as_u64().map_or_else(|| "-".into(), |n| n.to_string()),
                data["status"]["errors"].as_u64().map_or_else(|| "-".into(), |n| n.to_string()),
                text(&data["status"]["refreshedAt"], "never").to_string(),
                text(&data["target"], "").to_string(),
            ]
        })
        .collect();
    print_table(&["ID", "TYPE", "ENTITIES", "ERRORS", "REFRESHED", "TARGET"], &rows);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn remove_location(args: RemoveLocationArgs) -> Result<ExitCode> {
    let path = format!("/api/catalog/locations/{}", segment(&args.id));
    match call(&args.server, reqwest::Method::DELETE, &path, &[], None) {
        Ok(_) => {}
        Err(error) if error.downcast_ref::<ServerRefusal>().is_some_and(|r| r.kind() == ErrorKind::NotFound) => {
            return Err(Failure::new(
                ErrorKind::NotFound,
                format!("{error}; `plinth catalog locations ls` lists the ids"),
            )
            .into());
        }
        Err(error) => return Err(error),
    }
    if !args.server.output.structured(&json!({"removed": args.id})) {
        outln!("removed {}", args.id);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_targets_are_told_from_paths() {
        assert!(is_remote("https://github.com/acme/shop"));
        assert!(is_remote("git@github.com:acme/shop.git"));
        assert!(!is_remote("./catalog-info.yaml"));
        assert!(!is_remote("/tmp/nope.yaml"));
        assert_eq!(segment("a/../b?c"), "a%2F..%2Fb%3Fc");
        assert_eq!(segment(".."), "%2E%2E");
    }
}
