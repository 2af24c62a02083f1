//! Temporary benchmark of the store API.
use plinth_store::{EntityChange, EntityUpsert, Store, StoreConfig};
use std::time::Instant;

fn body(i: usize, v: u32) -> String {
    let mut b = format!(r#"{{"kind":"Component","metadata":{{"name":"svc-{i}","v":{v},"annotations":{{"#);
    let mut n = 0;
    while b.len() < 1400 {
        b.push_str(&format!(r#""example.com/annotation-{n}":"value {n} for service {i} with padding","#));
        n += 1;
    }
    b.push_str(r#""end":"1"}}}"#);
    b
}

fn changes(n: usize, v: u32) -> Vec<EntityChange> {
    (0..n)
        .map(|i| {
            let b = body(i, v);
            EntityChange::Upsert(EntityUpsert {
                key: format!("component:default/svc-{i}"),
                kind: "component".into(),
                namespace: "default".into(),
                name: format!("svc-{i}"),
                hash: format!("{:016x}{:016x}{:032x}", i, v, b.len()),
                body: b,
                location_id: "loc".into(),
            })
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args[2].parse().unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let config = match args[1].as_str() {
        "sqlite" => StoreConfig::Sqlite { data_dir: dir.path().to_path_buf() },
        _ => {
            let admin = sqlx::PgPool::connect("postgres://postgres@127.0.0.1/postgres").await.unwrap();
            let _ = sqlx::raw_sql("DROP DATABASE IF EXISTS plinth_store_bench WITH (FORCE)").execute(&admin).await;
            sqlx::raw_sql("CREATE DATABASE plinth_store_bench").execute(&admin).await.unwrap();
            StoreConfig::Postgres { url: "postgres://postgres@127.0.0.1/plinth_store_bench".into() }
        }
    };
    let store = Store::open(&config).await.unwrap();
    let c1 = changes(n, 1);
    let c2 = changes(n, 2);
    let t = Instant::now();
    let o = store.apply(&c1).await.unwrap();
    println!("insert {}: {:?}", o.written.len(), t.elapsed());
    if args.len() > 3 && args[3] == "x" { return; }
    if args.len() > 3 && args[3] == "explain" {
        let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1/plinth_store_bench").await.unwrap();
        let keys: Vec<&str> = c1.iter().map(|c| c.key()).collect();
        let locs: Vec<&str> = keys.iter().map(|_| "loc").collect();
        let hashes: Vec<String> = c1.iter().map(|c| match c { EntityChange::Upsert(u) => u.hash.clone(), _ => String::new() }).collect();
        for _ in 0..3 {
            let t = Instant::now();
            let o = store.apply(&c1).await.unwrap();
            println!("store unchanged {}: {:?}", o.skipped.len(), t.elapsed());
        }
        for chunk in [5000usize] {
            for i in 0..8 {
                let t = Instant::now();
                let mut n = 0;
                for s in (0..keys.len()).step_by(chunk) {
                    let r = s..(s + chunk).min(keys.len());
                    let q = if i == 7 { "EXPLAIN ANALYZE " } else { "" };
                    let rows = sqlx::query(&format!("{q}SELECT t.k, e.location_id FROM UNNEST($1::text[], $2::text[], $3::text[]) AS t(k, l, h) LEFT JOIN entities e ON e.entity_key = t.k WHERE e.entity_key IS NULL OR e.location_id <> t.l OR e.hash <> t.h"))
                        .bind(&keys[r.clone()]).bind(&locs[r.clone()]).bind(&hashes[r.clone()]).fetch_all(&pool).await.unwrap();
                    if i == 7 && s == 0 { for row in &rows { let l: String = sqlx::Row::get(row, 0); println!("{l}"); } }
                    n += rows.len();
                }
                println!("chunk {chunk} run {i}: {n} rows {:?}", t.elapsed());
            }
        }
        return;
    }
    if args.len() > 3 && args[3] == "load" {
        for _ in 0..3 {
            let t = Instant::now();
            let l = store.load_entities().await.unwrap();
            println!("load {}: {:?}", l.len(), t.elapsed());
        }
        return;
    }
    for _ in 0..2 {
        let t = Instant::now();
        let o = store.apply(&c1).await.unwrap();
        println!("unchanged {}: {:?}", o.skipped.len(), t.elapsed());
    }
    let t = Instant::now();
    let o = store.apply(&c2).await.unwrap();
    println!("update {}: {:?}", o.written.len(), t.elapsed());
    let t = Instant::now();
    let l = store.load_entities().await.unwrap();
    println!("load {}: {:?}", l.len(), t.elapsed());
    let keys: Vec<String> = c1.iter().map(|c| c.key().to_string()).collect();
    let t = Instant::now();
    let l = store.get_entities(&keys).await.unwrap();
    println!("get {}: {:?}", l.len(), t.elapsed());
    let t = Instant::now();
    let l = store.changes_since(0, 1_000_000).await.unwrap();
    println!("changes_since {}: {:?}", l.len(), t.elapsed());
    let deletes: Vec<EntityChange> = keys.iter().map(|k| EntityChange::Delete { key: k.clone() }).collect();
    let t = Instant::now();
    let o = store.apply(&deletes).await.unwrap();
    println!("delete {}: {:?}", o.written.len(), t.elapsed());
}
