//! Typed API errors with stable snake_case codes, rendered in one JSON
//! shape: `{"error":{"code","message","details"},"request_id"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One problem with one request field (a `details` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field: a query parameter or a body member (`k`, `company`, ...).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Per-field problems (validation), or other structured details.
    pub details: Vec<serde_json::Value>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// Extra top-level members of the body (e.g. `/ready`'s `checks`).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
            extra: None,
        }
    }

    /// 422 `validation_failed` with one detail per bad field.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        let message = format!("invalid request: check {}", names.join(", "));
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        );
        e.details = fields
            .iter()
            .map(|f| serde_json::to_value(f).expect("serialisable"))
            .collect();
        e
    }

    /// 404 `not_found` for a path no route serves.
    pub fn route_not_found(path: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {path}; see /openapi.json"),
        )
    }

    /// 500 `internal_error`; the cause is logged, not sent.
    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; the request id identifies it in the server logs",
        )
    }

    /// 503 `not_ready` while the store or rubric is not loaded, or during shutdown.
    pub fn not_ready(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
    }

    /// Adds details.
    pub fn with_details(mut self, details: Vec<serde_json::Value>) -> Self {
        self.details = details;
        self
    }

    /// The JSON body for `request_id`.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        let mut top = self.extra.clone().unwrap_or_default();
        top.insert(
            "error".into(),
            serde_json::json!({
                "code": self.code,
                "message": self.message,
                "details": self.details,
            }),
        );
        top.insert("request_id".into(), request_id.into());
        serde_json::Value::Object(top)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// Marks a response built from an [`ApiError`], so the access log can name
/// the error code.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let rid = crate::request_id::current().unwrap_or_default();
        let body = serde_json::to_vec(&self.body(&rid)).expect("serialisable");
        let mut res = (self.status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res.extensions_mut().insert(ErrorCode(self.code));
        res
    }
}

impl From<esg_store::StoreError> for ApiError {
    fn from(e: esg_store::StoreError) -> Self {
        if let esg_store::StoreError::Unavailable(why) = &e {
            tracing::error!(error_type = "store_unavailable", error = %why, "the store cannot be reached");
            return ApiError::store_unavailable();
        }
        tracing::error!(error_type = "storage_error", error = %e, "store access failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_error",
            "the store could not be read or written",
        )
    }
}

impl ApiError {
    /// 503 `store_unavailable`: the database cannot be reached right now
    /// (down, restarting, network); nothing was changed, and the same
    /// request can be sent again (`Retry-After: 2`).
    pub fn store_unavailable() -> Self {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store cannot be reached right now; nothing was changed; try again shortly",
        );
        e.retry_after = Some(2);
        e
    }
}

impl From<esg_ingest::IngestError> for ApiError {
    fn from(e: esg_ingest::IngestError) -> Self {
        use esg_ingest::ErrorCode as C;
        let status = match e.code {
            C::UnsupportedFormat => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            C::FileTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            C::StorageError => StatusCode::INTERNAL_SERVER_ERROR,
            C::StoreUnavailable => return ApiError::store_unavailable(),
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e.code.as_str(), e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_one_shape() {
        let e = ApiError::validation(vec![FieldError::new("k", "must be between 1 and 100")]);
        let b = e.body("rid-1");
        assert_eq!(b["error"]["code"], "validation_failed");
        assert_eq!(b["error"]["details"][0]["field"], "k");
        assert_eq!(b["request_id"], "rid-1");
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn ingest_codes_map_to_statuses() {
        let e: ApiError =
            esg_ingest::IngestError::new(esg_ingest::ErrorCode::UnsupportedFormat, "a PNG image")
                .into();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(e.code, "unsupported_format");
        let e: ApiError =
            esg_ingest::IngestError::new(esg_ingest::ErrorCode::NoText, "empty").into();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn an_unreachable_store_is_503_store_unavailable_not_500() {
        let e: ApiError = esg_store::StoreError::Unavailable("connection refused".into()).into();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code, "store_unavailable");
        assert_eq!(e.retry_after, Some(2));
        assert!(!e.message.contains("refused"), "no internals in the answer");
        let e: ApiError = esg_ingest::IngestError::new(
            esg_ingest::ErrorCode::StoreUnavailable,
            "unavailable: connection refused",
        )
        .into();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
        );
        let e: ApiError = esg_store::StoreError::Corrupt("bad row".into()).into();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::INTERNAL_SERVER_ERROR, "storage_error")
        );
    }
}
