//! Console sessions: a person signs in to `/console` once with a credential, and the
//! browser then carries a random session id in a cookie instead of the secret. A session is
//! exactly the credential it was opened with (same key, scopes and department); it ends
//! after `IDLE` without use, `LIFETIME` after sign-in, at sign-out, or when the credential
//! is revoked (checked again at least every `RECHECK`).
//!
//! Sessions live in this process's memory: a restart signs everybody out, and several
//! processes behind one address need sticky sessions (docs/CONSOLE.md).
//!
//! The map is keyed by SHA-256 of the id, so the time a lookup takes says nothing useful
//! about the ids it holds; the CSRF token is compared in constant time.
use super::{random_token, Credential};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in, used or not.
pub const LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);
/// How often a session's credential is looked up again (revocation).
pub const RECHECK: Duration = Duration::from_secs(30);
/// Most sessions kept at once; beyond it the oldest is dropped.
const MAX_SESSIONS: usize = 10_000;
/// Random bytes of a session id and of a CSRF token (256 bits each).
const TOKEN_BYTES: usize = 32;

struct Session {
    credential: Credential,
    csrf: String,
    created: Instant,
    last_used: Instant,
    checked: Instant,
    /// A session opened with a token ends when the token does.
    until: Option<Instant>,
}

impl Session {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.last_used) >= IDLE
            || now.duration_since(self.created) >= LIFETIME
            || self.until.is_some_and(|u| now >= u)
    }
}

/// What `Sessions::open` hands out once: the cookie's value and the CSRF token.
pub struct Opened {
    pub id: String,
    pub csrf: String,
}

/// A session found by `Sessions::find`.
pub struct Found {
    pub credential: Credential,
    pub csrf: String,
    /// The credential should be looked up again (revocation) before it is trusted.
    pub recheck: bool,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

fn fingerprint(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Opens a session for `credential`.
    pub fn open(&self, credential: Credential) -> Opened {
        self.open_at(credential, Instant::now(), None)
    }

    /// Opens a session for `credential` that ends at `until` at the latest (the expiry of
    /// the token it was opened with).
    pub fn open_until(&self, credential: Credential, until: Instant) -> Opened {
        self.open_at(credential, Instant::now(), Some(until))
    }

    fn open_at(&self, credential: Credential, now: Instant, until: Option<Instant>) -> Opened {
        let id = random_token(TOKEN_BYTES);
        let csrf = random_token(TOKEN_BYTES);
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, s| !s.expired(now));
            if map.len() >= MAX_SESSIONS {
                if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
            map.insert(
                fingerprint(&id),
                Session {
                    credential,
                    csrf: csrf.clone(),
                    created: now,
                    last_used: now,
                    checked: now,
                    until,
                },
            );
        }
        Opened { id, csrf }
    }

    /// The live session `id` (any CSRF token): it counts as used.
    pub fn find(&self, id: &str) -> Option<Found> {
        self.find_at(id, Instant::now())
    }

    fn find_at(&self, id: &str, now: Instant) -> Option<Found> {
        let mut map = self.map.lock().ok()?;
        let key = fingerprint(id);
        let s = map.get_mut(&key)?;
        if s.expired(now) {
            map.remove(&key);
            return None;
        }
        s.last_used = now;
        Some(Found {
            credential: s.credential.clone(),
            csrf: s.csrf.clone(),
            recheck: now.duration_since(s.checked) >= RECHECK,
        })
    }

    /// The credential of session `id` when `csrf` is its token; `None` otherwise.
    pub fn verify(&self, id: &str, csrf: &str) -> Option<Found> {
        let found = self.find(id)?;
        bool::from(found.csrf.as_bytes().ct_eq(csrf.as_bytes())).then_some(found)
    }

    /// Records that the session's credential was found still valid just now.
    pub fn checked(&self, id: &str) {
        if let Ok(mut map) = self.map.lock() {
            if let Some(s) = map.get_mut(&fingerprint(id)) {
                s.checked = Instant::now();
            }
        }
    }

    /// Ends session `id` (nothing when there is none).
    pub fn close(&self, id: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&fingerprint(id));
        }
    }

    /// Ends every session of credential `key` (it was revoked).
    pub fn close_all_of(&self, key: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, s| s.credential.key != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departments::Department;
    use serde_json::Value;

    fn cred(key: &str) -> Credential {
        Credential {
            key: key.into(),
            name: "n".into(),
            scopes: vec![],
            authority: Value::Null,
            department: Department::root(),
        }
    }

    #[test]
    fn a_session_needs_its_id_and_its_csrf_token() {
        let s = Sessions::default();
        let o = s.open(cred("k"));
        assert_eq!(o.id.len(), 43, "256 bits, base64url");
        assert_ne!(o.id, o.csrf);
        assert_eq!(
            s.verify(&o.id, &o.csrf).map(|f| f.credential.key),
            Some("k".into())
        );
        assert!(s.verify(&o.id, "").is_none());
        assert!(s.verify(&o.id, &o.id).is_none());
        assert!(s.verify(&o.csrf, &o.csrf).is_none());
        s.close(&o.id);
        assert!(s.verify(&o.id, &o.csrf).is_none());
    }

    #[test]
    fn sessions_expire_when_idle_and_after_their_lifetime() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let o = s.open_at(cred("k"), t0, None);
        assert!(s
            .find_at(&o.id, t0 + IDLE - Duration::from_secs(1))
            .is_some());
        // Used just now: idle counts from the last use.
        let later = t0 + IDLE + IDLE / 2;
        assert!(s.find_at(&o.id, later).is_some());
        assert!(s.find_at(&o.id, later + IDLE).is_none(), "idle too long");

        let o = s.open_at(cred("k"), t0, None);
        let mut t = t0;
        while t + IDLE / 2 < t0 + LIFETIME {
            t += IDLE / 2;
            assert!(s.find_at(&o.id, t).is_some());
        }
        assert!(
            s.find_at(&o.id, t0 + LIFETIME).is_none(),
            "past its lifetime"
        );
    }

    #[test]
    fn a_session_opened_with_a_token_ends_with_the_token() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs(60);
        let o = s.open_at(cred("jwt:a"), t0, Some(until));
        assert!(s.find_at(&o.id, t0 + Duration::from_secs(59)).is_some());
        assert!(s.find_at(&o.id, until).is_none(), "the token has expired");
    }

    #[test]
    fn revoking_closes_the_credentials_sessions() {
        let s = Sessions::default();
        let a = s.open(cred("a"));
        let b = s.open(cred("b"));
        s.close_all_of("a");
        assert!(s.find(&a.id).is_none());
        assert!(s.find(&b.id).is_some());
    }
}
