//! SCORM content in real headless Chromium (issue 15): each package of
//! `../shared/test-data/scorm-packages` is uploaded, launched through the player on the
//! content origin and driven as a learner would (browser-tests/scorm-course.mjs): page
//! through, close the page abruptly, relaunch and resume, pass the assessment, exit. The
//! script checks the statements and documents through the xAPI API. Runs on both stores.
use crate::browser::BrowserRun;
use crate::harness::Lrs;
use crate::scorm::{upload, zip_package};
use std::time::Duration;

fn course(package: &str, version: &str, flow: &str, responded: bool, artifacts: &str) {
    let lrs = Lrs::start();
    let p = upload(&lrs, zip_package(package));
    let id = p["id"].as_str().expect("package id");
    let out = BrowserRun::new(&lrs, "scorm-course.mjs")
        .env("SCORM_PACKAGE_ID", id)
        .env("SCORM_VERSION", version)
        .env("SCORM_FLOW", flow)
        .env("SCORM_EXPECT_RESPONDED", if responded { "1" } else { "0" })
        .artifacts(artifacts)
        .timeout(Duration::from_secs(180))
        .run();
    let done = format!("ok: SCORM {version} course ({flow}) through the player");
    assert!(out.stdout.contains(&done), "{}", out.stdout);
}

#[test]
fn scorm_12_minimum_calls_report_initialized_and_terminated_when_the_page_closes() {
    course(
        "scorm12/RuntimeMinimumCalls_SCORM12",
        "1.2",
        "minimal",
        false,
        "scorm-12-minimum",
    );
}

#[test]
fn scorm_12_course_suspends_resumes_and_passes_in_a_real_browser() {
    course(
        "scorm12/RuntimeBasicCalls_SCORM12",
        "1.2",
        "golf",
        false,
        "scorm-12-basic",
    );
}

#[test]
fn scorm_2004_course_suspends_resumes_and_passes_in_a_real_browser() {
    course(
        "scorm2004/RuntimeBasicCalls_SCORM20043rdEdition",
        "2004",
        "golf",
        false,
        "scorm-2004-basic",
    );
}

#[test]
fn scorm_2004_interactions_and_objectives_become_statements_in_a_real_browser() {
    course(
        "scorm2004/RunTimeAdvancedCalls_SCORM20043rdEdition",
        "2004",
        "golf",
        true,
        "scorm-2004-advanced",
    );
}

/// cmi5: the AU of `browser-tests/cmi5-au` (written for these tests) launched through the
/// LRS, run in Chromium on the content origin: fetch, LaunchData, defined statements,
/// and `terminated` also when the page is closed without Exit.
#[test]
fn cmi5_au_reports_through_its_own_session_in_a_real_browser() {
    let lrs = Lrs::start();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser-tests/cmi5-au");
    let p = upload(&lrs, crate::scorm::zip_folder(&dir));
    assert_eq!(p["kind"], "cmi5");
    let id = p["id"].as_str().expect("package id");
    let out = BrowserRun::new(&lrs, "cmi5-course.mjs")
        .env("CMI5_PACKAGE_ID", id)
        .timeout(Duration::from_secs(180))
        .run();
    assert!(
        out.stdout.contains("ok: cmi5 AU through the LRS"),
        "{}",
        out.stdout
    );
}
