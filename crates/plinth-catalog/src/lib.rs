//! Plinth's catalogue: ingestion from files, directories, git repositories
//! and Location entities; reconciliation into the store; and the in-memory
//! projections (relation graph, Backstage filter index, sort orders, full-text
//! search) that answer every query.

mod catalog;
mod filters;
mod footprint;
pub use footprint::Footprint;
pub mod git;
mod graph;
mod reconcile;
pub use reconcile::defined_twice;
mod search;
mod sort_order;
mod source;
mod state;
mod uid;
mod value_set;

pub use catalog::{
    normalize_location, now_rfc3339, Catalog, CatalogConfig, CatalogError, CatalogMetrics, RefreshReport,
};
pub use filters::{Condition, EntityFilter, FilterGroup};
pub use graph::{Direction, Impact, NodeId, RelId};
pub use search::{Hit, SearchIndex, MAX_SEARCH_DEPTH, MAX_SEARCH_WINDOW};
pub use source::{read_location, FileCache, FileNamer, Found, ReadEntity, SourceRead};
pub use state::{CatalogState, EntityRecord, RecentChange, Summary, SORTABLE_KEYS};
pub use uid::{uid_buffer, Uid, UidBuffer};
