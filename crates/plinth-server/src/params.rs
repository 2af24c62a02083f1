//! Query strings with repeated keys (`filter=a&filter=b`), as Backstage's
//! API uses them, and the one way numbers are read from them: every
//! number is checked against a range before it sizes anything, and a value
//! outside it is a 400 that names the parameter and the range.

use crate::error::ApiError;
use axum::extract::{FromRequestParts, RawQuery};
use axum::http::request::Parts;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// The query string. Free-text parameters treat an empty value as absent
/// (`?owner=` filters by no owner), as form-built URLs send them. Typed
/// parameters (numbers, times, enumerations) are read with
/// [`Params::typed`]: the portal's forms send their empty fields, so there
/// an empty value is absent too; the JSON API ([`ApiParams`]) holds to its
/// OpenAPI document, where `?limit=` is not an integer and is a 400.
#[derive(Debug, Default, Clone)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
    strict: bool,
}

impl Params {
    pub(crate) fn parse(query: Option<&str>) -> Params {
        Params {
            pairs: form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            strict: false,
        }
    }

    /// As [`Params::parse`], holding typed parameters to their documented
    /// form (the JSON API).
    pub(crate) fn parse_strict(query: Option<&str>) -> Params {
        Params { strict: true, ..Params::parse(query) }
    }

    /// Every non-empty value of `key`, in order.
    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.pairs.iter().filter(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.clone()).collect()
    }

    /// Every value of a typed, repeatable `key`, in order: in the JSON API
    /// an empty one included (to be refused), elsewhere left out.
    pub(crate) fn typed_all(&self, key: &str) -> Vec<String> {
        self.pairs.iter().filter(|(k, v)| k == key && (self.strict || !v.is_empty())).map(|(_, v)| v.clone()).collect()
    }

    /// The first value of `key`. An empty value is the same as an absent
    /// one (`?owner=` filters by no owner), as form-built URLs send them.
    pub(crate) fn one(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// The first value of a typed `key` (a number, a time, one of a set):
    /// in the JSON API an empty value is returned (and refused by whoever
    /// parses it); elsewhere it is absent.
    pub(crate) fn typed(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| self.strict || !v.is_empty())
    }

    /// What a typed value is read as: outside the JSON API surrounding
    /// spaces are forgiven; in it, `" 5"` and `+5` are not integers.
    fn lenient<'a>(&self, raw: &'a str) -> &'a str {
        if self.strict {
            if raw.starts_with('+') {
                ""
            } else {
                raw
            }
        } else {
            raw.trim()
        }
    }

    /// A typed `key` that must be one of `allowed` (compared ignoring ASCII
    /// case); absent is `None`, anything else a 400 listing the values.
    pub(crate) fn choice(&self, key: &str, allowed: &[&'static str]) -> Result<Option<&'static str>, ApiError> {
        match self.typed(key) {
            None => Ok(None),
            Some(raw) => allowed.iter().find(|a| a.eq_ignore_ascii_case(raw)).copied().map(Some).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "query parameter `{key}` must be one of {}, not `{}`",
                    allowed.join(", "),
                    shorten(raw)
                ))
                .with_details(serde_json::json!({"parameter": key, "allowed": allowed}))
            }),
        }
    }

    /// An integer parameter inside `range`; absent is `None` (and, outside
    /// the JSON API, empty). Anything else (not a number, negative, too
    /// large) is a 400 naming the parameter and the range.
    pub(crate) fn int<T>(&self, key: &str, range: RangeInclusive<T>) -> Result<Option<T>, ApiError>
    where
        T: FromStr + PartialOrd + Display + Copy,
    {
        match self.typed(key) {
            None => Ok(None),
            Some(raw) => match self.lenient(raw).parse::<T>() {
                Ok(value) if range.contains(&value) => Ok(Some(value)),
                _ => Err(out_of_range(key, raw, range.start(), range.end())),
            },
        }
    }

    /// A decimal parameter (finite); absent is `None`, anything else a 400
    /// naming it.
    pub(crate) fn number(&self, key: &str) -> Result<Option<f64>, ApiError> {
        match self.typed(key) {
            None => Ok(None),
            Some(raw) => self.lenient(raw).parse::<f64>().ok().filter(|v| v.is_finite()).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!("query parameter `{key}` must be a number, not `{}`", shorten(raw)))
            }),
        }
    }

    /// [`Params::int`] with a default for an absent parameter.
    pub(crate) fn int_or<T>(&self, key: &str, range: RangeInclusive<T>, default: T) -> Result<T, ApiError>
    where
        T: FromStr + PartialOrd + Display + Copy,
    {
        Ok(self.int(key, range)?.unwrap_or(default))
    }
}

/// What Rust calls whitespace (`char::is_whitespace`, Unicode White_Space),
/// as a regex class body: the server trims and refuses exactly these, so
/// the document says the same (ECMA's `\s` differs: it has U+FEFF and
/// lacks U+0085).
macro_rules! ws {
    () => {
        r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// An entity ref as the API takes it, `[kind:][namespace/]name`, the kind
/// left to the field's default: no part empty, none holding whitespace,
/// `:` or `/`; spaces around it are forgiven.
pub(crate) const REF: &str =
    concat!("^[", ws!(), "]*(?:[^", ws!(), ":/]+:)?(?:[^", ws!(), ":/]+/)?[^", ws!(), ":/]+[", ws!(), "]*$");

/// Most characters of an entity ref (kind, namespace and name are at most
/// 63 each in a valid entity; spaces around it are forgiven).
pub(crate) const MAX_REF: usize = 512;

/// An entity ref that names its kind, `kind:[namespace/]name`.
pub(crate) const FULL_REF: &str =
    concat!("^[", ws!(), "]*[^", ws!(), ":/]+:(?:[^", ws!(), ":/]+/)?[^", ws!(), ":/]+[", ws!(), "]*$");

/// Whether `text` (not trimmed) is `[kind:][namespace/]name` with no part
/// empty or holding whitespace, `:`, `/` or one of `forbidden`.
pub(crate) fn ref_parts(text: &str, kind_required: bool, forbidden: &[char]) -> bool {
    let part = |s: &str| {
        !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c == ':' || c == '/' || forbidden.contains(&c))
    };
    let (kind, rest) = match text.split_once(':') {
        Some((kind, rest)) => (Some(kind), rest),
        None => (None, text),
    };
    let (namespace, name) = match rest.split_once('/') {
        Some((namespace, name)) => (Some(namespace), name),
        None => (None, rest),
    };
    (kind.is_some() || !kind_required) && kind.is_none_or(part) && namespace.is_none_or(part) && part(name)
}

/// Whether `raw` has the shape [`REF`] (or, `kind_required`, [`FULL_REF`])
/// describes; what matches always parses.
pub(crate) fn ref_shaped(raw: &str, kind_required: bool) -> bool {
    ref_parts(raw.trim(), kind_required, &[])
}

/// Reads an entity ref given to the API (see [`REF`]); a 400 naming
/// `field` says how to write it.
pub(crate) fn entity_ref(
    raw: &str,
    default_kind: Option<&str>,
    field: &str,
) -> Result<plinth_model::EntityRef, ApiError> {
    let malformed = |detail: String| {
        ApiError::bad_request(format!("`{field}`: {detail}"))
            .with_details(serde_json::json!({"fields": [{"field": field, "message": detail}]}))
    };
    if raw.chars().count() > MAX_REF {
        return Err(malformed(format!("is longer than {MAX_REF} characters")));
    }
    if !ref_shaped(raw, default_kind.is_none()) {
        let how = if default_kind.is_some() { "[kind:][namespace/]name" } else { "kind:[namespace/]name" };
        return Err(malformed(format!(
            "`{}` is not an entity reference; write it as `{how}`, no part empty or holding spaces, `:` or `/`",
            shorten(raw)
        )));
    }
    plinth_model::parse_ref_lenient(raw, default_kind).map_err(|e| malformed(e.to_string()))
}

/// A 400 unless `value` (a body field) has at most `max` characters, as
/// the document's `maxLength` counts them.
pub(crate) fn check_length(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        let message = format!("is longer than {max} characters");
        return Err(ApiError::bad_request(format!("`{field}`: {message}"))
            .with_details(serde_json::json!({"fields": [{"field": field, "message": message}]})));
    }
    Ok(())
}

/// The 400 for a number outside its range (the value shortened, so a huge
/// string is not echoed back whole).
pub(crate) fn out_of_range(key: &str, raw: &str, min: impl Display, max: impl Display) -> ApiError {
    ApiError::bad_request(format!(
        "query parameter `{key}` must be an integer from {min} to {max}, not `{}`",
        shorten(raw)
    ))
    .with_details(serde_json::json!({"parameter": key, "minimum": min.to_string(), "maximum": max.to_string()}))
}

/// At most 64 characters of user input for a message.
pub(crate) fn shorten(raw: &str) -> String {
    shorten_to(raw, 64)
}

/// At most `max` characters of user input.
pub(crate) fn shorten_to(raw: &str, max: usize) -> String {
    if raw.chars().count() <= max {
        raw.to_string()
    } else {
        format!("{}…", raw.chars().take(max).collect::<String>())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let RawQuery(query) = RawQuery::from_request_parts(parts, state).await?;
        Ok(Params::parse(query.as_deref()))
    }
}

/// The query string of a JSON API request: typed parameters must be well
/// formed, an empty one included (see [`Params`]).
pub(crate) struct ApiParams(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for ApiParams {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let RawQuery(query) = RawQuery::from_request_parts(parts, state).await?;
        Ok(ApiParams(Params::parse_strict(query.as_deref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_shapes() {
        for ok in ["a", "a:b", "a:b/c", "b/c", " a:b/c ", "Component:Default/X.y-z"] {
            assert!(ref_shaped(ok, false), "{ok}");
            assert!(plinth_model::parse_ref_lenient(ok, Some("component")).is_ok(), "{ok}");
        }
        for bad in ["", " ", ":a", "a:", "a:/b", "a:b/", "a:b/c/d", "a b", "a:b c", "a/b:c", "a:b:c/d", "/a"] {
            assert!(!ref_shaped(bad, false), "{bad}");
        }
        assert!(ref_shaped("a:b", true) && !ref_shaped("b", true) && !ref_shaped("a/b", true));
    }

    #[test]
    fn numbers_are_bounded_and_errors_name_the_range() {
        let params = Params::parse(Some("offset=1000000000000000&limit=20&neg=-1&big=18446744073709551616&word=x"));
        let error = params.int::<usize>("offset", 0..=10_000).unwrap_err();
        assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(error.message.contains("`offset`") && error.message.contains("0 to 10000"), "{}", error.message);
        assert_eq!(params.int::<usize>("limit", 1..=500).unwrap(), Some(20));
        assert!(params.int::<usize>("neg", 0..=5).is_err());
        assert!(params.int::<u64>("big", 0..=u64::MAX).is_err());
        assert!(params.int::<usize>("word", 0..=5).is_err());
        assert_eq!(params.int_or::<usize>("absent", 0..=5, 3).unwrap(), 3);
        let long = "9".repeat(10_000);
        let error = Params::parse(Some(&format!("limit={long}"))).int::<usize>("limit", 0..=5).unwrap_err();
        assert!(error.message.len() < 200, "{}", error.message);
    }
}
