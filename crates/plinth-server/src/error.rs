//! API errors in Backstage's error shape, so Backstage clients show them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use plinth_catalog::CatalogError;
use serde_json::json;

/// An error answered to an API caller: a status, Backstage's error name and
/// a message that says what was wrong and how to fix it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub name: &'static str,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn bad_request(message: impl std::fmt::Display) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, name: "InputError", message: message.to_string(), details: None }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::NOT_FOUND, name: "NotFoundError", message: message.into(), details: None }
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::CONFLICT, name: "ConflictError", message: message.into(), details: None }
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            name: "AuthenticationError",
            message: message.into(),
            details: None,
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, name: "Error", message: message.into(), details: None }
    }
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::UnknownLocation(_) => ApiError::not_found(error.to_string()),
            CatalogError::BadLocation(_) => ApiError::bad_request(error.to_string()),
            other => {
                tracing::error!(error = %other, "request failed");
                ApiError::internal(other.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"name": self.name, "message": self.message});
        if let Some(details) = self.details {
            error["details"] = details;
        }
        let body = json!({"error": error, "response": {"statusCode": self.status.as_u16()}});
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Parses a JSON request body; errors say where (`what`, line, column).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("{what}: {e} (line {}, column {})", e.line(), e.column())))
}
