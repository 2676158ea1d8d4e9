//! The front door: what a person who opens the server in a browser sees. `GET /` is a short
//! page saying what this server is, with links to the console, the xAPI endpoint, the
//! OpenAPI document and the documentation; `GET /docs/{name}` serves the documentation
//! that ships with this version (the README and docs/*.md, as plain text); any other path
//! outside `/xapi` is a 404, as a small HTML page when the request prefers HTML (a
//! browser) and as the usual JSON error otherwise.
//!
//! Every page here is static: nothing from the request is written into a response. The
//! only style is one inline `<style>` element, allowed by its SHA-256 in the
//! Content-Security-Policy; no script runs.
use crate::error::XapiError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/")
            .route(web::get().to(home))
            .route(web::head().to(home)),
    )
    .service(
        web::resource("/favicon.ico")
            .route(web::get().to(favicon))
            .route(web::head().to(favicon)),
    )
    .service(
        web::resource("/docs/{name}")
            .route(web::get().to(doc))
            .route(web::head().to(doc)),
    );
}

/// The one style sheet of the HTML pages, exactly as it stands between `<style>` and
/// `</style>` (the CSP hash covers these bytes).
const STYLE: &str = ":root{color-scheme:light dark;--fg:#1b1b1b;--muted:#454545;--bg:#fbfaf7;--card:#f0ede6;--link:#0b4fb3;--accent:#b84a00}\
@media (prefers-color-scheme:dark){:root{--fg:#ededed;--muted:#c4c4c4;--bg:#151515;--card:#232323;--link:#9cc3ff;--accent:#ff9d4d}}\
*{box-sizing:border-box}\
body{margin:0;background:var(--bg);color:var(--fg);font:1rem/1.6 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",sans-serif}\
main,footer{max-width:44rem;margin:0 auto;padding:1.5rem 1rem}\
h1{font-size:2rem;line-height:1.2;margin:.5rem 0 1rem;padding-bottom:.5rem;border-bottom:.3rem solid var(--accent);overflow-wrap:anywhere}\
h2{font-size:1.3rem;line-height:1.3;margin:2rem 0 .75rem}\
p{margin:0 0 1rem}\
a{color:var(--link);text-underline-offset:.15em}\
a:focus-visible{outline:3px solid var(--accent);outline-offset:2px;border-radius:2px}\
ul.doors{list-style:none;margin:0;padding:0}\
ul.doors>li{background:var(--card);border-radius:.5rem;padding:.75rem 1rem;margin:0 0 .75rem}\
ul.doors>li>a{font-weight:600;font-size:1.1rem}\
ul.docs{margin:.5rem 0 0;padding-left:1.25rem}\
code{font-family:ui-monospace,\"SFMono-Regular\",Menlo,Consolas,monospace;font-size:.92em;overflow-wrap:anywhere}\
footer{color:var(--muted);font-size:.9rem}\
footer p{border-top:1px solid var(--muted);padding-top:1rem}";

/// The icon browsers show in tabs and bookmarks (they ask for `/favicon.ico` on every
/// page, JSON and text included): an SVG, which browsers recognise by its content type
/// whatever the name. A tick in the accent colour: a learning record kept.
const FAVICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
<rect width=\"32\" height=\"32\" rx=\"7\" fill=\"#b84a00\"/>\
<path d=\"M8 16.5l5.5 5.5L24 10.5\" fill=\"none\" stroke=\"#fff\" stroke-width=\"3.5\" \
stroke-linecap=\"round\" stroke-linejoin=\"round\"/></svg>\n";

/// `<head>` … `<body>` of every page, around a title.
fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n\
         <link rel=\"icon\" href=\"/favicon.ico\" type=\"image/svg+xml\">\n<style>{STYLE}</style>\n</head>\n<body>\n"
    )
}

const FOOTER: &str = concat!(
    "<footer>\n<p>karmayogi-lrs ",
    env!("CARGO_PKG_VERSION"),
    ", a Learning Record Store for Mission Karmayogi.</p>\n</footer>\n</body>\n</html>\n"
);

/// The documentation served under `/docs/`: (file name, title, text).
const DOCS: [(&str, &str, &str); 8] = [
    (
        "README.md",
        "Overview, set-up and configuration",
        include_str!("../../README.md"),
    ),
    (
        "AUDIT.md",
        "Audit log and completion certificates",
        include_str!("../../docs/AUDIT.md"),
    ),
    ("FEED.md", "Change feed", include_str!("../../docs/FEED.md")),
    (
        "ANALYTICS.md",
        "Completion analytics",
        include_str!("../../docs/ANALYTICS.md"),
    ),
    (
        "FORWARDING.md",
        "Forwarding statements to other systems",
        include_str!("../../docs/FORWARDING.md"),
    ),
    (
        "SCORM.md",
        "SCORM and cmi5 content",
        include_str!("../../docs/SCORM.md"),
    ),
    (
        "CONSOLE.md",
        "The console",
        include_str!("../../docs/CONSOLE.md"),
    ),
    (
        "PERFORMANCE.md",
        "Performance figures",
        include_str!("../../docs/PERFORMANCE.md"),
    ),
];

fn home_page() -> String {
    let mut docs = String::new();
    for (name, title, _) in DOCS {
        docs.push_str(&format!("<li><a href=\"/docs/{name}\">{title}</a></li>\n"));
    }
    format!(
        "{head}<main>\n<h1>karmayogi-lrs</h1>\n\
         <p>This server is a <strong>Learning Record Store</strong> for \
         <abbr title=\"Experience API\">xAPI</abbr> 1.0.3 and xAPI 2.0, built for Mission \
         Karmayogi. Courses on iGOT Karmayogi and the ministries' own learning content send \
         it statements about what civil servants learn; departments keep their training \
         records here, and auditors can check who completed what.</p>\n\
         <h2>Where to go</h2>\n<ul class=\"doors\">\n\
         <li><a href=\"/console\">Console</a><br>Browse learning records and manage \
         departments and credentials in the browser.</li>\n\
         <li><a href=\"/xapi/about\">xAPI endpoint</a><br>Point xAPI content and tools at \
         <code>/xapi/</code> on this server. Requests there need a credential and the \
         <code>X-Experience-API-Version</code> header, all but <code>/xapi/about</code>, \
         which lists the supported versions.</li>\n\
         <li><a href=\"/openapi.json\">API description</a><br>Every endpoint of this server \
         (xAPI, administration, audit, change feed, analytics) in OpenAPI 3.1.</li>\n\
         <li><a href=\"/docs/README.md\">Documentation</a><br>The guides of this version, \
         as plain text:\n<ul class=\"docs\">\n{docs}</ul>\n</li>\n</ul>\n\
         <h2>Getting access</h2>\n\
         <p>Credentials are issued by the operators of this server, or by your department's \
         administrators for the department's own content and tools.</p>\n\
         </main>\n{FOOTER}",
        head = head("karmayogi-lrs: Learning Record Store"),
    )
}

fn not_found_page() -> String {
    format!(
        "{head}<main>\n<h1>Page not found</h1>\n\
         <p>There is nothing at this address on this karmayogi-lrs server.</p>\n\
         <p><a href=\"/\">Go to the start page</a>, which links to the console, the xAPI \
         endpoint and the documentation.</p>\n</main>\n{FOOTER}",
        head = head("Page not found: karmayogi-lrs"),
    )
}

static HOME: LazyLock<Page> = LazyLock::new(|| Page::new(home_page()));
static NOT_FOUND: LazyLock<Page> = LazyLock::new(|| Page::new(not_found_page()));
/// The `Content-Security-Policy` of the HTML pages: nothing but this origin, no script,
/// and the one inline style by its hash.
static HTML_CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
    format!(
        "default-src 'self'; script-src 'none'; style-src 'sha256-{hash}'; \
         object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
});
/// The documents' weak ETags, in the order of `DOCS`.
static DOC_ETAGS: LazyLock<Vec<String>> =
    LazyLock::new(|| DOCS.iter().map(|(_, _, text)| etag(text)).collect());

struct Page {
    html: String,
    etag: String,
}

impl Page {
    fn new(html: String) -> Page {
        let etag = etag(&html);
        Page { html, etag }
    }
}

/// A weak validator of the content (weak: the compression middleware may change the bytes
/// on the wire, never the content).
pub(super) fn etag(content: &str) -> String {
    let digest = Sha256::digest(content);
    format!("W/\"{}\"", hex::encode(&digest[..16]))
}

/// Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2).
fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

/// The headers every response of the front door carries.
pub(super) fn secured(status: StatusCode, csp: &str) -> HttpResponseBuilder {
    let mut b = HttpResponse::build(status);
    b.insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    b
}

/// A static content with its validator: 304 when the client has it, else 200. The same
/// for every version of this binary, so clients may keep it but must revalidate
/// (`no-cache`): an upgrade shows at once.
pub(super) fn cached(
    req: &HttpRequest,
    csp: &str,
    content_type: &'static str,
    body: &str,
    etag: &str,
) -> HttpResponse {
    let status = if not_modified(req, etag) {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut b = secured(status, csp);
    b.insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::ETAG, etag));
    if status == StatusCode::NOT_MODIFIED {
        return b.finish();
    }
    b.content_type(content_type).body(body.to_owned())
}

async fn home(req: HttpRequest) -> HttpResponse {
    cached(
        &req,
        &HTML_CSP,
        "text/html; charset=utf-8",
        &HOME.html,
        &HOME.etag,
    )
}

async fn favicon(req: HttpRequest) -> HttpResponse {
    static ETAG: LazyLock<String> = LazyLock::new(|| etag(FAVICON));
    // An SVG can hold script: this one runs nothing, and its CSP says so.
    cached(
        &req,
        "default-src 'none'; frame-ancestors 'none'",
        "image/svg+xml",
        FAVICON,
        &ETAG,
    )
}

async fn doc(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    match DOCS.iter().position(|(n, _, _)| *n == name.as_str()) {
        // Plain text: nothing in it is run or styled, whatever it contains.
        Some(i) => cached(
            &req,
            "default-src 'none'; frame-ancestors 'none'",
            "text/plain; charset=utf-8",
            DOCS[i].2,
            &DOC_ETAGS[i],
        ),
        None => not_found(&req),
    }
}

/// Whether a request with this `Accept` header ranks `text/html` above `application/json`
/// (RFC 9110 §12.5.1: a type takes the weight of the most specific range that matches it).
/// A tie, `*/*` alone or no header at all means JSON: programs are this server's usual
/// clients, browsers always name `text/html`.
pub fn prefers_html(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let html = weight(accept, "text", "html");
    html > 0.0 && html > weight(accept, "application", "json")
}

/// The `q` that `accept` gives `kind/sub` (0 when no range matches).
fn weight(accept: &str, kind: &str, sub: &str) -> f32 {
    // (specificity, q) of the most specific matching range so far.
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let Some((t, s)) = parts.next().and_then(|m| m.trim().split_once('/')) else {
            continue;
        };
        let (t, s) = (t.trim(), s.trim());
        let specificity = if t.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(sub) {
            2
        } else if t.eq_ignore_ascii_case(kind) && s == "*" {
            1
        } else if t == "*" && s == "*" {
            0
        } else {
            continue;
        };
        let mut q = Some(1.0);
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q));
                }
            }
        }
        // A range with an unreadable weight counts for nothing.
        let Some(q) = q else { continue };
        if best.is_none_or(|(b, _)| specificity > b) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

/// The answer for a path no route serves outside `/xapi`: a small HTML page for browsers,
/// the JSON error for everyone else.
pub fn not_found(req: &HttpRequest) -> HttpResponse {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let mut res = if prefers_html(accept) {
        let mut b = secured(StatusCode::NOT_FOUND, &HTML_CSP);
        b.insert_header((header::CACHE_CONTROL, "no-cache"))
            .content_type("text/html; charset=utf-8")
            .body(NOT_FOUND.html.clone())
    } else {
        actix_web::ResponseError::error_response(&XapiError::not_found(NO_SUCH_RESOURCE))
    };
    res.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    res
}

/// The message of the JSON 404 outside `/xapi`.
pub const NO_SUCH_RESOURCE: &str =
    "no such resource: the xAPI resources are under /xapi/, and GET /openapi.json describes every endpoint";

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes between `<style>` and `</style>` of a page.
    fn inline_style(html: &str) -> &str {
        let start = html.find("<style>").expect("a <style>") + "<style>".len();
        let end = html[start..].find("</style>").expect("a </style>") + start;
        assert_eq!(
            html.matches("<style").count(),
            1,
            "one style element per page"
        );
        &html[start..end]
    }

    /// The browser hashes the style element's text: the CSP must name exactly that hash, or
    /// the page shows unstyled (and logs a CSP violation).
    #[test]
    fn csp_hash_is_that_of_the_inline_style() {
        for html in [home_page(), not_found_page()] {
            let style = inline_style(&html);
            let expected = format!(
                "style-src 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style.as_bytes()))
            );
            assert!(
                HTML_CSP.contains(&expected),
                "CSP `{}` lacks `{expected}`",
                *HTML_CSP
            );
        }
        assert!(HTML_CSP.starts_with("default-src 'self'; script-src 'none'; style-src 'sha256-"));
    }

    #[test]
    fn pages_have_no_script_and_no_style_attribute() {
        for html in [home_page(), not_found_page()] {
            assert!(!html.contains("<script"), "{html}");
            assert!(!html.contains(" style="), "{html}");
            assert_eq!(html.matches("<h1").count(), 1, "{html}");
            assert!(html.contains("<html lang=\"en\">"));
            assert!(html.contains("<main>"));
        }
    }

    #[test]
    fn accept_negotiation() {
        let browser =
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        assert!(prefers_html(Some(browser)));
        assert!(prefers_html(Some("text/html")));
        assert!(prefers_html(Some("text/*")));
        assert!(prefers_html(Some("application/json;q=0.5, text/html")));
        assert!(!prefers_html(None));
        assert!(!prefers_html(Some("")));
        assert!(!prefers_html(Some("*/*")));
        assert!(!prefers_html(Some("application/json")));
        assert!(!prefers_html(Some("application/json, text/html")));
        assert!(!prefers_html(Some("text/html;q=0.5, application/json")));
        assert!(!prefers_html(Some("text/html;q=0")));
        assert!(!prefers_html(Some("text/html;q=nonsense")));
        assert!(!prefers_html(Some("text/*;q=0.9, */*")));
        // The most specific range decides: text/html is excluded although text/* is not.
        assert!(!prefers_html(Some("text/html;q=0, text/*, */*;q=0.1")));
        assert!(prefers_html(Some("TEXT/HTML, application/json;q=0.9")));
        assert!(!prefers_html(Some("garbage, ;;, /")));
    }

    #[test]
    fn every_doc_is_listed_on_the_home_page() {
        let html = home_page();
        for (name, _, text) in DOCS {
            assert!(html.contains(&format!("href=\"/docs/{name}\"")), "{name}");
            assert!(!text.is_empty(), "{name}");
        }
    }
}
