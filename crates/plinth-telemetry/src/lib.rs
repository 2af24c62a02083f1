//! Observability with AI signals, as plain functions on data: OTLP wire
//! handling, the GenAI semantic conventions, attribution to catalogue
//! entities, the price table, rollups with latency sketches, queries over
//! them, cost anomalies and the statistics behind prompt comparisons.
//!
//! No HTTP and no storage of its own: the server decodes with [`otlp`],
//! prepares rows with [`ingest`], writes them through `plinth-store` and
//! answers queries with [`query`].

pub mod anomaly;
pub mod attribution;
pub mod compare;
pub mod cost;
pub mod genai;
pub mod ingest;
pub mod metrics;
pub mod otlp;
pub mod prices;
pub mod query;
pub mod records;
pub mod rollup;
pub mod stats;
