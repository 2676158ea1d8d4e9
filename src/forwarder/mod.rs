//! Forwarding at run time (docs/FORWARDING.md): the rules' administration, applied to
//! what the store holds (one service for `/admin/forwarding` and the `forwarding`
//! command), and the delivery worker (`worker`). The rules themselves (validation,
//! matching, signature, retry policy) are `crate::forwarding`, which is pure.
//!
//! Who may do what follows the credentials' rule: an administrator manages the rules of
//! its own department and of every department below it. A rule outside the caller's
//! subtree gets the same 404 as one that does not exist.
pub mod worker;

use crate::departments::{self, Department};
use crate::error::{XapiError, XapiResult};
use crate::forwarding::{self, NewRule, RuleRecord};
use crate::store::{DeliveryState, DynStore};
use crate::xapi::statement::format_us;
use clap::Args;
use rand::RngCore;
use serde_json::Value;
use std::time::Duration;

/// Delivery settings of `serve` (the defaults suit production; tests shorten them).
#[derive(Args, Debug, Clone)]
pub struct ForwardingArgs {
    /// Longest time one forwarding request may take, connection included (ms); a target
    /// that hangs longer counts as failed and is retried.
    #[arg(long, env = "LRS_FORWARDING_TIMEOUT_MS", default_value_t = 30_000)]
    pub forwarding_timeout_ms: u64,
    /// First wait before retrying a failed delivery (ms); doubled at each failure.
    #[arg(long, env = "LRS_FORWARDING_BACKOFF_MIN_MS", default_value_t = 1_000)]
    pub forwarding_backoff_min_ms: u64,
    /// Longest wait between two retries (ms).
    #[arg(long, env = "LRS_FORWARDING_BACKOFF_MAX_MS", default_value_t = 300_000)]
    pub forwarding_backoff_max_ms: u64,
    /// How long a process holds a rule after it last renewed it (ms): the time another
    /// process waits to take over a rule whose holder died.
    #[arg(
        long,
        env = "LRS_FORWARDING_LEASE_MS",
        default_value_t = 15_000,
        hide = true
    )]
    pub forwarding_lease_ms: u64,
}

/// The worker's settings, from `ForwardingArgs`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub lease: Duration,
}

impl From<&ForwardingArgs> for Settings {
    fn from(a: &ForwardingArgs) -> Settings {
        let timeout = Duration::from_millis(a.forwarding_timeout_ms.max(1));
        Settings {
            timeout,
            connect_timeout: timeout.min(Duration::from_secs(5)),
            backoff_min: Duration::from_millis(a.forwarding_backoff_min_ms.max(1)),
            backoff_max: Duration::from_millis(
                a.forwarding_backoff_max_ms.max(a.forwarding_backoff_min_ms),
            ),
            // Renewed every third of it; at least a second.
            lease: Duration::from_millis(a.forwarding_lease_ms.max(1_000)),
        }
    }
}

/// A rule just created: the only time its HMAC secret is shown.
pub struct Created {
    pub record: RuleRecord,
}

impl Created {
    /// The rule's view plus `secret`.
    pub fn to_json(&self) -> Value {
        let mut v = forwarding::view(&self.record, 0, format_us);
        if let Value::Object(m) = &mut v {
            m.insert(
                "secret".into(),
                Value::String(self.record.rule.secret.clone()),
            );
            if let Some(Value::Object(d)) = m.get_mut("delivery") {
                d.remove("lag");
            }
        }
        v
    }
}

/// A rule as listed: its view with the lag behind a log of `log_size` leaves.
pub fn to_json(record: &RuleRecord, log_size: u64) -> Value {
    forwarding::view(record, log_size, format_us)
}

fn not_found(id: &str) -> XapiError {
    XapiError::not_found(format!("no forwarding rule `{id}`"))
}

/// Creates a rule for a department within the caller's subtree (default: the caller's).
pub async fn create(
    store: &DynStore,
    caller: &Department,
    request: NewRule,
) -> XapiResult<Created> {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let rule = forwarding::build(
        request,
        caller,
        uuid::Uuid::new_v4().to_string(),
        secret,
        chrono::Utc::now().timestamp_micros(),
    )
    .map_err(|e| XapiError::bad_request(e.message).at(e.at))?;
    if !departments::may_administer_credentials_of(caller, &rule.department) {
        return Err(XapiError::forbidden(format!(
            "department `{}` is not within `{caller}`: an administrator of `{caller}` forwards only its own subtree",
            rule.department
        ))
        .at("/department"));
    }
    if !store.department_exists(&rule.department).await? {
        return Err(XapiError::not_found(format!(
            "department `{}` does not exist",
            rule.department
        ))
        .at("/department"));
    }
    if !store.put_forwarding_rule(&rule).await? {
        return Err(XapiError::internal("a forwarding rule id was issued twice"));
    }
    // The target is not a secret; the authorization value and the HMAC key are.
    tracing::info!(
        "forwarding rule {} created for `{}` → {}",
        rule.id,
        rule.department,
        rule.target
    );
    Ok(Created {
        record: RuleRecord {
            rule,
            state: DeliveryState::default(),
        },
    })
}

/// The rules of the caller's subtree, in id order.
pub async fn list(store: &DynStore, caller: &Department) -> XapiResult<Vec<RuleRecord>> {
    let all = store.list_forwarding_rules().await?;
    Ok(all
        .into_iter()
        .filter(|r| r.rule.department.is_within(caller))
        .collect())
}

/// One rule of the caller's subtree.
pub async fn get(store: &DynStore, caller: &Department, id: &str) -> XapiResult<RuleRecord> {
    match store.get_forwarding_rule(id).await? {
        Some(r) if r.rule.department.is_within(caller) => Ok(r),
        _ => Err(not_found(id)),
    }
}

/// Removes a rule of the caller's subtree (its worker stops within seconds).
pub async fn remove(store: &DynStore, caller: &Department, id: &str) -> XapiResult<()> {
    get(store, caller, id).await?;
    if !store.delete_forwarding_rule(id).await? {
        return Err(not_found(id));
    }
    tracing::info!("forwarding rule {id} removed by an administrator of `{caller}`");
    Ok(())
}

/// The log's size, for the lag of listed rules.
pub async fn log_size(store: &DynStore) -> XapiResult<u64> {
    Ok(store.log_state().await?.size)
}
