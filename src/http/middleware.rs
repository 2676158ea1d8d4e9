//! Cross-cutting HTTP behaviour for every xAPI resource: the version header (Communication
//! 3.3), CORS for browser content, alternate request syntax (Communication 1.3, 1.0.x only)
//! and JSON errors for anything that never reached a handler.
//!
//! Only `/xapi` speaks xAPI. Every other path (the admin API, the audit log, the feed,
//! analytics, metrics, the OpenAPI document, the front page, unknown paths) is ordinary
//! HTTP: it gets the JSON errors only (no version header, no alternate syntax, no CORS:
//! none of it is meant for content running in browsers on other origins).
use crate::error::XapiError;
use crate::xapi::XapiVersion;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::{Error, HttpMessage, HttpResponse};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

pub const VERSION_HEADER: &str = "x-experience-api-version";
const ALLOWED_METHODS: &str = "GET, HEAD, PUT, POST, DELETE, OPTIONS";
const ALLOWED_HEADERS: &str =
    "Authorization, Content-Type, X-Experience-API-Version, If-Match, If-None-Match, Content-Length, Accept-Language";
const EXPOSED_HEADERS: &str = "ETag, Last-Modified, X-Experience-API-Consistent-Through, X-Experience-API-Version, X-Department, Content-Type, Content-Length";

/// The headers the alternate request syntax may carry as form fields.
const FORM_HEADERS: [&str; 6] = [
    "authorization",
    "x-experience-api-version",
    "content-type",
    "content-length",
    "if-match",
    "if-none-match",
];

pub struct XapiHeaders {
    pub max_body_bytes: usize,
    pub last_versions: Arc<LastVersions>,
}

/// The version each client (by its Authorization header) last spoke. A request without a
/// usable version header gets a 400 whose `X-Experience-API-Version` names the version
/// that client was speaking, rather than one it may not understand.
#[derive(Default)]
pub struct LastVersions(Mutex<HashMap<u64, XapiVersion>>);

impl LastVersions {
    const MAX_CLIENTS: usize = 100_000;

    fn client(req: &ServiceRequest) -> Option<u64> {
        let auth = req.headers().get(header::AUTHORIZATION)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        auth.as_bytes().hash(&mut h);
        Some(h.finish())
    }

    fn remember(&self, req: &ServiceRequest, v: XapiVersion) {
        if let (Some(c), Ok(mut map)) = (Self::client(req), self.0.lock()) {
            if map.len() >= Self::MAX_CLIENTS {
                map.clear();
            }
            map.insert(c, v);
        }
    }

    fn recall(&self, req: &ServiceRequest) -> XapiVersion {
        Self::client(req)
            .and_then(|c| self.0.lock().ok().and_then(|m| m.get(&c).copied()))
            .unwrap_or(XapiVersion::V2_0)
    }
}

impl<S, B> Transform<S, ServiceRequest> for XapiHeaders
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = XapiHeadersService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(XapiHeadersService {
            service: Rc::new(service),
            max_body_bytes: self.max_body_bytes,
            last_versions: Arc::clone(&self.last_versions),
        }))
    }
}

pub struct XapiHeadersService<S> {
    service: Rc<S>,
    max_body_bytes: usize,
    last_versions: Arc<LastVersions>,
}

fn is_about(path: &str) -> bool {
    path.trim_end_matches('/').ends_with("/about")
}

fn error_response(req: ServiceRequest, e: XapiError) -> ServiceResponse<BoxBody> {
    let (http_req, _) = req.into_parts();
    ServiceResponse::new(http_req, actix_web::ResponseError::error_response(&e))
}

/// Whether a request path is one of the xAPI resources (the endpoint is `/xapi`): only
/// these get the version header, CORS and the alternate request syntax.
pub fn is_xapi(path: &str) -> bool {
    let under = |p: &str| p == "/xapi" || p.starts_with("/xapi/");
    // The content origin's cmi5 endpoint of one session: `/cmi5/{token}/xapi/…`.
    under(path)
        || path
            .strip_prefix("/cmi5/")
            .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
            .is_some_and(under)
}

/// Errors produced by the framework itself (405 for a method a resource lacks, …) get
/// the JSON error body here.
fn json_errors(res: ServiceResponse<BoxBody>, xapi: bool) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if status.as_u16() >= 400 && !res.headers().contains_key(header::CONTENT_TYPE) {
        let e = if status.as_u16() == 405 {
            let e = XapiError::new(status, "this resource does not support that method");
            if xapi {
                e.req("Communication 3.2 (methods of each resource)")
            } else {
                e
            }
        } else {
            XapiError::new(status, status.canonical_reason().unwrap_or("error"))
        };
        res.map_body(|head, _| {
            head.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            BoxBody::new(e.body().to_string())
        })
    } else {
        res
    }
}

/// Adds the version and CORS headers to any response (and JSON error bodies).
fn finish(
    res: ServiceResponse<BoxBody>,
    version: XapiVersion,
    cors: bool,
) -> ServiceResponse<BoxBody> {
    let mut res = json_errors(res, true);
    let h = res.headers_mut();
    h.insert(
        HeaderName::from_static(VERSION_HEADER),
        HeaderValue::from_static(version.header_value()),
    );
    if cors {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    res
}

fn header_version(req: &ServiceRequest) -> Result<Option<XapiVersion>, ()> {
    match req.headers().get(VERSION_HEADER) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(XapiVersion::parse_header)
            .map(Some)
            .ok_or(()),
    }
}

impl<S, B> Service<ServiceRequest> for XapiHeadersService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        if !is_xapi(req.path()) {
            return Box::pin(async move {
                let res = service.call(req).await?;
                Ok(json_errors(res.map_into_boxed_body(), false))
            });
        }
        let cors = req.headers().contains_key(header::ORIGIN);
        let max_body = self.max_body_bytes;
        let last_versions = Arc::clone(&self.last_versions);

        // CORS preflight: answered here, before authentication (browsers send no credentials).
        if req.method() == Method::OPTIONS {
            let requested = req
                .headers()
                .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .and_then(|v| v.to_str().ok())
                .map(|s| format!("{ALLOWED_HEADERS}, {s}"))
                .unwrap_or_else(|| ALLOWED_HEADERS.to_owned());
            let resp = HttpResponse::Ok()
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, requested))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
                .finish();
            let version = header_version(&req)
                .ok()
                .flatten()
                .unwrap_or(XapiVersion::V2_0);
            let (http_req, _) = req.into_parts();
            return Box::pin(async move {
                Ok(finish(ServiceResponse::new(http_req, resp), version, true))
            });
        }

        let alternate = req.method() == Method::POST && query_has_method(req.query_string());

        Box::pin(async move {
            if alternate {
                match rewrite_alternate(&mut req, max_body).await {
                    Ok(()) => {}
                    Err((e, v)) => return Ok(finish(error_response(req, e), v, cors)),
                }
            }
            let version = match header_version(&req) {
                Ok(Some(v)) => {
                    last_versions.remember(&req, v);
                    v
                }
                Ok(None) if is_about(req.path()) => XapiVersion::V2_0,
                Ok(None) => {
                    let e = XapiError::bad_request("missing X-Experience-API-Version header")
                        .at("X-Experience-API-Version")
                        .req("Communication 3.3.s4.b1");
                    let v = last_versions.recall(&req);
                    return Ok(finish(error_response(req, e), v, cors));
                }
                Err(()) if is_about(req.path()) => XapiVersion::V2_0,
                Err(()) => {
                    let e = XapiError::bad_request(
                        "unsupported X-Experience-API-Version: this LRS serves 1.0.x and 2.0.x",
                    )
                    .at("X-Experience-API-Version")
                    .req("Communication 3.3.s4.b1");
                    let v = last_versions.recall(&req);
                    return Ok(finish(error_response(req, e), v, cors));
                }
            };
            if alternate && version.is_v2() {
                let e = XapiError::bad_request("alternate request syntax is not part of xAPI 2.0")
                    .req("xAPI 2.0 (alternate request syntax removed)");
                return Ok(finish(error_response(req, e), version, cors));
            }
            req.extensions_mut().insert(version);
            let res = service.call(req).await?;
            Ok(finish(res.map_into_boxed_body(), version, cors))
        })
    }
}

fn query_has_method(q: &str) -> bool {
    q.split('&').any(|p| p.split('=').next() == Some("method"))
}

/// Communication 1.3: `POST …?method=PUT` with a form body carrying headers, parameters
/// and `content` becomes the request it stands for.
async fn rewrite_alternate(
    req: &mut ServiceRequest,
    max_body: usize,
) -> Result<(), (XapiError, XapiVersion)> {
    let fail = |m: &str| {
        (
            XapiError::bad_request(m).req("Communication 1.3 (alternate request syntax)"),
            XapiVersion::V1_0,
        )
    };
    let query: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| fail("malformed query string"))?;
    if query.len() != 1 {
        return Err(fail(
            "alternate request syntax allows no query parameter besides `method`",
        ));
    }
    let method = match query[0].1.to_ascii_uppercase().as_str() {
        "GET" => Method::GET,
        "PUT" => Method::PUT,
        "POST" => Method::POST,
        "DELETE" => Method::DELETE,
        "HEAD" => Method::HEAD,
        _ => return Err(fail("`method` must be GET, PUT, POST, DELETE or HEAD")),
    };
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(fail(
            "alternate request syntax needs Content-Type application/x-www-form-urlencoded",
        ));
    }
    let body = crate::http::read_payload(req.take_payload(), req.headers(), max_body)
        .await
        .map_err(|e| (e, XapiVersion::V1_0))?;
    let form: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&body).map_err(|_| fail("malformed form body"))?;
    let mut params = Vec::new();
    let mut content: Option<String> = None;
    let head = req.head_mut();
    head.headers.remove(header::CONTENT_TYPE);
    for (k, v) in form {
        let lk = k.to_ascii_lowercase();
        if lk == "content" {
            content = Some(v);
        } else if FORM_HEADERS.contains(&lk.as_str()) {
            let name =
                HeaderName::from_bytes(lk.as_bytes()).map_err(|_| fail("bad header name"))?;
            let value = HeaderValue::from_str(&v).map_err(|_| fail("bad header value"))?;
            head.headers.insert(name, value);
        } else {
            params.push((k, v));
        }
    }
    let content = content.unwrap_or_default();
    head.headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(content.len()));
    head.method = method;
    let q = serde_urlencoded::to_string(&params).map_err(|_| fail("bad parameters"))?;
    let uri = format!("{}{}{}", req.path(), if q.is_empty() { "" } else { "?" }, q);
    let uri = uri.parse().map_err(|_| fail("bad parameters"))?;
    req.head_mut().uri = uri;
    req.set_payload(actix_web::dev::Payload::from(bytes::Bytes::from(content)));
    Ok(())
}

/// Anything no route matched: under `/xapi` the xAPI 404; elsewhere the front door's
/// (an HTML page for a browser, JSON for a program).
pub async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, XapiError> {
    if is_xapi(req.path()) {
        Err(XapiError::not_found("no such xAPI resource"))
    } else {
        Ok(crate::http::front::not_found(&req))
    }
}

/// Requests being served now, across all workers. Past the bound a request is refused at
/// once with 503 + Retry-After: queueing it would only grow memory and latency for all.
pub struct InFlight {
    count: std::sync::atomic::AtomicUsize,
    /// 0 = unbounded.
    max: usize,
    /// Counts the requests shed (`lrs_overloaded_total`).
    metrics: Arc<crate::metrics::Metrics>,
}

/// Holds one in-flight place; gives it back when the response is done (or dropped).
pub struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0
            .count
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl InFlight {
    pub fn new(max: usize, metrics: Arc<crate::metrics::Metrics>) -> Arc<InFlight> {
        Arc::new(InFlight {
            count: std::sync::atomic::AtomicUsize::new(0),
            max,
            metrics,
        })
    }

    pub fn try_enter(self: &Arc<Self>) -> Option<InFlightGuard> {
        let before = self.count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let guard = InFlightGuard(self.clone());
        (self.max == 0 || before < self.max).then_some(guard)
    }
}

/// For `wrap_fn`, outermost: sheds a request when the in-flight bound is reached.
pub fn shed_load<S, B>(
    in_flight: &Arc<InFlight>,
    req: ServiceRequest,
    srv: &S,
) -> LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    match in_flight.try_enter() {
        Some(guard) => {
            let fut = srv.call(req);
            Box::pin(async move {
                let res = fut.await;
                drop(guard);
                res.map(ServiceResponse::map_into_boxed_body)
            })
        }
        None => {
            in_flight.metrics.overloaded();
            let mut err = XapiError::unavailable(format!(
                "the server is serving its maximum of {} requests; retry shortly",
                in_flight.max
            ));
            err.code = Some("overloaded");
            let mut resp = actix_web::ResponseError::error_response(&err);
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Box::pin(ready(Ok(req.into_response(resp))))
        }
    }
}
