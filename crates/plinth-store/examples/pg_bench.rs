//! Temporary benchmark.
use sqlx::postgres::PgPoolOptions;
use sqlx::Row;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let admin =
        PgPoolOptions::new().max_connections(1).connect("postgres://postgres@127.0.0.1/postgres").await.unwrap();
    let _ = sqlx::raw_sql("DROP DATABASE IF EXISTS plinth_bench2").execute(&admin).await;
    sqlx::raw_sql("CREATE DATABASE plinth_bench2").execute(&admin).await.unwrap();
    let pool =
        PgPoolOptions::new().max_connections(2).connect("postgres://postgres@127.0.0.1/plinth_bench2").await.unwrap();
    sqlx::raw_sql("CREATE TABLE e (entity_key TEXT PRIMARY KEY, uid TEXT NOT NULL UNIQUE, etag TEXT NOT NULL, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, hash TEXT NOT NULL, location_id TEXT NOT NULL, updated_at TEXT NOT NULL); CREATE INDEX ON e(location_id); CHECKPOINT").execute(&pool).await.unwrap();
    let n = 100_000;
    let keys: Vec<String> = (0..n).map(|i| format!("component:default/svc-{i}")).collect();
    let uids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let bodies: Vec<String> = (0..n).map(|i| format!("{i:x}").repeat(1500 / format!("{i:x}").len())).collect();
    let hashes: Vec<String> = (0..n).map(|i| format!("{i:064x}")).collect();
    let chunk = std::env::var("CHUNK").map(|v| v.parse().unwrap()).unwrap_or(5000usize);
    let t = Instant::now();
    let mut c = 0i64;
    for i in (0..n).step_by(chunk) {
        let r = i..(i + chunk).min(n);
        let row =
            sqlx::query("SELECT count(*) FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS t(k, u, b, h)")
                .bind(&keys[r.clone()])
                .bind(&uids[r.clone()])
                .bind(&bodies[r.clone()])
                .bind(&hashes[r.clone()])
                .fetch_one(&pool)
                .await
                .unwrap();
        c += row.get::<i64, _>(0);
    }
    println!("transfer only: {c} {:?}", t.elapsed());
    for sql in ["SELECT cardinality($1::text[])::bigint", "SELECT count(*) FROM UNNEST($1::text[])"] {
        let t = Instant::now();
        for i in (0..n).step_by(chunk) {
            let r = i..(i + chunk).min(n);
            let row = sqlx::query(sql).bind(&bodies[r.clone()]).fetch_one(&pool).await.unwrap();
            c += row.get::<i64, _>(0);
        }
        println!("{sql}: {:?}", t.elapsed());
    }
    let t = Instant::now();
    let mut buf = Vec::new();
    for b in &bodies {
        buf.extend_from_slice(b.as_bytes());
    }
    let row = sqlx::query("SELECT length($1::bytea)::bigint").bind(&buf).fetch_one(&pool).await.unwrap();
    println!("one bytea {}: {:?}", row.get::<i64, _>(0), t.elapsed());
    let t = Instant::now();
    let mut tx = pool.begin().await.unwrap();
    for i in (0..n).step_by(chunk) {
        let r = i..(i + chunk).min(n);
        sqlx::query("INSERT INTO e SELECT t.k, t.u, substr(t.h, 1, 16), 'component', 'default', t.k, t.b, t.h, 'loc', $5 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS t(k, u, b, h)")
            .bind(&keys[r.clone()]).bind(&uids[r.clone()]).bind(&bodies[r.clone()]).bind(&hashes[r.clone()]).bind("2024")
            .execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    println!("insert no returning: {:?}", t.elapsed());
    sqlx::raw_sql("TRUNCATE e; CHECKPOINT").execute(&pool).await.unwrap();
    let t = Instant::now();
    let mut tx = pool.begin().await.unwrap();
    let mut ret = 0;
    for i in (0..n).step_by(chunk) {
        let r = i..(i + chunk).min(n);
        ret += sqlx::query("INSERT INTO e SELECT t.k, t.u, substr(t.h, 1, 16), 'component', 'default', t.k, t.b, t.h, 'loc', $5 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS t(k, u, b, h) RETURNING entity_key")
            .bind(&keys[r.clone()]).bind(&uids[r.clone()]).bind(&bodies[r.clone()]).bind(&hashes[r.clone()]).bind("2024")
            .fetch_all(&mut *tx).await.unwrap().len();
    }
    tx.commit().await.unwrap();
    println!("insert returning {ret}: {:?}", t.elapsed());
    let t = Instant::now();
    let rows = sqlx::query("SELECT e.entity_key, e.location_id FROM UNNEST($1::text[], $2::text[]) AS t(k, h) LEFT JOIN e ON e.entity_key = t.k WHERE e.entity_key IS NULL OR e.hash <> t.h").bind(&keys).bind(&hashes).fetch_all(&pool).await.unwrap();
    println!("classify (all same) {}: {:?}", rows.len(), t.elapsed());
    let t = Instant::now();
    let rows =
        sqlx::query("SELECT entity_key, uid, etag, kind, namespace, name, body, hash, location_id, updated_at FROM e")
            .fetch_all(&pool)
            .await
            .unwrap();
    println!("load {}: {:?}", rows.len(), t.elapsed());
    pool.close().await;
    sqlx::raw_sql("DROP DATABASE plinth_bench2").execute(&admin).await.unwrap();
}
