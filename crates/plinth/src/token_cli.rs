//! `plinth token` and `plinth audit`: offline against the store (which is
//! how the first admin is bootstrapped), and `plinth audit verify`, which
//! walks the audit chain.

use crate::client::Failure;
use crate::output::{outln, OutputArgs};
use anyhow::{Context, Result};
use plinth_app::identity::{issue_token, parse_lifetime, token_audit_entry, TokenRequest, TokenSubject};
use plinth_app::ErrorKind;
use plinth_store::{Store, StoreConfig};
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the store is (the same flags as `plinth serve`).
#[derive(clap::Args, Clone)]
pub(crate) struct StoreArgs {
    /// Directory of the embedded SQLite store.
    #[arg(long, env = "PLINTH_DATA_DIR", default_value = "./plinth-data")]
    data_dir: PathBuf,
    /// PostgreSQL instead of SQLite (`postgres://user@host:5432/db`).
    #[arg(long, env = "PLINTH_DATABASE_URL")]
    database_url: Option<String>,
}

impl StoreArgs {
    async fn open(&self) -> Result<Store> {
        let config = match &self.database_url {
            Some(url) => StoreConfig::Postgres { url: url.clone() },
            None => {
                if !self.data_dir.join("plinth.db").exists() {
                    return Err(Failure::new(
                        ErrorKind::NotFound,
                        format!(
                            "no Plinth store in {}: pass the --data-dir (or --database-url) `plinth serve` uses",
                            self.data_dir.display()
                        ),
                    )
                    .into());
                }
                StoreConfig::Sqlite { data_dir: self.data_dir.clone() }
            }
        };
        Store::open(&config).await.context("opening the store")
    }
}

#[derive(clap::Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// What the token is for ("CI deploys", "otel-collector").
    #[arg(long)]
    name: String,
    /// A token for this user (`user:NAMESPACE/NAME`).
    #[arg(long, conflicts_with = "service", required_unless_present = "service")]
    user: Option<String>,
    /// A token for a service (a name such as `otel-exporter`).
    #[arg(long)]
    service: Option<String>,
    /// A scope: read, write, admin, signals:ingest, policy:check,
    /// catalog:refresh; repeatable (default `read` + `write`).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// A platform admin token (adds the `admin` scope; users only).
    #[arg(long)]
    admin: bool,
    /// Lifetime: `90d` (default), `12h`, `30m`; at most 366d.
    #[arg(long, default_value = "90d")]
    expires_in: String,
    /// text: the secret alone on stdout; json/yaml: the token and its secret.
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(clap::Args)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(clap::Args)]
pub(crate) struct RevokeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The token id (`tok_…`, as `plinth token ls` shows).
    id: String,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Who runs the CLI, for the audit log.
fn cli_actor() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

pub(crate) fn create(args: CreateArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = args.store.open().await?;
        let mut scopes = if args.scopes.is_empty() { vec!["read".into(), "write".into()] } else { args.scopes.clone() };
        if args.admin {
            scopes.push("admin".into());
        }
        let subject = match (&args.user, &args.service) {
            (Some(user), _) => TokenSubject::User(user.clone()),
            (None, Some(service)) => TokenSubject::Service(service.clone()),
            (None, None) => anyhow::bail!("give --user user:NAMESPACE/NAME or --service NAME"),
        };
        let lifetime = parse_lifetime(&args.expires_in).map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?;
        let request = TokenRequest { name: args.name.clone(), subject, scopes, lifetime: Some(lifetime) };
        let actor = cli_actor();
        let issued = match issue_token(&store, request, &actor).await {
            Ok(issued) => issued,
            Err(error) => {
                let mut message = error.message.clone();
                for field in &error.fields {
                    message.push_str(&format!("\n  --{}: {}", cli_flag(&field.field), field.message));
                }
                return Err(Failure::new(error.kind, message).into());
            }
        };
        store.append_audit(&[token_audit_entry(&actor, "auth.token.create", &issued.token)]).await?;
        let t = &issued.token;
        eprintln!(
            "token {} for {} {} with scopes {}, expires {}",
            t.id,
            t.subject_kind.as_str(),
            t.subject,
            t.scopes.join(","),
            t.expires_at.map(rfc3339).unwrap_or_else(|| "never".into())
        );
        let answer = serde_json::json!({
            "token": &issued.token, "secret": &issued.secret,
        });
        if !args.output.structured(&answer) {
            eprintln!("the secret below is shown once; send it as `Authorization: Bearer <secret>` or PLINTH_TOKEN");
            outln!("{}", issued.secret);
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn cli_flag(field: &str) -> &str {
    match field {
        "expiresIn" => "expires-in",
        "scopes" => "scope",
        other => other,
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

pub(crate) fn ls(args: LsArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = args.store.open().await?;
        let tokens = store.list_tokens(None).await?;
        let infos: Vec<plinth_app::identity::TokenInfo> =
            tokens.iter().map(plinth_app::identity::TokenInfo::from).collect();
        if args.output.structured(&serde_json::to_value(&infos)?) {
            return Ok(ExitCode::SUCCESS);
        }
        outln!("{:<32} {:<20} {:<34} {:<28} {:<10}", "ID", "NAME", "SUBJECT", "SCOPES", "STATE");
        let now = time::OffsetDateTime::now_utc();
        for t in &infos {
            let state = match (t.revoked_at, t.expires_at) {
                (Some(_), _) => "revoked",
                (None, Some(at)) if at <= now => "expired",
                _ => "active",
            };
            let subject = format!("{}:{}", t.subject_kind.as_str(), t.subject);
            outln!("{:<32} {:<20} {:<34} {:<28} {:<10}", t.id, t.name, subject, t.scopes.join(","), state);
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn revoke(args: RevokeArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = args.store.open().await?;
        let Some(token) = store.get_token(&args.id).await? else {
            let ids: Vec<String> = store.list_tokens(None).await?.into_iter().map(|t| t.id).collect();
            let hint = crate::output::did_you_mean(&crate::output::closest(&args.id, ids));
            return Err(Failure::new(
                ErrorKind::NotFound,
                format!("no token `{}`{hint} (`plinth token ls` lists the ids)", args.id),
            )
            .into());
        };
        let actor = cli_actor();
        if !store.revoke_token(&args.id, time::OffsetDateTime::now_utc(), &actor).await? {
            return Err(Failure::new(ErrorKind::Conflict, format!("token `{}` is already revoked", args.id)).into());
        }
        let info = plinth_app::identity::TokenInfo::from(&token);
        store.append_audit(&[token_audit_entry(&actor, "auth.token.revoke", &info)]).await?;
        eprintln!("token {} revoked; servers refuse it from their next poll (within a second)", args.id);
        args.output.structured(&serde_json::json!({"revoked": args.id}));
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn verify(args: VerifyArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = args.store.open().await?;
        let verification = store.verify_audit().await?;
        let problem = verification.problem.as_ref().map(|p| serde_json::json!({"seq": p.seq, "reason": p.reason}));
        let report = serde_json::json!({
            "valid": verification.is_valid(), "checked": verification.checked,
            "firstSeq": verification.first_seq, "lastSeq": verification.last_seq,
            "headHash": verification.head_hash, "problem": problem,
        });
        let structured = args.output.structured(&report);
        match &verification.problem {
            None => {
                if !structured {
                    outln!(
                        "audit log intact: {} rows (seq {}–{}), head hash {}",
                        verification.checked,
                        verification.first_seq.unwrap_or(0),
                        verification.last_seq.unwrap_or(0),
                        verification.head_hash.as_deref().unwrap_or("-")
                    );
                    outln!(
                        "keep the head hash elsewhere: a later verify that shows it proves nothing before it changed"
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Some(problem) => {
                if !structured {
                    eprintln!("audit log TAMPERED at seq {}: {}", problem.seq, problem.reason);
                }
                Ok(ExitCode::from(1))
            }
        }
    })
}
