//! Cross-origin access for browser-hosted content (xAPI content typically runs in a
//! browser on another origin than the LRS). Not an xAPI requirement by anchor: these
//! check the Fetch standard's CORS protocol as the project's design requires it.
use crate::harness::{Lrs, Response, VERSIONS};

const ORIGIN: &str = "https://content.example.org";

/// `Access-Control-Allow-Origin` admits `ORIGIN` (either `*` or the origin itself).
fn assert_allows_origin(r: &Response) {
    let acao = r
        .assert_header("Access-Control-Allow-Origin")
        .trim()
        .to_owned();
    assert!(
        acao == "*" || acao == ORIGIN,
        "Access-Control-Allow-Origin `{acao}` does not admit {ORIGIN}\n{}",
        r.describe()
    );
}

/// Response headers a browser script needs to read from xAPI responses.
fn assert_exposes_xapi_headers(r: &Response) {
    for h in [
        "ETag",
        "Last-Modified",
        "X-Experience-API-Consistent-Through",
        "X-Experience-API-Version",
    ] {
        r.assert_header_lists("Access-Control-Expose-Headers", h);
    }
}

/// Preflight of every xAPI resource: 2xx without credentials or version header (browsers
/// send neither on a preflight), allowing the xAPI methods and request headers.
#[test]
fn cors_preflight_allows_xapi_methods_and_headers() {
    let lrs = Lrs::start();
    let resources = [
        ("/statements", "POST"),
        ("/statements", "PUT"),
        ("/statements", "GET"),
        ("/activities/state", "PUT"),
        ("/activities/state", "DELETE"),
        ("/activities/profile", "POST"),
        ("/agents/profile", "PUT"),
        ("/activities", "GET"),
        ("/agents", "GET"),
        ("/about", "GET"),
    ];
    for (path, method) in resources {
        let r = lrs
            .options(path)
            .no_auth()
            .no_version()
            .header("Origin", ORIGIN)
            .header("Access-Control-Request-Method", method)
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type,x-experience-api-version",
            )
            .send();
        r.assert_success();
        assert_allows_origin(&r);
        for m in ["GET", "PUT", "POST", "DELETE", "HEAD"] {
            r.assert_header_lists("Access-Control-Allow-Methods", m);
        }
        for h in [
            "Authorization",
            "Content-Type",
            "X-Experience-API-Version",
            "If-Match",
            "If-None-Match",
        ] {
            r.assert_header_lists("Access-Control-Allow-Headers", h);
        }
    }
}

/// Ordinary responses to a cross-origin request carry `Access-Control-Allow-Origin` and
/// expose the xAPI response headers.
#[test]
fn cors_responses_allow_origin_and_expose_xapi_headers() {
    let lrs = Lrs::start();
    let r = lrs
        .get("/about")
        .no_auth()
        .no_version()
        .header("Origin", ORIGIN)
        .send();
    r.assert_status(200);
    assert_allows_origin(&r);
    assert_exposes_xapi_headers(&r);
    for v in VERSIONS {
        let r = lrs
            .get("/statements")
            .query("limit", "1")
            .version(v)
            .header("Origin", ORIGIN)
            .send();
        r.assert_status(200);
        assert_allows_origin(&r);
        assert_exposes_xapi_headers(&r);
        let r = lrs
            .post("/statements")
            .version(v)
            .header("Origin", ORIGIN)
            .json(&crate::harness::statement())
            .send();
        r.assert_status(200);
        assert_allows_origin(&r);
        assert_exposes_xapi_headers(&r);
    }
}

/// Error responses carry the CORS headers too, so browser content can read why it was
/// refused (401, 400 for the version header).
#[test]
fn cors_error_responses_allow_origin() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let r = lrs
            .get("/statements")
            .no_auth()
            .version(v)
            .header("Origin", ORIGIN)
            .send();
        r.assert_status(401);
        assert_allows_origin(&r);
        assert_exposes_xapi_headers(&r);
    }
    let r = lrs
        .get("/statements")
        .no_version()
        .header("Origin", ORIGIN)
        .send();
    r.assert_status(400);
    assert_allows_origin(&r);
    assert_exposes_xapi_headers(&r);
}
