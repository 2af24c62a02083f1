//! Golden paths: Backstage `scaffolder.backstage.io/v1beta3` templates run
//! by Plinth's own engine. `template` reads and checks a Template entity,
//! `params` validates parameters against its JSON Schema pages, `expr`
//! evaluates `${{ … }}` expressions (sandboxed minijinja), `actions` are the
//! built-in steps (`fetch:*`, `fs:*`, `catalog:*`, `publish:git`,
//! `plinth:policy`, `debug:log`), `run` executes a run in a private
//! workspace. The server supplies policy decisions and catalogue
//! registration through `host::Host`; nothing here knows HTTP or storage.

pub mod actions;
pub mod expr;
pub mod files;
mod git;
pub mod host;
pub mod params;
pub mod run;
pub mod template;
pub mod workspace;
mod yaml;

pub use files::{DirectoryEntry, TemplateFiles};
pub use host::{Host, PolicyRequest, RegisterTarget};
pub use run::{run, Redactor, RunEvent, RunReport, RunRequest, StepStatus};
pub use template::{Template, TemplateProblem};
