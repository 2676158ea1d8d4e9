//! Content packages at run time (docs/SCORM.md): upload, listing, launch, and the
//! sessions of the player. The rules (package reading, manifests, the SCORM data model,
//! the SCORM→xAPI mapping, cmi5) are `crate::scorm`, which is pure; this module applies
//! them to what the store holds, for `http/scorm.rs` (the LRS's own origin) and
//! `http/player.rs` (the content origin).
//!
//! Who may do what follows the department rule: a package belongs to the department it
//! was uploaded to; that department and those above it see, launch and delete it; a
//! package elsewhere gets the same 404 as one that does not exist. A launch token is a
//! capability: it opens one package's files for one learner, and what it writes is built
//! here from the SCORM data model, about that learner and that package only. A cmi5 AU
//! writes xAPI itself, through an endpoint of its own that accepts that learner's
//! statements and documents for that registration only (`cmi5`).
pub mod cmi5;
pub mod session;

use crate::departments::Department;
use crate::error::{XapiError, XapiResult};
use crate::scorm::manifest::{Au, Cmi5Node, Launchable, PackageManifest};
use crate::scorm::package::{read_package, Package, PackageLimits};
use crate::scorm::records::{LaunchRecord, PackageRecord, StoredFile};
use crate::scorm::{mapping, ScormError, ScormVersion};
use crate::store::clock::StoredClock;
use crate::store::{DynStore, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How long a launch token stays valid: a long course is one session; a relaunch gets a
/// new token.
pub const LAUNCH_TTL_US: i64 = 8 * 3600 * 1_000_000;

/// Settings of the content side of `serve`.
#[derive(Debug, Clone)]
pub struct ContentSettings {
    /// The origin the player and package files are served from (never the LRS's own).
    pub origin: String,
    /// The base of the course IRIs given to SCORM packages.
    pub activity_base: String,
    pub limits: PackageLimits,
    /// Largest zip accepted by `POST /scorm/packages` (larger → 413 before reading on).
    pub max_upload_bytes: usize,
}

/// A refused package: the domain's status and stable code.
pub fn package_error(e: &ScormError) -> XapiError {
    let status = actix_web::http::StatusCode::from_u16(e.status())
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    XapiError::new(status, e.to_string()).code(e.code())
}

/// What the store keeps of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub(crate) fn store_error(e: StoreError) -> XapiError {
    XapiError::from(e)
}

fn not_found(id: &str) -> XapiError {
    XapiError::not_found(format!(
        "no package {id} in this credential's department or below it"
    ))
    .code("package_not_found")
}

/// The title a package is listed under.
fn title_of(manifest: &PackageManifest) -> String {
    match manifest {
        PackageManifest::Scorm(m) => m.title.clone(),
        PackageManifest::Cmi5(c) => c
            .course
            .title
            .first()
            .map(|t| t.value.clone())
            .unwrap_or_else(|| c.course.id.clone()),
    }
}

/// The course IRI of a package: a SCORM package's from its manifest identifier (so a new
/// upload of the same course reports under the same activity), a cmi5 course's its own.
pub fn course_iri(manifest: &PackageManifest, activity_base: &str) -> String {
    match manifest {
        PackageManifest::Scorm(m) => {
            let id: String =
                url::form_urlencoded::byte_serialize(m.identifier.as_bytes()).collect();
            format!("{}/{id}", activity_base.trim_end_matches('/'))
        }
        PackageManifest::Cmi5(c) => c.course.id.clone(),
    }
}

fn aus(nodes: &[Cmi5Node], out: &mut Vec<Au>) {
    for n in nodes {
        match n {
            Cmi5Node::Au(au) => out.push(au.clone()),
            Cmi5Node::Block(b) => aus(&b.children, out),
        }
    }
}

/// The AUs of a cmi5 course in document order.
pub fn course_aus(manifest: &PackageManifest) -> Vec<Au> {
    let mut out = Vec::new();
    if let PackageManifest::Cmi5(c) = manifest {
        aus(&c.children, &mut out);
    }
    out
}

/// The package as the API shows it.
pub fn describe(record: &PackageRecord, manifest: &PackageManifest, base: &str) -> Value {
    let course = course_iri(manifest, base);
    let (kind, version, edition, launchables) = match manifest {
        PackageManifest::Scorm(m) => (
            "scorm",
            Some(m.version.as_str()),
            m.edition,
            m.launchables
                .iter()
                .map(|l| {
                    json!({
                        "id": l.item_identifier,
                        "title": l.title,
                        "scormType": l.scorm_type,
                        "launchUrl": l.launch_url,
                        "activityId": mapping::sco_iri(&course, &l.item_identifier),
                    })
                })
                .collect::<Vec<_>>(),
        ),
        PackageManifest::Cmi5(_) => (
            "cmi5",
            None,
            None,
            course_aus(manifest)
                .iter()
                .map(|au| {
                    json!({
                        "id": au.id,
                        "title": au.title.first().map(|t| t.value.clone()).unwrap_or_default(),
                        "launchUrl": au.url,
                        "moveOn": au.move_on.as_str(),
                        "activityId": crate::scorm::cmi5::au_activity_id(&course, &au.id),
                    })
                })
                .collect(),
        ),
    };
    json!({
        "id": record.id,
        "department": if record.department.is_root() { "/" } else { record.department.as_str() },
        "title": record.title,
        "kind": kind,
        "scormVersion": version,
        "edition": edition,
        "activityId": course,
        "launchables": launchables,
        "files": record.file_count,
        "size": record.size,
        "created": crate::xapi::statement::format_us(record.created_us),
    })
}

/// Reads, checks and stores an uploaded zip; answers the record and the package read
/// (its files moved to the store).
pub async fn upload(
    store: &DynStore,
    department: &Department,
    zip: &[u8],
    settings: &ContentSettings,
    now_us: i64,
) -> XapiResult<(PackageRecord, Package)> {
    let mut package = read_package(zip, &settings.limits).map_err(|e| package_error(&e))?;
    let record = PackageRecord {
        id: uuid::Uuid::new_v4().to_string(),
        department: department.clone(),
        created_us: now_us,
        title: title_of(&package.manifest),
        manifest: serde_json::to_string(&package.manifest)
            .map_err(|e| XapiError::internal(format!("cannot write the manifest: {e}")))?,
        size: package.total_size,
        file_count: package.files.len() as u64,
    };
    // The bytes move to the store (a package may be a gigabyte: never held twice); the
    // package answered keeps its manifest and notes, not its files.
    let files = std::mem::take(&mut package.files)
        .into_iter()
        .map(|f| StoredFile {
            path: f.path,
            content_type: f.content_type.to_owned(),
            content: f.bytes,
        })
        .collect();
    if !store
        .put_package(&record, files)
        .await
        .map_err(store_error)?
    {
        return Err(XapiError::conflict(format!(
            "package {} exists already",
            record.id
        )));
    }
    Ok((record, package))
}

/// A package of `within`'s subtree and its manifest, parsed again from its stored file
/// (the store keeps bytes; the rules stay here).
pub async fn load(
    store: &DynStore,
    within: &Department,
    id: &str,
) -> XapiResult<(PackageRecord, PackageManifest)> {
    let record = store
        .get_package(id, within)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(id))?;
    let manifest = manifest_of(store, &record).await?;
    Ok((record, manifest))
}

async fn manifest_of(store: &DynStore, record: &PackageRecord) -> XapiResult<PackageManifest> {
    use crate::scorm::manifest::{parse_cmi5, parse_imsmanifest, CMI5_XML, IMSMANIFEST};
    if let Some(f) = store
        .package_file(&record.id, IMSMANIFEST)
        .await
        .map_err(store_error)?
    {
        return parse_imsmanifest(&f.content)
            .map(PackageManifest::Scorm)
            .map_err(|e| package_error(&e));
    }
    if let Some(f) = store
        .package_file(&record.id, CMI5_XML)
        .await
        .map_err(store_error)?
    {
        return parse_cmi5(&f.content)
            .map(PackageManifest::Cmi5)
            .map_err(|e| package_error(&e));
    }
    Err(XapiError::internal(format!(
        "package {} has lost its manifest",
        record.id
    )))
}

pub async fn list(store: &DynStore, within: &Department) -> XapiResult<Vec<PackageRecord>> {
    store.list_packages(within).await.map_err(store_error)
}

pub async fn remove(store: &DynStore, within: &Department, id: &str) -> XapiResult<()> {
    if store
        .delete_package(id, within)
        .await
        .map_err(store_error)?
    {
        Ok(())
    } else {
        Err(not_found(id))
    }
}

/// What a launch asks for.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    pub actor: Value,
    pub registration: Option<uuid::Uuid>,
    /// The item (SCORM) or AU (cmi5) identifier; the first launchable when absent.
    pub item: Option<String>,
}

/// A launch token's session, as kept in its record (JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: String,
    pub kind: String,
    pub package_id: String,
    /// Where the statements and documents of the session are written.
    pub department: String,
    pub actor: Value,
    /// The authority of the launching credential: it vouches for the learner.
    pub authority: Value,
    pub registration: uuid::Uuid,
    pub item: String,
    pub title: String,
    pub course_iri: String,
    pub course_title: String,
    /// The SCO's or AU's activity IRI.
    pub activity_id: String,
    /// The launch URL relative to the package root (SCORM), or the AU URL (cmi5).
    pub launch_url: String,
    pub scorm_version: Option<ScormVersion>,
    /// cmi5 sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmi5: Option<Cmi5Session>,
}

/// What a cmi5 session keeps beside the common part (`launcher::cmi5`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cmi5Session {
    /// The random salt the auth token's secret is derived with (hex).
    pub auth_salt: String,
    /// The launch data's `masteryScore`, which an AU's scores are checked against.
    pub mastery_score: Option<f64>,
}

/// A launch as answered to the caller: the session, the token (shown once) and the URL
/// to open: the player page on the content origin (SCORM), or the AU's launch URL (cmi5).
pub struct Launched {
    pub session: Session,
    pub token: String,
    pub expires_us: i64,
    pub player_url: String,
    /// cmi5: the AU's `launchMethod` (`OwnWindow` or `AnyWindow`).
    pub launch_method: Option<&'static str>,
}

fn launchable<'a>(list: &'a [Launchable], item: Option<&str>) -> XapiResult<&'a Launchable> {
    let sco = list
        .iter()
        .filter(|l| l.scorm_type == crate::scorm::manifest::ScormType::Sco);
    let found = match item {
        Some(id) => list.iter().find(|l| l.item_identifier == id),
        None => sco.clone().next().or_else(|| list.first()),
    };
    found.ok_or_else(|| {
        XapiError::bad_request(match item {
            Some(id) => format!("the package has no launchable item `{id}`"),
            None => "the package has nothing to launch".to_owned(),
        })
        .at("/sco")
        .code("no_such_item")
    })
}

/// Starts a session: checks the actor, picks the SCO or AU, records the launch under the
/// hash of a fresh token. A cmi5 launch also does what cmi5 asks of the LMS before the AU
/// runs (`cmi5::start`), with `clock` for its statements.
#[allow(clippy::too_many_arguments)]
pub async fn launch(
    store: &DynStore,
    clock: &StoredClock,
    caller: &Department,
    authority: &Value,
    id: &str,
    request: LaunchRequest,
    settings: &ContentSettings,
    now_us: i64,
) -> XapiResult<Launched> {
    let (record, manifest) = load(store, caller, id).await?;
    crate::scorm::cmi5::check_actor(&request.actor).map_err(|e| package_error(&e).at("/actor"))?;
    let course = course_iri(&manifest, &settings.activity_base);
    let registration = request.registration.unwrap_or_else(uuid::Uuid::new_v4);
    let session_id = uuid::Uuid::new_v4().to_string();
    let department = if caller.is_root() {
        String::new()
    } else {
        caller.as_str().to_owned()
    };
    let (session, au) = match &manifest {
        PackageManifest::Scorm(m) => {
            let l = launchable(&m.launchables, request.item.as_deref())?;
            let s = Session {
                id: session_id,
                kind: "scorm".into(),
                package_id: record.id.clone(),
                department,
                actor: request.actor,
                authority: authority.clone(),
                registration,
                item: l.item_identifier.clone(),
                title: l.title.clone(),
                course_iri: course.clone(),
                course_title: m.title.clone(),
                activity_id: mapping::sco_iri(&course, &l.item_identifier),
                launch_url: l.launch_url.clone(),
                scorm_version: Some(m.version),
                cmi5: None,
            };
            (s, None)
        }
        PackageManifest::Cmi5(c) => {
            let list = course_aus(&manifest);
            let au = match request.item.as_deref() {
                Some(want) => list.iter().find(|a| a.id == want),
                None => list.first(),
            }
            .ok_or_else(|| {
                XapiError::bad_request(match request.item.as_deref() {
                    Some(id) => format!("the course has no AU `{id}`"),
                    None => "the course has no AU to launch".to_owned(),
                })
                .at("/sco")
                .code("no_such_item")
            })?;
            let s = Session {
                id: session_id,
                kind: "cmi5".into(),
                package_id: record.id.clone(),
                department,
                actor: request.actor,
                authority: authority.clone(),
                registration,
                item: au.id.clone(),
                title: au
                    .title
                    .first()
                    .map(|t| t.value.clone())
                    .unwrap_or_default(),
                course_iri: course.clone(),
                course_title: c
                    .course
                    .title
                    .first()
                    .map(|t| t.value.clone())
                    .unwrap_or_default(),
                activity_id: crate::scorm::cmi5::au_activity_id(&course, &au.id),
                launch_url: au.url.clone(),
                scorm_version: None,
                cmi5: Some(cmi5::new_session_part(au)),
            };
            (s, Some(au.clone()))
        }
    };
    let token = crate::auth::random_token(32);
    let expires_us = now_us.saturating_add(LAUNCH_TTL_US);
    let (player_url, launch_method) = match &au {
        None => (
            format!("{}/player/{token}/", settings.origin.trim_end_matches('/')),
            None,
        ),
        // cmi5 wants the launch data and `launched` recorded before the AU can run: before
        // the launch record below makes the token valid.
        Some(au) => (
            cmi5::start(store, clock, &session, au, &token, settings, now_us).await?,
            Some(au.launch_method.as_str()),
        ),
    };
    let launch = LaunchRecord {
        token_hash: token_hash(&token),
        package_id: record.id.clone(),
        department: record.department.clone(),
        created_us: now_us,
        expires_us,
        session: serde_json::to_string(&session)
            .map_err(|e| XapiError::internal(format!("cannot write the session: {e}")))?,
        fetched: false,
    };
    if !store.put_launch(&launch).await.map_err(store_error)? {
        return Err(XapiError::internal("a launch token was drawn twice"));
    }
    Ok(Launched {
        session,
        token,
        expires_us,
        player_url,
        launch_method,
    })
}

/// The live session of a token. Unknown, expired, or of a package since deleted: the
/// same 404, so a token tells nothing once it is no longer valid.
pub async fn open(
    store: &DynStore,
    token: &str,
    now_us: i64,
) -> XapiResult<(LaunchRecord, Session)> {
    let gone = || {
        XapiError::not_found("this launch link is unknown or has expired: launch the course again")
            .code("launch_not_found")
    };
    if token.is_empty() || token.len() > 128 {
        return Err(gone());
    }
    let record = store
        .get_launch(&token_hash(token))
        .await
        .map_err(store_error)?
        .ok_or_else(gone)?;
    if record.expires_us < now_us {
        return Err(gone());
    }
    let session: Session = serde_json::from_str(&record.session)
        .map_err(|e| XapiError::internal(format!("unreadable session: {e}")))?;
    Ok((record, session))
}

/// A file of the session's package. Paths are the package's own (normalised at upload);
/// anything else is simply not found.
pub async fn file(store: &DynStore, record: &LaunchRecord, path: &str) -> XapiResult<StoredFile> {
    store
        .package_file(&record.package_id, path)
        .await
        .map_err(store_error)?
        .ok_or_else(|| XapiError::not_found(format!("the package has no file `{path}`")))
}
