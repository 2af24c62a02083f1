//! The entity kinds Plinth understands, their spec fields, and the
//! relations those fields produce. One declarative table per kind, so
//! validation and relation derivation read the same facts.

/// What a spec field holds.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    String,
    StringList,
    Bool,
    Object,
    /// An object or a list (Backstage templates allow both for `parameters`).
    ObjectOrList,
    List,
    /// One of a closed set of strings.
    Enum(&'static [&'static str]),
    /// A ref, with the kind it defaults to (`None`: the ref must name one).
    Ref(Option<&'static str>),
    RefList(Option<&'static str>),
}

/// A spec field: its name, shape, whether it must be present, and the
/// relation it produces from this entity to the referenced ones.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub shape: Shape,
    pub required: bool,
    /// Not required when this other spec field is present.
    pub unless: Option<&'static str>,
    pub relation: Option<&'static str>,
}

const fn req(name: &'static str, shape: Shape) -> Field {
    Field { name, shape, required: true, unless: None, relation: None }
}
const fn opt(name: &'static str, shape: Shape) -> Field {
    Field { name, shape, required: false, unless: None, relation: None }
}
const fn rel(name: &'static str, shape: Shape, required: bool, relation: &'static str) -> Field {
    Field { name, shape, required, unless: None, relation: Some(relation) }
}

/// A kind: its canonical name, the apiVersions it is defined in, its fields.
#[derive(Debug)]
pub struct KindSpec {
    pub kind: &'static str,
    pub api_versions: &'static [&'static str],
    pub fields: &'static [Field],
}

const BACKSTAGE: &[&str] = &["backstage.io/v1alpha1", "backstage.io/v1beta1"];
const PLINTH: &[&str] = &["plinth.dev/v1alpha1"];
pub const RISK_TIERS: &[&str] = &["minimal", "limited", "high", "prohibited"];
pub const DATA_CLASSIFICATIONS: &[&str] = &["public", "internal", "confidential", "restricted"];
pub const AUTONOMY_LEVELS: &[&str] = &["suggest", "supervised", "autonomous"];

const OWNER: Field = rel("owner", Shape::Ref(Some("group")), true, "ownedBy");
const OPTIONAL_OWNER: Field = rel("owner", Shape::Ref(Some("group")), false, "ownedBy");
const SYSTEM: Field = rel("system", Shape::Ref(Some("system")), false, "partOf");
const DEPENDS_ON: Field = rel("dependsOn", Shape::RefList(None), false, "dependsOn");
const DEPENDENCY_OF: Field = rel("dependencyOf", Shape::RefList(None), false, "dependencyOf");

pub static KINDS: &[KindSpec] = &[
    KindSpec {
        kind: "Component",
        api_versions: BACKSTAGE,
        fields: &[
            req("type", Shape::String),
            req("lifecycle", Shape::String),
            OWNER,
            SYSTEM,
            rel("subcomponentOf", Shape::Ref(Some("component")), false, "partOf"),
            rel("providesApis", Shape::RefList(Some("api")), false, "providesApi"),
            rel("consumesApis", Shape::RefList(Some("api")), false, "consumesApi"),
            DEPENDS_ON,
            DEPENDENCY_OF,
        ],
    },
    KindSpec {
        kind: "API",
        api_versions: BACKSTAGE,
        fields: &[
            req("type", Shape::String),
            req("lifecycle", Shape::String),
            OWNER,
            // MCP-server APIs describe `remotes` instead of a definition.
            Field { unless: Some("remotes"), ..req("definition", Shape::String) },
            opt("remotes", Shape::List),
            SYSTEM,
        ],
    },
    KindSpec {
        kind: "Resource",
        api_versions: BACKSTAGE,
        fields: &[req("type", Shape::String), OWNER, SYSTEM, DEPENDS_ON, DEPENDENCY_OF],
    },
    KindSpec {
        kind: "System",
        api_versions: BACKSTAGE,
        fields: &[OWNER, rel("domain", Shape::Ref(Some("domain")), false, "partOf"), opt("type", Shape::String)],
    },
    KindSpec {
        kind: "Domain",
        api_versions: BACKSTAGE,
        fields: &[OWNER, rel("subdomainOf", Shape::Ref(Some("domain")), false, "partOf"), opt("type", Shape::String)],
    },
    KindSpec {
        kind: "Group",
        api_versions: BACKSTAGE,
        fields: &[
            req("type", Shape::String),
            opt("profile", Shape::Object),
            rel("parent", Shape::Ref(Some("group")), false, "childOf"),
            rel("children", Shape::RefList(Some("group")), true, "parentOf"),
            rel("members", Shape::RefList(Some("user")), false, "hasMember"),
        ],
    },
    KindSpec {
        kind: "User",
        api_versions: BACKSTAGE,
        fields: &[opt("profile", Shape::Object), rel("memberOf", Shape::RefList(Some("group")), true, "memberOf")],
    },
    KindSpec {
        kind: "Location",
        api_versions: BACKSTAGE,
        fields: &[
            opt("type", Shape::String),
            opt("target", Shape::String),
            opt("targets", Shape::StringList),
            opt("presence", Shape::Enum(&["required", "optional"])),
        ],
    },
    KindSpec {
        kind: "Template",
        api_versions: &["scaffolder.backstage.io/v1beta3", "scaffolder.backstage.io/v1beta2", "backstage.io/v1beta2"],
        fields: &[
            req("type", Shape::String),
            opt("parameters", Shape::ObjectOrList),
            req("steps", Shape::List),
            opt("output", Shape::Object),
            OPTIONAL_OWNER,
            opt("lifecycle", Shape::String),
        ],
    },
    KindSpec {
        kind: "Environment",
        api_versions: BACKSTAGE,
        fields: &[opt("type", Shape::String), opt("lifecycle", Shape::String), OPTIONAL_OWNER, SYSTEM],
    },
    KindSpec {
        kind: "AiResource",
        api_versions: BACKSTAGE,
        fields: &[opt("type", Shape::String), opt("lifecycle", Shape::String), OPTIONAL_OWNER, SYSTEM],
    },
    KindSpec {
        kind: "Model",
        api_versions: PLINTH,
        fields: &[
            req("type", Shape::String),
            OWNER,
            SYSTEM,
            req("lifecycle", Shape::String),
            opt("provider", Shape::String),
            opt("license", Shape::String),
            opt("riskTier", Shape::Enum(RISK_TIERS)),
            opt("dataClassification", Shape::Enum(DATA_CLASSIFICATIONS)),
            rel("trainedOn", Shape::RefList(Some("dataset")), false, "trainedOn"),
            opt("modelCard", Shape::String),
            DEPENDS_ON,
        ],
    },
    KindSpec {
        kind: "Dataset",
        api_versions: PLINTH,
        fields: &[
            req("type", Shape::String),
            OWNER,
            SYSTEM,
            req("lifecycle", Shape::String),
            opt("dataClassification", Shape::Enum(DATA_CLASSIFICATIONS)),
            opt("residency", Shape::StringList),
            opt("containsPii", Shape::Bool),
            DEPENDS_ON,
        ],
    },
    KindSpec {
        kind: "Prompt",
        api_versions: PLINTH,
        fields: &[
            OWNER,
            SYSTEM,
            req("lifecycle", Shape::String),
            rel("model", Shape::Ref(Some("model")), false, "usesModel"),
            opt("template", Shape::String),
            DEPENDS_ON,
        ],
    },
    KindSpec {
        kind: "Agent",
        api_versions: PLINTH,
        fields: &[
            req("type", Shape::String),
            OWNER,
            SYSTEM,
            req("lifecycle", Shape::String),
            opt("autonomy", Shape::Enum(AUTONOMY_LEVELS)),
            opt("riskTier", Shape::Enum(RISK_TIERS)),
            opt("dataClassification", Shape::Enum(DATA_CLASSIFICATIONS)),
            rel("models", Shape::RefList(Some("model")), false, "usesModel"),
            rel("prompts", Shape::RefList(Some("prompt")), false, "usesPrompt"),
            rel("tools", Shape::RefList(Some("api")), false, "usesTool"),
            DEPENDS_ON,
        ],
    },
];

/// Looks a kind up case-insensitively.
pub fn kind_spec(kind: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|spec| spec.kind.eq_ignore_ascii_case(kind))
}

/// The kinds, for error messages and documentation.
pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|spec| spec.kind).collect()
}
