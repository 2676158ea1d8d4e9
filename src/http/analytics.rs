//! `GET /analytics/completions` (docs/ANALYTICS.md): completion figures of the caller's
//! subtree from the projected counters. Rules and rendering are `crate::analytics`; this
//! adapter authenticates, narrows to the reader's department and negotiates JSON or CSV.
use super::statements::reading_department;
use super::{authenticate, AppState, Params};
use crate::analytics::report::{self, Request};
use crate::auth::Need;
use crate::error::{XapiError, XapiResult};
use actix_web::{web, HttpRequest, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/analytics/completions", web::get().to(completions));
}

async fn completions(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = authenticate(&req, &state).await?;
    cred.require(Need::StatementsRead)?;
    if cred.reads_only_mine() {
        return Err(XapiError::forbidden(
            "completion figures count every learner of the subtree: they need statements/read or all/read, not statements/read/mine",
        ));
    }
    let reader = reading_department(&req, &cred)?;
    let params = Params::parse(&req)?;
    params.only(&report::PARAMETERS, "docs/ANALYTICS.md (parameters)")?;
    let today = crate::analytics::day_of(chrono::Utc::now().date_naive());
    let request = Request::parse(
        |n| params.get(n),
        today,
        crate::xapi::validate::is_valid_iri,
    )
    .map_err(|e| {
        XapiError::bad_request(e.message)
            .at(e.parameter.to_owned())
            .req("docs/ANALYTICS.md (parameters)")
    })?;
    // The log's size first, then the position, then the counters: the figures include at
    // least every leaf before `projectedThrough`.
    let log_size = state.store.log_state().await?.size;
    let projected = state.store.completions_position().await?;
    let rows = state
        .store
        .completion_figures(request.query(&reader))
        .await?;
    let csv = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    let mut ok = HttpResponse::Ok();
    ok.insert_header(("Cache-Control", "no-store"));
    Ok(if csv {
        ok.content_type("text/csv; charset=utf-8")
            .body(report::to_csv(&request, &rows))
    } else {
        ok.content_type("application/json")
            .body(report::to_json(&request, &rows, projected, log_size).to_string())
    })
}
