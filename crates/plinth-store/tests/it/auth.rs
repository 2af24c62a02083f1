//! API token persistence; every scenario runs on SQLite and PostgreSQL.

use plinth_store::{NewToken, StoreError, SubjectKind, TokenRow};
use plinth_testkit::{scenarios, Backend};
use time::OffsetDateTime;

use crate::common::Harness;

/// Names the PostgreSQL databases of this suite.
const DATABASE: &str = "auth";

scenarios!(
    tokens_round_trip,
    revoke_and_touch,
    duplicate_id_or_hash_is_a_conflict,
    fingerprint_changes_on_create_and_revoke_only,
);

// ---------------------------------------------------------------- helpers --

fn ts(second: u8) -> OffsetDateTime {
    time::macros::datetime!(2024-05-01 12:00 UTC).replace_second(second).expect("a second of a minute")
}

fn hash_of(id: &str) -> String {
    format!("{:0>64}", hex_of(id))
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn user_token(id: &str, user: &str, second: u8) -> NewToken {
    NewToken {
        id: id.to_string(),
        name: format!("{id} for {user}"),
        subject_kind: SubjectKind::User,
        subject: user.to_string(),
        scopes: vec!["catalog:read".to_string(), "catalog:write".to_string()],
        secret_hash: hash_of(id),
        created_at: ts(second),
        created_by: user.to_string(),
        expires_at: None,
    }
}

fn ids(rows: &[TokenRow]) -> Vec<&str> {
    rows.iter().map(|r| r.id.as_str()).collect()
}

// ------------------------------------------------------------------ tests --

async fn tokens_round_trip(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let expires = time::macros::datetime!(2024-06-01 00:00:00.123456 UTC);
    let alice = NewToken { expires_at: Some(expires), ..user_token("t1", "user:default/alice", 1) };
    h.store.create_token(&alice).await.unwrap();
    let exporter = NewToken {
        subject_kind: SubjectKind::Service,
        subject: "otel-exporter".to_string(),
        scopes: vec![],
        created_by: "user:default/admin".to_string(),
        ..user_token("t2", "otel-exporter", 2)
    };
    h.store.create_token(&exporter).await.unwrap();
    h.store.create_token(&user_token("t3", "user:default/alice", 3)).await.unwrap();
    h.store.create_token(&user_token("t4", "user:default/bob", 3)).await.unwrap();

    let row = h.store.get_token("t1").await.unwrap().expect("stored token");
    let expected = TokenRow {
        id: "t1".to_string(),
        name: "t1 for user:default/alice".to_string(),
        subject_kind: SubjectKind::User,
        subject: "user:default/alice".to_string(),
        scopes: vec!["catalog:read".to_string(), "catalog:write".to_string()],
        secret_hash: hash_of("t1"),
        created_at: ts(1),
        created_by: "user:default/alice".to_string(),
        expires_at: Some(expires),
        revoked_at: None,
        revoked_by: None,
        last_used_at: None,
    };
    assert_eq!(row, expected);
    assert_eq!(h.store.token_by_hash(&hash_of("t1")).await.unwrap(), Some(expected));

    let service = h.store.token_by_hash(&hash_of("t2")).await.unwrap().expect("by hash");
    assert_eq!(
        (service.id.as_str(), service.subject_kind, service.subject.as_str()),
        ("t2", SubjectKind::Service, "otel-exporter")
    );
    assert!(service.scopes.is_empty());
    assert_eq!(service.expires_at, None);
    assert_eq!(service.created_by, "user:default/admin");

    assert!(h.store.get_token("missing").await.unwrap().is_none());
    assert!(h.store.token_by_hash(&hash_of("missing")).await.unwrap().is_none());

    // Newest first, ties by id descending.
    assert_eq!(ids(&h.store.list_tokens(None).await.unwrap()), ["t4", "t3", "t2", "t1"]);
    assert_eq!(ids(&h.store.list_tokens(Some((SubjectKind::User, "user:default/alice"))).await.unwrap()), ["t3", "t1"]);
    assert_eq!(ids(&h.store.list_tokens(Some((SubjectKind::Service, "otel-exporter"))).await.unwrap()), ["t2"]);
    // The kind is part of the subject.
    assert!(h.store.list_tokens(Some((SubjectKind::User, "otel-exporter"))).await.unwrap().is_empty());
    assert_eq!(ids(&h.store.all_tokens().await.unwrap()), ["t1", "t2", "t3", "t4"]);

    // A fresh handle (another replica) sees the same.
    let other = h.reopen().await;
    assert_eq!(other.all_tokens().await.unwrap(), h.store.all_tokens().await.unwrap());
}

async fn revoke_and_touch(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    h.store.create_token(&user_token("t1", "user:default/alice", 1)).await.unwrap();
    h.store.create_token(&user_token("t2", "user:default/alice", 2)).await.unwrap();

    assert!(h.store.revoke_token("t1", ts(10), "user:default/admin").await.unwrap());
    let row = h.store.get_token("t1").await.unwrap().unwrap();
    assert_eq!((row.revoked_at, row.revoked_by.as_deref()), (Some(ts(10)), Some("user:default/admin")));
    // The first revocation stands; unknown ids are not errors.
    assert!(!h.store.revoke_token("t1", ts(20), "user:default/other").await.unwrap());
    let row = h.store.get_token("t1").await.unwrap().unwrap();
    assert_eq!((row.revoked_at, row.revoked_by.as_deref()), (Some(ts(10)), Some("user:default/admin")));
    assert!(!h.store.revoke_token("missing", ts(20), "x").await.unwrap());
    // Revoked tokens are still found (the caller refuses them) and listed.
    assert!(h.store.token_by_hash(&hash_of("t1")).await.unwrap().unwrap().revoked_at.is_some());
    assert_eq!(h.store.list_tokens(None).await.unwrap().len(), 2);
    assert_eq!(h.store.get_token("t2").await.unwrap().unwrap().revoked_at, None);

    h.store.touch_token("t2", ts(30)).await.unwrap();
    assert_eq!(h.store.get_token("t2").await.unwrap().unwrap().last_used_at, Some(ts(30)));
    // Only forward: a late report from another replica does not go back.
    h.store.touch_token("t2", ts(25)).await.unwrap();
    assert_eq!(h.store.get_token("t2").await.unwrap().unwrap().last_used_at, Some(ts(30)));
    h.store.touch_token("t2", ts(40)).await.unwrap();
    assert_eq!(h.store.get_token("t2").await.unwrap().unwrap().last_used_at, Some(ts(40)));
    h.store.touch_token("missing", ts(40)).await.unwrap();
    assert_eq!(h.store.get_token("t1").await.unwrap().unwrap().last_used_at, None);
}

async fn duplicate_id_or_hash_is_a_conflict(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    h.store.create_token(&user_token("t1", "user:default/alice", 1)).await.unwrap();

    let same_hash = NewToken { id: "t2".to_string(), ..user_token("t1", "user:default/bob", 2) };
    let error = h.store.create_token(&same_hash).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");

    let same_id = NewToken { secret_hash: hash_of("other"), ..user_token("t1", "user:default/bob", 2) };
    let error = h.store.create_token(&same_id).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");

    // Nothing was overwritten or added.
    let rows = h.store.all_tokens().await.unwrap();
    assert_eq!(ids(&rows), ["t1"]);
    assert_eq!(rows[0].subject, "user:default/alice");
}

async fn fingerprint_changes_on_create_and_revoke_only(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let empty = h.store.tokens_fingerprint().await.unwrap();
    assert_eq!(empty.tokens, 0);

    h.store.create_token(&user_token("t1", "user:default/alice", 5)).await.unwrap();
    let one = h.store.tokens_fingerprint().await.unwrap();
    assert_ne!(one, empty);
    // An older token created later still changes it (the count does).
    h.store.create_token(&user_token("t2", "user:default/alice", 1)).await.unwrap();
    let two = h.store.tokens_fingerprint().await.unwrap();
    assert_ne!(two, one);
    assert_eq!((two.tokens, two.revoked), (2, 0));

    // Reads, uses, refused writes: no change.
    h.store.touch_token("t1", ts(30)).await.unwrap();
    h.store.get_token("t1").await.unwrap();
    h.store.list_tokens(None).await.unwrap();
    assert!(!h.store.revoke_token("missing", ts(31), "x").await.unwrap());
    assert!(h.store.create_token(&user_token("t1", "user:default/alice", 9)).await.is_err());
    assert_eq!(h.store.tokens_fingerprint().await.unwrap(), two);

    assert!(h.store.revoke_token("t2", ts(40), "user:default/admin").await.unwrap());
    let revoked = h.store.tokens_fingerprint().await.unwrap();
    assert_ne!(revoked, two);
    assert_eq!((revoked.tokens, revoked.revoked), (2, 1));
    assert!(!h.store.revoke_token("t2", ts(50), "user:default/admin").await.unwrap());
    assert_eq!(h.store.tokens_fingerprint().await.unwrap(), revoked);

    // Another handle (replica) computes the same value.
    assert_eq!(h.reopen().await.tokens_fingerprint().await.unwrap(), revoked);
}
