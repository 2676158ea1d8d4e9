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

#[cfg(test)]
mod tests {
    use super::DOCUMENT;
    use serde_json::Value;

    /// The route registrations of the HTTP adapters, as written in their `configure` (a
    /// new adapter file goes here too).
    const SOURCES: [(&str, &str); 12] = [
        ("front.rs", include_str!("front.rs")),
        ("analytics.rs", include_str!("analytics.rs")),
        ("forwarding.rs", include_str!("forwarding.rs")),
        ("feed.rs", include_str!("feed.rs")),
        ("mod.rs", include_str!("mod.rs")),
        ("admin.rs", include_str!("admin.rs")),
        ("audit.rs", include_str!("audit.rs")),
        ("documents.rs", include_str!("documents.rs")),
        ("metrics.rs", include_str!("metrics.rs")),
        ("openapi.rs", include_str!("openapi.rs")),
        ("scorm.rs", include_str!("scorm.rs")),
        ("console/mod.rs", include_str!("console/mod.rs")),
    ];

    /// `{name:regex}` and `{name}` both become `{}`.
    fn shape(path: &str) -> String {
        let mut out = String::new();
        let mut depth = 0;
        for c in path.chars() {
            match c {
                '{' => {
                    if depth == 0 {
                        out.push_str("{}");
                    }
                    depth += 1;
                }
                '}' => depth -= 1,
                c if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out
    }

    /// Path literals passed to `route(`, `resource(` and `document_resource(`.
    fn registered() -> Vec<(&'static str, String)> {
        let re = regex::Regex::new(r#"(?:\.route|resource|scope)\(\s*"(/[^"]*)""#).expect("regex");
        let mut out = Vec::new();
        for (file, src) in SOURCES {
            let code = src.split("#[cfg(test)]").next().unwrap_or(src);
            for c in re.captures_iter(code) {
                out.push((file, shape(&c[1])));
            }
        }
        out
    }

    /// Every path a handler is registered under ends (or, for scopes, starts) a documented
    /// path: a new route needs its entry in docs/openapi.json.
    #[test]
    fn every_registered_route_is_documented() {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON");
        let documented: Vec<String> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(|p| shape(p))
            .collect();
        let found = registered();
        assert!(found.len() > 20, "the scan found only {found:?}");
        for (file, path) in found {
            assert!(
                documented.iter().any(|d| d == &path
                    || d.ends_with(&path)
                    || d.starts_with(&format!("{path}/"))),
                "{path} (registered in src/http/{file}) is not in docs/openapi.json"
            );
        }
    }
}
