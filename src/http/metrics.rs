//! `GET /metrics` (Prometheus text format) and the middleware that records every request.
//! On the main listener it needs a root-department credential with `all` or `admin`; the
//! separate metrics listener (`--metrics-listen`) serves it to anyone and nothing else.
use super::{authenticate, AppState};
use crate::auth::Scope;
use crate::error::{XapiError, XapiResult};
use crate::metrics::{Metrics, Snapshot, CONTENT_TYPE, UNMATCHED};
use actix_web::body::MessageBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::{web, Error, HttpRequest, HttpResponse};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// Registers `/metrics` on the main listener (authenticated).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(authenticated));
}

/// The whole app of the metrics listener: `/metrics` unauthenticated, anything else 404.
pub fn configure_listener(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(open))
        .default_service(web::to(only_metrics));
}

async fn only_metrics() -> XapiResult<HttpResponse> {
    Err(XapiError::not_found(
        "this listener serves GET /metrics only",
    ))
}

async fn authenticated(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = authenticate(&req, &state).await?;
    // Metrics describe the whole LRS: only the root's operators see them.
    let operator = cred.scopes.contains(&Scope::All) || cred.scopes.contains(&Scope::Admin);
    if !cred.department.is_root() || !operator {
        return Err(XapiError::forbidden(
            "metrics need a credential of the root department with the `all` or `admin` scope",
        ));
    }
    Ok(open(state).await)
}

async fn open(state: web::Data<AppState>) -> HttpResponse {
    let snap = snapshot(&state).await;
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(state.metrics.render(&snap))
}

/// What the registry does not hold. A store that does not answer leaves its figures out:
/// metrics matter most when the store is in trouble.
async fn snapshot(state: &AppState) -> Snapshot {
    let log = state.store.log_state().await.ok();
    let (samples, p50, p99, max) = state.audit.merge_delays();
    let (_, oldest) = state.audit.unpublished();
    let now = chrono::Utc::now().timestamp_micros();
    Snapshot {
        store_queue_depth: state.store.queue_depth(),
        audit_log_size: log.map(|l| l.size),
        audit_checkpoint_size: state.audit.checkpoint().map(|(s, _)| s),
        audit_merge_delay_ms: (samples > 0).then_some((p50, p99, max)),
        audit_unpublished_seconds: oldest
            .map(|s| now.saturating_sub(s).max(0) as f64 / 1e6)
            .unwrap_or(0.0),
    }
}

/// Records each request's route pattern, method, status and duration. Wrap it outermost
/// so the time covers the other middleware too.
pub struct RecordRequests(pub Arc<Metrics>);

impl<S, B> Transform<S, ServiceRequest> for RecordRequests
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = RecordRequestsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RecordRequestsService {
            service: Rc::new(service),
            metrics: self.0.clone(),
        }))
    }
}

pub struct RecordRequestsService<S> {
    service: Rc<S>,
    metrics: Arc<Metrics>,
}

impl<S, B> Service<ServiceRequest> for RecordRequestsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let method = req.method().clone();
        let service = Rc::clone(&self.service);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let res = service.call(req).await;
            let (route, status) = match &res {
                Ok(r) => (r.request().match_pattern(), r.response().status().as_u16()),
                Err(e) => (None, e.as_response_error().status_code().as_u16()),
            };
            // Time to the response head: a streamed body's transfer is not counted.
            metrics.observe_request(
                route.as_deref().unwrap_or(UNMATCHED),
                method.as_str(),
                status,
                started.elapsed(),
            );
            res
        })
    }
}
