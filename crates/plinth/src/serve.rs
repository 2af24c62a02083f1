//! `plinth serve`: opens the store, builds the catalogue, registers the
//! given locations and serves the API until interrupted.

use anyhow::{Context, Result};
use plinth_app::catalog::NewLocation;
use plinth_app::golden_paths::GoldenPathsConfig;
use plinth_app::policy::PolicyConfig;
use plinth_app::signals::SignalsConfig;
use plinth_app::{Caller, Platform, PlatformConfig};
use plinth_catalog::CatalogConfig;
use plinth_server::ServerConfig;
use plinth_store::{Store, StoreConfig};
use plinth_telemetry::prices::PriceTable;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PLINTH_LISTEN", default_value = "127.0.0.1:7007")]
    listen: String,
    /// Directory for the embedded SQLite store and git checkouts.
    #[arg(long, env = "PLINTH_DATA_DIR", default_value = "./plinth-data")]
    data_dir: PathBuf,
    /// Use PostgreSQL instead of SQLite (`postgres://user@host:5432/db`).
    #[arg(long, env = "PLINTH_DATABASE_URL")]
    database_url: Option<String>,
    /// Register a source at start: a file, a directory or a git repository
    /// URL (`URL` or `URL#path`; `@branch` suffix selects a branch).
    #[arg(long = "location", value_name = "PATH_OR_URL")]
    locations: Vec<String>,
    /// Load the demo catalogue (examples/demo).
    #[arg(long)]
    demo: bool,
    /// With --demo, also run the demo's traffic generator: its agents send
    /// OTLP (agent runs, tool calls, retrievals, an A/B-tested prompt, a
    /// cost anomaly, a failing agent) to this server over loopback.
    /// `--demo-traffic=false` turns it off.
    #[arg(
        long,
        env = "PLINTH_DEMO_TRAFFIC",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true
    )]
    demo_traffic: bool,
    /// Seconds between refreshes of every location.
    #[arg(long, env = "PLINTH_REFRESH_INTERVAL", default_value_t = 60)]
    refresh_interval: u64,
    /// Largest catalogue file read, in MiB (1-256): a bigger file is
    /// refused with an error naming it. The bound keeps a hostile or
    /// runaway file from exhausting memory; raise it for generated files
    /// that hold a very large organisation in one file.
    #[arg(long, env = "PLINTH_MAX_CATALOG_FILE_MIB", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    max_catalog_file_mib: u16,
    /// Shared secret for webhook signatures (GitHub HMAC / GitLab token).
    /// Prefer --webhook-secret-file: the environment of a process can be
    /// read by whoever can read its /proc entry.
    #[arg(long, env = "PLINTH_WEBHOOK_SECRET", hide_env_values = true, conflicts_with = "webhook_secret_file")]
    webhook_secret: Option<String>,
    /// A file holding the webhook secret (its first line; trailing newline
    /// ignored), e.g. a mounted Kubernetes secret.
    #[arg(long, env = "PLINTH_WEBHOOK_SECRET_FILE", value_name = "FILE")]
    webhook_secret_file: Option<PathBuf>,
    /// Allow outbound requests (alert webhooks) to this destination:
    /// `public` (any public address; the default), a host name, `*.suffix`,
    /// an address or a CIDR block. Repeatable; entries replace the default.
    /// Link-local (cloud metadata) and private addresses need an explicit
    /// CIDR; loopback is allowed only when every listener is on loopback.
    #[arg(long = "outbound-allow", value_name = "HOST_OR_CIDR", env = "PLINTH_OUTBOUND_ALLOW", value_delimiter = ',')]
    outbound_allow: Vec<String>,
    /// Most connections open at once; one more is answered 503.
    #[arg(long, env = "PLINTH_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Seconds a client has to send a complete request header (and, on a
    /// keep-alive connection, its next request).
    #[arg(long, env = "PLINTH_HEADER_READ_TIMEOUT", default_value_t = 10)]
    header_read_timeout: u64,
    /// Seconds a connection may stay open with no request in flight.
    #[arg(long, env = "PLINTH_IDLE_TIMEOUT", default_value_t = 60)]
    idle_timeout: u64,
    /// Policy sources: directories, .rego files or git repository URLs
    /// (`URL#subdir`); repeatable. Default: the shipped `policies/` library.
    #[arg(long = "policy", value_name = "DIR_OR_GIT_URL", env = "PLINTH_POLICY", value_delimiter = ',')]
    policies: Vec<String>,
    /// Time limit of one policy decision, in milliseconds (exceeding it denies).
    #[arg(long, env = "PLINTH_POLICY_TIMEOUT_MS", default_value_t = 200)]
    policy_timeout_ms: u64,
    /// Enforcement mode override, `ID=enforce|warn|dry-run` where ID is a
    /// policy id, `package.rule` or package; repeatable.
    #[arg(long = "policy-mode", value_name = "ID=MODE")]
    policy_modes: Vec<String>,
    /// JSON pointer erased from decision-log events (`/input/spec/token`,
    /// `*` matches any key or index); repeatable.
    #[arg(long = "decision-log-mask", value_name = "POINTER")]
    decision_log_masks: Vec<String>,
    /// Days decision-log events are kept.
    #[arg(long, env = "PLINTH_DECISION_LOG_RETENTION_DAYS", default_value_t = 180)]
    decision_log_retention_days: u64,
    /// Register the shipped golden-path templates (`templates/`) at start.
    #[arg(long, env = "PLINTH_SHIPPED_TEMPLATES", default_value_t = true, action = clap::ArgAction::Set)]
    shipped_templates: bool,
    /// Local git repositories created by golden paths live under this
    /// directory (default `<data-dir>/repos`); `publish:git` refuses local
    /// paths elsewhere.
    #[arg(long, env = "PLINTH_SCAFFOLDER_REPO_ROOT")]
    scaffolder_repo_root: Option<PathBuf>,
    /// Longest a golden-path run may take, in seconds.
    #[arg(long, env = "PLINTH_SCAFFOLDER_TIMEOUT", default_value_t = 600)]
    scaffolder_timeout: u64,
    /// Also accept OTLP/HTTP (and the whole API) on this address, e.g.
    /// `0.0.0.0:4318`, the standard OTLP/HTTP port.
    #[arg(long, env = "PLINTH_OTLP_LISTEN")]
    otlp_listen: Option<String>,
    /// A price table replacing the shipped `prices.yaml` (same format).
    #[arg(long, env = "PLINTH_PRICES")]
    prices: Option<PathBuf>,
    /// Largest OTLP request body in bytes, compressed or inflated (413 above).
    #[arg(long, env = "PLINTH_OTLP_MAX_BODY", default_value_t = 16 * 1024 * 1024)]
    otlp_max_body: usize,
    /// Memory the OTLP receiver may hold for requests in flight, in MiB
    /// (429 + Retry-After beyond it).
    #[arg(long, env = "PLINTH_OTLP_MAX_INFLIGHT_MIB", default_value_t = 256)]
    otlp_max_inflight_mib: usize,
    /// Days raw GenAI spans (trace views) are kept.
    #[arg(long, env = "PLINTH_SPAN_RETENTION_DAYS", default_value_t = 7)]
    span_retention_days: u64,
    /// Days signal rollups are kept.
    #[arg(long, env = "PLINTH_ROLLUP_RETENTION_DAYS", default_value_t = 400)]
    rollup_retention_days: u64,
    /// Seconds between evaluations of alert rules.
    #[arg(long, env = "PLINTH_ALERT_INTERVAL", default_value_t = 15)]
    alert_interval: u64,
    /// Milliseconds a replica's lease on a cluster-wide job (refresh,
    /// alerts, compaction, retention, sweeper) lasts unless renewed; a dead
    /// replica's jobs move to another within 4/3 of it. At least 300.
    #[arg(long, env = "PLINTH_LEASE_PERIOD_MS", default_value_t = 10_000)]
    lease_period_ms: u64,
    /// Log format.
    #[arg(long, env = "PLINTH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// `required`: every caller must present a token (or sign in); the
    /// access rules decide what each may do. `local` (the default) allows
    /// anonymous callers everything and only listens on loopback.
    #[arg(long, env = "PLINTH_AUTH", value_enum, default_value_t = AuthFlag::Local)]
    auth: AuthFlag,
    /// Members of this group (and of its child groups) are platform admins,
    /// e.g. `group:default/platform`; repeatable.
    #[arg(long = "admin-group", env = "PLINTH_ADMIN_GROUP", value_delimiter = ',')]
    admin_groups: Vec<String>,
    /// A directory of access rules (`package plinth.access`, see
    /// policies/access/) replacing the built-in ones.
    #[arg(long, env = "PLINTH_ACCESS_RULES", value_name = "DIR")]
    access_rules: Option<PathBuf>,
    /// Days audit rows are kept (older ones are deleted, leaving a chained
    /// marker); unset keeps them forever.
    #[arg(long, env = "PLINTH_AUDIT_RETENTION_DAYS")]
    audit_retention_days: Option<u64>,
    /// A directory callers (other than admins) may register file locations
    /// from; repeatable. Default: the directories of the --location files,
    /// the shipped examples and templates, and the data directory.
    #[arg(long = "allowed-location-root", env = "PLINTH_ALLOWED_LOCATION_ROOT", value_delimiter = ',')]
    allowed_location_roots: Vec<PathBuf>,
    /// A git URL pattern callers (other than admins) may register (`*`
    /// matches anything: `https://github.com/acme/*`); repeatable.
    /// Default: any https:// or ssh URL.
    #[arg(long = "allowed-git-url", env = "PLINTH_ALLOWED_GIT_URL", value_delimiter = ',')]
    allowed_git_urls: Vec<String>,
    /// An OpenID Connect issuer (Keycloak, Dex, Entra ID, Okta, Google):
    /// the portal signs in with it and the API accepts its JWTs.
    #[arg(long, env = "PLINTH_OIDC_ISSUER", requires_all = ["oidc_client_id", "public_url"])]
    oidc_issuer: Option<String>,
    /// The client id registered with the provider (also the audience JWTs
    /// must name).
    #[arg(long, env = "PLINTH_OIDC_CLIENT_ID")]
    oidc_client_id: Option<String>,
    /// The client secret, for a confidential client (PKCE is used either way).
    #[arg(long, env = "PLINTH_OIDC_CLIENT_SECRET", hide_env_values = true)]
    oidc_client_secret: Option<String>,
    /// Where users reach Plinth, e.g. `https://plinth.example.com`; the
    /// provider's redirect URI is `<public-url>/auth/oidc/callback`.
    #[arg(long, env = "PLINTH_PUBLIC_URL")]
    public_url: Option<String>,
    /// Fewest seconds between two key-set fetches caused by tokens signed
    /// with a key Plinth does not know (key rotation; forged key ids).
    #[arg(long, env = "PLINTH_OIDC_JWKS_COOLDOWN", default_value_t = 30)]
    oidc_jwks_cooldown: u64,
}

/// Where callers may register sources from: the flags, or the defaults.
fn source_policy(args: &ServeArgs) -> plinth_app::access::SourcePolicy {
    let roots = if args.allowed_location_roots.is_empty() {
        let mut roots: Vec<PathBuf> = args
            .locations
            .iter()
            .filter(|l| !l.contains("://") && !l.starts_with("git@"))
            .map(PathBuf::from)
            .filter_map(|p| if p.is_dir() { Some(p) } else { p.parent().map(|d| d.to_path_buf()) })
            .map(|p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p })
            .collect();
        roots.push(plinth_app::shipped::demo_dir());
        roots.push(plinth_app::shipped::templates_dir());
        roots.push(args.data_dir.clone());
        roots
    } else {
        args.allowed_location_roots.clone()
    };
    let git_patterns = if args.allowed_git_urls.is_empty() {
        vec!["https://*".into(), "ssh://*".into(), "git@*".into()]
    } else {
        args.allowed_git_urls.clone()
    };
    plinth_app::access::SourcePolicy { roots, git_patterns }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AuthFlag {
    Local,
    Required,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

pub(crate) fn run(args: ServeArgs) -> Result<ExitCode> {
    init_logging(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLINTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tantivy=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn policy_config(args: &ServeArgs) -> Result<PolicyConfig> {
    let sources = if args.policies.is_empty() {
        plinth_app::shipped::default_policy_sources(args.demo)
    } else {
        args.policies.clone()
    };
    let mut config = PolicyConfig::new(sources, args.data_dir.clone());
    config.time_limit = Duration::from_millis(args.policy_timeout_ms.max(1));
    config.masks = args.decision_log_masks.clone();
    config.retention = Duration::from_secs(args.decision_log_retention_days.max(1) * 24 * 3600);
    for mode in &args.policy_modes {
        let (id, value) = mode
            .split_once('=')
            .with_context(|| format!("--policy-mode `{mode}` must be ID=MODE, e.g. PL-BASE-003=warn"))?;
        let value = plinth_policy::Enforcement::parse(value).map_err(anyhow::Error::msg)?;
        config.enforcement.insert(id.trim().to_string(), value);
    }
    Ok(config)
}

/// The webhook secret from --webhook-secret-file or --webhook-secret.
fn webhook_secret(args: &ServeArgs) -> Result<Option<secrecy::SecretString>> {
    if let Some(path) = &args.webhook_secret_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the webhook secret file {}", path.display()))?;
        let secret = text.lines().next().unwrap_or("").trim_end_matches('\r').to_string();
        if secret.is_empty() {
            anyhow::bail!("the webhook secret file {} is empty; put the secret on its first line", path.display());
        }
        return Ok(Some(secret.into()));
    }
    Ok(args.webhook_secret.clone().filter(|s| !s.is_empty()).map(Into::into))
}

/// The connection cap and timeouts, with the cap lowered to what the
/// open-file limit allows (after raising that limit as far as it goes).
fn connection_limits(args: &ServeArgs) -> plinth_server::ConnectionLimits {
    let mut max_connections = args.max_connections.max(1);
    // Files besides connections: the store, git, policy and template files.
    const RESERVED_FILES: u64 = 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) if (max_connections as u64).saturating_add(RESERVED_FILES) > files => {
            let lowered = files.saturating_sub(RESERVED_FILES).max(16) as usize;
            tracing::warn!(
                requested = max_connections,
                open_file_limit = files,
                max_connections = lowered,
                "the open-file limit is too low for --max-connections; lowered it (raise `ulimit -n` to keep it)"
            );
            max_connections = lowered;
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot read the open-file limit"),
    }
    plinth_server::ConnectionLimits {
        max_connections,
        header_read_timeout: Duration::from_secs(args.header_read_timeout.max(1)),
        idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
    }
}

/// SQLite has one writer; PostgreSQL takes several commits at once.
fn store_config_writers(args: &ServeArgs) -> usize {
    if args.database_url.is_some() {
        2
    } else {
        1
    }
}

fn signals_config(args: &ServeArgs, writers: usize) -> Result<SignalsConfig> {
    let mut config = SignalsConfig {
        max_body_bytes: args.otlp_max_body.max(1024),
        max_inflight_bytes: args.otlp_max_inflight_mib.max(1) * 1024 * 1024,
        span_retention: Duration::from_secs(args.span_retention_days.max(1) * 86_400),
        rollup_retention: Duration::from_secs(args.rollup_retention_days.max(1) * 86_400),
        alert_interval: Duration::from_secs(args.alert_interval.max(1)),
        writers,
        ..SignalsConfig::default()
    };
    if let Some(path) = &args.prices {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the price table {}", path.display()))?;
        let table = PriceTable::parse(&path.to_string_lossy(), &text).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("the price table has problems:\n  {}", lines.join("\n  "))
        })?;
        config.prices = std::sync::Arc::new(table);
    }
    Ok(config)
}

/// `URL@branch` → (URL, branch) for git URLs; paths pass through.
fn split_branch(target: &str) -> (String, Option<String>) {
    let looks_remote = target.contains("://") || target.starts_with("git@");
    if looks_remote {
        if let Some((url, branch)) = target.rsplit_once('@') {
            if !branch.contains('/') && !branch.contains(':') && !url.ends_with("git") {
                return (url.to_string(), Some(branch.to_string()));
            }
            if url.ends_with(".git") && !branch.contains('/') && !branch.contains(':') {
                return (url.to_string(), Some(branch.to_string()));
            }
        }
    }
    (target.to_string(), None)
}

async fn serve(args: ServeArgs) -> Result<()> {
    // The embedded demo, templates and policies are written out under the
    // data directory (once per binary version), not the user's cache.
    plinth_app::shipped::use_root(args.data_dir.join("shipped"));
    let started = Instant::now();
    let store_config = match &args.database_url {
        Some(url) => StoreConfig::Postgres { url: url.clone() },
        None => StoreConfig::Sqlite { data_dir: args.data_dir.clone() },
    };
    let policy_config = policy_config(&args)?;
    let mut signals_config = signals_config(&args, store_config_writers(&args))?;
    let webhook_secret = webhook_secret(&args)?;
    let store = Store::open(&store_config).await.context("opening the store")?;
    tracing::info!(backend = ?store.backend(), "store ready");
    let mut catalog_config = CatalogConfig::new(&args.data_dir);
    catalog_config.refresh_interval = Duration::from_secs(args.refresh_interval.max(1));
    catalog_config.limits.max_file_bytes = usize::from(args.max_catalog_file_mib) * 1024 * 1024;
    let listener = tokio::net::TcpListener::bind(&args.listen).await.with_context(|| {
        format!("cannot listen on {}; is another server using it? pass --listen HOST:PORT", args.listen)
    })?;
    let address = listener.local_addr()?;
    let mut listeners = vec![listener];
    if let Some(otlp) = &args.otlp_listen {
        let extra = tokio::net::TcpListener::bind(otlp).await.with_context(|| {
            format!("cannot listen on {otlp} for OTLP; is a Collector already using it? pass --otlp-listen HOST:PORT")
        })?;
        tracing::info!("OTLP/HTTP also on http://{}", extra.local_addr()?);
        listeners.push(extra);
    }
    // Local mode: nobody beyond this machine can reach the server.
    let local_mode = listeners.iter().all(|l| l.local_addr().is_ok_and(|a| a.ip().is_loopback()));
    if !local_mode && args.auth != AuthFlag::Required {
        let remote: Vec<String> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .filter(|a| !a.ip().is_loopback())
            .map(|a| a.to_string())
            .collect();
        anyhow::bail!(
            "refusing to serve {} without authentication: anyone who can reach it could change anything. \
             Add `--auth required` and create the first admin token with \
             `plinth token create --name admin --user user:default/YOU --admin` (see docs/SECURITY.md), \
             or listen on 127.0.0.1",
            remote.join(", ")
        );
    }
    let outbound = plinth_confine::OutboundPolicy::new(&args.outbound_allow, local_mode)
        .map_err(|error| anyhow::anyhow!("--outbound-allow: {error}"))?;
    let signals_outbound = std::sync::Arc::new(outbound);
    signals_config.outbound = signals_outbound.clone();

    let mut targets: Vec<(String, Option<String>)> = args.locations.iter().map(|t| split_branch(t)).collect();
    if args.demo {
        targets.push((plinth_app::shipped::demo_dir().join("catalog-info.yaml").to_string_lossy().to_string(), None));
    }
    let templates = plinth_app::shipped::templates_dir().join("catalog-info.yaml");
    if args.shipped_templates && templates.exists() {
        targets.push((templates.to_string_lossy().to_string(), None));
    }
    let mut golden_paths = GoldenPathsConfig::new(args.data_dir.clone());
    if let Some(root) = &args.scaffolder_repo_root {
        golden_paths.repo_root = root.clone();
    }
    golden_paths.run_timeout = Duration::from_secs(args.scaffolder_timeout.max(1));
    // Forge calls (publish:github, publish:gitlab …) pass the server's own allowlist.
    golden_paths.forges = std::sync::Arc::new(plinth_app::golden_paths::Forges::from_env(signals_outbound.clone()));
    let config = PlatformConfig {
        catalog: catalog_config,
        policy: Some(policy_config),
        golden_paths: Some(golden_paths),
        signals: Some(signals_config),
        auth: plinth_app::AuthConfig {
            mode: match args.auth {
                AuthFlag::Local => plinth_app::AuthMode::Local,
                AuthFlag::Required => plinth_app::AuthMode::Required,
            },
            access_rules: args.access_rules.clone(),
            admin_groups: args.admin_groups.clone(),
            audit_retention: args.audit_retention_days.map(|d| Duration::from_secs(d.max(1) * 24 * 3600)),
            sources: source_policy(&args),
            oidc: args.oidc_issuer.as_ref().map(|issuer| plinth_app::oidc::OidcConfig {
                issuer: issuer.clone(),
                client_id: args.oidc_client_id.clone().unwrap_or_default(),
                client_secret: args.oidc_client_secret.clone().filter(|s| !s.is_empty()),
                public_url: args.public_url.clone().unwrap_or_default(),
                jwks_cooldown: Duration::from_secs(args.oidc_jwks_cooldown.max(1)),
                outbound: signals_outbound.clone(),
            }),
        },
        lease: plinth_app::lease::LeaseConfig { period: Duration::from_millis(args.lease_period_ms) },
    };
    let platform = Platform::start(store, config).await.context("loading the catalogue")?;
    tracing::info!(
        entities = platform.catalog().view(&Caller::system("serve")).map(|s| s.len()).unwrap_or_default(),
        ms = started.elapsed().as_millis() as u64,
        "catalogue loaded from the store"
    );
    if let Ok(set) = platform.policy().policies(&Caller::system("serve")) {
        tracing::info!(
            revision = set.revision,
            policies = set.policies.len(),
            problems = set.problems.len(),
            "policies loaded"
        );
    }
    let registering = platform.clone();
    tokio::spawn(async move {
        let caller = Caller::system("serve");
        for (target, branch) in targets {
            let location = NewLocation { kind: String::new(), target: target.clone(), branch };
            match registering.catalog().ensure_location(&caller, location).await {
                Ok(registered) => tracing::info!(
                    location = %registered.location.target, entities = registered.location.status.entities,
                    errors = registered.report.errors, ms = started.elapsed().as_millis() as u64, "location ready"
                ),
                Err(error) => tracing::error!(location = %target, error = %error.message, "cannot register location"),
            }
        }
    });
    tracing::info!("plinth listening on http://{address}");
    let traffic = (args.demo && args.demo_traffic).then(|| crate::demo_traffic::start(platform.clone(), address));
    let server_config = ServerConfig { webhook_secret, connections: connection_limits(&args) };
    // The generator stops first, so its last export is not cut off mid-way.
    let (stopping, mut stop) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown_signal().await;
        let _ = stopping.send(true);
    };
    let traffic = tokio::spawn(async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
        if let Some(traffic) = traffic {
            traffic.stop().await;
        }
    });
    let served = plinth_server::serve_on(listeners, platform.clone(), server_config, shutdown).await;
    let _ = traffic.await;
    served?;
    platform.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::split_branch;

    #[test]
    fn branches_split_off_git_urls_only() {
        assert_eq!(split_branch("https://h/o/r.git@main"), ("https://h/o/r.git".into(), Some("main".into())));
        assert_eq!(split_branch("git@github.com:o/r.git"), ("git@github.com:o/r.git".into(), None));
        assert_eq!(split_branch("./dir/catalog-info.yaml"), ("./dir/catalog-info.yaml".into(), None));
    }
}
