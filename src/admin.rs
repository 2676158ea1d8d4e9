//! Delegated administration: departments and credentials, managed from a department
//! downwards. One service for the admin API (`http::admin`) and the `departments` /
//! `credentials` commands (which act as the root).
//!
//! Who may do what is decided by the pure rules in `departments`
//! (`may_administer_department`, `may_administer_credentials_of`); this module applies
//! them to what the store holds. Answers never reveal anything outside the caller's
//! subtree: a department outside it gets 403 whether or not it exists, a credential
//! outside it gets the same 404 as an unknown key.
//!
//! Removing a department never deletes a learning record: statements and documents are
//! evidence (who completed what), so they stay, readable from the departments above.
//! Erasing a person's records is a separate operation.
use crate::auth::{self, Credential, Need, Scope};
use crate::departments::{self, Department, Holdings};
use crate::error::{XapiError, XapiResult};
use crate::store::{CredentialRecord, DepartmentRecord, DynStore, StatementQuery};
use crate::xapi::statement::format_us;
use serde_json::{json, Value};

/// Longest credential name accepted (characters).
pub const MAX_NAME: usize = 200;

/// 403 unless the credential has the `admin` scope.
pub fn require_admin(cred: &Credential) -> XapiResult<()> {
    if cred.allows(Need::Admin) {
        Ok(())
    } else {
        Err(XapiError::forbidden(
            "the admin API needs a credential with the `admin` scope (`all` does not include it)",
        ))
    }
}

/// A department as the admin API and the command line show it.
#[derive(Debug, Clone, PartialEq)]
pub struct DepartmentView {
    pub path: Department,
    /// When it was created; `None` for the root (which always exists).
    pub created_us: Option<i64>,
    /// The rate limits it sets (none: those of the department above apply).
    pub limits: crate::quota::DepartmentLimits,
}

impl DepartmentView {
    pub fn parent(&self) -> Option<Department> {
        self.path.parent()
    }

    /// `{"path", "parent", "created", "limits"}`; `parent` and `created` are null for
    /// the root, whose limits are the server's own (`--rate-*`) and not shown here.
    pub fn to_json(&self) -> Value {
        json!({
            "path": self.path.to_string(),
            "parent": self.parent().map(|p| p.to_string()),
            "created": self.created_us.map(format_us),
            "limits": self.limits.to_json(),
        })
    }
}

impl From<DepartmentRecord> for DepartmentView {
    fn from(r: DepartmentRecord) -> Self {
        DepartmentView {
            path: r.path,
            created_us: Some(r.created_us),
            limits: r.limits,
        }
    }
}

/// A credential as listed: never its secret or its hash.
#[derive(Debug, Clone)]
pub struct CredentialView {
    pub key: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub department: Department,
    pub created_us: i64,
    pub revoked: bool,
}

impl CredentialView {
    pub fn to_json(&self) -> Value {
        json!({
            "key": self.key,
            "name": self.name,
            "scopes": self.scopes,
            "department": self.department.to_string(),
            "created": format_us(self.created_us),
            "revoked": self.revoked,
        })
    }
}

impl From<CredentialRecord> for CredentialView {
    fn from(r: CredentialRecord) -> Self {
        CredentialView {
            key: r.key,
            name: r.name,
            scopes: r.scopes,
            department: r.department,
            created_us: r.created_us,
            revoked: r.revoked,
        }
    }
}

/// A credential just issued: the only time its secret is shown.
#[derive(Debug, Clone)]
pub struct IssuedCredential {
    pub key: String,
    pub secret: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub department: Department,
}

impl IssuedCredential {
    pub fn to_json(&self) -> Value {
        json!({
            "key": self.key,
            "secret": self.secret,
            "name": self.name,
            "scopes": self.scopes,
            "department": self.department.to_string(),
        })
    }
}

/// What a credential request asks for.
#[derive(Debug, Clone, Default)]
pub struct NewCredential {
    pub name: String,
    /// Scope names, e.g. `["statements/write", "state"]`.
    pub scopes: Vec<String>,
    /// A department path; `None` is the caller's own department.
    pub department: Option<String>,
}

/// The result of removing a department.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    /// Keys of the credentials revoked by a forced removal.
    pub revoked: Vec<String>,
}

fn parse_path(path: &str, at: &str) -> XapiResult<Department> {
    Department::parse(path)
        .map_err(|m| XapiError::bad_request(format!("malformed department path: {m}")).at(at))
}

/// 403 for a department the caller may not create or remove: the same whether or not
/// it exists.
fn not_below(caller: &Department, target: &Department) -> XapiError {
    XapiError::forbidden(format!(
        "department `{target}` is not below `{caller}`: an administrator of `{caller}` \
         creates, changes and removes only the departments below it"
    ))
}

fn no_department(d: &Department) -> XapiError {
    XapiError::not_found(format!("department `{d}` does not exist"))
}

async fn exists(store: &DynStore, d: &Department) -> XapiResult<bool> {
    Ok(store.department_exists(d).await?)
}

/// Creates department `path` below the caller's.
pub async fn create_department(
    store: &DynStore,
    caller: &Department,
    path: &str,
) -> XapiResult<DepartmentView> {
    let target = parse_path(path, "/path")?;
    if !departments::may_administer_department(caller, &target) {
        return Err(not_below(caller, &target));
    }
    // Below the caller, so the parent is the caller's department or lies below it.
    let parent = target.parent().unwrap_or_default();
    if !exists(store, &parent).await? {
        return Err(XapiError::not_found(format!(
            "parent department `{parent}` does not exist: create it first"
        ))
        .at("/path"));
    }
    let record = DepartmentRecord {
        path: target.clone(),
        created_us: chrono::Utc::now().timestamp_micros(),
        limits: Default::default(),
    };
    if !store.put_department(&record).await? {
        return Err(
            XapiError::conflict(format!("department `{target}` already exists")).at("/path"),
        );
    }
    tracing::info!("department `{target}` created by an administrator of `{caller}`");
    Ok(record.into())
}

/// The caller's own department, then every department below it, in tree order.
pub async fn list_departments(
    store: &DynStore,
    caller: &Department,
) -> XapiResult<Vec<DepartmentView>> {
    let all = store.list_departments().await?;
    let own = match all.iter().find(|r| &r.path == caller) {
        Some(r) if !caller.is_root() => DepartmentView::from(r.clone()),
        _ => DepartmentView {
            path: caller.clone(),
            created_us: None,
            limits: Default::default(),
        },
    };
    let mut out = vec![own];
    out.extend(
        departments::strictly_below(caller, all, |r| &r.path)
            .into_iter()
            .map(DepartmentView::from),
    );
    Ok(out)
}

/// Sets the rate limits of department `path`, strictly below the caller's (a
/// department's administrators cannot raise their own allowance). `limits` replaces
/// what the department had: a member left out inherits, `null` is unlimited.
pub async fn set_department_limits(
    store: &DynStore,
    caller: &Department,
    path: &str,
    limits: &Value,
) -> XapiResult<DepartmentView> {
    let target = parse_path(path, "path")?;
    if !departments::may_administer_department(caller, &target) {
        return Err(not_below(caller, &target));
    }
    let limits = crate::quota::DepartmentLimits::from_json(limits)
        .map_err(|e| XapiError::bad_request(e.message).at(e.path))?;
    if !store.set_department_limits(&target, &limits).await? {
        return Err(no_department(&target));
    }
    tracing::info!(
        "rate limits of department `{target}` set to {} by an administrator of `{caller}`",
        limits.to_json()
    );
    match store.get_department(&target).await? {
        Some(r) => Ok(r.into()),
        None => Err(no_department(&target)),
    }
}

/// Every department's rate limits, for the process's limiter.
pub async fn department_limits(
    store: &DynStore,
) -> XapiResult<std::collections::HashMap<Department, crate::quota::DepartmentLimits>> {
    Ok(store
        .list_departments()
        .await?
        .into_iter()
        .filter(|r| !r.limits.is_empty())
        .map(|r| (r.path, r.limits))
        .collect())
}

/// What department `d`'s subtree holds: active credentials, statements, documents.
async fn holdings(
    store: &DynStore,
    d: &Department,
    credentials: &[CredentialRecord],
) -> XapiResult<Holdings> {
    let active_credentials = credentials
        .iter()
        .filter(|c| !c.revoked && c.department.is_within(d))
        .count();
    let mut any_statement = StatementQuery {
        limit: 1,
        ..Default::default()
    };
    any_statement.within(d);
    let statements = !store.query_statements(&any_statement).await?.is_empty();
    let documents = store.has_documents_in(d).await?;
    Ok(Holdings {
        active_credentials,
        statements,
        documents,
    })
}

/// Removes department `path` (below the caller's). It must have no sub-department; a
/// department holding active credentials, statements or documents is removed only with
/// `force`, which revokes its credentials. Records are never deleted.
pub async fn remove_department(
    store: &DynStore,
    caller: &Department,
    path: &str,
    force: bool,
) -> XapiResult<Removed> {
    let target = parse_path(path, "path")?;
    if !departments::may_administer_department(caller, &target) {
        return Err(not_below(caller, &target));
    }
    if store.get_department(&target).await?.is_none() {
        return Err(no_department(&target));
    }
    let children = departments::strictly_below(
        &target,
        store.list_departments().await?,
        |r: &DepartmentRecord| &r.path,
    );
    if !children.is_empty() {
        let names: Vec<String> = children
            .iter()
            .take(5)
            .map(|c| format!("`{}`", c.path))
            .collect();
        let more = if children.len() > 5 { ", …" } else { "" };
        return Err(XapiError::conflict(format!(
            "department `{target}` has {} sub-department(s) ({}{more}): remove them first",
            children.len(),
            names.join(", ")
        )));
    }
    let credentials = store.list_credentials().await?;
    let held = holdings(store, &target, &credentials).await?;
    if !held.is_empty() && !force {
        let revokes = if held.active_credentials > 0 {
            ", which revokes its credentials"
        } else {
            ""
        };
        return Err(XapiError::conflict(format!(
            "department `{target}` holds {}: to remove it anyway use force{revokes} \
             (learning records are evidence and are never deleted: its statements and \
             documents stay, readable from the departments above it)",
            held.describe()
        )));
    }
    let mut removed = Removed::default();
    for c in credentials
        .iter()
        .filter(|c| !c.revoked && c.department.is_within(&target))
    {
        if store.revoke_credential(&c.key).await? {
            removed.revoked.push(c.key.clone());
        }
    }
    if !store.remove_department(&target).await? {
        // Removed concurrently: the outcome asked for holds.
        tracing::info!("department `{target}` was already removed");
    }
    tracing::info!(
        "department `{target}` removed by an administrator of `{caller}` ({}; {} credential(s) revoked; records kept)",
        held.describe(),
        removed.revoked.len()
    );
    Ok(removed)
}

/// Issues a credential in the caller's subtree; the secret is returned once.
pub async fn create_credential(
    store: &DynStore,
    caller: &Department,
    request: NewCredential,
) -> XapiResult<IssuedCredential> {
    let name = request.name.trim().to_owned();
    if name.is_empty() {
        return Err(XapiError::bad_request("a credential needs a non-empty `name`").at("/name"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(XapiError::bad_request(format!(
            "a credential name has at most {MAX_NAME} characters"
        ))
        .at("/name"));
    }
    let mut scopes: Vec<Scope> = Vec::new();
    for (i, s) in request.scopes.iter().enumerate() {
        let scope = Scope::parse(s.trim()).ok_or_else(|| {
            XapiError::bad_request(format!(
                "unknown scope `{s}` (known: {})",
                Scope::ALL_NAMES.join(", ")
            ))
            .at(format!("/scopes/{i}"))
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err(XapiError::bad_request(format!(
            "a credential needs at least one scope (known: {})",
            Scope::ALL_NAMES.join(", ")
        ))
        .at("/scopes"));
    }
    let department = match &request.department {
        Some(d) => parse_path(d, "/department")?,
        None => caller.clone(),
    };
    if !departments::may_administer_credentials_of(caller, &department) {
        return Err(XapiError::forbidden(format!(
            "department `{department}` is not within `{caller}`: an administrator of \
             `{caller}` issues credentials only in its own department and those below it"
        ))
        .at("/department"));
    }
    if !exists(store, &department).await? {
        return Err(no_department(&department).at("/department"));
    }
    // A key starting with `-` would be read as an option by `credentials revoke` and most
    // other command lines; draw again (1 key in 64 starts with one).
    let key = std::iter::repeat_with(|| auth::random_token(15))
        .find(|k| !k.starts_with('-'))
        .unwrap_or_default();
    let secret = auth::random_token(30);
    let record = auth::new_credential(&key, &secret, &name, &scopes, &department)
        .map_err(|e| XapiError::internal(format!("cannot hash the secret: {e}")))?;
    store.put_credential(&record).await?;
    tracing::info!(
        "credential `{key}` ({}) issued in `{department}` by an administrator of `{caller}`",
        record.scopes.join(",")
    );
    Ok(IssuedCredential {
        key,
        secret,
        name,
        scopes: record.scopes,
        department,
    })
}

/// The credentials of the caller's subtree, revoked ones included, oldest first.
pub async fn list_credentials(
    store: &DynStore,
    caller: &Department,
) -> XapiResult<Vec<CredentialView>> {
    Ok(store
        .list_credentials()
        .await?
        .into_iter()
        .filter(|c| departments::may_administer_credentials_of(caller, &c.department))
        .map(CredentialView::from)
        .collect())
}

/// Revokes credential `key` of the caller's subtree. Unknown and outside the subtree get
/// the same 404. Revoking a revoked credential succeeds (nothing changes). A Basic
/// credential already verified by a running server keeps working for up to 30 s.
pub async fn revoke_credential(store: &DynStore, caller: &Department, key: &str) -> XapiResult<()> {
    let unknown = || XapiError::not_found(format!("no credential with key `{key}`"));
    match store.get_credential(key).await? {
        Some(c) if departments::may_administer_credentials_of(caller, &c.department) => {
            if !c.revoked && !store.revoke_credential(key).await? {
                return Err(unknown());
            }
            tracing::info!("credential `{key}` revoked by an administrator of `{caller}`");
            Ok(())
        }
        _ => Err(unknown()),
    }
}

/// A request to erase a person's records (DPDP Act 2023 §12; GDPR Art. 17).
#[derive(Debug, Clone)]
pub struct EraseRequest {
    /// The person: Agent JSON (its inverse functional identifier is what counts).
    pub agent: String,
    /// The subtree to erase in (default: the caller's department).
    pub department: Option<String>,
    /// The request's own reference (a case number), recorded in the receipt.
    pub reference: Option<String>,
}

/// What an erasure did, and its receipt (the exact bytes whose SHA-256 the log's erasure
/// leaves carry).
#[derive(Debug, Clone)]
pub struct ErasureOutcome {
    pub receipt: String,
    pub receipt_hash: String,
    pub erased: crate::store::Erased,
    pub leaves: Vec<u64>,
}

/// How long an erasure waits for the sequencer to log statements stored moments before
/// (a statement can only be named by an erasure leaf once it has a leaf).
const LOG_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Erases the person's statements (voided ones too): those whose actor or object is the
/// person (not a group they are in, not statements referring to theirs), their state and agent profile documents, and
/// attachments only those statements used, within `department`'s subtree. Statements of
/// other people stay, so their proofs and certificates keep verifying; the log keeps the
/// erased statements' leaves and gains erasure leaves naming them.
pub async fn erase_agent(
    store: &DynStore,
    caller: &Department,
    requested_by: Value,
    request: EraseRequest,
) -> XapiResult<ErasureOutcome> {
    use crate::audit::erasure::{self, ErasedStatement, Receipt};
    use crate::xapi::query::{self, PageLimits, StatementsGet};
    let agent_value: Value = serde_json::from_str(&request.agent)
        .map_err(|e| XapiError::bad_request(format!("agent is not JSON: {e}")).at("agent"))?;
    let agent = erasure::agent_identifier(&agent_value).ok_or_else(|| {
        XapiError::bad_request(
            "agent must be an Agent with an mbox, mbox_sha1sum, openid or account",
        )
        .at("agent")
    })?;
    let agent_key = crate::xapi::agent::ifi_key(&agent)
        .ok_or_else(|| XapiError::bad_request("agent has no identifier").at("agent"))?;
    let department = match request.department.as_deref() {
        None => caller.clone(),
        Some(d) => {
            let d = Department::parse(d).map_err(|e| XapiError::bad_request(e).at("department"))?;
            if !d.is_within(caller) {
                return Err(XapiError::forbidden(format!(
                    "department must be within this credential's, `{caller}`"
                ))
                .at("department"));
            }
            d
        }
    };
    let limit = 1_000_000;
    let pairs = vec![("agent".to_owned(), agent.to_string())];
    let pages = PageLimits {
        default: limit,
        max: limit,
    };
    let StatementsGet::Query { mut query, .. } =
        query::parse(&pairs, crate::xapi::XapiVersion::V2_0, &pages, None)?
    else {
        return Err(XapiError::internal("an agent query became a single read"));
    };
    query.within(&department);
    query.include_voided = true;
    query.limit = limit;
    // The `agent` filter also matches statements that merely refer to hers (a voiding
    // statement, a StatementRef) or a group she is in: those are other people's
    // statements and stay. Hers are those whose actor or object is her.
    let found: Vec<_> = store
        .query_statements(&query)
        .await?
        .into_iter()
        .filter(|s| {
            let v: Value = serde_json::from_str(&s.json).unwrap_or(Value::Null);
            // The identity key names the kind: a group with her mbox is not her.
            ["actor", "object"].iter().any(|k| {
                v.get(*k).and_then(crate::xapi::agent::ifi_key).as_deref()
                    == Some(agent_key.as_str())
            })
        })
        .collect();
    // Every one must have its leaf: wait briefly for the sequencer.
    let deadline = std::time::Instant::now() + LOG_WAIT;
    let mut statements = Vec::with_capacity(found.len());
    for s in &found {
        let leaf = loop {
            match store.statement_log(&s.id).await?.and_then(|l| l.leaf) {
                Some(leaf) => break Some(leaf),
                None if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                None => break None,
            }
        };
        let Some(leaf_index) = leaf else {
            return Err(XapiError::unavailable(
                "some of these statements are not in the audit log yet (is the LRS running?); try again in a few seconds",
            ));
        };
        let (id, dept) = departments::split_record_key(&s.id);
        statements.push(ErasedStatement {
            leaf_index,
            statement_id: id.to_owned(),
            department: dept,
            stored_us: s.stored_us,
        });
    }
    let receipt = Receipt {
        agent,
        department: department.clone(),
        requested_by,
        reference: request.reference,
        erased_us: chrono::Utc::now().timestamp_micros(),
        statements,
    };
    let bytes = receipt
        .to_bytes()
        .map_err(|e| XapiError::internal(format!("cannot write the receipt: {e}")))?;
    let hash = erasure::receipt_hash(&bytes);
    let leaves = receipt.leaf_indexes();
    let erased = store
        .erase(crate::store::Erasure {
            department,
            agent_key,
            statements: found.iter().map(|s| s.id.clone()).collect(),
            leaves: leaves.clone(),
            receipt_hash: hash,
            erased_us: receipt.erased_us,
        })
        .await?;
    if erased == crate::store::Erased::default() {
        return Err(XapiError::not_found(
            "nothing is stored about this agent in this department's subtree",
        ));
    }
    Ok(ErasureOutcome {
        receipt: String::from_utf8_lossy(&bytes).into_owned(),
        receipt_hash: hash.to_hex(),
        erased,
        leaves,
    })
}

impl ErasureOutcome {
    /// The admin API's answer.
    pub fn to_json(&self) -> Value {
        json!({
            "receipt": self.receipt,
            "receiptHash": self.receipt_hash,
            "statements": self.erased.statements,
            "documents": self.erased.documents,
            "attachments": self.erased.attachments,
            "erasedLeaves": self.leaves,
        })
    }
}
