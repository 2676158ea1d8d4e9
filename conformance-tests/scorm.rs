//! Content packages and SCORM sessions through HTTP (issue 15, docs/SCORM.md): upload,
//! refusal of broken packages, department visibility, launch, and the session endpoints
//! of the content origin driven the way the player's runtime drives them (the real
//! browser runs in `scorm_browser`). Uses the packages of `../shared/test-data` in place.
use crate::harness::Lrs;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A test-data package folder; fails clearly when the shared test data is absent.
pub fn package_dir(rel: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/test-data/scorm-packages")
        .join(rel);
    assert!(
        dir.join("imsmanifest.xml").is_file(),
        "the SCORM test package {} is missing: these tests read ../shared/test-data (see its README)",
        dir.display()
    );
    dir
}

fn add_dir(zip: &mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>, root: &Path, dir: &Path) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            add_dir(zip, root, &p);
        } else {
            let name = p
                .strip_prefix(root)
                .expect("inside the root")
                .to_string_lossy()
                .replace('\\', "/");
            zip.start_file(name, zip::write::SimpleFileOptions::default())
                .expect("zip entry");
            zip.write_all(&std::fs::read(&p).expect("read file"))
                .expect("zip write");
        }
    }
}

/// A test-data package as an uploadable zip.
pub fn zip_package(rel: &str) -> Vec<u8> {
    zip_folder(&package_dir(rel))
}

/// Any folder as an uploadable zip, its files at the root of the archive.
pub fn zip_folder(dir: &Path) -> Vec<u8> {
    assert!(dir.is_dir(), "no folder {}", dir.display());
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    add_dir(&mut zip, dir, dir);
    zip.finish().expect("zip").into_inner()
}

/// A zip of the given (name, content) entries.
pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        zip.write_all(content).expect("zip write");
    }
    zip.finish().expect("zip").into_inner()
}

pub fn upload(lrs: &Lrs, zip: Vec<u8>) -> Value {
    let r = lrs
        .post(&lrs.root_url("/scorm/packages"))
        .body("application/zip", zip)
        .send();
    r.assert_status(201);
    r.json()
}

pub fn learner(name: &str) -> Value {
    json!({
        "objectType": "Agent",
        "name": name,
        "account": { "homePage": "https://igot.example.gov.in", "name": name }
    })
}

/// Launches a package for `actor`; answers the launch and the player's session URL base.
pub fn launch(lrs: &Lrs, package: &str, body: &Value) -> (Value, String) {
    let r = lrs
        .post(&lrs.root_url(&format!("/scorm/packages/{package}/launch")))
        .json(body)
        .send();
    r.assert_status(201);
    let l = r.json();
    let player = l["playerUrl"].as_str().expect("playerUrl").to_owned();
    // http://host:port/player/{token}/ → http://host:port/session/{token}
    let session = player
        .trim_end_matches('/')
        .replacen("/player/", "/session/", 1);
    (l, session)
}

fn commit(lrs: &Lrs, session: &str, event: &str, sets: &[(&str, &str)]) -> Value {
    let sets: Vec<Value> = sets.iter().map(|(k, v)| json!([k, v])).collect();
    let r = lrs
        .post(&format!("{session}/commit"))
        .no_auth()
        // As sendBeacon sends it: the body is JSON whatever the type says.
        .body(
            "text/plain;charset=UTF-8",
            json!({ "event": event, "sets": sets }).to_string(),
        )
        .send();
    r.assert_status(200);
    r.json()
}

fn statements_of(lrs: &Lrs, registration: &str) -> Vec<Value> {
    let r = lrs
        .get("/statements")
        .query("registration", registration)
        .query("limit", "100")
        .query("ascending", "true")
        .send();
    r.assert_status(200);
    r.json()["statements"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn verbs(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|s| {
            s["verb"]["id"]
                .as_str()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn scorm_packages_are_uploaded_listed_read_and_deleted() {
    let lrs = Lrs::start();
    let p12 = upload(&lrs, zip_package("scorm12/RuntimeBasicCalls_SCORM12"));
    assert_eq!(p12["kind"], "scorm");
    assert_eq!(p12["scormVersion"], "1.2");
    assert_eq!(p12["launchables"][0]["launchUrl"], "shared/launchpage.html");
    assert!(p12["activityId"]
        .as_str()
        .is_some_and(|a| a.ends_with("com.scorm.golfsamples.runtime.basicruntime.12")));
    let p04 = upload(
        &lrs,
        zip_package("scorm2004/RuntimeBasicCalls_SCORM20043rdEdition"),
    );
    assert_eq!(p04["scormVersion"], "2004");
    assert_eq!(p04["edition"], "third");

    let list = lrs.get(&lrs.root_url("/scorm/packages")).send();
    list.assert_status(200);
    let ids: Vec<String> = list.json()["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["id"].as_str().map(str::to_owned))
        .collect();
    for p in [&p12, &p04] {
        assert!(ids.iter().any(|i| p["id"] == i.as_str()), "{ids:?}");
    }
    let id = p12["id"].as_str().expect("id");
    let one = lrs
        .get(&lrs.root_url(&format!("/scorm/packages/{id}")))
        .send();
    one.assert_status(200);
    assert_eq!(one.json()["title"], p12["title"]);

    let (_, session) = launch(&lrs, id, &json!({ "actor": learner("ravi") }));
    lrs.get(&session).no_auth().send().assert_status(200);

    lrs.delete(&lrs.root_url(&format!("/scorm/packages/{id}")))
        .send()
        .assert_status(204);
    let gone = lrs
        .get(&lrs.root_url(&format!("/scorm/packages/{id}")))
        .send();
    gone.assert_status(404);
    assert_eq!(gone.json()["error"]["code"], "package_not_found");
    // Its launches die with it.
    lrs.get(&session).no_auth().send().assert_status(404);
}

#[test]
fn scorm_broken_packages_are_refused_with_a_clear_error() {
    let lrs = Lrs::start();
    let refused = |zip: Vec<u8>, status: u16, code: &str| {
        let r = lrs
            .post(&lrs.root_url("/scorm/packages"))
            .body("application/zip", zip)
            .send();
        r.assert_status(status);
        let e = r.json()["error"].clone();
        assert_eq!(e["code"], code, "{e}");
        e["message"].as_str().unwrap_or_default().to_owned()
    };
    let m = refused(
        zip_package("scorm12/MalformedXml_SCORM12"),
        400,
        "malformed_manifest",
    );
    assert!(m.contains("imsmanifest.xml") && m.contains("line"), "{m}");
    let m = refused(
        zip_package("scorm12/MissingLaunchUrl_SCORM12"),
        400,
        "missing_launch_url",
    );
    assert!(!m.is_empty());
    refused(b"this is not a zip".to_vec(), 400, "not_a_zip");
    refused(
        zip_of(&[("readme.txt", b"no manifest")]),
        400,
        "missing_manifest",
    );
    let manifest =
        std::fs::read(package_dir("scorm12/RuntimeMinimumCalls_SCORM12").join("imsmanifest.xml"))
            .expect("manifest");
    refused(
        zip_of(&[
            ("imsmanifest.xml", &manifest),
            ("../../etc/evil.html", b"x"),
        ]),
        400,
        "unsafe_path",
    );
    // A bomb: 300 MB of zeros compress to a few hundred kB.
    let zeros = vec![0u8; 300 * 1024 * 1024];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("imsmanifest.xml", zip::write::SimpleFileOptions::default())
        .expect("entry");
    zip.write_all(&manifest).expect("write");
    zip.start_file(
        "shared/zeros.bin",
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated),
    )
    .expect("entry");
    zip.write_all(&zeros).expect("write");
    let bomb = zip.finish().expect("zip").into_inner();
    drop(zeros);
    let r = lrs
        .post(&lrs.root_url("/scorm/packages"))
        .body("application/zip", bomb)
        .send();
    r.assert_status(413);
    let code = r.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        ["compression_ratio", "file_too_large", "package_too_large"].contains(&code.as_str()),
        "{code}"
    );
    // Nothing of the refused uploads was kept.
    let list = lrs.get(&lrs.root_url("/scorm/packages")).send();
    assert_eq!(list.json()["packages"], json!([]));
}

#[test]
fn scorm_packages_follow_the_department_tree() {
    let lrs = Lrs::start();
    for d in ["moe", "moe/dhe", "moe/dsel"] {
        lrs.cli(&["departments", "create", d]);
    }
    let (pk, ps) = lrs.department_credential("moe", &["content"]);
    let (ck, cs) = lrs.department_credential("moe/dhe", &["content"]);
    let (sk, ss) = lrs.department_credential("moe/dsel", &["content"]);
    let (xk, xs) = lrs.department_credential("moe/dhe", &["all"]);
    let r = lrs
        .post(&lrs.root_url("/scorm/packages"))
        .auth(&ck, &cs)
        .body(
            "application/zip",
            zip_package("scorm12/RuntimeMinimumCalls_SCORM12"),
        )
        .send();
    r.assert_status(201);
    let id = r.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(r.json()["department"], "moe/dhe");
    let path = lrs.root_url(&format!("/scorm/packages/{id}"));
    let missing = lrs.root_url(&format!("/scorm/packages/{}", uuid::Uuid::new_v4()));
    // The sibling gets what a package that exists nowhere gets.
    let sibling = lrs.get(&path).auth(&sk, &ss).send();
    let nowhere = lrs.get(&missing).auth(&sk, &ss).send();
    sibling.assert_status(404);
    assert_eq!(
        sibling.json()["error"]["code"],
        nowhere.json()["error"]["code"]
    );
    let launch_path = format!("{path}/launch");
    lrs.post(&launch_path)
        .auth(&sk, &ss)
        .json(&json!({ "actor": learner("a") }))
        .send()
        .assert_status(404);
    lrs.delete(&path).auth(&sk, &ss).send().assert_status(404);
    let listed = lrs
        .get(&lrs.root_url("/scorm/packages"))
        .auth(&sk, &ss)
        .send();
    assert_eq!(listed.json()["packages"], json!([]));
    // The parent sees it; a credential without `content` may not touch packages.
    lrs.get(&path).auth(&pk, &ps).send().assert_status(200);
    lrs.get(&path).auth(&xk, &xs).send().assert_status(403);
    // A department outside the caller's subtree cannot be the upload's target.
    lrs.post(&lrs.root_url("/scorm/packages"))
        .auth(&ck, &cs)
        .query("department", "moe/dsel")
        .body(
            "application/zip",
            zip_package("scorm12/RuntimeMinimumCalls_SCORM12"),
        )
        .send()
        .assert_status(403);
}

#[test]
fn scorm_12_session_commits_become_profile_statements_and_resume() {
    let lrs = Lrs::start();
    let p = upload(&lrs, zip_package("scorm12/RuntimeBasicCalls_SCORM12"));
    let id = p["id"].as_str().expect("id");
    let registration = uuid::Uuid::new_v4().to_string();
    let body = json!({ "actor": learner("meera"), "registration": registration });
    let (l, session) = launch(&lrs, id, &body);
    let sco = l["activityId"].as_str().expect("activityId").to_owned();

    let start = lrs.get(&session).no_auth().send();
    start.assert_status(200);
    let s = start.json();
    assert_eq!(s["version"], "1.2");
    assert_eq!(s["launchUrl"], "shared/launchpage.html");
    assert_eq!(s["model"]["cmi.core.entry"], "ab-initio");
    assert_eq!(s["model"]["cmi.core.student_id"], "meera");
    assert_eq!(s["model"]["cmi.core.student_name"], "meera");
    assert!(s["datamodel"]["elements"]
        .as_array()
        .is_some_and(|e| e.len() > 10));

    commit(&lrs, &session, "initialize", &[]);
    let done = commit(
        &lrs,
        &session,
        "commit",
        &[
            ("cmi.core.lesson_status", "incomplete"),
            ("cmi.core.lesson_location", "7"),
            ("cmi.suspend_data", "page=7;answers=abc"),
            ("cmi.core.student_id", "someone-else"),
        ],
    );
    // The learner id is the LMS's: the call is refused (403 read-only in 1.2), not stored.
    assert_eq!(done["refused"][0]["element"], "cmi.core.student_id");
    assert_eq!(done["refused"][0]["error"], 403);
    commit(
        &lrs,
        &session,
        "terminate",
        &[
            ("cmi.core.exit", "suspend"),
            ("cmi.core.session_time", "0000:02:30.00"),
        ],
    );
    let first = statements_of(&lrs, &registration);
    let v = verbs(&first);
    assert_eq!(v.first().map(String::as_str), Some("initialized"), "{v:?}");
    assert!(v.contains(&"suspended".to_owned()), "{v:?}");
    for st in &first {
        assert_eq!(st["actor"]["account"]["name"], "meera");
        assert_eq!(st["context"]["registration"], registration.as_str());
        assert_eq!(st["object"]["id"], sco.as_str(), "{st}");
    }
    let suspended = first
        .iter()
        .find(|s| {
            s["verb"]["id"]
                .as_str()
                .is_some_and(|v| v.ends_with("/suspended"))
        })
        .expect("suspended");
    assert_eq!(suspended["result"]["duration"], "PT2M30S");

    // A commit sent twice (a retried beacon) stores nothing twice.
    commit(
        &lrs,
        &session,
        "terminate",
        &[
            ("cmi.core.exit", "suspend"),
            ("cmi.core.session_time", "0000:02:30.00"),
        ],
    );
    assert_eq!(statements_of(&lrs, &registration).len(), first.len());

    // Relaunch: the attempt resumes where it stopped.
    let (_, again) = launch(&lrs, id, &body);
    let s = lrs.get(&again).no_auth().send().json();
    assert_eq!(s["model"]["cmi.core.entry"], "resume", "{}", s["model"]);
    assert_eq!(s["model"]["cmi.core.lesson_location"], "7");
    assert_eq!(s["model"]["cmi.suspend_data"], "page=7;answers=abc");
    commit(&lrs, &again, "initialize", &[]);
    commit(
        &lrs,
        &again,
        "terminate",
        &[
            ("cmi.core.score.raw", "85"),
            ("cmi.core.score.min", "0"),
            ("cmi.core.score.max", "100"),
            ("cmi.core.lesson_status", "passed"),
            ("cmi.core.session_time", "0000:01:00"),
        ],
    );
    let all = statements_of(&lrs, &registration);
    let v = verbs(&all);
    for want in ["resumed", "passed", "terminated"] {
        assert!(v.contains(&want.to_owned()), "{want} missing from {v:?}");
    }
    let passed = all
        .iter()
        .find(|s| {
            s["verb"]["id"]
                .as_str()
                .is_some_and(|v| v.ends_with("/passed"))
        })
        .expect("passed");
    assert_eq!(passed["result"]["score"]["raw"].as_f64(), Some(85.0));
    assert_eq!(passed["result"]["success"], true);
    // The statements are ordinary ones: readable under 1.0.3 too.
    let old = lrs
        .get("/statements")
        .version("1.0.3")
        .query("registration", &registration)
        .send();
    old.assert_status(200);
    assert_eq!(
        old.json()["statements"].as_array().map(Vec::len),
        Some(all.len())
    );
}

#[test]
fn scorm_content_origin_serves_launched_content_only() {
    let lrs = Lrs::start();
    let p = upload(&lrs, zip_package("scorm12/RuntimeMinimumCalls_SCORM12"));
    let id = p["id"].as_str().expect("id");
    let (l, session) = launch(&lrs, id, &json!({ "actor": learner("kiran") }));
    let player = l["playerUrl"].as_str().expect("playerUrl");
    assert!(
        !player.starts_with(&lrs.root_url("/")),
        "the player must not be on the LRS's origin: {player}"
    );
    let page = lrs.get(player).no_auth().send();
    page.assert_status(200);
    assert!(page
        .header("content-security-policy")
        .is_some_and(|c| c.contains("default-src 'self'")));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    let origin = player.split("/player/").next().expect("origin");
    let content = session.replacen("/session/", "/content/", 1);
    let launch_file = format!(
        "{content}/{}",
        p["launchables"][0]["launchUrl"].as_str().expect("url")
    );
    lrs.get(&launch_file).no_auth().send().assert_status(200);
    lrs.get(&format!("{content}/no/such/file.html"))
        .no_auth()
        .send()
        .assert_status(404);
    // No way up and out of the package.
    lrs.get(&format!("{content}/%2e%2e/%2e%2e/etc/passwd"))
        .no_auth()
        .send()
        .assert_status(404);
    // An unknown token opens nothing.
    let forged = format!("{origin}/content/{}/imsmanifest.xml", "A".repeat(43));
    lrs.get(&forged).no_auth().send().assert_status(404);
    // Nothing of the LRS lives on the content origin, even with its credential.
    for path in [
        "/xapi/statements",
        "/admin/credentials",
        "/scorm/packages",
        "/xapi/about",
    ] {
        let r = lrs.get(&format!("{origin}{path}")).send();
        r.assert_status(404);
    }
}
