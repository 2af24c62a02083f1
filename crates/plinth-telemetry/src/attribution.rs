//! Who a span belongs to: `service.name` → catalogue Component → owning
//! team (and its cost centre); model, prompt and agent names → the
//! catalogued Model, Prompt and Agent entities.
//!
//! Built from a catalogue snapshot by the server and swapped in whole when
//! the catalogue changes; lookups are hash-map reads on the ingest path.

use rustc_hash::FxHashMap;

/// The Component a service maps to, and its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOwner {
    pub component: String,
    pub team: String,
}

/// A team's display data for cost pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamInfo {
    pub title: String,
    pub cost_center: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Attribution {
    /// By lower-cased `service.name`.
    services: FxHashMap<String, ServiceOwner>,
    /// Names a span may use for a Model, longest first, with the Model's ref.
    models: Vec<(String, String)>,
    prompts: FxHashMap<String, String>,
    agents: FxHashMap<String, String>,
    teams: FxHashMap<String, TeamInfo>,
}

impl Attribution {
    /// A Component. `service_name` is its `opentelemetry.io/service-name`
    /// annotation; the annotation wins over another Component's plain name.
    pub fn add_component(&mut self, name: &str, service_name: Option<&str>, component_ref: &str, owner_ref: &str) {
        let owner = ServiceOwner { component: component_ref.to_string(), team: owner_ref.to_string() };
        match service_name {
            Some(service) => {
                self.services.insert(service.to_ascii_lowercase(), owner);
            }
            None => {
                self.services.entry(name.to_ascii_lowercase()).or_insert(owner);
            }
        }
    }

    /// A Model. It answers to its name, its name without the provider
    /// prefix (`openai-gpt-4o` → `gpt-4o`), and an explicit
    /// `plinth.dev/model-id` annotation; versioned names (`gpt-4o-2024-08-06`)
    /// match by prefix, longest name first.
    pub fn add_model(&mut self, model_ref: &str, name: &str, provider: Option<&str>, model_id: Option<&str>) {
        let name = name.to_ascii_lowercase();
        if let Some(provider) = provider {
            if let Some(bare) = name.strip_prefix(&format!("{}-", provider.to_ascii_lowercase())) {
                self.models.push((bare.to_string(), model_ref.to_string()));
            }
        }
        if let Some(id) = model_id {
            self.models.push((id.to_ascii_lowercase(), model_ref.to_string()));
        }
        self.models.push((name, model_ref.to_string()));
    }

    pub fn add_prompt(&mut self, prompt_ref: &str, name: &str) {
        self.prompts.insert(name.to_ascii_lowercase(), prompt_ref.to_string());
    }

    pub fn add_agent(&mut self, agent_ref: &str, name: &str) {
        self.agents.insert(name.to_ascii_lowercase(), agent_ref.to_string());
    }

    pub fn add_team(&mut self, team_ref: &str, info: TeamInfo) {
        self.teams.insert(team_ref.to_string(), info);
    }

    /// Call once after the last `add_model`.
    pub fn finish(mut self) -> Attribution {
        self.models.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        self.models.dedup();
        self
    }

    pub fn service(&self, service_name: &str) -> Option<&ServiceOwner> {
        if self.services.is_empty() {
            return None;
        }
        self.services.get(service_name).or_else(|| self.services.get(&service_name.to_ascii_lowercase()))
    }

    pub fn model_ref(&self, model: &str) -> Option<&str> {
        let model = model.to_ascii_lowercase();
        self.models.iter().find(|(name, _)| model == *name || is_version_of(&model, name)).map(|(_, r)| r.as_str())
    }

    pub fn prompt_ref(&self, name: &str) -> Option<&str> {
        self.prompts.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn agent_ref(&self, name: &str) -> Option<&str> {
        self.agents.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn team(&self, team_ref: &str) -> Option<&TeamInfo> {
        self.teams.get(team_ref)
    }

    pub fn teams(&self) -> impl Iterator<Item = (&String, &TeamInfo)> {
        self.teams.iter()
    }
}

/// `gpt-4o-2024-08-06` and `claude-sonnet-4-5` are versions of `gpt-4o`
/// and `claude-sonnet`; `gpt-4o-mini` is another model, not a version.
fn is_version_of(model: &str, name: &str) -> bool {
    match model.strip_prefix(name).and_then(|rest| rest.strip_prefix('-')) {
        Some(suffix) => {
            suffix.starts_with(|c: char| c.is_ascii_digit())
                || matches!(suffix, "latest" | "preview")
                || suffix.starts_with("preview-")
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_models_prompts() {
        let mut a = Attribution::default();
        a.add_component("checkout", None, "component:default/checkout", "group:default/payments");
        a.add_component("legacy", Some("checkout-svc"), "component:default/legacy", "group:default/core");
        a.add_model("model:default/openai-gpt-4o", "openai-gpt-4o", Some("openai"), None);
        a.add_model("model:default/anthropic-claude-sonnet", "anthropic-claude-sonnet", Some("anthropic"), None);
        a.add_prompt("prompt:default/support-answer", "support-answer");
        let a = a.finish();
        assert_eq!(a.service("Checkout").unwrap().team, "group:default/payments");
        assert_eq!(a.service("checkout-svc").unwrap().component, "component:default/legacy");
        assert!(a.service("unknown").is_none());
        assert_eq!(a.model_ref("gpt-4o-2024-08-06"), Some("model:default/openai-gpt-4o"));
        assert_eq!(a.model_ref("gpt-4o-mini"), None, "another model, not a version");
        assert_eq!(a.model_ref("claude-sonnet-4-5"), Some("model:default/anthropic-claude-sonnet"));
        assert_eq!(a.model_ref("gpt-4"), None);
        assert_eq!(a.prompt_ref("Support-Answer"), Some("prompt:default/support-answer"));
    }
}
