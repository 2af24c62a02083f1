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

#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Params {
        Params(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }

    pub fn one(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// An integer parameter inside `range`; absent or empty is `None`.
    /// Anything else (not a number, negative, too large) is a 400 naming
    /// the parameter and the range.
    pub fn int<T>(&self, key: &str, range: RangeInclusive<T>) -> Result<Option<T>, ApiError>
    where
        T: FromStr + PartialOrd + Display + Copy,
    {
        match self.one(key) {
            None | Some("") => Ok(None),
            Some(raw) => match raw.trim().parse::<T>() {
                Ok(value) if range.contains(&value) => Ok(Some(value)),
                _ => Err(out_of_range(key, raw, range.start(), range.end())),
            },
        }
    }

    /// [`Params::int`] with a default for an absent parameter.
    pub fn int_or<T>(&self, key: &str, range: RangeInclusive<T>, default: T) -> Result<T, ApiError>
    where
        T: FromStr + PartialOrd + Display + Copy,
    {
        Ok(self.int(key, range)?.unwrap_or(default))
    }
}

/// The 400 for a number outside its range (the value shortened, so a huge
/// string is not echoed back whole).
pub fn out_of_range(key: &str, raw: &str, min: impl Display, max: impl Display) -> ApiError {
    ApiError::bad_request(format!(
        "query parameter `{key}` must be an integer from {min} to {max}, not `{}`",
        shorten(raw)
    ))
    .with_details(serde_json::json!({"parameter": key, "minimum": min.to_string(), "maximum": max.to_string()}))
}

/// At most 64 characters of user input for a message.
pub fn shorten(raw: &str) -> String {
    if raw.chars().count() <= 64 {
        raw.to_string()
    } else {
        format!("{}…", raw.chars().take(64).collect::<String>())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let RawQuery(query) = RawQuery::from_request_parts(parts, state).await?;
        Ok(Params::parse(query.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
