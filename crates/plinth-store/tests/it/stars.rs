//! Starred entities; every scenario runs on SQLite and PostgreSQL.

use plinth_store::StarRow;
use plinth_testkit::{scenarios, Backend};
use time::OffsetDateTime;

use crate::common::Harness;

/// Names the PostgreSQL databases of this suite.
const DATABASE: &str = "stars";

scenarios!(stars_round_trip, stars_are_per_user_and_bounded, stars_survive_reopening);

fn ts(second: u8) -> OffsetDateTime {
    time::macros::datetime!(2024-05-01 12:00:00.123456 UTC).replace_second(second).expect("a second of a minute")
}

const ALICE: &str = "user:default/alice";
const BOB: &str = "user:default/bob";

fn refs(rows: &[StarRow]) -> Vec<&str> {
    rows.iter().map(|r| r.entity_ref.as_str()).collect()
}

async fn stars_round_trip(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let s = &h.store;
    assert!(s.add_star(ALICE, "component:default/checkout", ts(1)).await.unwrap());
    // A second star is a no-op that keeps the first time.
    assert!(!s.add_star(ALICE, "component:default/checkout", ts(9)).await.unwrap());
    assert!(s.add_star(ALICE, "api:default/payments", ts(2)).await.unwrap());
    let stars = s.list_stars(ALICE, 10).await.unwrap();
    assert_eq!(refs(&stars), ["api:default/payments", "component:default/checkout"]);
    assert_eq!(
        stars[1],
        StarRow { actor: ALICE.into(), entity_ref: "component:default/checkout".into(), created_at: ts(1) }
    );
    assert!(s.is_starred(ALICE, "component:default/checkout").await.unwrap());
    assert!(!s.is_starred(BOB, "component:default/checkout").await.unwrap());
    assert!(s.remove_star(ALICE, "component:default/checkout").await.unwrap());
    assert!(!s.remove_star(ALICE, "component:default/checkout").await.unwrap());
    assert!(!s.is_starred(ALICE, "component:default/checkout").await.unwrap());
    assert_eq!(refs(&s.list_stars(ALICE, 10).await.unwrap()), ["api:default/payments"]);
}

async fn stars_are_per_user_and_bounded(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let s = &h.store;
    for i in 0..5u8 {
        s.add_star(ALICE, &format!("component:default/c{i}"), ts(i)).await.unwrap();
    }
    s.add_star(BOB, "component:default/c0", ts(30)).await.unwrap();
    assert_eq!(refs(&s.list_stars(ALICE, 2).await.unwrap()), ["component:default/c4", "component:default/c3"]);
    assert_eq!(refs(&s.list_stars(BOB, 10).await.unwrap()), ["component:default/c0"]);
    assert!(s.list_stars("user:default/nobody", 10).await.unwrap().is_empty());
    assert!(s.list_stars(ALICE, -1).await.unwrap().is_empty());
    assert_eq!(s.star_count("component:default/c0").await.unwrap(), 2);
    assert_eq!(s.star_count("component:default/c4").await.unwrap(), 1);
    assert_eq!(s.star_count("component:default/none").await.unwrap(), 0);
}

async fn stars_survive_reopening(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    h.store.add_star(ALICE, "system:default/shop", ts(3)).await.unwrap();
    let again = h.reopen().await;
    assert_eq!(refs(&again.list_stars(ALICE, 10).await.unwrap()), ["system:default/shop"]);
}
