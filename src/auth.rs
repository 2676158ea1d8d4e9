//! Credentials and xAPI scopes (xAPI 1.0.3 Communication §4.2): Basic credentials stored
//! hashed (argon2), and JWT bearer tokens carrying scopes.
use crate::departments::Department;
use crate::error::{XapiError, XapiResult};
use crate::store::{CredentialRecord, DynStore};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// xAPI scopes (Communication 4.2 table), plus `admin` (not xAPI: the admin API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    StatementsWrite,
    StatementsRead,
    StatementsReadMine,
    AllRead,
    All,
    State,
    Define,
    Profile,
    /// Administers the departments below the credential's and the credentials within
    /// its subtree (`/admin`). Not part of `all`, which covers the xAPI resources only.
    Admin,
    /// Uploads, lists and launches content packages (`/scorm`), within the credential's
    /// subtree. Not xAPI; `admin` grants it too.
    Content,
}

impl Scope {
    pub const ALL_NAMES: [&'static str; 10] = [
        "statements/write",
        "statements/read",
        "statements/read/mine",
        "all/read",
        "all",
        "state",
        "define",
        "profile",
        "admin",
        "content",
    ];

    pub fn parse(s: &str) -> Option<Scope> {
        Some(match s {
            "statements/write" => Scope::StatementsWrite,
            "statements/read" => Scope::StatementsRead,
            "statements/read/mine" => Scope::StatementsReadMine,
            "all/read" => Scope::AllRead,
            "all" => Scope::All,
            "state" => Scope::State,
            "define" => Scope::Define,
            "profile" => Scope::Profile,
            "admin" => Scope::Admin,
            "content" => Scope::Content,
            _ => return None,
        })
    }
}

/// What a request needs to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    StatementsWrite,
    /// Reading statements; `statements/read/mine` is enough (results are then limited).
    StatementsRead,
    StateRead,
    StateWrite,
    ProfileRead,
    ProfileWrite,
    /// Reading agents/activities resources.
    DefinitionsRead,
    /// The admin API: only the `admin` scope grants it (`all` does not).
    Admin,
    /// Content packages: `content` or `admin`.
    Content,
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Credential {
    pub key: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The Agent the LRS records as `authority` of statements this credential writes.
    pub authority: Value,
    /// Where it writes; it reads this department's subtree.
    pub department: Department,
}

impl Credential {
    fn has(&self, s: Scope) -> bool {
        self.scopes.contains(&s)
    }

    pub fn allows(&self, need: Need) -> bool {
        if need == Need::Admin {
            return self.has(Scope::Admin);
        }
        if need == Need::Content {
            return self.has(Scope::Admin) || self.has(Scope::Content);
        }
        if self.has(Scope::All) {
            return true;
        }
        let read = self.has(Scope::AllRead);
        match need {
            Need::StatementsWrite => self.has(Scope::StatementsWrite),
            Need::StatementsRead => {
                read || self.has(Scope::StatementsRead) || self.has(Scope::StatementsReadMine)
            }
            Need::StateRead => read || self.has(Scope::State),
            Need::StateWrite => self.has(Scope::State),
            Need::ProfileRead => read || self.has(Scope::Profile),
            Need::ProfileWrite => self.has(Scope::Profile),
            Need::DefinitionsRead => {
                read || self.has(Scope::StatementsRead)
                    || self.has(Scope::Define)
                    || self.has(Scope::Profile)
            }
            Need::Admin => self.has(Scope::Admin),
            Need::Content => self.has(Scope::Admin) || self.has(Scope::Content),
        }
    }

    /// 403 unless the credential allows `need`.
    pub fn require(&self, need: Need) -> XapiResult<()> {
        if self.allows(need) {
            Ok(())
        } else {
            Err(
                XapiError::forbidden(format!("this credential's scopes do not allow {need:?}"))
                    .req("Communication 4.2 (OAuth scopes)"),
            )
        }
    }

    /// Only `statements/read/mine` (and no broader read scope): reads are limited to
    /// statements this credential wrote.
    pub fn reads_only_mine(&self) -> bool {
        !self.has(Scope::All) && !self.has(Scope::AllRead) && !self.has(Scope::StatementsRead)
    }

    /// May update canonical activity definitions (`define`).
    pub fn may_define(&self) -> bool {
        self.has(Scope::All) || self.has(Scope::Define)
    }
}

/// The names in a scope list: separated by commas or spaces (as in OAuth 2's `scope`).
pub fn scope_list(list: &str) -> Vec<String> {
    list.split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn parse_scopes(list: &str) -> Result<Vec<Scope>, String> {
    scope_list(list)
        .iter()
        .map(|s| {
            Scope::parse(s).ok_or_else(|| {
                format!(
                    "unknown scope `{s}` (known: {})",
                    Scope::ALL_NAMES.join(", ")
                )
            })
        })
        .collect()
}

pub fn scope_names(scopes: &[Scope]) -> Vec<String> {
    scopes
        .iter()
        .filter_map(|s| {
            Scope::ALL_NAMES
                .iter()
                .find(|n| Scope::parse(n) == Some(*s))
                .map(|n| (*n).to_owned())
        })
        .collect()
}

pub fn hash_secret(secret: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_secret(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &h)
            .is_ok()
    })
}

/// Checks a secret off the async workers: argon2 takes tens of milliseconds and 19 MiB,
/// which on an HTTP worker stalled every connection that worker serves.
async fn verify_secret_blocking(secret: &str, hash: &str) -> bool {
    let (secret, hash) = (secret.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || verify_secret(&secret, &hash))
        .await
        .unwrap_or(false)
}

/// A random URL-safe token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

mod jwks;
mod jwt;
pub mod session;
pub use jwks::{check_url, discovery_url, get_json, post_form, Jwks, JwksOrigin, JwksSettings};
pub use jwt::{check_times, department_of, JwtConfig, JwtKeys};

/// Verified Basic credentials are cached briefly so argon2 runs once per credential,
/// not once per request; a revoked credential stops working within `CACHE_TTL`.
const CACHE_TTL: Duration = Duration::from_secs(30);
/// Secret checks (argon2) at a time: a burst of new connections, or of wrong secrets,
/// costs at most this many cores and 19 MiB each, and requests of a credential being
/// checked wait for that check rather than repeating it.
const VERIFYING: usize = 2;

/// A verified Basic credential, with the secret hash it was verified against: once
/// `CACHE_TTL` has passed, a record that is still unrevoked and has that same hash
/// renews it without running argon2 again.
struct Verified {
    credential: Credential,
    at: Instant,
    secret_hash: String,
}

pub struct Authenticator {
    store: DynStore,
    authority_homepage: String,
    jwt: Option<JwtConfig>,
    cache: RwLock<HashMap<[u8; 32], Verified>>,
    verifying: tokio::sync::Semaphore,
    /// Departments bearer tokens named that exist, kept `CACHE_TTL` like credentials: a
    /// token costs no store read per request, and a removed department stops working
    /// within that time.
    departments: RwLock<HashMap<Department, Instant>>,
    /// The console's signed-in sessions (in this process's memory).
    sessions: session::Sessions,
}

impl Authenticator {
    pub fn new(store: DynStore, authority_homepage: String, jwt: Option<JwtConfig>) -> Self {
        Authenticator {
            store,
            authority_homepage,
            jwt,
            cache: RwLock::new(HashMap::new()),
            verifying: tokio::sync::Semaphore::new(VERIFYING),
            departments: RwLock::new(HashMap::new()),
            sessions: session::Sessions::default(),
        }
    }

    /// The console's sessions.
    pub fn sessions(&self) -> &session::Sessions {
        &self.sessions
    }

    /// The credential of console session `id`, when `csrf` is its token: exactly the
    /// credential that signed in (same key, scopes, department). A revoked credential's
    /// sessions end within `session::RECHECK`.
    pub async fn console_session(&self, id: &str, csrf: &str) -> XapiResult<Credential> {
        let ended =
            || Self::unauthorized("the console session has ended or is not valid: sign in again");
        let found = self.sessions.verify(id, csrf).ok_or_else(ended)?;
        // A session opened with a bearer token (`jwt:` keys; no Basic key has a `:`) has no
        // credential record to look up: it ends with the token's expiry, or when its
        // department is gone.
        if found.recheck && found.credential.key.starts_with("jwt:") {
            if self.department_exists(&found.credential.department).await? {
                self.sessions.checked(id);
            } else {
                self.sessions.close(id);
                return Err(ended());
            }
        } else if found.recheck {
            match self.store.get_credential(&found.credential.key).await? {
                Some(r) if !r.revoked => self.sessions.checked(id),
                _ => {
                    self.sessions.close_all_of(&found.credential.key);
                    return Err(ended());
                }
            }
        }
        Ok(found.credential)
    }

    fn unauthorized(msg: &str) -> XapiError {
        XapiError::unauthorized(msg).req("Communication 4.1 (Authentication)")
    }

    /// Authenticates an `Authorization` header value.
    pub async fn authenticate(&self, header: Option<&str>) -> XapiResult<Credential> {
        let header = header.ok_or_else(|| Self::unauthorized("authentication required"))?;
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            self.basic(rest.trim()).await
        } else if scheme.eq_ignore_ascii_case("bearer") {
            self.bearer(rest.trim()).await
        } else {
            Err(Self::unauthorized(
                "unsupported authorization scheme (use Basic or Bearer)",
            ))
        }
    }

    /// The cached credential of `fingerprint` while fresh; else the secret hash it was
    /// verified against, if any.
    fn cached(&self, fingerprint: &[u8; 32]) -> Result<Credential, Option<String>> {
        let cache = self.cache.read().map_err(|_| None)?;
        match cache.get(fingerprint) {
            Some(v) if v.at.elapsed() < CACHE_TTL => Ok(v.credential.clone()),
            Some(v) => Err(Some(v.secret_hash.clone())),
            None => Err(None),
        }
    }

    async fn basic(&self, encoded: &str) -> XapiResult<Credential> {
        let fingerprint: [u8; 32] = Sha256::digest(encoded.as_bytes()).into();
        let verified_hash = match self.cached(&fingerprint) {
            Ok(c) => return Ok(c),
            Err(hash) => hash,
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Self::unauthorized("malformed Basic credentials"))?;
        let (key, secret) = decoded
            .split_once(':')
            .ok_or_else(|| Self::unauthorized("malformed Basic credentials"))?;
        let record = self.store.get_credential(key).await?;
        let record = match record {
            Some(r) if !r.revoked => r,
            _ => return Err(Self::unauthorized("invalid credentials")),
        };
        // Checked against this very hash before: the record read above shows it is
        // still current and unrevoked.
        if verified_hash.as_deref() != Some(record.secret_hash.as_str()) {
            let _permit = self
                .verifying
                .acquire()
                .await
                .map_err(|_| Self::unauthorized("the server is stopping"))?;
            // Another request of the same credential may have checked it meanwhile.
            if let Ok(c) = self.cached(&fingerprint) {
                return Ok(c);
            }
            if !verify_secret_blocking(secret, &record.secret_hash).await {
                return Err(Self::unauthorized("invalid credentials"));
            }
        }
        let scopes = parse_scopes(&record.scopes.join(",")).unwrap_or_default();
        let cred = Credential {
            authority: json!({
                "objectType": "Agent",
                "name": record.name,
                "account": { "homePage": self.authority_homepage, "name": record.key },
            }),
            key: record.key,
            name: record.name,
            scopes,
            department: record.department,
        };
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(
                fingerprint,
                Verified {
                    credential: cred.clone(),
                    at: Instant::now(),
                    secret_hash: record.secret_hash,
                },
            );
        }
        Ok(cred)
    }

    /// A JWT bearer token (see `jwt` for the rules): signature, issuer, audience, times,
    /// then `sub`, `scope` and the department claim.
    async fn bearer(&self, token: &str) -> XapiResult<Credential> {
        let jwt = self
            .jwt
            .as_ref()
            .ok_or_else(|| Self::unauthorized("bearer tokens are not enabled on this LRS"))?;
        let claims = jwt.verify(token).await?;
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| Self::unauthorized("bearer token has no `sub`"))?;
        // `scope` as in OAuth 2: space-separated xAPI scopes.
        let scopes = claims
            .get("scope")
            .and_then(Value::as_str)
            .map(parse_scopes)
            .transpose()
            .map_err(|e| Self::unauthorized(&format!("bearer token: {e}")))?
            .unwrap_or_else(|| {
                vec![
                    Scope::StatementsWrite,
                    Scope::StatementsReadMine,
                    Scope::State,
                ]
            });
        let homepage = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or(&jwt.authority_homepage)
            .to_owned();
        let name = claims
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(sub)
            .to_owned();
        let department =
            jwt::department_of(&claims, &jwt.department_claim, jwt.department_required())
                .map_err(|m| Self::unauthorized(&m))?
                .unwrap_or_else(Department::root);
        if !self.department_exists(&department).await? {
            // One answer whatever the reason: nothing is revealed about other departments.
            return Err(Self::unauthorized("the token's department does not exist"));
        }
        Ok(Credential {
            authority: json!({
                "objectType": "Agent",
                "name": name,
                "account": { "homePage": homepage, "name": sub },
            }),
            key: format!("jwt:{sub}"),
            name,
            scopes,
            department,
        })
    }

    /// The console's OpenID Connect sign-in: `access_token` becomes the credential exactly
    /// as `Authorization: Bearer` would (same checks, same credential); `id_token` must
    /// verify with the same keys and issuer, name `client_id` in `aud`, carry `nonce` and
    /// the same `sub`. Returns the credential and the access token's `exp`.
    pub async fn oidc_sign_in(
        &self,
        access_token: &str,
        id_token: &str,
        client_id: &str,
        nonce: &str,
    ) -> XapiResult<(Credential, f64)> {
        let jwt = self
            .jwt
            .as_ref()
            .ok_or_else(|| Self::unauthorized("bearer tokens are not enabled on this LRS"))?;
        let cred = self.bearer(access_token).await?;
        let exp = jwt
            .verify(access_token)
            .await?
            .get("exp")
            .and_then(Value::as_f64)
            .ok_or_else(|| Self::unauthorized("bearer token has no `exp` claim"))?;
        let id = jwt.verify_id_token(id_token, client_id).await?;
        let given = id.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            nonce.as_bytes(),
        )) {
            return Err(Self::unauthorized(
                "the ID token's nonce is not this sign-in's",
            ));
        }
        let sub = id.get("sub").and_then(Value::as_str).unwrap_or("");
        if cred.key != format!("jwt:{sub}") {
            return Err(Self::unauthorized(
                "the ID token and the access token name different people",
            ));
        }
        Ok((cred, exp))
    }

    /// Whether a token's department exists.
    async fn department_exists(&self, department: &Department) -> XapiResult<bool> {
        if department.is_root() {
            return Ok(true);
        }
        if let Ok(seen) = self.departments.read() {
            if seen
                .get(department)
                .is_some_and(|at| at.elapsed() < CACHE_TTL)
            {
                return Ok(true);
            }
        }
        let exists = self.store.department_exists(department).await?;
        if exists {
            if let Ok(mut seen) = self.departments.write() {
                if seen.len() > 10_000 {
                    seen.clear();
                }
                seen.insert(department.clone(), Instant::now());
            }
        }
        Ok(exists)
    }
}

/// Creates (or replaces) a credential record of `department`; returns it.
pub fn new_credential(
    key: &str,
    secret: &str,
    name: &str,
    scopes: &[Scope],
    department: &Department,
) -> Result<CredentialRecord, String> {
    Ok(CredentialRecord {
        key: key.to_owned(),
        secret_hash: hash_secret(secret)?,
        name: name.to_owned(),
        scopes: scope_names(scopes),
        created_us: chrono::Utc::now().timestamp_micros(),
        revoked: false,
        department: department.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(scopes: &[Scope]) -> Credential {
        Credential {
            key: "k".into(),
            name: "n".into(),
            scopes: scopes.to_vec(),
            authority: Value::Null,
            department: Department::root(),
        }
    }

    #[test]
    fn admin_is_granted_by_the_admin_scope_only() {
        assert!(!with(&[Scope::All]).allows(Need::Admin));
        assert!(with(&[Scope::Admin]).allows(Need::Admin));
        assert!(!with(&[Scope::Admin]).allows(Need::StatementsRead));
        assert!(with(&[Scope::All, Scope::Admin]).allows(Need::StatementsWrite));
        assert_eq!(
            parse_scopes("all,admin"),
            Ok(vec![Scope::All, Scope::Admin])
        );
        assert_eq!(scope_names(&[Scope::Admin]), ["admin"]);
        for name in Scope::ALL_NAMES {
            assert!(Scope::parse(name).is_some(), "{name}");
        }
    }
}
