//! Schemas that state what a parameter or field accepts, for the OpenAPI
//! document: each enumerates its values from the same list the code
//! checks against, so the document cannot drift from the server.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

fn string_enum(description: &str, values: impl IntoIterator<Item = String>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values.into_iter().collect::<Vec<_>>()))
        .into()
}

fn pattern_string(description: &str, pattern: &str, max_length: Option<usize>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .max_length(max_length)
        .into()
}

/// Declares a documentation-only string type with the pattern the server
/// checks it against.
macro_rules! text_shape {
    ($(#[$doc:meta])* $name:ident, $description:expr, $pattern:expr, $max_length:expr) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                pattern_string($description, $pattern, $max_length)
            }
        }

        impl ToSchema for $name {}
    };
}

text_shape!(
    /// An entity ref whose kind may default.
    EntityRefText,
    "An entity ref, `[kind:][namespace/]name` (the kind and namespace default as the field says): no part empty or holding whitespace, `:` or `/`",
    crate::params::REF,
    Some(crate::params::MAX_REF)
);

text_shape!(
    /// An entity ref that names its kind.
    FullEntityRefText,
    "An entity ref naming its kind, `kind:[namespace/]name`: no part empty or holding whitespace, `:` or `/`",
    crate::params::FULL_REF,
    Some(crate::params::MAX_REF)
);

/// Declares a documentation-only string type whose values come from code.
macro_rules! value_set {
    ($(#[$doc:meta])* $name:ident, $description:expr, $values:expr) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string_enum($description, $values)
            }
        }

        impl ToSchema for $name {}
    };
}

value_set!(
    /// A relation type, either direction.
    RelationType,
    "A relation type (either direction of a pair)",
    plinth_model::RELATION_PAIRS.iter().flat_map(|(a, b)| [a.to_string(), b.to_string()])
);

value_set!(
    /// Where a policy decision is asked for.
    PointName,
    "An enforcement point",
    plinth_policy::Point::ALL.iter().map(|p| p.as_str().to_string())
);

value_set!(
    /// A decision's result.
    OutcomeName,
    "A decision's result",
    ["allow", "warn", "deny"].map(String::from)
);

value_set!(
    /// Impact's direction.
    ImpactDirection,
    "`dependents` (who depends on it) or `dependencies` (what it depends on)",
    ["dependents", "dependencies"].map(String::from)
);

value_set!(
    /// A golden-path run's status.
    TaskStatusName,
    "A run's status",
    ["open", "processing", "completed", "failed", "cancelled"].map(String::from)
);

value_set!(
    /// Where signal rows come from.
    SignalSource,
    "`spans` (default) or `metrics`",
    ["spans", "metrics"].map(String::from)
);

value_set!(
    /// A series metric.
    SeriesMetric,
    "The metric of a series",
    plinth_telemetry::query::SERIES_METRICS.iter().map(|m| m.to_string())
);

value_set!(
    /// A series grouping.
    SeriesGroupBy,
    "How series are grouped",
    plinth_telemetry::query::GROUP_BY.iter().map(|m| m.to_string())
);

/// A schema written as JSON (for shapes the derive cannot state: `anyOf`
/// over required keys and the like).
pub(crate) fn from_json(value: serde_json::Value) -> RefOr<Schema> {
    serde_json::from_value(value).expect("a schema written in this crate is valid")
}

/// `[kind:][namespace/]name` of the signal filters' patterns, with `@`
/// barred too where a version may follow.
macro_rules! ref_body {
    () => {
        r"(?:[^\s:/]+:)?(?:[^\s:/]+/)?[^\s:/]+"
    };
}

/// The `entity` filter of signals: a ref of a kind that has signals.
pub(crate) const SIGNAL_ENTITY: &str = r"^\s*(?:component|group|model|prompt|agent):(?:[^\s:/]+/)?[^\s:/]+\s*$";
/// A `service.name`, or (holding `:`) a Component ref.
pub(crate) const SIGNAL_SERVICE: &str = r"^(?:[^:]*|\s*[^\s:/]+:(?:[^\s:/]+/)?[^\s:/]+\s*)$";
/// A model name as reported, or (starting `model:`) a Model ref.
pub(crate) const SIGNAL_MODEL: &str = r"^(?:(?!\s*model:)[\s\S]*|\s*model:(?:[^\s:/]+/)?[^\s:/]+\s*)$";
/// A name, or (holding `:` or `/`) a ref.
pub(crate) const NAME_OR_REF: &str = concat!(r"^(?:[^:/]*|\s*", ref_body!(), r"\s*)$");
/// A Prompt name or ref, optionally `@version`.
pub(crate) const PROMPT_AT_VERSION: &str = r"^\s*(?:[^:/@]*|(?:[^\s:/@]+:)?(?:[^\s:/@]+/)?[^\s:/@]+\s*)(?:@[^@]*)?$";

text_shape!(
    /// The `entity` filter of signals.
    SignalEntityText,
    "A Component, Group, Model, Prompt or Agent ref, `kind:[namespace/]name`",
    SIGNAL_ENTITY,
    Some(crate::params::MAX_REF)
);

text_shape!(
    /// The `service` filter of signals.
    SignalServiceText,
    "A `service.name`, or (holding `:`) a Component ref `kind:[namespace/]name`",
    SIGNAL_SERVICE,
    None
);

text_shape!(
    /// The `model` filter of signals.
    SignalModelText,
    "A model name as reported, or (starting `model:`) a Model ref",
    SIGNAL_MODEL,
    None
);

text_shape!(
    /// A name or a ref (agents, prompts).
    NameOrRefText,
    "A name, or (holding `:` or `/`) a ref `[kind:][namespace/]name` (the kind defaults to the field's)",
    NAME_OR_REF,
    None
);

text_shape!(
    /// A prompt, optionally with its version.
    PromptText,
    "A Prompt name or ref, optionally `@version` (`name@v2`); at most one `@`",
    PROMPT_AT_VERSION,
    None
);
