use super::*;
use crate::scorm::manifest::tests::test_packages;
use crate::scorm::ScormVersion;
use std::io::Write;
use std::path::Path;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

fn deflated() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
}

fn stored() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
}

/// A zip of `(name, bytes)` entries.
fn zip_of(entries: &[(&str, &[u8])], options: SimpleFileOptions) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        w.start_file(*name, options).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

const MINI_MANIFEST: &[u8] = br#"<manifest identifier="m"><metadata><schemaversion>1.2</schemaversion></metadata>
<organizations default="o"><organization identifier="o"><title>T</title>
<item identifier="i" identifierref="r"><title>I</title></item></organization></organizations>
<resources><resource identifier="r" type="webcontent" scormtype="sco" href="index.html"/></resources></manifest>"#;

/// Zips a folder of the shared test data, every file under `prefix`.
fn zip_folder(dir: &Path, prefix: &str) -> Vec<u8> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = format!("{rel}{}", e.file_name().to_string_lossy());
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{name}/"), out);
            } else {
                out.push((name, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, prefix, &mut files);
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in &files {
        w.start_file(name.as_str(), deflated()).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn reads_a_real_scorm12_package() {
    let dir = test_packages().join("scorm12/RuntimeBasicCalls_SCORM12");
    let p = read_package(&zip_folder(&dir, ""), &PackageLimits::default()).unwrap();
    assert_eq!(p.root, "");
    assert_eq!(p.manifest_file, "imsmanifest.xml");
    let PackageManifest::Scorm(m) = &p.manifest else {
        panic!("not SCORM")
    };
    assert_eq!(m.version, ScormVersion::Scorm12);
    assert_eq!(m.launchables[0].launch_url, "shared/launchpage.html");
    let launch = p.file("shared/launchpage.html").unwrap();
    assert_eq!(launch.content_type, "text/html; charset=utf-8");
    assert_eq!(
        p.file("shared/style.css").unwrap().content_type,
        "text/css; charset=utf-8"
    );
    assert_eq!(
        p.file("Etiquette/course.jpg").unwrap().content_type,
        "image/jpeg"
    );
    assert!(p.missing_launch_files.is_empty());
    let on_disk: u64 = p.files.iter().map(|f| f.bytes.len() as u64).sum();
    assert_eq!(p.total_size, on_disk);
}

#[test]
fn finds_the_manifest_in_a_single_top_folder() {
    let dir = test_packages().join("scorm2004/RunTimeAdvancedCalls_SCORM20043rdEdition");
    let p = read_package(&zip_folder(&dir, "golf/"), &PackageLimits::default()).unwrap();
    assert_eq!(p.root, "golf/");
    let PackageManifest::Scorm(m) = &p.manifest else {
        panic!("not SCORM")
    };
    assert_eq!(m.version, ScormVersion::Scorm2004);
    // Paths are relative to the manifest's folder.
    assert!(p.file("shared/launchpage.html").is_some());
    assert!(p.files.iter().all(|f| !f.path.starts_with("golf/")));
}

#[test]
fn broken_test_manifests_are_refused_through_the_zip() {
    for (folder, code) in [
        ("scorm12/MalformedXml_SCORM12", "malformed_manifest"),
        ("scorm12/MissingLaunchUrl_SCORM12", "missing_launch_url"),
    ] {
        let dir = test_packages().join(folder);
        let err = read_package(&zip_folder(&dir, ""), &PackageLimits::default()).unwrap_err();
        assert_eq!(err.code(), code, "{folder}: {err}");
    }
}

#[test]
fn cmi5_package_and_preference_over_imsmanifest() {
    let cmi5 =
        br#"<courseStructure xmlns="https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd">
      <course id="https://example.com/c"><title><langstring>C</langstring></title>
      <description><langstring>d</langstring></description></course>
      <au id="https://example.com/au"><title><langstring>A</langstring></title>
      <description><langstring>d</langstring></description><url>au/index.html?x=1</url></au>
    </courseStructure>"#;
    let bytes = zip_of(
        &[
            ("cmi5.xml", cmi5),
            ("imsmanifest.xml", MINI_MANIFEST),
            ("au/index.html", b"<html/>"),
        ],
        deflated(),
    );
    let p = read_package(&bytes, &PackageLimits::default()).unwrap();
    assert_eq!(p.manifest_file, "cmi5.xml");
    assert!(matches!(p.manifest, PackageManifest::Cmi5(_)));
    assert!(p.missing_launch_files.is_empty());
}

#[test]
fn reports_launch_files_that_are_not_in_the_package() {
    let bytes = zip_of(&[("imsmanifest.xml", MINI_MANIFEST)], deflated());
    let p = read_package(&bytes, &PackageLimits::default()).unwrap();
    assert_eq!(p.missing_launch_files, vec!["index.html".to_string()]);
}

#[test]
fn missing_manifest() {
    let bytes = zip_of(
        &[("a/index.html", b"x"), ("b/imsmanifest.xml", MINI_MANIFEST)],
        deflated(),
    );
    let err = read_package(&bytes, &PackageLimits::default()).unwrap_err();
    assert_eq!(err.code(), "missing_manifest");
    assert!(err.to_string().contains("b/imsmanifest.xml"), "{err}");
    let bytes = zip_of(&[("index.html", b"x")], deflated());
    assert_eq!(
        read_package(&bytes, &PackageLimits::default())
            .unwrap_err()
            .code(),
        "missing_manifest"
    );
}

#[test]
fn macos_litter_is_ignored() {
    let bytes = zip_of(
        &[
            ("course/imsmanifest.xml", MINI_MANIFEST),
            ("course/index.html", b"x"),
            ("__MACOSX/course/._index.html", b"junk"),
            ("course/.DS_Store", b"junk"),
        ],
        deflated(),
    );
    let p = read_package(&bytes, &PackageLimits::default()).unwrap();
    assert_eq!(p.root, "course/");
    assert_eq!(p.files.len(), 2);
}

#[test]
fn not_a_zip() {
    let err = read_package(b"this is not a zip", &PackageLimits::default()).unwrap_err();
    assert_eq!(err.code(), "not_a_zip");
    let mut truncated = zip_of(&[("imsmanifest.xml", MINI_MANIFEST)], deflated());
    truncated.truncate(truncated.len() / 2);
    assert_eq!(
        read_package(&truncated, &PackageLimits::default())
            .unwrap_err()
            .code(),
        "not_a_zip"
    );
}

#[test]
fn zip_slip_names_are_refused() {
    for name in [
        "../evil.html",
        "a/../../evil.html",
        "a/..",
        "/etc/passwd",
        "C:/windows/evil.dll",
        "c:evil",
        "a\\..\\evil.html",
        "a\u{0}b",
    ] {
        let bytes = zip_of(
            &[("imsmanifest.xml", MINI_MANIFEST), (name, b"x")],
            stored(),
        );
        let err = read_package(&bytes, &PackageLimits::default()).unwrap_err();
        assert_eq!(err.code(), "unsafe_path", "{name}: {err}");
        assert!(err.to_string().contains("unsafe path"), "{err}");
    }
}

#[test]
fn entry_path_normalization() {
    assert_eq!(normalize_entry_path("a/./b//c.html").unwrap(), "a/b/c.html");
    assert_eq!(normalize_entry_path("./a/").unwrap(), "a/");
    assert_eq!(normalize_entry_path("a..b/c").unwrap(), "a..b/c");
    assert!(normalize_entry_path("").is_err());
    assert!(normalize_entry_path("./").is_err());
}

#[test]
fn symlinks_are_refused() {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("imsmanifest.xml", deflated()).unwrap();
    w.write_all(MINI_MANIFEST).unwrap();
    w.add_symlink("index.html", "/etc/passwd", SimpleFileOptions::default())
        .unwrap();
    let bytes = w.finish().unwrap().into_inner();
    let err = read_package(&bytes, &PackageLimits::default()).unwrap_err();
    assert_eq!(err.code(), "symlink_in_package");
    assert!(err.to_string().contains("index.html"), "{err}");
}

#[test]
fn duplicate_names_after_normalization_are_refused() {
    let bytes = zip_of(
        &[
            ("imsmanifest.xml", MINI_MANIFEST),
            ("a/index.html", b"one"),
            ("a//index.html", b"two"),
        ],
        stored(),
    );
    let err = read_package(&bytes, &PackageLimits::default()).unwrap_err();
    assert_eq!(err.code(), "duplicate_entry", "{err}");
}

#[test]
fn too_many_files() {
    let names: Vec<String> = (0..6).map(|i| format!("f{i}.txt")).collect();
    let mut entries: Vec<(&str, &[u8])> = vec![("imsmanifest.xml", MINI_MANIFEST)];
    entries.extend(names.iter().map(|n| (n.as_str(), b"x".as_slice())));
    let bytes = zip_of(&entries, stored());
    let limits = PackageLimits {
        max_files: 5,
        ..PackageLimits::default()
    };
    let err = read_package(&bytes, &limits).unwrap_err();
    assert_eq!(err, ScormError::TooManyFiles { count: 7, limit: 5 });
    assert!(read_package(&bytes, &PackageLimits::default()).is_ok());
}

#[test]
fn file_and_package_size_limits_are_counted_while_inflating() {
    let big = vec![b'a'; 4000];
    let bytes = zip_of(
        &[("imsmanifest.xml", MINI_MANIFEST), ("big.bin", &big)],
        stored(),
    );
    let limits = PackageLimits {
        max_file_size: 3000,
        ..PackageLimits::default()
    };
    let err = read_package(&bytes, &limits).unwrap_err();
    assert_eq!(err.code(), "file_too_large");
    assert!(err.to_string().contains("big.bin"), "{err}");

    let bytes = zip_of(
        &[
            ("imsmanifest.xml", MINI_MANIFEST),
            ("a.bin", &big),
            ("b.bin", &big),
        ],
        stored(),
    );
    let limits = PackageLimits {
        max_total_size: 6000,
        ..PackageLimits::default()
    };
    let err = read_package(&bytes, &limits).unwrap_err();
    assert_eq!(err.code(), "package_too_large");
    assert!(err.to_string().contains("b.bin"), "{err}");
}

#[test]
fn a_zip_bomb_stops_at_the_ratio_limit() {
    // 8 MiB of zeros deflates to a few KiB: a ratio far beyond 100:1.
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let bytes = zip_of(
        &[("imsmanifest.xml", MINI_MANIFEST), ("bomb.bin", &zeros)],
        deflated(),
    );
    assert!(bytes.len() < 100 * 1024);
    let err = read_package(&bytes, &PackageLimits::default()).unwrap_err();
    assert_eq!(err.code(), "compression_ratio", "{err}");
    assert_eq!(err.status(), 413);
    // With the archive-wide ratio out of the way, the entry is named.
    let limits = PackageLimits {
        max_total_ratio: 10_000,
        ..PackageLimits::default()
    };
    let err = read_package(&bytes, &limits).unwrap_err();
    let ScormError::CompressionRatio { path, inflated, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path.as_deref(), Some("bomb.bin"));
    // Stopped early: not all 8 MiB were inflated.
    assert!(*inflated < 8 * 1024 * 1024, "{inflated}");
}

#[test]
fn the_overall_ratio_is_checked_too() {
    let zeros = vec![0u8; 200 * 1024];
    let bytes = zip_of(
        &[("imsmanifest.xml", MINI_MANIFEST), ("z.bin", &zeros)],
        deflated(),
    );
    let limits = PackageLimits {
        max_ratio: u64::MAX,
        max_total_ratio: 10,
        ratio_floor: 0,
        ..PackageLimits::default()
    };
    let err = read_package(&bytes, &limits).unwrap_err();
    assert_eq!(err.code(), "compression_ratio");
    let ScormError::CompressionRatio { path, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, &None);
    assert!(err.to_string().contains("as a whole"), "{err}");
}

#[test]
fn content_types() {
    assert_eq!(
        content_type_for("a/b/INDEX.HTM"),
        "text/html; charset=utf-8"
    );
    assert_eq!(content_type_for("x.js"), "text/javascript; charset=utf-8");
    assert_eq!(content_type_for("x.woff2"), "font/woff2");
    assert_eq!(content_type_for("x.mp4"), "video/mp4");
    assert_eq!(content_type_for("noext"), "application/octet-stream");
    assert_eq!(content_type_for("dir.v2/noext"), "application/octet-stream");
}
