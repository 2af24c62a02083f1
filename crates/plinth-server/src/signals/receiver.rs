//! OTLP/HTTP receiver: `POST /v1/traces` and `POST /v1/metrics`.
//!
//! Status codes follow the OTLP/HTTP specification: 200 (with partial
//! success when some items were refused), 400 for a payload that cannot be
//! read (with where), 413 above the size limit, 415 for another content
//! type, 429 with `Retry-After` when the in-flight memory or the queue is
//! full, 503 with `Retry-After` when the store cannot take the write. A 200
//! is only sent once the export is committed.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use plinth_telemetry::ingest::{prepare, IngestContext};
use plinth_telemetry::otlp::{self, DecodeError, Encoding};

use super::{now_s, SignalsService};
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

fn busy(service: &SignalsService, encoding: Encoding) -> Response {
    service.metrics.requests_throttled.fetch_add(1, Ordering::Relaxed);
    status(
        Some(encoding),
        StatusCode::TOO_MANY_REQUESTS,
        otlp::CODE_RESOURCE_EXHAUSTED,
        "the receiver is at its in-flight limit; retry after the Retry-After delay",
    )
}

/// What every OTLP request goes through before its signal-specific part:
/// service present, content type known, body within limits and memory
/// reserved. Returns the inflated payload and the reservation.
async fn read_request(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Arc<SignalsService>, Encoding, Bytes, Vec<tokio::sync::OwnedSemaphorePermit>), Response> {
    let Some(service) = app.config.signals.clone() else {
        return Err(status(None, StatusCode::SERVICE_UNAVAILABLE, otlp::CODE_UNAVAILABLE, "signals are not enabled"));
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        return Err(status(
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            otlp::CODE_INVALID_ARGUMENT,
            &format!("Content-Type `{content_type}` is not OTLP/HTTP; send application/x-protobuf or application/json"),
        ));
    };
    let limit = service.config.max_body_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if declared.is_some_and(|len: usize| len > limit) {
        drain(body, declared.unwrap_or(0)).await;
        return Err(too_large(encoding, limit));
    }
    let mut permits = Vec::new();
    match service.reserve(declared.unwrap_or(limit)) {
        Some(permit) => permits.push(permit),
        None => {
            drain(body, declared.unwrap_or(usize::MAX)).await;
            return Err(busy(&service, encoding));
        }
    }
    let raw = match read_body(body, declared.unwrap_or(0), limit).await {
        Ok(bytes) => bytes,
        Err(None) => return Err(too_large(encoding, limit)),
        Err(Some(message)) => {
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
        Err(error) => return Err(decode_failure(&service, encoding, &error)),
    };
    // Decoded spans, their normalised facts and the rows built from them
    // take about 12× the protobuf size until the commit (measured with the
    // bench's agent traces); reserve that, so the limit bounds real memory.
    match service.reserve(inflated.len().saturating_mul(12)) {
        Some(permit) => permits.push(permit),
        None => return Err(busy(&service, encoding)),
    }
    Ok((service, encoding, inflated, permits))
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

/// 503 + Retry-After: the export was not stored, the client should retry.
fn store_failed(service: &SignalsService, encoding: Encoding, signal: &str, error: &str) -> Response {
    service.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
    tracing::error!(%error, signal, "OTLP export not stored");
    status(
        Some(encoding),
        StatusCode::SERVICE_UNAVAILABLE,
        otlp::CODE_UNAVAILABLE,
        "the store could not take the write; retry after the Retry-After delay",
    )
}

/// The blocking decode task panicked (a bug, not the payload's fault).
fn decoder_stopped(encoding: Encoding) -> Response {
    status(Some(encoding), StatusCode::INTERNAL_SERVER_ERROR, 13, "the decoder stopped unexpectedly")
}

fn decode_failure(service: &SignalsService, encoding: Encoding, error: &DecodeError) -> Response {
    service.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
    if error.is_too_large() {
        return too_large(encoding, service.config.max_body_bytes);
    }
    status(Some(encoding), StatusCode::BAD_REQUEST, otlp::CODE_INVALID_ARGUMENT, &error.to_string())
}

/// `POST /v1/traces`.
#[utoipa::path(post, path = "/v1/traces", tag = "signals",
    request_body(content = String, description = "OTLP ExportTraceServiceRequest (application/x-protobuf or application/json, optionally gzip)"),
    responses((status = 200, description = "Stored (durably); partial success lists refused spans"),
              (status = 400, description = "Malformed payload, with where"), (status = 413, description = "Over the size limit"),
              (status = 415, description = "Not an OTLP content type"),
              (status = 429, description = "At the in-flight limit; Retry-After"), (status = 503, description = "Store unavailable; Retry-After")))]
pub async fn traces(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (service, encoding, payload, _permits) = match read_request(&app, &headers, body).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let worker = service.clone();
    // Decoding and normalising is CPU work: keep it off the async workers.
    let prepared = tokio::task::spawn_blocking(move || {
        let request = otlp::decode_traces(&payload, encoding)?;
        let attribution = worker.attribution();
        let ctx = IngestContext {
            attribution: &attribution,
            prices: &worker.config.prices,
            recent: worker.recent(),
            now_s: now_s(),
            max_age_s: worker.config.rollup_retention.as_secs() as i64,
        };
        Ok::<_, DecodeError>(prepare(&request, &ctx))
    })
    .await;
    let batch = match prepared {
        Ok(Ok(batch)) => batch,
        Ok(Err(error)) => return decode_failure(&service, encoding, &error),
        Err(_) => return decoder_stopped(encoding),
    };
    let rejected = batch.rejected;
    let rejection = batch.rejection.clone();
    service.metrics.spans_rejected.fetch_add(rejected.max(0) as u64, Ordering::Relaxed);
    if batch.accepted() > 0 {
        match service.commit(batch).await {
            Ok(_) => {}
            Err(None) => return busy(&service, encoding),
            Err(Some(error)) => return store_failed(&service, encoding, "traces", &error),
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        otlp::trace_response(encoding, rejected, &rejection),
    )
        .into_response()
}

/// `POST /v1/metrics`.
#[utoipa::path(post, path = "/v1/metrics", tag = "signals",
    request_body(content = String, description = "OTLP ExportMetricsServiceRequest (application/x-protobuf or application/json, optionally gzip)"),
    responses((status = 200, description = "Stored; partial success lists refused data points"),
              (status = 400, description = "Malformed payload"), (status = 413, description = "Over the size limit"),
              (status = 415, description = "Not an OTLP content type"),
              (status = 429, description = "At the in-flight limit; Retry-After"), (status = 503, description = "Store unavailable; Retry-After")))]
pub async fn metrics(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (service, encoding, payload, _permits) = match read_request(&app, &headers, body).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let worker = service.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        let request = otlp::decode_metrics(&payload, encoding)?;
        let attribution = worker.attribution();
        Ok::<_, DecodeError>(worker.metric_points(&request, &attribution))
    })
    .await;
    let points = match prepared {
        Ok(Ok(points)) => points,
        Ok(Err(error)) => return decode_failure(&service, encoding, &error),
        Err(_) => return decoder_stopped(encoding),
    };
    let rejected = points.rejected;
    let message = points.rejection.clone();
    match service.store_metric_points(points).await {
        Ok(()) => {}
        Err(error) => return store_failed(&service, encoding, "metrics", &error.to_string()),
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        otlp::metrics_response(encoding, rejected, &message),
    )
        .into_response()
}
