//! Client verbs: talk to a running `plinth serve` over its HTTP API.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(clap::Args, Clone)]
pub(crate) struct ServerArgs {
    /// The Plinth server.
    #[arg(long, env = "PLINTH_URL", default_value = "http://127.0.0.1:7007", global = true)]
    pub(crate) server: String,
    /// Print raw JSON.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// An API token (`plinth token create`); sent as `Authorization: Bearer`.
    #[arg(long, env = "PLINTH_TOKEN", hide_env_values = true, global = true)]
    pub(crate) token: Option<String>,
}

impl ServerArgs {
    /// Adds the token, when there is one, to a request.
    pub(crate) fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
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
    pub(crate) fn exit_code(&self) -> u8 {
        use plinth_app::ErrorKind;
        let kind = match self.status.as_u16() {
            400 | 413 | 415 | 422 => ErrorKind::InvalidInput,
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            429 => ErrorKind::Overloaded,
            503 => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        kind.exit_code()
    }
}

#[derive(clap::Args)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Backstage filter, e.g. `kind=component,spec.type=service` (repeat for OR).
    #[arg(long)]
    filter: Vec<String>,
    /// Shorthand for `--filter kind=KIND`.
    #[arg(long)]
    kind: Option<String>,
    /// Shorthand for `--filter spec.owner=OWNER`.
    #[arg(long)]
    owner: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(clap::Args)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    server: ServerArgs,
    entity_ref: String,
}

#[derive(clap::Args)]
pub(crate) struct ImpactArgs {
    #[command(flatten)]
    server: ServerArgs,
    entity_ref: String,
    /// `dependents` (what breaks if it breaks) or `dependencies`.
    #[arg(long, default_value = "dependents")]
    direction: String,
    #[arg(long)]
    max_depth: Option<u32>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(clap::Args)]
pub(crate) struct SearchArgs {
    #[command(flatten)]
    server: ServerArgs,
    query: Vec<String>,
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

#[derive(clap::Args)]
pub(crate) struct RefreshArgs {
    #[command(flatten)]
    server: ServerArgs,
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
}

#[derive(clap::Args)]
pub(crate) struct RemoveLocationArgs {
    #[command(flatten)]
    server: ServerArgs,
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
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach the Plinth server at {}; start it with `plinth serve` or pass --server",
                server.server
            )
        })?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if !status.is_success() {
            let message = value["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
            return Err(ServerRefusal { status, message }.into());
        }
        Ok(value)
    })
}

/// `kind:ns/name`, `kind:name` or a bare component name → URL path parts.
fn ref_path(raw: &str) -> Result<String> {
    let entity_ref = plinth_model::parse_ref_lenient(raw, Some("component")).map_err(anyhow::Error::msg)?;
    Ok(format!("{}/{}/{}", entity_ref.kind, entity_ref.namespace, entity_ref.name))
}

fn print_json(value: &Value) -> Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

fn entity_line(entity: &Value) -> String {
    let kind = entity["kind"].as_str().unwrap_or("?").to_lowercase();
    let ns = entity["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = entity["metadata"]["name"].as_str().unwrap_or("?");
    let owner = entity["spec"]["owner"].as_str().unwrap_or("-");
    let kind_type = entity["spec"]["type"].as_str().unwrap_or("-");
    format!("{:<50} {:<14} {:<30}", format!("{kind}:{ns}/{name}"), kind_type, owner)
}

pub(crate) fn ls(args: LsArgs) -> Result<ExitCode> {
    let mut group: Vec<String> = Vec::new();
    if let Some(kind) = &args.kind {
        group.push(format!("kind={kind}"));
    }
    if let Some(owner) = &args.owner {
        group.push(format!("spec.owner={owner}"));
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
    let page = call(&args.server, reqwest::Method::GET, "/api/catalog/entities/by-query", &query, None)?;
    if args.server.json {
        return print_json(&page);
    }
    println!("{:<50} {:<14} {:<30}", "ENTITY", "TYPE", "OWNER");
    for entity in page["items"].as_array().into_iter().flatten() {
        println!("{}", entity_line(entity));
    }
    println!("({} of {})", page["items"].as_array().map_or(0, Vec::len), page["totalItems"]);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn get(args: GetArgs) -> Result<ExitCode> {
    let entity = call(
        &args.server,
        reqwest::Method::GET,
        &format!("/api/catalog/entities/by-name/{}", ref_path(&args.entity_ref)?),
        &[],
        None,
    )?;
    print_json(&entity)
}

pub(crate) fn impact(args: ImpactArgs) -> Result<ExitCode> {
    let mut query = vec![("direction", args.direction.clone()), ("limit", args.limit.to_string())];
    if let Some(depth) = args.max_depth {
        query.push(("maxDepth", depth.to_string()));
    }
    let impact = call(
        &args.server,
        reqwest::Method::GET,
        &format!("/api/catalog/impact/{}", ref_path(&args.entity_ref)?),
        &query,
        None,
    )?;
    if args.server.json {
        return print_json(&impact);
    }
    println!(
        "{} {}: {} entities",
        impact["entityRef"].as_str().unwrap_or(""),
        impact["direction"].as_str().unwrap_or(""),
        impact["count"]
    );
    for item in impact["items"].as_array().into_iter().flatten() {
        let path: Vec<&str> = item["path"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        println!("  {:>2}  {:<50} via {}", item["depth"], item["entityRef"].as_str().unwrap_or(""), path.join(" <- "));
    }
    for cycle in impact["cycles"].as_array().into_iter().flatten() {
        let cycle: Vec<&str> = cycle.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        println!("  cycle: {}", cycle.join(" -> "));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn search(args: SearchArgs) -> Result<ExitCode> {
    let query = vec![("q", args.query.join(" ")), ("limit", args.limit.to_string())];
    let result = call(&args.server, reqwest::Method::GET, "/api/catalog/search", &query, None)?;
    if args.server.json {
        return print_json(&result);
    }
    for item in result["items"].as_array().into_iter().flatten() {
        let summary = &item["summary"];
        println!(
            "{:>7.2}  {:<50} {}",
            item["score"].as_f64().unwrap_or(0.0),
            item["entityRef"].as_str().unwrap_or(""),
            summary["description"].as_str().unwrap_or("")
        );
    }
    println!("({} matches)", result["totalItems"]);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn refresh(args: RefreshArgs) -> Result<ExitCode> {
    let report = call(
        &args.server,
        reqwest::Method::POST,
        "/api/catalog/refresh",
        &[],
        Some(json!({"entityRef": args.entity_ref})),
    )?;
    print_json(&report)
}

pub(crate) fn errors(args: ServerArgs) -> Result<ExitCode> {
    let errors = call(&args, reqwest::Method::GET, "/api/catalog/errors", &[], None)?;
    if args.json {
        return print_json(&errors);
    }
    let items = errors["items"].as_array().cloned().unwrap_or_default();
    for e in &items {
        let line = e["line"].as_u64().map(|l| format!(":{l}")).unwrap_or_default();
        let entity = e["entityRef"].as_str().map(|r| format!(" {r}")).unwrap_or_default();
        let field = e["field"].as_str().map(|f| format!(" {f}:")).unwrap_or_default();
        println!(
            "{}{line}: {}:{entity}{field} {}",
            e["location"].as_str().unwrap_or(""),
            e["severity"].as_str().unwrap_or("error"),
            e["message"].as_str().unwrap_or("")
        );
    }
    println!("({} problem(s))", items.len());
    Ok(if items.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub(crate) fn add_location(args: AddLocationArgs) -> Result<ExitCode> {
    let target = match std::path::Path::new(&args.target) {
        p if p.exists() => std::path::absolute(p)?.to_string_lossy().to_string(),
        _ => args.target.clone(),
    };
    let body = json!({"target": target, "branch": args.branch});
    let result = match call(&args.server, reqwest::Method::POST, "/api/catalog/locations", &[], Some(body)) {
        Ok(result) => result,
        // Registering twice is a conflict for the API; for the CLI the
        // wish is already granted.
        Err(error) if error.to_string().starts_with("409") => {
            let message = error.to_string();
            println!("already registered: {}", message.split_once(": ").map_or(message.as_str(), |(_, m)| m));
            return Ok(ExitCode::SUCCESS);
        }
        Err(error) => return Err(error),
    };
    if args.server.json {
        return print_json(&result);
    }
    let location = &result["location"];
    let report = &result["refresh"];
    println!(
        "{} {} ({}): {} entities written, {} errors",
        if result["exists"].as_bool() == Some(true) { "already registered" } else { "registered" },
        location["target"].as_str().unwrap_or(""),
        location["id"].as_str().unwrap_or(""),
        report["written"],
        report["errors"]
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn list_locations(args: ServerArgs) -> Result<ExitCode> {
    let locations = call(&args, reqwest::Method::GET, "/api/catalog/locations", &[], None)?;
    if args.json {
        return print_json(&locations);
    }
    for l in locations.as_array().into_iter().flatten() {
        let data = &l["data"];
        println!(
            "{}  {:<4} {:<60} entities={} errors={} refreshed={}",
            data["id"].as_str().unwrap_or(""),
            data["type"].as_str().unwrap_or(""),
            data["target"].as_str().unwrap_or(""),
            data["status"]["entities"],
            data["status"]["errors"],
            data["status"]["refreshedAt"].as_str().unwrap_or("never")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn remove_location(args: RemoveLocationArgs) -> Result<ExitCode> {
    call(&args.server, reqwest::Method::DELETE, &format!("/api/catalog/locations/{}", args.id), &[], None)?;
    println!("removed {}", args.id);
    Ok(ExitCode::SUCCESS)
}
