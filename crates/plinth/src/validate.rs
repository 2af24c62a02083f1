//! `plinth catalog validate`: reads catalogue files exactly as ingestion
//! does, offline, and reports every problem with file, line and field.

use crate::client::Failure;
use crate::output::{outln, Format, OutputArgs};
use anyhow::Result;
use plinth_catalog::{read_location, FileCache, FileNamer};
use plinth_model::yaml::YamlLimits;
use plinth_model::{Diagnostic, Severity};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct ValidateArgs {
    /// Files or directories (directories are searched for catalog-info.yaml).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
    /// Succeed when a path holds no catalogue descriptors (by default that
    /// is an error: a wrong path in CI must not pass silently).
    #[arg(long)]
    allow_empty: bool,
}

pub(crate) fn run(args: ValidateArgs) -> Result<ExitCode> {
    let paths = &args.paths;
    let cache = FileCache::default();
    let limits = YamlLimits::default();
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut entities = 0usize;
    let mut files = 0usize;
    // The first definition of each entity, across every path: (file, line).
    let mut first_seen: HashMap<String, (std::sync::Arc<str>, u32)> = HashMap::new();
    for path in paths {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let read = read_location(&absolute, &FileNamer, &cache, &limits);
        let failed = read.diagnostics.iter().any(|d| d.severity == Severity::Error);
        if read.files_read == 0 && !failed && !args.allow_empty {
            return Err(Failure::findings(format!(
                "{} holds no catalogue descriptors (catalog-info.yaml); check the path, or pass --allow-empty",
                path.display()
            ))
            .into());
        }
        files += read.files_read;
        diagnostics.extend(read.diagnostics);
        for found in read.entities {
            let key = found.entity.entity_ref.key();
            if let Some((file, line)) = first_seen.get(&key) {
                diagnostics.push(plinth_catalog::defined_twice(&found, file, *line));
            } else {
                first_seen.insert(key, (found.location.clone(), found.line));
                entities += 1;
            }
        }
    }
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    match args.output.format() {
        Format::Json | Format::Yaml => {
            let report = serde_json::json!({
                "valid": errors == 0, "files": files, "entities": entities,
                "errors": errors, "warnings": diagnostics.len() - errors, "diagnostics": diagnostics,
            });
            args.output.structured(&report);
        }
        Format::Text => {
            for diagnostic in &diagnostics {
                outln!("{diagnostic}");
            }
            outln!(
                "{files} file(s), {entities} valid entit{}, {errors} error(s), {} warning(s)",
                if entities == 1 { "y" } else { "ies" },
                diagnostics.len() - errors
            );
        }
    }
    Ok(if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
