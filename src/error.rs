//! One error type for the whole service, rendered as
//! `{"error": {"status", "message", "path"?, "requirement"?}}`.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use std::fmt;

/// One member name as a JSON Pointer reference token (RFC 6901 §3: `~` → `~0`, `/` → `~1`),
/// for the `path` of an error.
pub fn pointer_token(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[derive(Debug, Clone)]
pub struct XapiError {
    pub status: StatusCode,
    pub message: String,
    /// JSON pointer (into the request body) or parameter name the error is about.
    pub path: Option<String>,
    /// The requirement violated, e.g. `Data 2.4.2.s2.b1` or `XAPI-00001`.
    pub requirement: Option<String>,
    /// A stable machine-readable kind (snake_case) for the APIs beyond xAPI, e.g.
    /// `package_not_found`; the domain that decides the error names it.
    pub code: Option<&'static str>,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

impl XapiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        XapiError {
            status,
            message: message.into(),
            path: None,
            requirement: None,
            code: None,
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub fn precondition_failed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, message)
    }
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    pub fn at(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
    pub fn req(mut self, requirement: impl Into<String>) -> Self {
        self.requirement = Some(requirement.into());
        self
    }
    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn body(&self) -> serde_json::Value {
        let mut e = json!({ "status": self.status.as_u16(), "message": self.message });
        if let Some(p) = &self.path {
            e["path"] = json!(p);
        }
        if let Some(r) = &self.requirement {
            e["requirement"] = json!(r);
        }
        if let Some(c) = self.code {
            e["code"] = json!(c);
        }
        json!({ "error": e })
    }
}

impl fmt::Display for XapiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)?;
        if let Some(p) = &self.path {
            write!(f, " at {p}")?;
        }
        if let Some(r) = &self.requirement {
            write!(f, " ({r})")?;
        }
        Ok(())
    }
}

impl std::error::Error for XapiError {}

impl ResponseError for XapiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            b.insert_header(("WWW-Authenticate", "Basic realm=\"xAPI\""));
        }
        // A full disk clears when an operator frees space: the client retries, later.
        let retry_after = self
            .retry_after
            .or((self.status == StatusCode::INSUFFICIENT_STORAGE).then_some(30));
        if let Some(secs) = retry_after {
            b.insert_header(("Retry-After", secs.to_string()));
        }
        b.content_type("application/json")
            .body(self.body().to_string())
    }
}

pub type XapiResult<T> = Result<T, XapiError>;
