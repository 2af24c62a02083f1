//! The `plinth` binary: `plinth serve` runs the platform; the other verbs
//! are the CLI (offline `catalog validate`, and client verbs against a
//! running server). Parsing and wiring only; the work lives in the crates.

mod check;
mod cli_meta;
mod client;
mod demo_traffic;
mod output;
mod policy_cli;
mod serve;
mod template_cli;
mod token_cli;
mod validate;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: the projection and JSON rendering make
/// many small allocations, and glibc's consolidation showed up as the top
/// cost in profiles of list endpoints. The `dhat-heap` feature puts dhat's
/// heap profiler in its place (see docs/PERFORMANCE.md).
#[cfg(not(feature = "dhat-heap"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

/// The exit codes, in `plinth --help` and the man page. They are the
/// application error kinds' (`plinth_app::ErrorKind::exit_code`).
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the verb ran and found a problem: validation errors, policy denials,
     failed policy tests, a failed run, ingestion errors, a tampered audit
     log, a path with nothing to check, a location that does not exist,
     or an unknown entity, kind, owner, template, location or token (with
     \"did you mean\" suggestions)
  2  usage error or invalid input (a bad flag or value, a missing file)
  4  conflict
  5  not signed in (pass --token or set PLINTH_TOKEN)
  6  forbidden
  7  the server is overloaded; retry later
  8  the server is unavailable or cannot be reached
  9  internal error

Output: every verb takes --output text|json|yaml (text: a table or summary).
Refs may be shortened: `checkout` is component:default/checkout, and
--owner takes `team-payments` or `group:default/team-payments`.";

#[derive(Parser)]
#[command(
    name = "plinth",
    version,
    about = "Plinth: an AI-ready internal developer platform in one binary",
    after_help = EXIT_CODES
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: API, ingestion and background refresh.
    Serve(Box<serve::ServeArgs>),
    /// Work with the software catalogue.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Policy-as-code: run policy unit tests, evaluate queries.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Golden-path templates on a server.
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// Create something from a golden path: `plinth new service --set name=shop …`
    /// (progress live; `--dry-run` shows files and the policy decision).
    New(template_cli::NewArgs),
    /// Check files against the policies of the `pr` point (exit 1 when anything is denied).
    Check(check::CheckArgs),
    /// API tokens, offline against the store (bootstraps the first admin).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The audit log: `plinth audit verify` checks its hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Benchmarks against the bars of DESIGN.md (results as markdown).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Print a shell completion script: `plinth completions bash > /etc/bash_completion.d/plinth`.
    Completions(cli_meta::CompletionsArgs),
    /// Print the man page (roff), or write one page per verb into a directory.
    Man(cli_meta::ManArgs),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Run `test_` rules in `*_test.rego` files, as `opa test` does.
    Test(policy_cli::TestArgs),
    /// Evaluate a query against policies, an input and data, as `opa eval` does.
    Eval(policy_cli::EvalArgs),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token; the secret alone is printed on stdout's last line.
    Create(token_cli::CreateArgs),
    /// List tokens (never their secrets).
    Ls(token_cli::LsArgs),
    /// Revoke a token: servers refuse it from their next poll.
    Revoke(token_cli::RevokeArgs),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain; exit 1 naming the first row edited or deleted.
    Verify(token_cli::VerifyArgs),
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// List the templates in the catalogue (invalid ones with their problems).
    Ls(client::ServerArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Ingest, re-ingest, change visibility, API latency and memory at scale.
    Catalog(plinth_bench::BenchCatalogArgs),
    /// Server time and bytes per portal page type at scale.
    Portal(plinth_bench::BenchCatalogArgs),
    /// Policy decisions in-process and the admission webhook under concurrency.
    Policy(plinth_bench::BenchPolicyArgs),
    /// Golden paths: request → policy → commit → registered, and dry runs.
    Scaffold(plinth_bench::BenchScaffoldArgs),
    /// OTLP ingest throughput per core, freshness, 30-day summaries, overload.
    Signals(plinth_bench::BenchSignalsArgs),
    /// Identity and access: token lookup, permission decisions, and what
    /// `--auth required` adds to a request over loopback.
    Auth(plinth_bench::BenchAuthArgs),
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Check catalogue files offline (exit 1 on errors).
    Validate(validate::ValidateArgs),
    /// List entities.
    Ls(client::LsArgs),
    /// Show one entity (`kind:namespace/name`, `kind:name` or a component name).
    Get(client::GetArgs),
    /// What depends on an entity (or what it depends on), transitively.
    Impact(client::ImpactArgs),
    /// Ranked full-text search.
    Search(client::SearchArgs),
    /// Refresh the source of an entity now.
    Refresh(client::RefreshArgs),
    /// Ingestion errors, with file, line and how to fix them.
    Errors(client::ServerArgs),
    /// Manage registered locations.
    Locations {
        #[command(subcommand)]
        command: LocationsCommand,
    },
}

#[derive(Subcommand)]
enum LocationsCommand {
    /// Register a file, directory or git repository.
    Add(client::AddLocationArgs),
    /// List registered locations.
    Ls(client::ServerArgs),
    /// Unregister a location and remove its entities.
    Rm(client::RemoveLocationArgs),
}

/// With `--features dhat-heap`, every allocation is recorded and the
/// process writes `dhat-heap.json` (live bytes per call stack at the peak
/// and at exit) to its working directory when it exits, `serve` included
/// on SIGTERM. Slow; for finding what holds memory, not for production.
#[cfg(feature = "dhat-heap")]
#[global_allocator]
static DHAT: dhat::Alloc = dhat::Alloc;

fn main() -> ExitCode {
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::new_heap();
    let cli = Cli::parse();
    let result = run(cli);
    match result {
        Ok(code) => code,
        Err(error) => {
            // One line per error, printed once, here.
            let code = exit_code(&error);
            crate::output::error_line(&error);
            ExitCode::from(code)
        }
    }
}

/// The exit code of a failed verb (see [`EXIT_CODES`]).
fn exit_code(error: &anyhow::Error) -> u8 {
    if let Some(refusal) = error.downcast_ref::<client::ServerRefusal>() {
        return refusal.exit_code();
    }
    if let Some(failure) = error.downcast_ref::<client::Failure>() {
        return failure.code;
    }
    plinth_app::ErrorKind::InvalidInput.exit_code()
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Check(args) => check::run(args),
        Command::Token { command: TokenCommand::Create(args) } => token_cli::create(args),
        Command::Token { command: TokenCommand::Ls(args) } => token_cli::ls(args),
        Command::Token { command: TokenCommand::Revoke(args) } => token_cli::revoke(args),
        Command::Audit { command: AuditCommand::Verify(args) } => token_cli::verify(args),
        Command::Template { command: TemplateCommand::Ls(args) } => template_cli::ls(args),
        Command::New(args) => template_cli::new(args),
        Command::Bench { command: BenchCommand::Catalog(args) } => plinth_bench::catalog(args),
        Command::Bench { command: BenchCommand::Portal(args) } => plinth_bench::portal(args),
        Command::Bench { command: BenchCommand::Policy(args) } => plinth_bench::policy(args),
        Command::Bench { command: BenchCommand::Scaffold(args) } => plinth_bench::scaffold(args),
        Command::Bench { command: BenchCommand::Signals(args) } => plinth_bench::signals(args),
        Command::Bench { command: BenchCommand::Auth(args) } => plinth_bench::auth(args),
        Command::Policy { command: PolicyCommand::Test(args) } => policy_cli::test(args),
        Command::Policy { command: PolicyCommand::Eval(args) } => policy_cli::eval(args),
        Command::Completions(args) => cli_meta::completions(args),
        Command::Man(args) => cli_meta::man(args),
        Command::Catalog { command } => match command {
            CatalogCommand::Validate(args) => validate::run(args),
            CatalogCommand::Ls(args) => client::ls(args),
            CatalogCommand::Get(args) => client::get(args),
            CatalogCommand::Impact(args) => client::impact(args),
            CatalogCommand::Search(args) => client::search(args),
            CatalogCommand::Refresh(args) => client::refresh(args),
            CatalogCommand::Errors(args) => client::errors(args),
            CatalogCommand::Locations { command } => match command {
                LocationsCommand::Add(args) => client::add_location(args),
                LocationsCommand::Ls(args) => client::list_locations(args),
                LocationsCommand::Rm(args) => client::remove_location(args),
            },
        },
    }
}
