//! The front door (issue 16): `GET /` is a page for a person with a browser, `/docs/` the
//! documentation of this version, and only `/xapi` speaks xAPI; any other unknown path is
//! an ordinary 404 (HTML for a browser, the JSON error for a program), with no version
//! header asked for or sent.
use crate::audit::root;
use crate::browser::run_script;
use crate::harness::{Lrs, Req, Response, VERSION_HEADER};
use base64::Engine;
use sha2::{Digest, Sha256};

/// What a browser sends when a person opens an address.
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/// A request to `path` outside the xAPI endpoint, as a person's browser or a plain program
/// would send it: no credential, no version header.
fn plain<'a>(lrs: &'a Lrs, method: &str, path: &str) -> Req<'a> {
    lrs.request(method, &format!("{}{path}", root(lrs)))
        .no_version()
        .no_auth()
}

fn assert_no_version_header(r: &Response) {
    assert!(
        r.header(VERSION_HEADER).is_none(),
        "outside /xapi no {VERSION_HEADER} header is sent\n{}",
        r.describe()
    );
}

fn assert_html(r: &Response) {
    let ct = r.header("Content-Type").unwrap_or_default();
    assert_eq!(
        ct.to_ascii_lowercase(),
        "text/html; charset=utf-8",
        "{}",
        r.describe()
    );
}

/// The security headers of every HTML page; the CSP's style hash is that of the page's one
/// inline style (checked against `html` when there is a body).
fn assert_secured(r: &Response, html: Option<&str>) {
    let csp = r.assert_header("Content-Security-Policy");
    assert!(
        csp.starts_with("default-src 'self'; script-src 'none'; style-src 'sha256-"),
        "{}",
        r.describe()
    );
    if let Some(html) = html {
        let start = html.find("<style>").expect("an inline <style>") + "<style>".len();
        let end = start + html[start..].find("</style>").expect("</style>");
        let hash = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(&html.as_bytes()[start..end]));
        assert!(
            csp.contains(&format!("style-src 'sha256-{hash}'")),
            "the CSP does not allow the page's style (sha256-{hash})\n{}",
            r.describe()
        );
        assert!(!html.contains("<script"), "no script on the page");
    }
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"));
    assert_eq!(r.header("X-Frame-Options"), Some("DENY"));
}

#[test]
fn front_door_get_root_is_a_page_saying_what_this_server_is() {
    let lrs = Lrs::start();
    let r = plain(&lrs, "GET", "/")
        .header("Accept", BROWSER_ACCEPT)
        .send();
    r.assert_status(200);
    assert_html(&r);
    assert_no_version_header(&r);
    let html = r.text();
    assert_secured(&r, Some(&html));
    assert_eq!(
        r.header("Cache-Control"),
        Some("no-cache"),
        "{}",
        r.describe()
    );
    assert!(r.header("ETag").is_some(), "{}", r.describe());
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(
        html.contains("name=\"viewport\" content=\"width=device-width, initial-scale=1\""),
        "{html}"
    );
    assert_eq!(html.matches("<h1").count(), 1, "one h1\n{html}");
    assert_eq!(html.matches("<main>").count(), 1, "one main\n{html}");
    for words in [
        "karmayogi-lrs",
        "Learning Record Store",
        "1.0.3",
        "xAPI 2.0",
        "Mission Karmayogi",
    ] {
        assert!(
            html.contains(words),
            "the page does not say `{words}`\n{html}"
        );
    }
    for href in [
        "/console",
        "/xapi/about",
        "/openapi.json",
        "/docs/README.md",
    ] {
        assert!(
            html.contains(&format!("<a href=\"{href}\">")),
            "no link to {href}\n{html}"
        );
    }
    // Any client gets the page at `/`, whatever it accepts and whatever headers it sends.
    let r = plain(&lrs, "GET", "/")
        .header("Accept", "application/json")
        .header(VERSION_HEADER, "0.9")
        .send();
    r.assert_status(200);
    assert_html(&r);
    assert_no_version_header(&r);
}

#[test]
fn front_door_head_root_has_the_headers_of_get_and_no_body() {
    let lrs = Lrs::start();
    let get = plain(&lrs, "GET", "/").send();
    get.assert_status(200);
    let head = plain(&lrs, "HEAD", "/").send();
    head.assert_status(200).assert_empty_body();
    assert_html(&head);
    assert_secured(&head, None);
    assert_no_version_header(&head);
    for h in [
        "Content-Type",
        "Content-Security-Policy",
        "ETag",
        "Cache-Control",
    ] {
        assert_eq!(
            head.header(h),
            get.header(h),
            "HEAD and GET differ in {h}\nGET: {}\nHEAD: {}",
            get.describe(),
            head.describe()
        );
    }
}

/// `no-cache` with a validator: a browser keeps the page and asks whether it changed.
#[test]
fn front_door_revalidation_answers_304_for_the_current_etag() {
    let lrs = Lrs::start();
    let r = plain(&lrs, "GET", "/").send();
    let etag = r.assert_header("ETag").to_owned();
    let again = plain(&lrs, "GET", "/")
        .header("If-None-Match", &etag)
        .send();
    again.assert_status(304).assert_empty_body();
    assert_eq!(again.header("ETag"), Some(etag.as_str()));
    let listed = plain(&lrs, "GET", "/")
        .header("If-None-Match", &format!("W/\"0123\", {etag}"))
        .send();
    listed.assert_status(304);
    let other = plain(&lrs, "GET", "/")
        .header("If-None-Match", "W/\"0123456789abcdef\"")
        .send();
    other.assert_status(200);
    assert_eq!(other.body, r.body);
}

#[test]
fn front_door_unknown_path_is_a_json_404_for_programs() {
    let lrs = Lrs::start();
    for accept in ["*/*", "application/json", "application/json, text/html"] {
        for path in ["/no-such-thing", "/console/nothing/here", "/xapi-not-quite"] {
            let r = plain(&lrs, "GET", path).header("Accept", accept).send();
            let e = r.assert_error(404);
            let message = e["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("/xapi/") && message.contains("/openapi.json"),
                "the 404 points to the xAPI endpoint and the API description\n{}",
                r.describe()
            );
            assert_no_version_header(&r);
            r.assert_header_lists("Vary", "accept");
        }
    }
    // Whatever the method, with or without credentials and version header.
    for method in ["POST", "PUT", "DELETE"] {
        let r = lrs
            .request(method, &format!("{}/no-such-thing", root(&lrs)))
            .json(&serde_json::json!({}))
            .send();
        r.assert_error(404);
        assert_no_version_header(&r);
    }
    let r = plain(&lrs, "HEAD", "/no-such-thing").send();
    r.assert_status(404).assert_empty_body();
}

#[test]
fn front_door_unknown_path_is_an_html_404_for_browsers() {
    let lrs = Lrs::start();
    for accept in [
        BROWSER_ACCEPT,
        "text/html",
        "application/json;q=0.5, text/html",
    ] {
        let r = plain(&lrs, "GET", "/no-such-page")
            .header("Accept", accept)
            .send();
        r.assert_status(404);
        assert_html(&r);
        let html = r.text();
        assert_secured(&r, Some(&html));
        assert_no_version_header(&r);
        r.assert_header_lists("Vary", "accept");
        assert!(html.contains("<html lang=\"en\">"), "{html}");
        assert!(html.contains("<h1>Page not found</h1>"), "{html}");
        assert!(html.contains("<a href=\"/\">"), "a way home\n{html}");
        // Nothing of the request is written into the page.
        assert!(!html.contains("no-such-page"), "{html}");
    }
}

/// Under `/xapi` an unknown resource is what it was: the version header is required first,
/// then the xAPI 404 with the version header, JSON whatever the client accepts.
#[test]
fn front_door_xapi_unknown_keeps_the_xapi_behaviour() {
    let lrs = Lrs::start();
    for accept in ["*/*", BROWSER_ACCEPT] {
        let r = lrs
            .get("/unknown")
            .version("1.0.3")
            .header("Accept", accept)
            .send();
        let e = r.assert_error(404);
        assert_eq!(e["message"], "no such xAPI resource", "{}", r.describe());
        r.assert_version("1.0.3");
        let r = lrs
            .get("/unknown")
            .no_version()
            .header("Accept", accept)
            .send();
        r.assert_error(400);
        // The version this client (by its credential) last spoke, as before.
        r.assert_version("1.0.3");
    }
    // CORS for content in browsers stays on the xAPI resources.
    let r = lrs
        .options("/unknown")
        .no_auth()
        .header("Origin", "https://content.example")
        .header("Access-Control-Request-Method", "GET")
        .send();
    r.assert_status(200);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
}

#[test]
fn front_door_xapi_about_still_works() {
    let lrs = Lrs::start();
    let r = lrs
        .get("/about")
        .no_auth()
        .no_version()
        .header("Origin", "https://content.example")
        .send();
    r.assert_status(200).assert_version("2.0.0");
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    let v = r.json();
    let versions: Vec<&str> = v["version"]
        .as_array()
        .expect("version array")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        versions.iter().any(|v| v.starts_with("1.0."))
            && versions.iter().any(|v| v.starts_with("2.0.")),
        "{}",
        r.describe()
    );
    lrs.head("/about")
        .no_auth()
        .no_version()
        .send()
        .assert_status(200)
        .assert_empty_body()
        .assert_version("2.0.0");
}

/// Outside `/xapi` nothing asks for the version header or answers with it, and the xAPI
/// CORS rules do not apply.
#[test]
fn front_door_no_version_header_needed_outside_xapi() {
    let lrs = Lrs::start();
    for path in ["/", "/openapi.json", "/audit/vkey", "/docs/README.md"] {
        for version in [None, Some("2.0.0"), Some("not-a-version")] {
            let mut req = plain(&lrs, "GET", path);
            if let Some(v) = version {
                req = req.header(VERSION_HEADER, v);
            }
            let r = req.send();
            r.assert_status(200);
            assert_no_version_header(&r);
        }
    }
    // The admin API and metrics answer their own errors, not the version header's 400.
    let r = plain(&lrs, "GET", "/admin/departments").send();
    r.assert_error(401);
    assert_no_version_header(&r);
    let r = lrs
        .get(&format!("{}/metrics", root(&lrs)))
        .no_version()
        .send();
    r.assert_status(200);
    assert_no_version_header(&r);
    // No xAPI preflight outside /xapi: nothing there is for content on other origins.
    let r = plain(&lrs, "OPTIONS", "/")
        .header("Origin", "https://content.example")
        .header("Access-Control-Request-Method", "GET")
        .send();
    assert!(
        r.header("Access-Control-Allow-Origin").is_none(),
        "{}",
        r.describe()
    );
    assert!(r.status >= 400, "{}", r.describe());
    // A method `/` does not serve: 405 in the JSON error format.
    let r = plain(&lrs, "POST", "/").body("text/plain", "hello").send();
    r.assert_error(405);
    assert_no_version_header(&r);
}

/// The documentation of this version, exactly as in the repository, as plain text; the
/// site icon.
#[test]
fn front_door_docs_and_icon_are_served() {
    let lrs = Lrs::start();
    for (name, text) in [
        ("README.md", include_str!("../README.md")),
        ("AUDIT.md", include_str!("../docs/AUDIT.md")),
        ("FEED.md", include_str!("../docs/FEED.md")),
        ("ANALYTICS.md", include_str!("../docs/ANALYTICS.md")),
        ("FORWARDING.md", include_str!("../docs/FORWARDING.md")),
        ("SCORM.md", include_str!("../docs/SCORM.md")),
        ("PERFORMANCE.md", include_str!("../docs/PERFORMANCE.md")),
    ] {
        let r = plain(&lrs, "GET", &format!("/docs/{name}")).send();
        r.assert_status(200);
        assert_eq!(
            r.header("Content-Type"),
            Some("text/plain; charset=utf-8"),
            "{}",
            r.describe()
        );
        assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
        assert!(
            r.text() == text,
            "/docs/{name} differs from the repository's file"
        );
        plain(&lrs, "HEAD", &format!("/docs/{name}"))
            .send()
            .assert_status(200)
            .assert_empty_body();
    }
    // The icon browsers ask for on every page (a 404 there is an error in their console).
    let r = plain(&lrs, "GET", "/favicon.ico").send();
    r.assert_status(200);
    assert_eq!(
        r.header("Content-Type"),
        Some("image/svg+xml"),
        "{}",
        r.describe()
    );
    assert!(r.text().starts_with("<svg "), "{}", r.describe());
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    assert!(
        r.assert_header("Content-Security-Policy")
            .starts_with("default-src 'none'"),
        "{}",
        r.describe()
    );
    plain(&lrs, "GET", "/docs/Cargo.toml")
        .send()
        .assert_error(404);
    plain(&lrs, "GET", "/docs/..%2FCargo.toml")
        .send()
        .assert_error(404);
    let r = plain(&lrs, "GET", "/docs/nothing.md")
        .header("Accept", BROWSER_ACCEPT)
        .send();
    r.assert_status(404);
    assert_html(&r);
}

/// The page as a person sees it, in Chromium on a phone and a desktop (browser-tests/
/// front-door.mjs): accessible, no sideways scrolling, no CSP or console error, links that
/// lead where they say.
#[test]
fn front_door_in_a_real_browser() {
    let lrs = Lrs::start();
    let out = run_script(&lrs, "front-door.mjs");
    assert!(
        out.stdout.contains("ok: front door on phone and desktop"),
        "{}",
        out.stdout
    );
    for shot in ["front-door-phone", "front-door-desktop", "not-found-phone"] {
        out.screenshot(shot);
    }
}
