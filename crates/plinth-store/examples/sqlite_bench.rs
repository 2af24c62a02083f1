//! Temporary benchmark.
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Row;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let dir = tempfile::TempDir::new().unwrap();
    let opts = SqliteConnectOptions::new()
        .filename(dir.path().join("b.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .row_buffer_size(std::env::var("ROWBUF").map(|v| v.parse().unwrap()).unwrap_or(50));
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.unwrap();
    sqlx::raw_sql("CREATE TABLE change_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, entity_key TEXT NOT NULL, op TEXT NOT NULL, at TEXT NOT NULL)").execute(&pool).await.unwrap();
    let keys: Vec<String> = (0..100_000).map(|i| format!("component:default/svc-{i}")).collect();
    for chunk_size in [100usize, 500, 1000, 3000, 10000] {
        for returning in [false, true] {
            let mut tx = pool.begin().await.unwrap();
            let t = Instant::now();
            let mut n = 0;
            for chunk in keys.chunks(chunk_size) {
                let row = "(?, ?, ?)";
                let sql = format!(
                    "INSERT INTO change_log (entity_key, op, at) VALUES {}{}",
                    vec![row; chunk.len()].join(", "),
                    if returning { " RETURNING seq, entity_key" } else { "" }
                );
                let mut q = sqlx::query(&sql);
                for k in chunk {
                    q = q.bind(k.as_str()).bind("upsert").bind("2024-01-01T00:00:00.000000Z");
                }
                if returning {
                    n += q.fetch_all(&mut *tx).await.unwrap().len();
                } else {
                    n += q.execute(&mut *tx).await.unwrap().rows_affected() as usize;
                }
            }
            tx.commit().await.unwrap();
            println!("chunk {chunk_size} returning {returning}: {n} rows {:?}", t.elapsed());
        }
    }
    // json_each
    let t = Instant::now();
    let json = serde_json::to_string(&keys).unwrap();
    let mut tx = pool.begin().await.unwrap();
    let rows = sqlx::query("INSERT INTO change_log (entity_key, op, at) SELECT value, 'upsert', ?2 FROM json_each(?1) ORDER BY key RETURNING seq, entity_key").bind(&json).bind("2024").fetch_all(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    println!("json_each: {} rows {:?}", rows.len(), t.elapsed());
    let t = Instant::now();
    let rows = sqlx::query("SELECT seq, entity_key, op, at FROM change_log").fetch_all(&pool).await.unwrap();
    let s: i64 = rows.iter().map(|r| r.get::<i64, _>(0)).sum();
    println!("select all {} rows {:?} {s}", rows.len(), t.elapsed());
}
