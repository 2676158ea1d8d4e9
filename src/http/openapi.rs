//! `GET /openapi.json`: the OpenAPI 3.1 description of every endpoint, kept beside the
//! code in `docs/openapi.json` and embedded at build time.
use actix_web::{web, HttpResponse};

/// The document, as in the repository.
pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(document));
}

async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT)
}
