//! `plinth template ls` and `plinth new`: golden paths from the terminal,
//! against a running server, with live progress from the run's event stream.

use crate::client::{call, Failure, ServerArgs, ServerRefusal};
use crate::output::{did_you_mean, outln, Format};
use anyhow::{bail, Context, Result};
use plinth_app::ErrorKind;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct NewArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The template: `service`, `default/service` or `template:default/service`.
    template: String,
    /// A parameter, `key=value`; the value is read as JSON when it parses
    /// (numbers, true/false, ["lists"]), else as text; `a.b=1` nests. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Parameters from a JSON or YAML file (`--set` wins over it).
    #[arg(long, value_name = "FILE")]
    values: Option<PathBuf>,
    /// A secret, `key=value`: usable as ${{ secrets.key }}, never stored or logged. Repeatable.
    #[arg(long = "secret", value_name = "KEY=VALUE")]
    secrets: Vec<String>,
    /// Show the files and the policy decision without publishing anything.
    #[arg(long)]
    dry_run: bool,
    /// Who is asking (recorded with the run), e.g. `user:default/alice`.
    #[arg(long, env = "PLINTH_USER")]
    user: Option<String>,
}

pub(crate) fn ls(server: ServerArgs) -> Result<ExitCode> {
    let listed = call(&server, reqwest::Method::GET, "/api/scaffolder/v2/templates", &[], None)?;
    if server.output.structured(&listed) {
        return Ok(ExitCode::SUCCESS);
    }
    let items = listed["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        outln!("no templates in the catalogue; register some with `plinth catalog locations add templates/`");
        return Ok(ExitCode::SUCCESS);
    }
    let width = items.iter().filter_map(|t| t["name"].as_str()).map(str::len).max().unwrap_or(4).max(4);
    outln!("{:width$}  {:10}  TITLE", "NAME", "TYPE");
    for item in &items {
        outln!(
            "{:width$}  {:10}  {}",
            item["name"].as_str().unwrap_or_default(),
            item["type"].as_str().unwrap_or("-"),
            item["title"].as_str().unwrap_or_default()
        );
        for problem in item["problems"].as_array().into_iter().flatten() {
            outln!(
                "{:width$}  invalid: {}: {}",
                "",
                problem["field"].as_str().unwrap_or(""),
                problem["message"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `a.b=1` → {"a": {"b": 1}} merged into `values`.
fn set_value(values: &mut Map<String, Value>, assignment: &str) -> Result<()> {
    let (key, raw) = assignment
        .split_once('=')
        .with_context(|| format!("--set `{assignment}` must be KEY=VALUE, e.g. --set name=payments-api"))?;
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    let mut parts: Vec<&str> = key.trim().split('.').collect();
    let last =
        parts.pop().filter(|k| !k.is_empty()).with_context(|| format!("--set `{assignment}` has an empty key"))?;
    let mut target = values;
    for part in parts {
        let entry = target.entry(part.to_string()).or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        target = entry.as_object_mut().expect("just made an object");
    }
    target.insert(last.to_string(), value);
    Ok(())
}

fn read_values(args: &NewArgs) -> Result<Value> {
    let mut values = match &args.values {
        Some(path) => crate::policy_cli::read_document(path)?
            .as_object()
            .cloned()
            .with_context(|| format!("{} must hold an object of parameter values", path.display()))?,
        None => Map::new(),
    };
    for assignment in &args.set {
        set_value(&mut values, assignment)?;
    }
    Ok(Value::Object(values))
}

fn template_ref(raw: &str) -> String {
    if raw.contains(':') {
        raw.to_string()
    } else if raw.contains('/') {
        format!("template:{raw}")
    } else {
        format!("template:default/{raw}")
    }
}

pub(crate) fn new(args: NewArgs) -> Result<ExitCode> {
    let values = read_values(&args)?;
    let mut secrets = Map::new();
    for assignment in &args.secrets {
        let (key, value) = assignment.split_once('=').with_context(|| {
            format!("--secret must be KEY=VALUE (got `{}`)", assignment.split('=').next().unwrap_or(""))
        })?;
        secrets.insert(key.to_string(), json!(value));
    }
    let template = template_ref(&args.template);
    let body = json!({"templateRef": template, "values": values, "secrets": secrets});
    if args.dry_run {
        return dry_run(&args, body);
    }
    let created = match post(&args, "/api/scaffolder/v2/tasks", &body)? {
        Ok(created) => created,
        Err((status, error)) => return Err(rejection(&args, &template, status, &error)),
    };
    let id = created["id"].as_str().context("the server answered without a task id")?.to_string();
    eprintln!("run {id} of {template} started");
    let task = follow(&args.server, &id)?;
    if !args.server.output.structured(&task) {
        print_outcome(&task);
    }
    Ok(if task["status"] == "completed" { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// POST that returns the server's status and error body (for field
/// errors) instead of failing.
fn post(args: &NewArgs, path: &str, body: &Value) -> Result<std::result::Result<Value, (reqwest::StatusCode, Value)>> {
    let url = format!("{}{}", args.server.server.trim_end_matches('/'), path);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut request = args.server.authorize(reqwest::Client::new().post(&url).json(body));
        if let Some(user) = &args.user {
            request = request.header("x-plinth-user", user);
        }
        let response = request.send().await.map_err(|e| args.server.unreachable(e))?;
        let status = response.status();
        let value: Value = serde_json::from_str(&response.text().await?).unwrap_or(Value::Null);
        Ok(if status.is_success() { Ok(value) } else { Err((status, value)) })
    })
}

/// The server refused the run: one error (printed once by `main`) with
/// one line per field, and the exit code of the refusal's kind; an unknown
/// template gets the closest template names.
fn rejection(args: &NewArgs, template: &str, status: reqwest::StatusCode, error: &Value) -> anyhow::Error {
    let refusal = ServerRefusal {
        status,
        message: error["error"]["message"].as_str().unwrap_or("the server refused the run").to_string(),
    };
    let kind = refusal.kind();
    let fields: Vec<String> = error["error"]["details"]["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|field| {
            let page = field["page"].as_str().map(|p| format!(" (page “{p}”)")).unwrap_or_default();
            format!("  {}: {}{page}", field["field"].as_str().unwrap_or("-"), field["message"].as_str().unwrap_or(""))
        })
        .collect();
    let message = if fields.is_empty() {
        let hint =
            if kind == ErrorKind::NotFound { did_you_mean(&suggest_templates(args, template)) } else { String::new() };
        format!("{}{hint}", refusal.message)
    } else {
        // The message repeats the field errors; the lines below say each once.
        format!("the template's parameters are not valid:\n{}", fields.join("\n"))
    };
    Failure::new(kind, message).into()
}

/// Template names close to `template` (`template:default/servce`).
fn suggest_templates(args: &NewArgs, template: &str) -> Vec<String> {
    let name = template.rsplit(['/', ':']).next().unwrap_or(template);
    let query = [("facet", "metadata.name".to_string()), ("filter", "kind=template".to_string())];
    let Ok(answer) = call(&args.server, reqwest::Method::GET, "/api/catalog/entity-facets", &query, None) else {
        return Vec::new();
    };
    let names = answer["facets"]["metadata.name"].as_array().into_iter().flatten().filter_map(|f| f["value"].as_str());
    crate::output::closest(name, names.map(str::to_string))
}

/// Prints the run's progress from its event stream until it completes;
/// returns the finished task.
fn follow(server: &ServerArgs, id: &str) -> Result<Value> {
    let base = server.server.trim_end_matches('/').to_string();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut response = server
            .authorize(client.get(format!("{base}/api/scaffolder/v2/tasks/{id}/eventstream")))
            .send()
            .await
            .context("cannot follow the run's event stream")?;
        if !response.status().is_success() {
            bail!("the event stream answered {}", response.status());
        }
        let mut buffer = String::new();
        while let Some(chunk) = response.chunk().await? {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) {
                    if let Ok(event) = serde_json::from_str::<Value>(data.trim()) {
                        if server.format() == Format::Text {
                            print_event(&event);
                        }
                    }
                }
            }
        }
        let task = server
            .authorize(client.get(format!("{base}/api/scaffolder/v2/tasks/{id}")))
            .send()
            .await?
            .json::<Value>()
            .await?;
        Ok(task)
    })
}

fn print_event(event: &Value) {
    let body = &event["body"];
    let message = body["message"].as_str().unwrap_or_default();
    let mut err = std::io::stderr();
    match (event["type"].as_str(), body["status"].as_str()) {
        (Some("completion"), _) => {}
        (_, Some("processing")) => {
            let _ = writeln!(err, "▶ {}", message.trim_start_matches("Beginning step "));
        }
        (_, Some("completed")) => {
            let _ = writeln!(err, "✓ {}", message.trim_start_matches("Finished step "));
        }
        (_, Some("skipped")) => {
            let _ = writeln!(err, "– skipped: {}", body["stepId"].as_str().unwrap_or(message));
        }
        (_, Some("failed")) => {
            let _ = writeln!(err, "✗ {message}");
        }
        _ => {
            for line in message.lines() {
                let _ = writeln!(err, "    {line}");
            }
        }
    }
}

fn print_outcome(task: &Value) {
    if task["status"] != "completed" {
        outln!("failed: {}", task["error"]["message"].as_str().unwrap_or("unknown error"));
        return;
    }
    outln!("done");
    for link in task["output"]["links"].as_array().into_iter().flatten() {
        let target = link["url"].as_str().or(link["entityRef"].as_str()).unwrap_or_default();
        outln!("  {}: {target}", link["title"].as_str().unwrap_or("link"));
    }
    for text in task["output"]["text"].as_array().into_iter().flatten() {
        outln!("\n{}\n{}", text["title"].as_str().unwrap_or_default(), text["content"].as_str().unwrap_or_default());
    }
}

fn dry_run(args: &NewArgs, body: Value) -> Result<ExitCode> {
    let result = match post(args, "/api/scaffolder/v2/dry-run", &body)? {
        Ok(result) => result,
        Err((status, error)) => {
            return Err(rejection(args, body["templateRef"].as_str().unwrap_or_default(), status, &error))
        }
    };
    if args.server.output.structured(&result) {
        return Ok(if result["completed"] == true { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    for entry in result["log"].as_array().into_iter().flatten() {
        print_event(&json!({"type": "log", "body": entry["body"]}));
    }
    for error in result["parameterErrors"].as_array().into_iter().flatten() {
        outln!("parameter {}: {}", error["field"].as_str().unwrap_or("-"), error["message"].as_str().unwrap_or(""));
    }
    let files = result["directoryContents"].as_array().cloned().unwrap_or_default();
    outln!("files ({}):", files.len());
    for file in &files {
        outln!("  {}", file["path"].as_str().unwrap_or_default());
    }
    outln!("policy: {}", result["policy"]["result"].as_str().unwrap_or("none"));
    for violation in result["policy"]["violations"].as_array().into_iter().flatten() {
        outln!(
            "  {} [{}] {}: {}",
            violation["effect"].as_str().unwrap_or(""),
            violation["id"].as_str().unwrap_or("-"),
            violation["subject"].as_str().unwrap_or(""),
            violation["message"].as_str().unwrap_or("")
        );
    }
    match result["completed"].as_bool() {
        Some(true) => {
            outln!("dry run completed; nothing was published");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            outln!("dry run failed: {}", result["error"].as_str().unwrap_or("unknown error"));
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_reads_json_values_and_nests_dotted_keys() {
        let mut values = Map::new();
        for a in ["name=shop", "gpuCount=4", "tags=[\"a\",\"b\"]", "resources.cpu=2", "flag=true", "text=with=equals"] {
            set_value(&mut values, a).unwrap();
        }
        assert_eq!(
            Value::Object(values),
            json!({"name": "shop", "gpuCount": 4, "tags": ["a", "b"], "resources": {"cpu": 2}, "flag": true, "text": "with=equals"})
        );
        assert!(set_value(&mut Map::new(), "novalue").is_err());
        assert_eq!(template_ref("service"), "template:default/service");
        assert_eq!(template_ref("ops/service"), "template:ops/service");
    }
}
