//! Plinth's entity model: Backstage descriptors and Plinth's AI kinds, entity
//! refs, validation, relation derivation and YAML loading.
//!
//! Pure: no I/O, no clocks, no randomness. Everything here is a function on
//! data, so it is tested without files, databases or networks.

mod diagnostic;
mod entity;
mod entity_ref;
pub mod kinds;
mod relations;
pub mod yaml;

pub use diagnostic::{Diagnostic, FieldIssue, Severity};
pub use entity::{
    content_hash, declared_relations, entity_ref_of, is_valid_dns_label, is_valid_name, is_valid_tag, process_entity,
    validate_entity, Origin, ProcessedEntity, ANNOTATION_MANAGED_BY_LOCATION, ANNOTATION_MANAGED_BY_ORIGIN_LOCATION,
    ANNOTATION_SOURCE_LOCATION,
};
pub use entity_ref::{parse_entity_ref, parse_ref_lenient, EntityRef, RefContext, RefError, DEFAULT_NAMESPACE};
pub use relations::{canonical_relation, inverse_relation, is_dependency, DeclaredRelation, RELATION_PAIRS};
