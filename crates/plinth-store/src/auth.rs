//! API tokens. The store keeps a token's metadata and the hex SHA-256 of its
//! secret (`secret_hash`), never the secret: the caller hashes what a client
//! presents and looks the hash up. Every replica keeps the tokens in memory
//! and polls [`Store::tokens_fingerprint`] to learn when to reload them.
//!
//! As elsewhere, each statement is written once with `?` placeholders and
//! numbered for PostgreSQL; times are fixed-width RFC 3339 UTC text
//! (microseconds), `scopes` a JSON array of strings.

use time::OffsetDateTime;

use crate::common::{from_json, parse_stamp, stamp_micros, to_json};
use crate::dialect::on_pool;
use crate::record::record;
use crate::{Store, StoreError};

/// Who a token acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// A person: the subject is a user entity ref (`user:default/alice`).
    User,
    /// A machine client: the subject is a service name (`otel-exporter`).
    Service,
}

impl SubjectKind {
    /// The stored (and serialised) form: lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::User => "user",
            SubjectKind::Service => "service",
        }
    }

    /// The inverse of [`SubjectKind::as_str`]; `None` for anything else.
    pub fn parse(text: &str) -> Option<SubjectKind> {
        match text {
            "user" => Some(SubjectKind::User),
            "service" => Some(SubjectKind::Service),
            _ => None,
        }
    }
}

/// A token to store. The secret itself never reaches the store: only its
/// hash does.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    /// A label for people ("CI deploys").
    pub name: String,
    pub subject_kind: SubjectKind,
    /// A user entity ref (`user:default/alice`) or a service name.
    pub subject: String,
    pub scopes: Vec<String>,
    /// Hex SHA-256 of the secret; unique among all tokens.
    pub secret_hash: String,
    /// Stored to the microsecond.
    pub created_at: OffsetDateTime,
    /// Who created the token (an actor such as `user:default/alice`).
    pub created_by: String,
    /// `None`: the token does not expire.
    pub expires_at: Option<OffsetDateTime>,
}

/// A stored token. Times are stored to the microsecond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub subject_kind: SubjectKind,
    pub subject: String,
    pub scopes: Vec<String>,
    pub secret_hash: String,
    pub created_at: OffsetDateTime,
    pub created_by: String,
    pub expires_at: Option<OffsetDateTime>,
    /// Set once by [`Store::revoke_token`]; a revoked token stays revoked.
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_by: Option<String>,
    /// The latest time [`Store::touch_token`] recorded.
    pub last_used_at: Option<OffsetDateTime>,
}

/// A cheap summary of the token table that changes whenever a token is
/// created or revoked (tokens are never deleted), and not when one is only
/// used: a replica polls it and reloads its token cache ([`Store::all_tokens`])
/// only when it differs from the one it loaded with. Compare whole values;
/// the fields are for logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokensFingerprint {
    /// How many tokens are stored.
    pub tokens: u64,
    /// How many of them are revoked.
    pub revoked: u64,
    /// The latest `created_at` (stored text).
    pub last_created_at: Option<String>,
    /// The latest `revoked_at` (stored text).
    pub last_revoked_at: Option<String>,
}

record! {
    /// An `auth_tokens` row; `scopes` is a JSON array, times RFC 3339 text.
    struct TokenRecord {
        id: String,
        name: String,
        subject_kind: String,
        subject: String,
        scopes: String,
        secret_hash: String,
        created_at: String,
        created_by: String,
        expires_at: Option<String>,
        revoked_at: Option<String>,
        revoked_by: Option<String>,
        last_used_at: Option<String>,
    }
}

impl TryFrom<TokenRecord> for TokenRow {
    type Error = StoreError;

    fn try_from(r: TokenRecord) -> Result<TokenRow, StoreError> {
        let what = format!("token {}", r.id);
        let subject_kind = SubjectKind::parse(&r.subject_kind).ok_or_else(|| {
            StoreError::Database(sqlx::Error::Decode(
                format!("{what} has unknown subject kind {:?}", r.subject_kind).into(),
            ))
        })?;
        let time = |t: &Option<String>| t.as_deref().map(|t| parse_stamp(t, &what)).transpose();
        Ok(TokenRow {
            name: r.name,
            subject_kind,
            subject: r.subject,
            scopes: from_json(&r.scopes)?,
            secret_hash: r.secret_hash,
            created_at: parse_stamp(&r.created_at, &what)?,
            created_by: r.created_by,
            expires_at: time(&r.expires_at)?,
            revoked_at: time(&r.revoked_at)?,
            revoked_by: r.revoked_by,
            last_used_at: time(&r.last_used_at)?,
            id: r.id,
        })
    }
}

record! {
    /// The aggregate behind [`TokensFingerprint`].
    struct FingerprintRecord {
        tokens: i64,
        revoked: i64,
        last_created_at: Option<String>,
        last_revoked_at: Option<String>,
    }
}

/// A unique-key violation as [`StoreError::Conflict`] (with `what`), any
/// other error as it is.
pub(crate) fn conflict_or(error: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(error),
    }
}

fn decode_all(records: Vec<TokenRecord>) -> Result<Vec<TokenRow>, StoreError> {
    records.into_iter().map(TokenRow::try_from).collect()
}

impl Store {
    /// Stores a new token. A token with the same id or the same secret hash
    /// is a [`StoreError::Conflict`].
    pub async fn create_token(&self, token: &NewToken) -> Result<(), StoreError> {
        let scopes = to_json(&token.scopes)?;
        let sql = "INSERT INTO auth_tokens (id, name, subject_kind, subject, scopes, secret_hash, created_at, \
                   created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
        on_pool!(self, pool, d => {
            sqlx::query(&d.sql(sql))
                .bind(&token.id)
                .bind(&token.name)
                .bind(token.subject_kind.as_str())
                .bind(&token.subject)
                .bind(&scopes)
                .bind(&token.secret_hash)
                .bind(stamp_micros(token.created_at))
                .bind(&token.created_by)
                .bind(token.expires_at.map(stamp_micros))
                .execute(pool)
                .await
                .map_err(|e| conflict_or(e, || format!("a token with id {:?} or the same secret exists", token.id)))?;
            Ok(())
        })
    }

    /// The token whose secret hashes to `secret_hash`, revoked or expired
    /// ones included (the caller decides).
    pub async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let sql = format!("SELECT {} FROM auth_tokens WHERE secret_hash = ?", TokenRecord::COLUMNS);
        on_pool!(self, pool, d => {
            let row: Option<TokenRecord> = sqlx::query_as(&d.sql(&sql)).bind(secret_hash).fetch_optional(pool).await?;
            row.map(TokenRow::try_from).transpose()
        })
    }

    /// The token with this id.
    pub async fn get_token(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        let sql = format!("SELECT {} FROM auth_tokens WHERE id = ?", TokenRecord::COLUMNS);
        on_pool!(self, pool, d => {
            let row: Option<TokenRecord> = sqlx::query_as(&d.sql(&sql)).bind(id).fetch_optional(pool).await?;
            row.map(TokenRow::try_from).transpose()
        })
    }

    /// The tokens of one subject (all when `None`), newest first (ties by
    /// id, descending), revoked and expired ones included.
    pub async fn list_tokens(&self, subject: Option<(SubjectKind, &str)>) -> Result<Vec<TokenRow>, StoreError> {
        let filter = if subject.is_some() { " WHERE subject_kind = ? AND subject = ?" } else { "" };
        let sql = format!("SELECT {} FROM auth_tokens{filter} ORDER BY created_at DESC, id DESC", TokenRecord::COLUMNS);
        on_pool!(self, pool, d => {
            let sql = d.sql(&sql);
            let mut query = sqlx::query_as::<_, TokenRecord>(&sql);
            if let Some((kind, subject)) = subject {
                query = query.bind(kind.as_str()).bind(subject);
            }
            decode_all(query.fetch_all(pool).await?)
        })
    }

    /// Every token, oldest first: what a replica loads into its cache.
    pub async fn all_tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let sql = format!("SELECT {} FROM auth_tokens ORDER BY created_at, id", TokenRecord::COLUMNS);
        on_pool!(self, pool, d => {
            decode_all(sqlx::query_as(&d.sql(&sql)).fetch_all(pool).await?)
        })
    }

    /// Revokes a token at `at` by `by`. `false` when there is no such token
    /// or it is revoked already (the first revocation stands).
    pub async fn revoke_token(&self, id: &str, at: OffsetDateTime, by: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool, d => {
            let done = sqlx::query(&d.sql(
                "UPDATE auth_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
            ))
            .bind(stamp_micros(at))
            .bind(by)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Records that a token was used at `at`. It only moves forward (replicas
    /// may report out of order); an unknown id is not an error. Does not
    /// change [`Store::tokens_fingerprint`].
    pub async fn touch_token(&self, id: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        let at = stamp_micros(at);
        on_pool!(self, pool, d => {
            sqlx::query(&d.sql(
                "UPDATE auth_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
            ))
            .bind(&at)
            .bind(id)
            .bind(&at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The current [`TokensFingerprint`]: one aggregate over the table.
    pub async fn tokens_fingerprint(&self) -> Result<TokensFingerprint, StoreError> {
        let sql = "SELECT COUNT(*), COUNT(revoked_at), MAX(created_at), MAX(revoked_at) FROM auth_tokens";
        on_pool!(self, pool, d => {
            let r: FingerprintRecord = sqlx::query_as(sql).fetch_one(pool).await?;
            Ok(TokensFingerprint {
                tokens: u64::try_from(r.tokens).unwrap_or_default(),
                revoked: u64::try_from(r.revoked).unwrap_or_default(),
                last_created_at: r.last_created_at,
                last_revoked_at: r.last_revoked_at,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::SubjectKind;

    #[test]
    fn subject_kind_round_trips() {
        for kind in [SubjectKind::User, SubjectKind::Service] {
            assert_eq!(SubjectKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::Value::from(kind.as_str()));
        }
        assert_eq!(SubjectKind::parse("User"), None);
    }
}
