use super::*;
use std::path::PathBuf;

/// The unpacked test packages, read in place (never copied into the repository).
pub(crate) fn test_packages() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/test-data/scorm-packages");
    assert!(
        dir.is_dir(),
        "the SCORM test packages are missing: expected {} (shared/test-data/scorm-packages \
         beside the repository, see shared/test-data/README.md)",
        dir.display()
    );
    dir
}

fn manifest_bytes(folder: &str) -> Vec<u8> {
    let path = test_packages().join(folder).join("imsmanifest.xml");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn scorm12_basic_calls() {
    let m = parse_imsmanifest(&manifest_bytes("scorm12/RuntimeBasicCalls_SCORM12")).unwrap();
    assert_eq!(m.version, ScormVersion::Scorm12);
    assert_eq!(m.edition, None);
    assert_eq!(
        m.identifier,
        "com.scorm.golfsamples.runtime.basicruntime.12"
    );
    assert_eq!(m.title, "Golf Explained - Run-time Basic Calls");
    assert_eq!(
        m.default_organization.as_deref(),
        Some("golf_sample_default_org")
    );
    assert_eq!(m.launchables.len(), 1);
    let sco = &m.launchables[0];
    assert_eq!(sco.launch_url, "shared/launchpage.html");
    assert_eq!(sco.item_identifier, "item_1");
    assert_eq!(sco.resource_identifier, "resource_1");
    assert_eq!(sco.title, "Golf Explained");
    assert_eq!(sco.scorm_type, ScormType::Sco);
    assert_eq!(m.resources[0].files.len(), 39);
}

#[test]
fn scorm12_minimum_calls_has_every_leaf_in_order_with_parameters() {
    let m = parse_imsmanifest(&manifest_bytes("scorm12/RuntimeMinimumCalls_SCORM12")).unwrap();
    assert_eq!(m.version, ScormVersion::Scorm12);
    assert_eq!(m.launchables.len(), 18);
    assert_eq!(m.launchables[0].launch_url, "Playing/Playing.html");
    assert_eq!(m.launchables[0].item_identifier, "playing_playing_item");
    let quiz = m
        .launchables
        .iter()
        .find(|l| l.item_identifier == "playing_quiz_item")
        .unwrap();
    assert_eq!(
        quiz.launch_url,
        "shared/assessmenttemplate.html?questions=Playing"
    );
    // Four top-level items (aggregations) with children.
    assert_eq!(m.organizations[0].items.len(), 4);
    assert!(m.organizations[0].items[0].identifierref.is_none());
    assert_eq!(m.organizations[0].items[0].children.len(), 6);
}

#[test]
fn scorm2004_third_edition_basic_and_advanced() {
    let basic = parse_imsmanifest(&manifest_bytes(
        "scorm2004/RuntimeBasicCalls_SCORM20043rdEdition",
    ))
    .unwrap();
    assert_eq!(basic.version, ScormVersion::Scorm2004);
    assert_eq!(basic.edition, Some(Edition::Third));
    assert_eq!(basic.launchables.len(), 1);
    assert_eq!(basic.launchables[0].launch_url, "shared/launchpage.html");
    assert_eq!(basic.launchables[0].values.scaled_passing_score, None);

    let adv = parse_imsmanifest(&manifest_bytes(
        "scorm2004/RunTimeAdvancedCalls_SCORM20043rdEdition",
    ))
    .unwrap();
    assert_eq!(adv.edition, Some(Edition::Third));
    assert_eq!(adv.title, "Golf Explained - Run-time Advanced Calls");
    let sco = &adv.launchables[0];
    assert_eq!(sco.launch_url, "shared/launchpage.html");
    assert!(sco.values.satisfied_by_measure);
    assert_eq!(sco.values.scaled_passing_score, Some(0.8));
    assert_eq!(
        sco.values.objective_ids,
        [
            "PRIMARYOBJ",
            "obj_etiquette",
            "obj_handicapping",
            "obj_havingfun",
            "obj_playing"
        ]
    );
}

#[test]
fn malformed_xml_is_refused_with_line_and_column() {
    let err = parse_imsmanifest(&manifest_bytes("scorm12/MalformedXml_SCORM12")).unwrap_err();
    assert_eq!(err.code(), "malformed_manifest", "{err}");
    let ScormError::MalformedManifest {
        file, line, column, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(file, "imsmanifest.xml");
    // The unclosed <item> is noticed at </organization>.
    assert_eq!(*line, 27, "{err}");
    assert!(*column > 1);
    assert!(err.to_string().contains("line 27"), "{err}");
}

#[test]
fn missing_launch_url_is_refused() {
    let err = parse_imsmanifest(&manifest_bytes("scorm12/MissingLaunchUrl_SCORM12")).unwrap_err();
    assert_eq!(err.code(), "missing_launch_url", "{err}");
    assert!(err.to_string().contains("resource_1"), "{err}");
}

fn manifest12(items: &str, resources: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<manifest identifier="m1" xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2"
  xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2">
  <metadata><schema>ADL SCORM</schema><schemaversion>1.2</schemaversion></metadata>
  <organizations default="o1"><organization identifier="o1"><title>Course</title>{items}</organization></organizations>
  <resources>{resources}</resources>
</manifest>"#
    )
}

#[test]
fn scorm12_item_values() {
    let xml = manifest12(
        r#"<item identifier="i1" identifierref="r1" parameters="&amp;a=1"><title> SCO one </title>
             <adlcp:masteryscore>80</adlcp:masteryscore>
             <adlcp:datafromlms>hello</adlcp:datafromlms>
             <adlcp:maxtimeallowed>00:30:00</adlcp:maxtimeallowed>
             <adlcp:timelimitaction>exit,message</adlcp:timelimitaction></item>"#,
        r#"<resource identifier="r1" type="webcontent" adlcp:scormtype="sco" href="a/index.html?x=2"/>"#,
    );
    let m = parse_imsmanifest(xml.as_bytes()).unwrap();
    let l = &m.launchables[0];
    assert_eq!(l.title, "SCO one");
    assert_eq!(l.launch_url, "a/index.html?x=2&a=1");
    assert_eq!(l.values.mastery_score, Some(80.0));
    assert_eq!(l.values.scaled_passing_score, Some(0.8));
    assert_eq!(l.values.launch_data.as_deref(), Some("hello"));
    assert_eq!(l.values.max_time_allowed.as_deref(), Some("00:30:00"));
    assert_eq!(l.values.time_limit_action.as_deref(), Some("exit,message"));
}

#[test]
fn scorm2004_fourth_edition_values_and_xml_base() {
    let xml = r##"<?xml version="1.0" encoding="UTF-8"?>
<manifest identifier="m4" xmlns="http://www.imsglobal.org/xsd/imscp_v1p1"
  xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_v1p3" xmlns:imsss="http://www.imsglobal.org/xsd/imsss"
  xml:base="content/">
  <metadata><schema>ADL SCORM</schema><schemaversion>2004 4th Edition</schemaversion></metadata>
  <organizations default="o"><organization identifier="o"><title>T</title>
    <item identifier="i1" identifierref="r1" parameters="#start"><title>One</title>
      <adlcp:completionThreshold completedByMeasure="true" minProgressMeasure="0.75"/>
      <adlcp:dataFromLMS>data</adlcp:dataFromLMS>
      <adlcp:timeLimitAction>continue,no message</adlcp:timeLimitAction>
      <imsss:sequencing>
        <imsss:limitConditions attemptAbsoluteDurationLimit="PT1H"/>
        <imsss:objectives><imsss:primaryObjective objectiveID="p" satisfiedByMeasure="true">
          <imsss:minNormalizedMeasure>0.6</imsss:minNormalizedMeasure></imsss:primaryObjective></imsss:objectives>
      </imsss:sequencing>
    </item>
    <item identifier="i2" identifierref="r2"><title>Two</title></item>
  </organization></organizations>
  <resources xml:base="sub/">
    <resource identifier="r1" type="webcontent" adlcp:scormType="sco" href="one.html" xml:base="x/"/>
    <resource identifier="r2" type="webcontent" adlcp:scormType="asset" href="https://cdn.example.com/two.html"/>
  </resources>
</manifest>"##;
    let m = parse_imsmanifest(xml.as_bytes()).unwrap();
    assert_eq!(m.version, ScormVersion::Scorm2004);
    assert_eq!(m.edition, Some(Edition::Fourth));
    let one = &m.launchables[0];
    assert_eq!(one.launch_url, "content/sub/x/one.html#start");
    assert_eq!(one.values.completion_threshold, Some(0.75));
    assert_eq!(one.values.launch_data.as_deref(), Some("data"));
    assert_eq!(
        one.values.time_limit_action.as_deref(),
        Some("continue,no message")
    );
    assert_eq!(one.values.max_time_allowed.as_deref(), Some("PT1H"));
    assert_eq!(one.values.scaled_passing_score, Some(0.6));
    let two = &m.launchables[1];
    assert_eq!(two.scorm_type, ScormType::Asset);
    assert_eq!(two.launch_url, "https://cdn.example.com/two.html");
}

#[test]
fn version_detection() {
    let cases = [
        (
            "<schemaversion>CAM 1.3</schemaversion>",
            ScormVersion::Scorm2004,
            Some(Edition::Second),
        ),
        (
            "<schemaversion>2004 2nd Edition</schemaversion>",
            ScormVersion::Scorm2004,
            Some(Edition::Second),
        ),
        (
            "<schemaversion>2004 3rd Edition</schemaversion>",
            ScormVersion::Scorm2004,
            Some(Edition::Third),
        ),
        (
            "<schemaversion>2004 4th Edition</schemaversion>",
            ScormVersion::Scorm2004,
            Some(Edition::Fourth),
        ),
        (
            "<schemaversion>1.2</schemaversion>",
            ScormVersion::Scorm12,
            None,
        ),
        ("", ScormVersion::Scorm12, None),
    ];
    for (meta, version, edition) in cases {
        let xml = format!(
            r#"<manifest identifier="m"><metadata>{meta}</metadata><organizations/>
               <resources><resource identifier="r" scormtype="sco" href="a.html"/></resources></manifest>"#
        );
        let m = parse_imsmanifest(xml.as_bytes()).unwrap();
        assert_eq!((m.version, m.edition), (version, edition), "{meta}");
        // No organization: the SCO resources are the launchables.
        assert_eq!(m.launchables[0].launch_url, "a.html");
    }
    // Namespaces alone.
    let xml = r#"<manifest identifier="m" xmlns="http://www.imsglobal.org/xsd/imscp_v1p1"
        xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_v1p3"><organizations/><resources>
        <resource identifier="r" adlcp:scormType="sco" href="a.html"/></resources></manifest>"#;
    let m = parse_imsmanifest(xml.as_bytes()).unwrap();
    assert_eq!(
        (m.version, m.edition),
        (ScormVersion::Scorm2004, Some(Edition::Unknown))
    );
}

#[test]
fn manifest_refusals() {
    // Wrong root.
    let err = parse_imsmanifest(b"<package/>").unwrap_err();
    assert_eq!(err.code(), "invalid_manifest");
    assert!(err.to_string().contains("<package>"), "{err}");
    // Item pointing at nothing.
    let xml = manifest12(
        r#"<item identifier="i1" identifierref="nope"><title>x</title></item>"#,
        r#"<resource identifier="r1" adlcp:scormtype="sco" href="a.html"/>"#,
    );
    let err = parse_imsmanifest(xml.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "invalid_manifest");
    assert!(err.to_string().contains("\"nope\""), "{err}");
    assert!(err.to_string().contains("line 5"), "{err}");
    // An asset item without href.
    let xml = manifest12(
        r#"<item identifier="i1" identifierref="r1"><title>x</title></item>"#,
        r#"<resource identifier="r1" adlcp:scormtype="asset"/>"#,
    );
    assert_eq!(
        parse_imsmanifest(xml.as_bytes()).unwrap_err().code(),
        "missing_launch_url"
    );
    // Nothing launchable at all.
    let xml = manifest12("", "");
    assert_eq!(
        parse_imsmanifest(xml.as_bytes()).unwrap_err().code(),
        "missing_launch_url"
    );
    // Not UTF-8, not declared Latin-1.
    let err = parse_imsmanifest(b"<manifest identifier=\"\xff\"/>").unwrap_err();
    assert_eq!(err.code(), "malformed_manifest");
    // Empty file.
    assert_eq!(
        parse_imsmanifest(b"").unwrap_err().code(),
        "malformed_manifest"
    );
}

#[test]
fn encodings() {
    let xml = manifest12(
        r#"<item identifier="i1" identifierref="r1"><title>Caf&#233;</title></item>"#,
        r#"<resource identifier="r1" adlcp:scormtype="sco" href="a.html"/>"#,
    );
    // UTF-8 with a BOM.
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(xml.as_bytes());
    assert_eq!(
        parse_imsmanifest(&bom).unwrap().launchables[0].title,
        "Café"
    );
    // UTF-16 LE with a BOM.
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in xml.replace("<?xml version=\"1.0\"?>", "").encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    assert_eq!(
        parse_imsmanifest(&utf16).unwrap().launchables[0].title,
        "Café"
    );
    // Declared Latin-1.
    let latin = manifest12(
        r#"<item identifier="i1" identifierref="r1"><title>Caf_</title></item>"#,
        r#"<resource identifier="r1" adlcp:scormtype="sco" href="a.html"/>"#,
    )
    .replace(
        "<?xml version=\"1.0\"?>",
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
    );
    let mut bytes = latin.into_bytes();
    let at = bytes.windows(4).position(|w| w == b"Caf_").unwrap() + 3;
    bytes[at] = 0xE9;
    assert_eq!(
        parse_imsmanifest(&bytes).unwrap().launchables[0].title,
        "Café"
    );
}

#[test]
fn launch_url_rules() {
    assert_eq!(launch_url(None, "a.html", None), "a.html");
    assert_eq!(launch_url(None, "a.html", Some("?x=1")), "a.html?x=1");
    assert_eq!(launch_url(None, "a.html", Some("x=1")), "a.html?x=1");
    assert_eq!(
        launch_url(None, "a.html?y=2", Some("?x=1")),
        "a.html?y=2&x=1"
    );
    assert_eq!(
        launch_url(None, "a.html?y=2", Some("&x=1")),
        "a.html?y=2&x=1"
    );
    assert_eq!(launch_url(None, "a.html#f", Some("x=1")), "a.html?x=1#f");
    assert_eq!(launch_url(None, "a.html", Some("#p")), "a.html#p");
    assert_eq!(launch_url(None, "a.html#f", Some("#p")), "a.html#f");
    assert_eq!(launch_url(Some("b/"), "a.html", None), "b/a.html");
    assert_eq!(
        launch_url(Some("b/"), "http://x.org/a", None),
        "http://x.org/a"
    );
    assert_eq!(launch_url(None, "a.html", Some("  ")), "a.html");
}

const CMI5_SIMPLE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<courseStructure xmlns="https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd">
  <course id="https://example.com/course/1">
    <title><langstring lang="en-US"> Course one </langstring></title>
    <description><langstring lang="en-US">About</langstring></description>
  </course>
  <objectives>
    <objective id="https://example.com/obj/1">
      <title><langstring>Obj</langstring></title><description><langstring>d</langstring></description>
    </objective>
  </objectives>
  <block id="https://example.com/block/1">
    <title><langstring>B</langstring></title><description><langstring>d</langstring></description>
    <au id="https://example.com/au/1" moveOn="CompletedAndPassed" masteryScore="0.85"
        launchMethod="OwnWindow" activityType="http://adlnet.gov/expapi/activities/lesson">
      <title><langstring lang="en-US">AU one</langstring></title>
      <description><langstring>d</langstring></description>
      <objectives><objective idref="https://example.com/obj/1"/></objectives>
      <url> au1/index.html </url>
      <launchParameters> {"level":3} </launchParameters>
      <entitlementKey> key-1 </entitlementKey>
    </au>
  </block>
  <au id="https://example.com/au/2">
    <title><langstring>AU two</langstring></title><description><langstring>d</langstring></description>
    <url>https://content.example.com/au2</url>
  </au>
</courseStructure>"#;

#[test]
fn cmi5_course_structure() {
    let c = parse_cmi5(CMI5_SIMPLE.as_bytes()).unwrap();
    assert_eq!(c.course.id, "https://example.com/course/1");
    assert_eq!(c.course.title[0].value, "Course one");
    assert_eq!(c.course.title[0].lang.as_deref(), Some("en-US"));
    assert_eq!(c.objectives[0].id, "https://example.com/obj/1");
    assert_eq!(c.aus.len(), 2);
    let au = &c.aus[0];
    assert_eq!(au.id, "https://example.com/au/1");
    assert_eq!(au.url, "au1/index.html");
    assert_eq!(au.move_on, MoveOn::CompletedAndPassed);
    assert_eq!(au.mastery_score, Some(0.85));
    assert_eq!(au.launch_method, LaunchMethod::OwnWindow);
    assert_eq!(au.launch_parameters.as_deref(), Some(r#"{"level":3}"#));
    assert_eq!(au.entitlement_key.as_deref(), Some("key-1"));
    assert_eq!(au.objectives, vec!["https://example.com/obj/1".to_string()]);
    assert_eq!(au.blocks, vec!["https://example.com/block/1".to_string()]);
    let au2 = &c.aus[1];
    assert_eq!(au2.move_on, MoveOn::NotApplicable);
    assert_eq!(au2.launch_method, LaunchMethod::AnyWindow);
    assert_eq!(au2.mastery_score, None);
    assert!(au2.blocks.is_empty());
    assert!(matches!(&c.children[0], Cmi5Node::Block(b) if b.children.len() == 1));
    assert!(matches!(&c.children[1], Cmi5Node::Au(_)));
}

#[test]
fn cmi5_refusals() {
    let no_url = CMI5_SIMPLE.replace("<url>https://content.example.com/au2</url>", "");
    let err = parse_cmi5(no_url.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "missing_launch_url");
    assert!(
        err.to_string().contains("https://example.com/au/2"),
        "{err}"
    );
    let bad_move_on = CMI5_SIMPLE.replace("CompletedAndPassed", "Finished");
    let err = parse_cmi5(bad_move_on.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "invalid_manifest");
    assert!(err.to_string().contains("Finished"), "{err}");
    let bad_mastery = CMI5_SIMPLE.replace("0.85", "85");
    assert_eq!(
        parse_cmi5(bad_mastery.as_bytes()).unwrap_err().code(),
        "invalid_manifest"
    );
    let broken = CMI5_SIMPLE.replace("</course>", "");
    let err = parse_cmi5(broken.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "malformed_manifest");
    assert!(err.to_string().starts_with("cmi5.xml"), "{err}");
    assert_eq!(
        parse_cmi5(b"<manifest/>").unwrap_err().code(),
        "invalid_manifest"
    );
}
