//! What operators ask of the platform as a whole: is it ready, and what
//! are its counters. Surfaces render these (Prometheus text on `/metrics`,
//! a table in the CLI); nothing here knows a wire format.

use crate::{AppError, AppResult, Platform};
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether a metric only grows or goes up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

/// One metric: a name, help text and its samples, each with its labels.
#[derive(Debug, Clone)]
pub struct MetricFamily {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl MetricFamily {
    fn one(name: &'static str, help: &'static str, kind: MetricKind, value: f64) -> MetricFamily {
        MetricFamily { name, help, kind, samples: vec![(Vec::new(), value)] }
    }
    fn counter(name: &'static str, help: &'static str, value: &AtomicU64) -> MetricFamily {
        MetricFamily::one(name, help, MetricKind::Counter, value.load(Ordering::Relaxed) as f64)
    }
    fn gauge(name: &'static str, help: &'static str, value: f64) -> MetricFamily {
        MetricFamily::one(name, help, MetricKind::Gauge, value)
    }
}

impl Platform {
    /// Ready when the store answers.
    pub async fn ready(&self) -> AppResult<()> {
        self.store().last_seq().await.map(|_| ()).map_err(|e| AppError::unavailable(format!("store unavailable: {e}")))
    }

    /// The platform's counters and gauges: catalogue and ingestion, and
    /// each configured capability.
    pub fn metrics(&self) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        let m = &self.catalog.metrics;
        let (entities, last_seq, keys) = {
            let state = self.catalog.read();
            (state.len(), state.last_seq, state.filters().distinct_keys())
        };
        out.push(MetricFamily::gauge(
            "plinth_catalog_entities",
            "Entities in the catalogue projection.",
            entities as f64,
        ));
        out.push(MetricFamily::gauge(
            "plinth_catalog_change_log_position",
            "Last change-log sequence applied to the projection.",
            last_seq as f64,
        ));
        out.push(MetricFamily::gauge("plinth_catalog_filter_keys", "Distinct filter keys indexed.", keys as f64));
        out.push(MetricFamily {
            name: "plinth_catalog_memory_bytes",
            help: "Estimated bytes each structure of the catalogue holds (walked at most every 30 s; allocator slack not included).",
            kind: MetricKind::Gauge,
            samples: self
                .catalog
                .footprint()
                .into_iter()
                .map(|f| (vec![("structure", f.structure.to_string())], f.bytes as f64))
                .collect(),
        });
        out.push(MetricFamily::counter("plinth_ingest_refreshes_total", "Location refreshes run.", &m.refreshes));
        out.push(MetricFamily::counter(
            "plinth_ingest_refresh_failures_total",
            "Refreshes whose source could not be read at all.",
            &m.refresh_failures,
        ));
        out.push(MetricFamily::gauge(
            "plinth_ingest_last_refresh_seconds",
            "Duration of the last refresh.",
            m.last_refresh_millis.load(Ordering::Relaxed) as f64 / 1000.0,
        ));
        out.push(MetricFamily::counter(
            "plinth_ingest_refresh_milliseconds_total",
            "Time spent refreshing.",
            &m.refresh_millis_total,
        ));
        out.push(MetricFamily::counter(
            "plinth_ingest_entities_written_total",
            "Entity rows inserted or updated.",
            &m.entities_written,
        ));
        out.push(MetricFamily::counter(
            "plinth_ingest_entities_deleted_total",
            "Entity rows deleted.",
            &m.entities_deleted,
        ));
        out.push(MetricFamily::counter(
            "plinth_ingest_errors_total",
            "Ingestion errors reported.",
            &m.ingestion_errors,
        ));
        out.push(MetricFamily::counter(
            "plinth_catalog_changes_applied_total",
            "Change-log rows applied to the projection.",
            &m.changes_applied,
        ));
        let leases = self.leadership.status();
        out.push(MetricFamily {
            name: "plinth_lease_held",
            help: "1 when this replica leads the cluster-wide job (holds its lease), else 0.",
            kind: MetricKind::Gauge,
            samples: leases
                .iter()
                .map(|l| (vec![("lease", l.job.lease_name().to_string())], if l.held { 1.0 } else { 0.0 }))
                .collect(),
        });
        out.push(MetricFamily {
            name: "plinth_lease_epoch",
            help: "The fencing epoch of the lease term this replica holds (0 when it holds none).",
            kind: MetricKind::Gauge,
            samples: leases.iter().map(|l| (vec![("lease", l.job.lease_name().to_string())], l.epoch as f64)).collect(),
        });
        out.push(MetricFamily::counter(
            "plinth_lease_acquisitions_total",
            "Lease terms this replica began (at start, or taking over from a replica that stopped).",
            &self.leadership.acquisitions,
        ));
        out.push(MetricFamily::counter(
            "plinth_lease_losses_total",
            "Lease terms this replica lost before releasing them (it could not renew in time).",
            &self.leadership.losses,
        ));
        out.push(MetricFamily {
            name: "plinth_replica_info",
            help: "This replica's holder id in the leases table.",
            kind: MetricKind::Gauge,
            samples: vec![(vec![("holder", self.leadership.holder().to_string())], 1.0)],
        });
        if let Some(signals) = &self.signals {
            let sm = &signals.metrics;
            for (name, help, value) in [
                ("plinth_otlp_spans_accepted_total", "Spans stored (new).", &sm.spans_accepted),
                (
                    "plinth_otlp_spans_duplicate_total",
                    "Spans received again (same trace and span id) and not counted.",
                    &sm.spans_duplicate,
                ),
                (
                    "plinth_otlp_spans_rejected_total",
                    "Spans refused (bad ids, out of retention), reported as partial success.",
                    &sm.spans_rejected,
                ),
                ("plinth_otlp_metric_points_total", "Metric data points received.", &sm.metric_points),
                (
                    "plinth_otlp_requests_throttled_total",
                    "Exports answered 429 (in-flight limit or queue full).",
                    &sm.requests_throttled,
                ),
                ("plinth_otlp_requests_failed_total", "Exports answered 400/413/503.", &sm.requests_failed),
                ("plinth_otlp_batches_committed_total", "Group commits of signal batches.", &sm.batches_committed),
                ("plinth_otlp_commit_microseconds_total", "Time spent committing signal batches.", &sm.commit_micros),
            ] {
                out.push(MetricFamily::counter(name, help, value));
            }
        }
        if let Some(golden_paths) = &self.golden_paths {
            let gm = &golden_paths.metrics;
            out.push(MetricFamily::gauge(
                "plinth_golden_path_runs_running",
                "Golden-path runs executing or queued here.",
                golden_paths.running() as f64,
            ));
            out.push(MetricFamily {
                name: "plinth_golden_path_runs_total",
                help: "Golden-path runs finished, by status.",
                kind: MetricKind::Counter,
                samples: [("completed", &gm.completed), ("failed", &gm.failed), ("cancelled", &gm.cancelled)]
                    .into_iter()
                    .map(|(status, value)| (vec![("status", status.to_string())], value.load(Ordering::Relaxed) as f64))
                    .collect(),
            });
            out.push(MetricFamily::counter(
                "plinth_golden_path_runs_denied_total",
                "Golden-path runs stopped by a policy deny.",
                &gm.denied,
            ));
            out.push(MetricFamily::counter("plinth_golden_path_dry_runs_total", "Golden-path dry runs.", &gm.dry_runs));
            out.push(MetricFamily::counter(
                "plinth_golden_path_run_milliseconds_total",
                "Time spent in golden-path runs.",
                &gm.run_millis_total,
            ));
        }
        out
    }
}
