//! OTLP/HTTP wire handling: content types, gzip with a bound on the
//! inflated size, protobuf and OTLP/JSON decoding with errors that say where,
//! and the response bodies (partial success, `google.rpc.Status`).
//!
//! The message types are the OpenTelemetry project's own
//! (`opentelemetry-proto`): prost for protobuf, its serde support for
//! OTLP/JSON (hex trace and span ids, 64-bit integers as strings, camelCase,
//! unknown fields ignored).

use std::borrow::Cow;
use std::io::Read;

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

/// The two OTLP/HTTP encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding named by a `Content-Type` header (parameters ignored),
    /// or `None` for anything else (answered with 415).
    pub fn from_content_type(content_type: &str) -> Option<Encoding> {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Why a payload could not be read. Each variant renders as a message that
/// says what was wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unsupported Content-Encoding `{0}`: send the body uncompressed or with `gzip`")]
    UnsupportedEncoding(String),
    #[error("the gzip body could not be inflated: {0}")]
    Gzip(String),
    #[error("the payload inflates to more than {limit} bytes; split the export into smaller batches")]
    TooLarge { limit: usize },
    #[error("malformed OTLP protobuf ({message}): the body is not an {what} message")]
    Protobuf { what: &'static str, message: String },
    #[error("malformed OTLP/JSON at line {line}, column {column}: {message}")]
    Json { line: usize, column: usize, message: String },
}

impl DecodeError {
    /// Whether the client should get 413 rather than 400.
    pub fn is_too_large(&self) -> bool {
        matches!(self, DecodeError::TooLarge { .. })
    }
}

/// Inflates a gzip body (or passes an identity body through), refusing
/// to produce more than `limit` bytes so a small "zip bomb" cannot exhaust
/// memory.
pub fn decompress<'a>(
    body: &'a [u8],
    content_encoding: Option<&str>,
    limit: usize,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    match content_encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => bounded(body, limit),
        Some(e) if e.is_empty() || e == "identity" => bounded(body, limit),
        Some(e) if e == "gzip" || e == "x-gzip" => {
            let mut inflated = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            let mut decoder = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
            decoder.read_to_end(&mut inflated).map_err(|e| DecodeError::Gzip(e.to_string()))?;
            if inflated.len() > limit {
                return Err(DecodeError::TooLarge { limit });
            }
            Ok(Cow::Owned(inflated))
        }
        Some(other) => Err(DecodeError::UnsupportedEncoding(other)),
    }
}

fn bounded(body: &[u8], limit: usize) -> Result<Cow<'_, [u8]>, DecodeError> {
    if body.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(Cow::Borrowed(body))
}

fn json_error(error: serde_json::Error) -> DecodeError {
    DecodeError::Json { line: error.line(), column: error.column(), message: error.to_string() }
}

/// An OTLP/JSON export is an object. serde would also read a struct from
/// an array of its fields in order, which OTLP/JSON never sends.
fn expect_object(bytes: &[u8]) -> Result<(), DecodeError> {
    let (mut line, mut column) = (1, 0);
    for &b in bytes {
        column += 1;
        match b {
            b'\n' => (line, column) = (line + 1, 0),
            b' ' | b'\t' | b'\r' => {}
            b'{' => return Ok(()),
            _ => break,
        }
    }
    Err(DecodeError::Json {
        line,
        column,
        message: "an OTLP/JSON export is a JSON object (`{\"resourceSpans\": …}`)".into(),
    })
}

pub fn decode_traces(bytes: &[u8], encoding: Encoding) -> Result<ExportTraceServiceRequest, DecodeError> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(bytes)
            .map_err(|e| DecodeError::Protobuf { what: "ExportTraceServiceRequest", message: e.to_string() }),
        Encoding::Json => expect_object(bytes).and_then(|()| serde_json::from_slice(bytes).map_err(json_error)),
    }
}

pub fn decode_metrics(bytes: &[u8], encoding: Encoding) -> Result<ExportMetricsServiceRequest, DecodeError> {
    match encoding {
        Encoding::Protobuf => ExportMetricsServiceRequest::decode(bytes)
            .map_err(|e| DecodeError::Protobuf { what: "ExportMetricsServiceRequest", message: e.to_string() }),
        Encoding::Json => expect_object(bytes).and_then(|()| serde_json::from_slice(bytes).map_err(json_error)),
    }
}

/// The 200 body for `/v1/traces`; `partial_success` is set only when
/// something was rejected, as the specification asks.
pub fn trace_response(encoding: Encoding, rejected_spans: i64, error_message: &str) -> Vec<u8> {
    let partial_success = (rejected_spans > 0 || !error_message.is_empty())
        .then(|| ExportTracePartialSuccess { rejected_spans, error_message: error_message.to_string() });
    encode(encoding, &ExportTraceServiceResponse { partial_success })
}

/// The 200 body for `/v1/metrics`.
pub fn metrics_response(encoding: Encoding, rejected_data_points: i64, error_message: &str) -> Vec<u8> {
    let partial_success = (rejected_data_points > 0 || !error_message.is_empty())
        .then(|| ExportMetricsPartialSuccess { rejected_data_points, error_message: error_message.to_string() });
    encode(encoding, &ExportMetricsServiceResponse { partial_success })
}

fn encode<M: Message + serde::Serialize>(encoding: Encoding, message: &M) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => message.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(message).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// `google.rpc.Status`, the body OTLP/HTTP error responses carry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// gRPC code INVALID_ARGUMENT, used for 400s.
pub const CODE_INVALID_ARGUMENT: i32 = 3;
/// gRPC code RESOURCE_EXHAUSTED, used for 413 and 429.
pub const CODE_RESOURCE_EXHAUSTED: i32 = 8;
/// gRPC code UNAVAILABLE, used for 503.
pub const CODE_UNAVAILABLE: i32 = 14;

/// An error body in the request's encoding (JSON when it is unknown).
pub fn status_body(encoding: Option<Encoding>, code: i32, message: &str) -> Vec<u8> {
    match encoding {
        Some(Encoding::Protobuf) => Status { code, message: message.to_string() }.encode_to_vec(),
        _ => serde_json::to_vec(&serde_json::json!({ "code": code, "message": message })).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn content_types() {
        assert_eq!(Encoding::from_content_type("application/x-protobuf"), Some(Encoding::Protobuf));
        assert_eq!(Encoding::from_content_type("Application/JSON; charset=utf-8"), Some(Encoding::Json));
        assert_eq!(Encoding::from_content_type("text/plain"), None);
    }

    #[test]
    fn gzip_is_bounded() {
        let raw = vec![b'a'; 100_000];
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&raw).unwrap();
        let gz = encoder.finish().unwrap();
        assert_eq!(decompress(&gz, Some("gzip"), 200_000).unwrap().len(), 100_000);
        assert!(decompress(&gz, Some("gzip"), 10_000).unwrap_err().is_too_large());
        assert!(decompress(&raw, None, 10).unwrap_err().is_too_large());
        assert!(matches!(decompress(b"not gzip", Some("gzip"), 100), Err(DecodeError::Gzip(_))));
        assert!(matches!(decompress(b"x", Some("br"), 100), Err(DecodeError::UnsupportedEncoding(_))));
    }

    #[test]
    fn json_exports_are_objects_not_arrays() {
        for body in [&b"[]"[..], b"  [[]]", b"\n 1", b""] {
            assert!(
                matches!(decode_traces(body, Encoding::Json), Err(DecodeError::Json { .. })),
                "{:?} was accepted",
                String::from_utf8_lossy(body)
            );
            assert!(decode_metrics(body, Encoding::Json).is_err());
        }
        assert!(decode_traces(b" {}", Encoding::Json).is_ok());
    }

    #[test]
    fn json_conformance() {
        // Hex ids, int64 as strings, enums as integers, unknown fields ignored.
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
          "unknownField": true,
          "scopeSpans":[{"scope":{"name":"x"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
          "name":"chat gpt-4o","kind":3,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
          "attributes":[{"key":"gen_ai.usage.input_tokens","value":{"intValue":"120"}}],"status":{"code":2}}]}]}]}"#;
        let request = decode_traces(body, Encoding::Json).unwrap();
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(hex::encode(&span.trace_id), "5b8efff798038103d269b633813fc60c");
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.kind, 3);
        let error = decode_traces(b"{\n \"resourceSpans\": [ {\"scopeSpans\": 7} ]}", Encoding::Json).unwrap_err();
        assert!(matches!(error, DecodeError::Json { line: 2, .. }), "{error}");
    }

    #[test]
    fn protobuf_errors_name_the_message() {
        let error = decode_traces(&[0xff, 0xff, 0xff], Encoding::Protobuf).unwrap_err();
        assert!(error.to_string().contains("ExportTraceServiceRequest"), "{error}");
    }

    #[test]
    fn responses_round_trip() {
        let body = trace_response(Encoding::Protobuf, 2, "2 spans had no trace id");
        let decoded = ExportTraceServiceResponse::decode(body.as_slice()).unwrap();
        assert_eq!(decoded.partial_success.unwrap().rejected_spans, 2);
        assert!(trace_response(Encoding::Protobuf, 0, "").is_empty());
        let json: serde_json::Value = serde_json::from_slice(&trace_response(Encoding::Json, 1, "bad")).unwrap();
        assert_eq!(json["partialSuccess"]["rejectedSpans"], serde_json::json!(1));
        assert_eq!(json["partialSuccess"]["errorMessage"], "bad");
    }
}
