//! API errors in Backstage's error shape, so Backstage clients show them:
//! `{"error": {"name", "message"}, "request": {"method", "url"},
//! "response": {"statusCode"}}`. A handler returns an [`ApiError`]; the
//! `backstage_errors` middleware, which knows the request, writes the body.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use plinth_app::{AppError, ErrorKind};
use serde::Serialize;
use serde_json::{json, Value};

/// An error answered to an API caller: a status, Backstage's error name and
/// a message that says what was wrong and how to fix it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub name: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// The error body, as the OpenAPI document describes it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
    pub request: ErrorRequest,
    pub response: ErrorResponse,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Backstage's error name: `InputError`, `NotFoundError`,
    /// `ConflictError`, `AuthenticationError`, `NotAllowedError`,
    /// `ServiceUnavailableError`, `Error`.
    pub name: String,
    pub message: String,
    /// Field errors (`[{field, message}]`) and other structured detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorRequest {
    pub method: String,
    pub url: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorResponse {
    pub status_code: u16,
}

impl ApiError {
    pub fn new(status: StatusCode, name: &'static str, message: impl std::fmt::Display) -> Self {
        ApiError { status, name, message: message.to_string(), details: None }
    }
    pub fn bad_request(message: impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "InputError", message)
    }
    pub fn not_found(message: impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "NotFoundError", message)
    }
    pub fn internal(message: impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Error", message)
    }
    pub fn unauthorized(message: impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "AuthenticationError", message)
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// The one HTTP status (and Backstage error name) of each kind.
pub fn status_of(kind: ErrorKind) -> (StatusCode, &'static str) {
    match kind {
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NotFoundError"),
        ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "InputError"),
        ErrorKind::Conflict => (StatusCode::CONFLICT, "ConflictError"),
        ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, "AuthenticationError"),
        ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "NotAllowedError"),
        ErrorKind::Overloaded => (StatusCode::TOO_MANY_REQUESTS, "ServiceUnavailableError"),
        ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableError"),
        ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "Error"),
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        let (status, name) = status_of(error.kind);
        let mut details = error.details.map_or(Value::Null, |d| *d);
        if !error.fields.is_empty() {
            if !details.is_object() {
                details = json!({});
            }
            details["fields"] = json!(error.fields);
        }
        ApiError { status, name, message: error.message, details: (!details.is_null()).then_some(details) }
    }
}

/// The error a handler hands to the middleware, to be written with the
/// request it answers.
#[derive(Debug, Clone)]
struct PendingError(ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if matches!(self.status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        response.extensions_mut().insert(PendingError(self));
        response
    }
}

/// Writes every [`ApiError`] as Backstage's error body, with the request.
pub(crate) async fn backstage_errors(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let url = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let mut response = next.run(request).await;
    let pending = response.extensions_mut().remove::<PendingError>().map(|PendingError(e)| e);
    let error = match pending {
        Some(error) => error,
        // The body limit answers before any handler, in plain text. (An
        // OTLP receiver's 413 is a protobuf or JSON `Status`: left alone.)
        None if response.status() == StatusCode::PAYLOAD_TOO_LARGE && is_plain(&response) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeError",
            format!("the body is larger than {} MiB; send less at a time", crate::api::MAX_JSON_BODY / (1024 * 1024)),
        ),
        None => return response,
    };
    with_body(response, error, method, &url)
}

/// An error answered before the router (by the identity middleware), in
/// the same shape.
pub(crate) fn respond(error: ApiError, method: &axum::http::Method, url: &str) -> Response {
    let response = error.clone().into_response();
    with_body(response, error, method.to_string(), url)
}

fn with_body(response: Response, error: ApiError, method: String, url: &str) -> Response {
    let body = ErrorBody {
        error: ErrorDetail { name: error.name.to_string(), message: error.message, details: error.details },
        request: ErrorRequest { method, url: crate::params::shorten_to(url, 2_048) },
        response: ErrorResponse { status_code: error.status.as_u16() },
    };
    let (mut parts, _) = response.into_parts();
    parts.extensions.remove::<PendingError>();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(serde_json::to_vec(&body).unwrap_or_default()))
}

/// No content type, or plain text: what a body limit layer answers.
fn is_plain(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"))
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
