//! `plinth catalog validate`: reads catalogue files exactly as ingestion
//! does, offline, and reports every problem with file, line and field.

use anyhow::Result;
use plinth_catalog::{read_location, FileCache, FileNamer};
use plinth_model::yaml::YamlLimits;
use plinth_model::{Diagnostic, Severity};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Output {
    Text,
    Json,
}

pub(crate) fn run(paths: &[PathBuf], output: Output) -> Result<ExitCode> {
    let cache = FileCache::default();
    let limits = YamlLimits::default();
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut entities = 0usize;
    let mut files = 0usize;
    let mut first_seen: HashMap<String, String> = HashMap::new();
    for path in paths {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let read = read_location(&absolute, &FileNamer, &cache, &limits);
        files += read.files_read;
        diagnostics.extend(read.diagnostics);
        for found in read.entities {
            let key = found.entity.entity_ref.key();
            let at = format!("{}:{}", found.location, found.line);
            if let Some(first) = first_seen.get(&key) {
                diagnostics.push(
                    Diagnostic::error(
                        found.location.clone(),
                        format!("{} is defined twice; first at {first}; remove one", found.entity.entity_ref),
                    )
                    .at_line(Some(found.line))
                    .for_entity(Some(found.entity.entity_ref.to_string())),
                );
            } else {
                first_seen.insert(key, at);
                entities += 1;
            }
        }
    }
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    match output {
        Output::Json => {
            let report = serde_json::json!({
                "valid": errors == 0, "files": files, "entities": entities,
                "errors": errors, "warnings": diagnostics.len() - errors, "diagnostics": diagnostics,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Output::Text => {
            for diagnostic in &diagnostics {
                println!("{diagnostic}");
            }
            println!(
                "{files} file(s), {entities} valid entit{}, {errors} error(s), {} warning(s)",
                if entities == 1 { "y" } else { "ies" },
                diagnostics.len() - errors
            );
        }
    }
    Ok(if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
