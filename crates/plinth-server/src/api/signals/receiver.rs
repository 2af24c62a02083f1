//! OTLP/HTTP receiver: `POST /v1/traces` and `POST /v1/metrics`.
//!
//! Status codes follow the OTLP/HTTP specification: 200 (with partial
//! success when some items were refused), 400 for a payload that cannot be
//! read (with where), 413 above the size limit, 415 for another content
//! type, 429 with `Retry-After` when the in-flight memory or the queue is
//! full, 503 with `Retry-After` when the store cannot take the write. A 200
//! is only sent once the export is committed.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use plinth_app::signals::{IngestAck, IngestError, Reservation};
use plinth_app::Caller;
use plinth_telemetry::otlp::{self, Encoding};

use crate::AppState;

/// Seconds a throttled client should wait before retrying.
const RETRY_AFTER_BUSY: &str = "2";
/// Seconds to wait when the store is unavailable.
const RETRY_AFTER_UNAVAILABLE: &str = "5";

fn status(encoding: Option<Encoding>, code: StatusCode, rpc_code: i32, message: &str) -> Response {
    let content_type = encoding.unwrap_or(Encoding::Json).content_type();
    let mut response =
        (code, [(header::CONTENT_TYPE, content_type)], otlp::status_body(encoding, rpc_code, message)).into_response();
    if code == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_BUSY));
    }
    if code == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_UNAVAILABLE));
    }
    response
}

fn busy(encoding: Encoding) -> Response {
    status(
        Some(encoding),
        StatusCode::TOO_MANY_REQUESTS,
        otlp::CODE_RESOURCE_EXHAUSTED,
        "the receiver is at its in-flight limit; retry after the Retry-After delay",
    )
}

/// What every OTLP request goes through before its signal-specific part:
/// signals enabled, content type known, body within limits and memory
/// reserved (`estimate`: what the decoded export takes until its commit,
/// beyond the body as read). Returns the inflated payload and the
/// reservation.
async fn read_request(
    app: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
    estimate: fn(&[u8], Encoding) -> usize,
) -> Result<(Encoding, Bytes, Reservation), Response> {
    let signals = app.platform.signals();
    // Who may send is settled before a byte of the payload is read.
    if let Err(error) = signals.authorize_ingest(caller) {
        let encoding =
            headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(Encoding::from_content_type);
        return Err(refused(encoding, &error));
    }
    let config = match signals.config() {
        Ok(config) => config,
        Err(error) => {
            return Err(status(None, StatusCode::SERVICE_UNAVAILABLE, otlp::CODE_UNAVAILABLE, &error.message))
        }
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        return Err(status(
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            otlp::CODE_INVALID_ARGUMENT,
            &format!(
                "Content-Type `{}` is not OTLP/HTTP; send application/x-protobuf or application/json",
                crate::params::shorten(content_type)
            ),
        ));
    };
    let limit = config.max_body_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if declared.is_some_and(|len: usize| len > limit) {
        drain(body, declared.unwrap_or(0)).await;
        signals.count_failure();
        return Err(too_large(encoding, limit));
    }
    let reserved = signals.reserve(declared.unwrap_or(limit));
    let Ok(Some(mut reservation)) = reserved else {
        drain(body, declared.unwrap_or(usize::MAX)).await;
        return Err(busy(encoding));
    };
    let raw = match read_body(body, declared.unwrap_or(0), limit).await {
        Ok(bytes) => bytes,
        Err(None) => {
            signals.count_failure();
            return Err(too_large(encoding, limit));
        }
        Err(Some(message)) => {
            signals.count_failure();
            return Err(status(
                Some(encoding),
                StatusCode::BAD_REQUEST,
                otlp::CODE_INVALID_ARGUMENT,
                &format!("could not read the body: {message}"),
            ));
        }
    };
    let content_encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let inflated = match otlp::decompress(&raw, content_encoding, limit) {
        Ok(std::borrow::Cow::Borrowed(_)) => raw.clone(),
        Ok(std::borrow::Cow::Owned(bytes)) => Bytes::from(bytes),
        Err(error) => {
            signals.count_failure();
            if error.is_too_large() {
                return Err(too_large(encoding, limit));
            }
            return Err(status(
                Some(encoding),
                StatusCode::BAD_REQUEST,
                otlp::CODE_INVALID_ARGUMENT,
                &error.to_string(),
            ));
        }
    };
    // The decoded export, its normalised spans, rows and bodies (and the
    // inflated copy of a compressed body) take from 1.5× to over 100× the
    // payload until the commit, by its shape; reserve what this one takes,
    // so the limit bounds real memory.
    let needed = estimate(&inflated, encoding);
    // An export that needs more than the whole limit could never get it: a
    // 429 would have its client retry forever. (The 2 KiB: the service
    // reserves whole KiB, rounded up, per part.)
    if needed.saturating_add(declared.unwrap_or(limit)).saturating_add(2048) > config.max_inflight_bytes {
        signals.count_failure();
        return Err(status(
            Some(encoding),
            StatusCode::PAYLOAD_TOO_LARGE,
            otlp::CODE_RESOURCE_EXHAUSTED,
            &format!(
                "this export needs about {needed} bytes of memory to ingest, more than the receiver's {}-byte \
                 in-flight limit; export smaller batches (e.g. the Collector's batch processor \
                 send_batch_max_size) or raise the limit (--otlp-max-inflight-mib)",
                config.max_inflight_bytes
            ),
        ));
    }
    if !matches!(signals.reserve_more(&mut reservation, needed), Ok(true)) {
        return Err(busy(encoding));
    }
    Ok((encoding, inflated, reservation))
}

/// Reads the body into one buffer sized from `Content-Length` (no regrowth
/// on the hot path). `Err(None)` when it exceeds `limit`.
async fn read_body(body: Body, declared: usize, limit: usize) -> Result<Bytes, Option<String>> {
    use futures::StreamExt;
    let mut buffer = Vec::with_capacity(declared.min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Some(e.to_string()))?;
        if buffer.len() + chunk.len() > limit {
            return Err(None);
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}

/// Most bytes read and discarded to answer a client that is still sending
/// (a response before its body is read reaches it as a broken connection
/// instead of the status); above this the connection is just closed.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

async fn drain(body: Body, declared: usize) {
    use futures::StreamExt;
    if declared > DRAIN_LIMIT {
        return;
    }
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > DRAIN_LIMIT {
            break;
        }
    }
}

fn too_large(encoding: Encoding, limit: usize) -> Response {
    status(
        Some(encoding),
        StatusCode::PAYLOAD_TOO_LARGE,
        otlp::CODE_RESOURCE_EXHAUSTED,
        &format!("the request is larger than the {limit}-byte limit; export smaller batches (e.g. the Collector's batch processor send_batch_max_size)"),
    )
}

/// The answer to an export the application layer took or refused.
fn answer(
    app: &AppState,
    encoding: Encoding,
    result: Result<IngestAck, IngestError>,
    body: fn(Encoding, i64, &str) -> Vec<u8>,
) -> Response {
    match result {
        Ok(ack) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoding.content_type())],
            body(encoding, ack.rejected, &ack.rejection),
        )
            .into_response(),
        Err(IngestError::Invalid(message)) => {
            status(Some(encoding), StatusCode::BAD_REQUEST, otlp::CODE_INVALID_ARGUMENT, &message)
        }
        Err(IngestError::TooLarge) => {
            let limit = app.platform.signals().config().map(|c| c.max_body_bytes).unwrap_or_default();
            too_large(encoding, limit)
        }
        Err(IngestError::Busy) => busy(encoding),
        Err(IngestError::Unavailable(message)) => {
            status(Some(encoding), StatusCode::SERVICE_UNAVAILABLE, otlp::CODE_UNAVAILABLE, &message)
        }
        Err(IngestError::Internal(_)) => {
            status(Some(encoding), StatusCode::INTERNAL_SERVER_ERROR, 13, "the decoder stopped unexpectedly")
        }
        Err(IngestError::Refused(error)) => refused(Some(encoding), &error),
    }
}

/// 401 (`UNAUTHENTICATED`, with the bearer challenge) or 403
/// (`PERMISSION_DENIED`) in the OTLP status shape.
fn refused(encoding: Option<Encoding>, error: &plinth_app::AppError) -> Response {
    let (code, grpc) = match error.kind {
        plinth_app::ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, 16),
        _ => (StatusCode::FORBIDDEN, 7),
    };
    let mut response = status(encoding, code, grpc, &error.message);
    if code == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(crate::middleware::CHALLENGE));
    }
    response
}

/// `POST /v1/traces`.
/// Declares the OTLP/JSON form of an export response for the document.
macro_rules! export_response {
    ($(#[$doc:meta])* $name:ident, $rejected:literal) => {
        $(#[$doc])*
        pub(crate) enum $name {}

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::api::schema::from_json(serde_json::json!({
                    "type": "object",
                    "properties": {"partialSuccess": {
                        "type": ["object", "null"],
                        "description": "Present when part of the export was refused",
                        "properties": {
                            $rejected: {"type": ["string", "integer"], "description": "How many were refused (int64, a string in OTLP/JSON)"},
                            "errorMessage": {"type": "string", "description": "Why"}
                        }
                    }}
                }))
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

export_response!(
    /// OTLP `ExportTraceServiceResponse` as OTLP/JSON.
    ExportTraceServiceResponse,
    "rejectedSpans"
);
export_response!(
    /// OTLP `ExportMetricsServiceResponse` as OTLP/JSON.
    ExportMetricsServiceResponse,
    "rejectedDataPoints"
);

#[utoipa::path(post, path = "/v1/traces", tag = "signals",
    request_body(content((String = "application/x-protobuf"), (Object = "application/json")), description = "OTLP ExportTraceServiceRequest (protobuf or OTLP/JSON, optionally gzip)"),
    responses((status = 200, description = "Stored (durably); partial success lists refused spans (in the request's encoding)",
               content((ExportTraceServiceResponse = "application/json"), (String = "application/x-protobuf"))),
              (status = 400, description = "Malformed payload, with where"), (status = 413, description = "Over the size limit"),
              (status = 415, description = "Not an OTLP content type"),
              (status = 429, description = "At the in-flight limit; Retry-After"), (status = 503, description = "Store unavailable; Retry-After")))]
pub(crate) async fn traces(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (encoding, payload, reservation) =
        match read_request(&app, &caller, &headers, body, plinth_app::signals::reservation_for).await {
            Ok(parts) => parts,
            Err(response) => return response,
        };
    let result = app.platform.signals().ingest_traces(&caller, payload, encoding, &reservation).await;
    answer(&app, encoding, result, otlp::trace_response)
}

/// `POST /v1/metrics`.
#[utoipa::path(post, path = "/v1/metrics", tag = "signals",
    request_body(content((String = "application/x-protobuf"), (Object = "application/json")), description = "OTLP ExportMetricsServiceRequest (protobuf or OTLP/JSON, optionally gzip)"),
    responses((status = 200, description = "Stored; partial success lists refused data points (in the request's encoding)",
               content((ExportMetricsServiceResponse = "application/json"), (String = "application/x-protobuf"))),
              (status = 400, description = "Malformed payload"), (status = 413, description = "Over the size limit"),
              (status = 415, description = "Not an OTLP content type"),
              (status = 429, description = "At the in-flight limit; Retry-After"), (status = 503, description = "Store unavailable; Retry-After")))]
pub(crate) async fn metrics(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Metrics keep the earlier 12× multiple: it was measured on traces, and
    // metric shapes are not yet checked the way tests/otlp_memory.rs checks
    // trace shapes.
    let estimate = |payload: &[u8], _: Encoding| payload.len().saturating_mul(12);
    let (encoding, payload, reservation) = match read_request(&app, &caller, &headers, body, estimate).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let result = app.platform.signals().ingest_metrics(&caller, payload, encoding, &reservation).await;
    answer(&app, encoding, result, otlp::metrics_response)
}
