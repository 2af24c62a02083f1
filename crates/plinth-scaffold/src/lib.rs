//! Golden paths: Backstage `scaffolder.backstage.io/v1beta3` templates run
//! by Plinth's own engine. `template` reads and checks a Template entity,
//! `params` validates parameters against its JSON Schema pages, `expr`
//! evaluates `${{ … }}` expressions (sandboxed minijinja), `actions` are the
//! built-in steps (`fetch:*`, `fs:*`, `catalog:*`, `publish:git`,
//! `publish:github`, `publish:gitlab` and their pull/merge-request forms,
//! `plinth:policy`, `debug:log`), `run` executes a run in a private
//! workspace. The server supplies policy decisions and catalogue
//! registration through `host::Host`; nothing here knows the server's HTTP
//! or storage. Forge REST calls (`forge`) pass the host's outbound allowlist.

mod actions;
mod error;
pub mod expr;
mod files;
pub mod forge;
mod git;
mod host;
mod log;
pub mod params;
mod publish_forge;
mod registry;
mod run;
mod template;
mod workspace;
mod yaml;

pub use error::ScaffoldError;
pub use files::{DirectoryEntry, TemplateFiles};
pub use forge::{ForgeIntegration, ForgeKind, Forges};
pub use host::{Host, PolicyRequest, RegisterTarget};
pub use log::{Logger, Redactor, RunEvent};
pub use registry::{describe as describe_action, list as list_actions, ActionInfo};
pub use run::{run, RunReport, RunRequest, StepReport, StepStatus};
pub use template::{Step, Template, TemplateProblem, API_VERSION};
pub use workspace::Limits;
