//! JWT bearer tokens (RFC 7519): where the verification keys come from, the signature,
//! the issuer and audience, the time claims, and the department claim.
//!
//! Time rules (RFC 7519 §4.1.4, §4.1.5), all with the same leeway for clock skew:
//! - `exp` is required; the token is refused once `now >= exp + leeway`;
//! - `nbf`, when present, is enforced: refused while `now + leeway < nbf`;
//! - the lifetime, `exp` minus the start (`nbf`, else `iat`, else now), may not exceed
//!   the configured maximum: a token valid for years is a leaked password.
use super::jwks::{Jwks, JwksOrigin, Lookup, JWKS_ALGORITHMS};
use crate::departments::Department;
use crate::error::{XapiError, XapiResult};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::sync::Arc;

/// Where the keys that verify bearer tokens come from.
pub enum JwtKeys {
    /// One key configured on the command line (HS256 secret or RS256 PEM).
    Static {
        key: DecodingKey,
        algorithm: Algorithm,
    },
    /// A JWK set of an identity provider (JWKS URL or OpenID Connect discovery).
    Jwks(Arc<Jwks>),
}

/// Bearer-token settings.
pub struct JwtConfig {
    pub keys: JwtKeys,
    /// Required `iss` (with an OpenID Connect issuer: that issuer).
    pub issuer: Option<String>,
    /// Required `aud`.
    pub audience: Option<String>,
    /// `account.homePage` of the authority when a token has no `iss`.
    pub authority_homepage: String,
    /// Name of the claim that holds the caller's department path.
    pub department_claim: String,
    /// Clock skew allowed on `exp` and `nbf` (seconds).
    pub leeway_secs: u64,
    /// Longest lifetime accepted (seconds).
    pub max_lifetime_secs: u64,
}

/// The Authentication requirement every refusal cites.
const AUTH_REQ: &str = "Communication 4.1 (Authentication)";

fn refuse(message: impl Into<String>) -> XapiError {
    XapiError::unauthorized(message).req(AUTH_REQ)
}

fn refuse_rfc(message: impl Into<String>, requirement: &str) -> XapiError {
    XapiError::unauthorized(message).req(requirement)
}

impl JwtConfig {
    /// Whether a token must carry the department claim: yes for keys of an identity
    /// provider; tokens signed with a static key without the claim act for the root.
    pub fn department_required(&self) -> bool {
        matches!(self.keys, JwtKeys::Jwks(_))
    }

    /// A one-line description of the key source for the start-up log (no secrets).
    pub fn describe(&self) -> String {
        let keys = match &self.keys {
            JwtKeys::Static { algorithm, .. } => format!("static {algorithm:?} key"),
            JwtKeys::Jwks(j) => match j.origin() {
                JwksOrigin::Discovery { issuer } => format!("OpenID Connect issuer {issuer}"),
                JwksOrigin::Url(u) => format!("JWKS {u}"),
            },
        };
        format!(
            "bearer tokens: {keys}; department claim `{}`; leeway {} s; max lifetime {} s",
            self.department_claim, self.leeway_secs, self.max_lifetime_secs
        )
    }

    fn validation(&self, alg: Algorithm, audience: Option<&str>) -> Validation {
        let mut v = Validation::new(alg);
        // Time claims are checked by `check_times` (own messages, NumericDate with
        // fractions, one leeway); the signature, `iss` and `aud` by the library.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims.clear();
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            v.required_spec_claims.insert("iss".into());
        }
        match audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                v.required_spec_claims.insert("aud".into());
            }
            None => v.validate_aud = false,
        }
        v
    }

    /// Verifies a compact JWS and returns its claims; every failure is a 401 (503 while
    /// an identity provider's keys were never loaded).
    pub async fn verify(&self, token: &str) -> XapiResult<Value> {
        self.verify_for(token, self.audience.as_deref()).await
    }

    /// Verifies an OpenID Connect ID token: the same keys, issuer and time rules as a
    /// bearer token, with `aud` = the console's client id.
    pub async fn verify_id_token(&self, token: &str, client_id: &str) -> XapiResult<Value> {
        self.verify_for(token, Some(client_id)).await
    }

    async fn verify_for(&self, token: &str, audience: Option<&str>) -> XapiResult<Value> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            refuse(format!(
                "invalid bearer token: malformed header or unsupported algorithm ({e})"
            ))
        })?;
        let alg = header.alg;
        match &self.keys {
            JwtKeys::Static { key, algorithm } => {
                if alg != *algorithm {
                    return Err(refuse(format!(
                        "bearer token algorithm {alg:?} is not accepted (this LRS takes {algorithm:?})"
                    )));
                }
                let claims = self.decode(token, key, alg, audience)?;
                self.check(claims)
            }
            JwtKeys::Jwks(jwks) => {
                if !JWKS_ALGORITHMS.contains(&alg) {
                    return Err(refuse(format!(
                        "bearer token algorithm {alg:?} is not accepted (accepted: RS256, ES256, EdDSA)"
                    )));
                }
                let (keys, candidates) = match jwks.lookup(alg, header.kid.as_deref()).await {
                    Lookup::Keys(keys, candidates) => (keys, candidates),
                    Lookup::AlgorithmMismatch => {
                        return Err(refuse(format!(
                            "bearer token algorithm {alg:?} does not match its key"
                        )))
                    }
                    Lookup::Unknown => {
                        return Err(refuse(
                            "bearer token is signed with a key the issuer does not publish",
                        ))
                    }
                    Lookup::Unavailable => {
                        return Err(XapiError::unavailable(
                            "bearer tokens cannot be checked now: the identity provider's signing keys could not be fetched",
                        ))
                    }
                };
                let mut last = None;
                for i in candidates {
                    match self.decode(token, &keys[i].key, alg, audience) {
                        Ok(claims) => return self.check(claims),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| refuse("invalid bearer token")))
            }
        }
    }

    fn decode(
        &self,
        token: &str,
        key: &DecodingKey,
        alg: Algorithm,
        audience: Option<&str>,
    ) -> XapiResult<Value> {
        jsonwebtoken::decode::<Value>(token, key, &self.validation(alg, audience))
            .map(|d| d.claims)
            .map_err(|e| {
                refuse(match e.kind() {
                    ErrorKind::InvalidSignature => {
                        "bearer token signature does not verify".to_owned()
                    }
                    ErrorKind::InvalidAlgorithm => {
                        format!("bearer token algorithm {alg:?} does not match its key")
                    }
                    ErrorKind::InvalidIssuer => {
                        "bearer token `iss` is not the configured issuer".to_owned()
                    }
                    ErrorKind::InvalidAudience => {
                        "bearer token `aud` does not name this LRS".to_owned()
                    }
                    ErrorKind::MissingRequiredClaim(c) => {
                        format!("bearer token has no `{c}` claim")
                    }
                    _ => format!("invalid bearer token: {e}"),
                })
            })
    }

    fn check(&self, claims: Value) -> XapiResult<Value> {
        if !claims.is_object() {
            return Err(refuse("bearer token claims are not a JSON object"));
        }
        check_times(
            &claims,
            now_secs(),
            self.leeway_secs,
            self.max_lifetime_secs,
        )
        .map_err(|(m, r)| refuse_rfc(m, r))?;
        Ok(claims)
    }
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A NumericDate claim (RFC 7519 §2: seconds since the epoch, fractions allowed).
fn numeric_date(claims: &Value, name: &'static str) -> Result<Option<f64>, (String, &'static str)> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| {
                (
                    format!("bearer token `{name}` is not a NumericDate"),
                    "RFC 7519 §2 (NumericDate)",
                )
            }),
    }
}

fn show_time(t: f64) -> String {
    chrono::DateTime::from_timestamp(t.floor() as i64, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{t}"))
}

/// The time rules above; `Err((message, requirement))`.
pub fn check_times(
    claims: &Value,
    now: f64,
    leeway: u64,
    max_lifetime: u64,
) -> Result<(), (String, &'static str)> {
    let leeway = leeway as f64;
    let exp = numeric_date(claims, "exp")?.ok_or_else(|| {
        (
            "bearer token has no `exp` claim (tokens without an expiry are refused)".to_owned(),
            "RFC 7519 §4.1.4 (exp)",
        )
    })?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    if now >= exp + leeway {
        return Err((
            format!(
                "bearer token expired at {} (leeway {} s)",
                show_time(exp),
                leeway
            ),
            "RFC 7519 §4.1.4 (exp)",
        ));
    }
    if let Some(nbf) = nbf {
        if now + leeway < nbf {
            return Err((
                format!("bearer token not valid before {}", show_time(nbf)),
                "RFC 7519 §4.1.5 (nbf)",
            ));
        }
    }
    let start = nbf.or(iat).unwrap_or(now);
    let lifetime = exp - start;
    if lifetime > max_lifetime as f64 {
        let shown = if lifetime < 1e12 {
            format!(" of {} s", lifetime.ceil())
        } else {
            String::new()
        };
        return Err((
            format!("bearer token lifetime{shown} exceeds the maximum of {max_lifetime} s"),
            "RFC 7519 §4.1.4 (exp)",
        ));
    }
    Ok(())
}

/// The department a token acts for, from claim `name`: `Ok(None)` when the claim is
/// absent and not `required`. Messages never repeat the claim's value.
pub fn department_of(
    claims: &Value,
    name: &str,
    required: bool,
) -> Result<Option<Department>, String> {
    match claims.get(name) {
        None | Some(Value::Null) if required => Err(format!("bearer token has no `{name}` claim")),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Department::parse(s).map(Some).map_err(|_| {
            format!(
                "bearer token: malformed `{name}` claim (expected a department path such as `moe/dhe`, or `/` for the root)"
            )
        }),
        Some(_) => Err(format!(
            "bearer token: malformed `{name}` claim (expected a string)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: f64 = 1_700_000_000.0;

    fn times(claims: Value) -> Result<(), String> {
        check_times(&claims, NOW, 5, 86_400).map_err(|(m, _)| m)
    }

    #[test]
    fn exp_is_required_and_enforced_with_leeway() {
        assert!(times(json!({})).unwrap_err().contains("no `exp`"));
        assert!(times(json!({"exp": "soon"}))
            .unwrap_err()
            .contains("NumericDate"));
        assert!(times(json!({"exp": NOW + 60.0})).is_ok());
        assert!(
            times(json!({"exp": NOW - 4.0})).is_ok(),
            "within the leeway"
        );
        assert!(times(json!({"exp": NOW - 5.0}))
            .unwrap_err()
            .contains("expired"));
        assert!(times(json!({"exp": NOW - 3600.0}))
            .unwrap_err()
            .contains("expired"));
        assert!(
            times(json!({"exp": NOW + 60.5})).is_ok(),
            "fractions are allowed"
        );
    }

    #[test]
    fn nbf_is_enforced_with_leeway() {
        let exp = NOW + 7200.0;
        assert!(times(json!({"exp": exp, "nbf": NOW + 3600.0}))
            .unwrap_err()
            .contains("not valid before 2023-11-14T23:13:20Z"));
        assert!(times(json!({"exp": exp, "nbf": NOW + 5.0})).is_ok());
        assert!(times(json!({"exp": exp, "nbf": NOW + 6.0})).is_err());
        assert!(times(json!({"exp": exp, "nbf": NOW - 10.0})).is_ok());
        assert!(times(json!({"exp": exp, "nbf": true})).is_err());
    }

    #[test]
    fn lifetime_is_bounded() {
        assert!(times(json!({"exp": NOW + 86_400.0})).is_ok());
        assert!(times(json!({"exp": NOW + 86_401.0}))
            .unwrap_err()
            .contains("exceeds the maximum of 86400 s"));
        assert!(times(json!({"exp": NOW + 60.0, "iat": NOW - 90_000.0})).is_err());
        assert!(times(json!({"exp": NOW + 60.0, "iat": NOW - 60.0})).is_ok());
        // nbf wins over iat as the start.
        assert!(times(json!({"exp": NOW + 60.0, "nbf": NOW, "iat": NOW - 90_000.0})).is_ok());
        assert!(times(json!({"exp": NOW + 10.0 * 365.0 * 86_400.0})).is_err());
        assert_eq!(
            times(json!({"exp": 1e300})).unwrap_err(),
            "bearer token lifetime exceeds the maximum of 86400 s"
        );
    }

    #[test]
    fn department_claim() {
        let c =
            json!({"department": "moe/dhe", "bad": "../x", "upper": "MOE", "num": 3, "root": "/"});
        assert_eq!(
            department_of(&c, "department", true),
            Ok(Some(Department::parse("moe/dhe").expect("valid")))
        );
        assert_eq!(
            department_of(&c, "root", true),
            Ok(Some(Department::root()))
        );
        for name in ["bad", "upper", "num"] {
            let e = department_of(&c, name, false).unwrap_err();
            assert!(e.contains("malformed"), "{e}");
            assert!(!e.contains("../x") && !e.contains("MOE"), "{e}");
        }
        assert!(department_of(&c, "missing", true)
            .unwrap_err()
            .contains("no `missing` claim"));
        assert_eq!(department_of(&c, "missing", false), Ok(None));
    }
}
