//! Query strings with repeated keys (`filter=a&filter=b`), as Backstage's
//! API uses them.

use crate::error::ApiError;
use axum::extract::{FromRequestParts, RawQuery};
use axum::http::request::Parts;

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

    /// A non-negative integer parameter, with a clear error otherwise.
    pub fn number(&self, key: &str) -> Result<Option<usize>, ApiError> {
        match self.one(key) {
            None | Some("") => Ok(None),
            Some(raw) => raw.parse::<usize>().map(Some).map_err(|_| {
                ApiError::bad_request(format!("query parameter `{key}` must be a non-negative integer, not `{raw}`"))
            }),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let RawQuery(query) = RawQuery::from_request_parts(parts, state).await?;
        Ok(Params::parse(query.as_deref()))
    }
}
