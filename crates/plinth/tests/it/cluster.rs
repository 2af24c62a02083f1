//! Three `plinth serve` processes on one PostgreSQL database share the
//! cluster-wide jobs through leases in the store: each job has exactly one
//! leader at any moment; an alert rule fires once and posts its webhook
//! once; the leader is killed with `kill -9`; another replica takes every
//! job over within two lease periods (measured), continues from the stored
//! alert state without firing again, and the resolution is recorded and
//! delivered exactly once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plinth_testkit::PgDatabase;
use serde_json::{json, Value};

use crate::common::{http, wait_for, Launch, Serve};

/// The lease period the replicas run with (`--lease-period-ms`).
const PERIOD: Duration = Duration::from_millis(1000);
/// The leases every `plinth serve` contends for.
const LEASES: [&str; 4] = ["catalog.refresh", "signals.alerts", "signals.maintenance", "golden_paths.sweeper"];
const RULE: &str = "checkout-calls";

/// A webhook receiver on loopback: every JSON body posted to `/hook`.
struct Receiver {
    url: String,
    received: Arc<tokio::sync::Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let received = Arc::new(tokio::sync::Mutex::new(Vec::<Value>::new()));
        let sink = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let sink = sink.clone();
                async move {
                    sink.lock().await.push(body);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("receiver address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, received }
    }

    async fn states(&self) -> Vec<String> {
        self.received.lock().await.iter().map(|e| e["state"].as_str().unwrap_or("?").to_string()).collect()
    }
}

/// Which leases a replica holds, from its `/metrics` (`None`: it does not
/// answer).
async fn held(server: &Serve) -> Option<BTreeMap<String, (bool, i64)>> {
    let response = http().get(server.url("/metrics")).send().await.ok()?;
    let text = response.text().await.ok()?;
    let value = |name: &str, lease: &str| -> Option<f64> {
        let prefix = format!("{name}{{lease=\"{lease}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
    };
    LEASES
        .iter()
        .map(|lease| {
            let held = value("plinth_lease_held", lease)? == 1.0;
            let epoch = value("plinth_lease_epoch", lease)? as i64;
            Some((lease.to_string(), (held, epoch)))
        })
        .collect()
}

/// For each lease, the indexes of the replicas (among `servers`) that hold
/// it. Asserts that no lease has two holders.
async fn holders(servers: &[&Serve]) -> BTreeMap<String, Vec<usize>> {
    let mut out: BTreeMap<String, Vec<usize>> = LEASES.iter().map(|l| (l.to_string(), Vec::new())).collect();
    for (i, server) in servers.iter().enumerate() {
        if let Some(leases) = held(server).await {
            for (lease, (is_held, _)) in leases {
                if is_held {
                    out.entry(lease).or_default().push(i);
                }
            }
        }
    }
    for (lease, who) in &out {
        assert!(who.len() <= 1, "lease {lease} has two leaders at once: replicas {who:?}");
    }
    out
}

/// Four chat calls of the `checkout` service, just now, as OTLP/JSON.
fn chat_calls() -> Value {
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    let text = |key: &str, value: &str| json!({"key": key, "value": {"stringValue": value}});
    let spans: Vec<Value> = (1..=4i64)
        .map(|i| {
            let start = now_ns - 5_000_000_000 + i * 10_000_000;
            json!({"traceId": format!("{:032x}", 0xc1u64), "spanId": format!("{:016x}", 0x100 + i),
                   "name": "chat gpt-4o", "kind": 3,
                   "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 100_000_000).to_string(),
                   "attributes": [text("gen_ai.operation.name", "chat"), text("gen_ai.request.model", "gpt-4o")]})
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [text("service.name", "checkout")]},
        "scopeSpans": [{"scope": {"name": "leadership-test"}, "spans": spans}],
    }]})
}

fn rule(webhook: &str, threshold: f64) -> Value {
    json!({"id": RULE, "name": "Checkout calls", "service": "checkout", "signal": "requests", "op": ">=",
           "threshold": threshold, "window": "1h", "severity": "degraded", "webhook": webhook})
}

/// The rule's history (newest first), as a replica answers it.
async fn history(server: &Serve) -> Vec<Value> {
    let events = server.ok("/api/signals/alerts/history", &[("rule", RULE)]).await;
    events.as_array().expect("a list").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_per_job_fails_over_after_kill_9_and_alerts_fire_once() {
    let Some(database) = PgDatabase::create("it").await else { return };
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let period = PERIOD.as_millis().to_string();
    let args = ["--lease-period-ms", period.as_str(), "--alert-interval", "1"];
    let mut servers = Vec::new();
    for name in ["a", "b", "c"] {
        let launch = Launch { database_url: Some(&database.url), args: &args, ..Launch::default() };
        servers.push(Serve::launch(&dir.path().join(name), launch).await);
    }

    // Every job has one leader among the three.
    let mut leaders = BTreeMap::new();
    wait_for(Duration::from_secs(30), "every lease to have a leader", async || {
        let refs: Vec<&Serve> = servers.iter().collect();
        leaders = holders(&refs).await;
        leaders.values().all(|who| who.len() == 1)
    })
    .await;
    let leader = leaders["signals.alerts"][0];
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let old_epoch = held(&servers[leader]).await.expect("the leader answers")["signals.alerts"].1;
    eprintln!("leaders: {leaders:?}; alerts led by replica {leader} in epoch {old_epoch}");

    // A rule written through one follower, spans through the other: the
    // leader fires it once and posts the webhook once.
    let (status, body) = servers[others[0]].post("/api/signals/alerts/rules", &rule(&receiver.url, 1.0)).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let (status, body) = servers[others[1]].post("/v1/traces", &chat_calls()).await;
    assert!(status.is_success(), "{status} {body}");
    wait_for(Duration::from_secs(30), "the firing webhook", async || receiver.states().await == ["firing"]).await;
    wait_for(Duration::from_secs(10), "the firing delivery to be recorded", async || {
        let events = history(&servers[others[0]]).await;
        events.len() == 1 && events[0]["webhook"]["delivered"] == json!(true)
    })
    .await;

    // kill -9 the leader: another replica takes every job over.
    servers[leader].kill();
    let killed = Instant::now();
    let survivors: Vec<&Serve> = others.iter().map(|i| &servers[*i]).collect();
    let mut took: BTreeMap<String, Duration> = BTreeMap::new();
    while took.len() < LEASES.len() {
        for (lease, who) in holders(&survivors).await {
            if !who.is_empty() {
                took.entry(lease).or_insert_with(|| killed.elapsed());
            }
        }
        assert!(killed.elapsed() < 10 * PERIOD, "not every job moved to a survivor: {took:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failover = took.values().max().copied().unwrap_or_default();
    eprintln!("FAILOVER after kill -9 (lease period {PERIOD:?}): {took:?}; slowest {failover:?}");
    assert!(failover <= 2 * PERIOD, "failover took {failover:?}, more than two lease periods");
    let now_leading = holders(&survivors).await["signals.alerts"][0];
    let new_epoch = held(survivors[now_leading]).await.expect("the new leader answers")["signals.alerts"].1;
    assert!(new_epoch > old_epoch, "a new term has a higher fencing epoch: {new_epoch} after {old_epoch}");

    // The new leader evaluates every second from the stored state: the rule
    // still fires, and nothing is recorded or posted again.
    tokio::time::sleep(3 * PERIOD).await;
    assert_eq!(receiver.states().await, ["firing"], "no transition doubled by the failover");
    assert_eq!(history(survivors[0]).await.len(), 1);
    let rules = survivors[1].ok("/api/signals/alerts/rules", &[]).await;
    assert_eq!(rules[0]["status"]["state"], json!("firing"), "{rules}");

    // Resolved through a survivor: recorded and posted once.
    let (status, body) = survivors[0].post("/api/signals/alerts/rules", &rule(&receiver.url, 1e9)).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    wait_for(Duration::from_secs(30), "the resolving webhook", async || receiver.states().await.len() == 2).await;
    tokio::time::sleep(3 * PERIOD).await;
    assert_eq!(receiver.states().await, ["firing", "resolved"], "each transition posted exactly once");
    let events = history(survivors[1]).await;
    let states: Vec<&str> = events.iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["resolved", "firing"], "each transition recorded exactly once: {events:?}");
    assert!(events.iter().all(|e| e["webhook"]["delivered"] == json!(true)), "{events:?}");
    let posted: Vec<Value> = receiver.received.lock().await.iter().map(|e| e["event_id"].clone()).collect();
    let recorded: Vec<Value> = events.iter().rev().map(|e| json!(e["id"])).collect();
    assert_eq!(posted, recorded, "each post names the event it delivers");
}
