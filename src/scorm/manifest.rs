//! Package manifests: `imsmanifest.xml` (IMS Content Packaging as profiled by SCORM 1.2
//! and the SCORM 2004 CAM, 2nd–4th edition) and `cmi5.xml` (the cmi5 course structure).
//!
//! Only what a player and the statement mapping need is read: the version, organizations
//! and their items, resources, the launchable items (SCOs and assets) with their launch
//! URL, and the per-item values the run-time data model is initialised from (mastery
//! score, launch data, time limits, completion threshold). Sequencing beyond the primary
//! objective is not interpreted. Elements and attributes are matched by local name so a
//! manifest with a slightly wrong namespace (common in authoring-tool output) still reads.
use roxmltree::{Document, Node, ParsingOptions};
use serde::Serialize;

use super::{ScormError, ScormVersion};

/// File names the package reader looks for.
pub const IMSMANIFEST: &str = "imsmanifest.xml";
pub const CMI5_XML: &str = "cmi5.xml";

/// Bounds the tree a manifest may build (a real manifest has thousands of nodes at most).
const NODES_LIMIT: u32 = 2_000_000;

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The edition of a SCORM 2004 package, from `<schemaversion>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Edition {
    /// `CAM 1.3` or `2004 2nd Edition`.
    Second,
    /// `2004 3rd Edition`.
    Third,
    /// `2004 4th Edition`.
    Fourth,
    /// A 2004 package whose edition could not be told (namespaces only).
    Unknown,
}

/// Whether a resource talks to the run-time API (`sco`) or not (`asset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScormType {
    Sco,
    Asset,
}

/// A parsed `imsmanifest.xml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    pub version: ScormVersion,
    /// Set for SCORM 2004 packages.
    pub edition: Option<Edition>,
    /// `<manifest identifier>`.
    pub identifier: String,
    /// The default organization's title, else the first organization's, else the identifier.
    pub title: String,
    /// `<organizations default>` when it names an organization.
    pub default_organization: Option<String>,
    pub organizations: Vec<Organization>,
    pub resources: Vec<Resource>,
    /// The launchable items of the default organization in document order (leaf items with
    /// an `identifierref`); when the manifest has no organization, the SCO resources.
    pub launchables: Vec<Launchable>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Organization {
    pub identifier: String,
    pub title: String,
    pub items: Vec<Item>,
}

/// An `<item>` of an organization (a node of the activity tree).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub identifier: String,
    pub title: String,
    pub identifierref: Option<String>,
    /// `parameters`: a query string or fragment appended to the resource href.
    pub parameters: Option<String>,
    pub is_visible: bool,
    pub values: ItemValues,
    pub children: Vec<Item>,
}

/// The per-item values that initialise the run-time data model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ItemValues {
    /// 1.2 `adlcp:masteryscore`, 0–100.
    pub mastery_score: Option<f64>,
    /// 2004 primary objective `imsss:minNormalizedMeasure` (−1…1), when the objective is
    /// `satisfiedByMeasure`; for 1.2 the mastery score divided by 100.
    pub scaled_passing_score: Option<f64>,
    /// 2004 primary objective `satisfiedByMeasure`.
    pub satisfied_by_measure: bool,
    /// 1.2 `adlcp:datafromlms` / 2004 `adlcp:dataFromLMS` (`cmi.launch_data`).
    pub launch_data: Option<String>,
    /// 1.2 `adlcp:maxtimeallowed` (`HHHH:MM:SS.SS`) / 2004
    /// `imsss:limitConditions@attemptAbsoluteDurationLimit` (ISO 8601 duration).
    pub max_time_allowed: Option<String>,
    /// `adlcp:timelimitaction` / `adlcp:timeLimitAction`.
    pub time_limit_action: Option<String>,
    /// 2004 `adlcp:completionThreshold` (text in the 3rd edition, `minProgressMeasure` in
    /// the 4th).
    pub completion_threshold: Option<f64>,
    /// 2004 `objectiveID`s of the item's sequencing objectives (primary first): the LMS
    /// starts `cmi.objectives` with them.
    pub objective_ids: Vec<String>,
}

/// A `<resource>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    pub identifier: String,
    /// `type`, normally `webcontent`.
    pub resource_type: String,
    pub scorm_type: ScormType,
    pub href: Option<String>,
    /// The `xml:base` in force for this resource (manifest + resources + resource).
    pub base: Option<String>,
    pub files: Vec<String>,
    pub dependencies: Vec<String>,
}

/// Something a learner can launch: an item bound to a resource with an href.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Launchable {
    /// The item identifier (the resource identifier when there is no organization).
    pub item_identifier: String,
    pub resource_identifier: String,
    pub title: String,
    pub scorm_type: ScormType,
    /// The URL to open, relative to the package root (or absolute): `xml:base` applied,
    /// item parameters appended.
    pub launch_url: String,
    pub values: ItemValues,
}

/// A parsed `cmi5.xml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CourseStructure {
    pub course: Cmi5Course,
    pub objectives: Vec<Cmi5Objective>,
    /// Top-level blocks and AUs in document order.
    pub children: Vec<Cmi5Node>,
    /// Every AU in document order, blocks flattened.
    pub aus: Vec<Au>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cmi5Course {
    pub id: String,
    pub title: Vec<LangString>,
    pub description: Vec<LangString>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cmi5Objective {
    pub id: String,
    pub title: Vec<LangString>,
    pub description: Vec<LangString>,
}

/// A `<langstring lang="…">` value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LangString {
    pub lang: Option<String>,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cmi5Node {
    Block(Cmi5Block),
    Au(Au),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cmi5Block {
    pub id: String,
    pub title: Vec<LangString>,
    pub description: Vec<LangString>,
    pub objectives: Vec<String>,
    pub children: Vec<Cmi5Node>,
}

/// An assignable unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Au {
    /// The publisher's AU id (never the launch activity id, cmi5 8.1.5).
    pub id: String,
    pub title: Vec<LangString>,
    pub description: Vec<LangString>,
    pub url: String,
    pub launch_method: LaunchMethod,
    pub move_on: MoveOn,
    pub mastery_score: Option<f64>,
    pub activity_type: Option<String>,
    pub launch_parameters: Option<String>,
    pub entitlement_key: Option<String>,
    pub objectives: Vec<String>,
    /// The ids of the blocks enclosing this AU, outermost first.
    pub blocks: Vec<String>,
}

/// cmi5 `launchMethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum LaunchMethod {
    AnyWindow,
    OwnWindow,
}

impl LaunchMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchMethod::AnyWindow => "AnyWindow",
            LaunchMethod::OwnWindow => "OwnWindow",
        }
    }
}

/// cmi5 `moveOn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum MoveOn {
    Passed,
    Completed,
    CompletedAndPassed,
    CompletedOrPassed,
    NotApplicable,
}

impl MoveOn {
    pub fn as_str(self) -> &'static str {
        match self {
            MoveOn::Passed => "Passed",
            MoveOn::Completed => "Completed",
            MoveOn::CompletedAndPassed => "CompletedAndPassed",
            MoveOn::CompletedOrPassed => "CompletedOrPassed",
            MoveOn::NotApplicable => "NotApplicable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Passed" => MoveOn::Passed,
            "Completed" => MoveOn::Completed,
            "CompletedAndPassed" => MoveOn::CompletedAndPassed,
            "CompletedOrPassed" => MoveOn::CompletedOrPassed,
            "NotApplicable" => MoveOn::NotApplicable,
            _ => return None,
        })
    }
}

/// Either kind of manifest a package can carry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PackageManifest {
    Scorm(Manifest),
    Cmi5(CourseStructure),
}

/// Decodes manifest bytes to text: UTF-8 (a BOM is dropped), UTF-16 with a BOM, or a
/// declared ISO-8859-1 / windows-1252 (read as Latin-1: the bytes are code points).
fn decode(bytes: &[u8], file: &str) -> Result<String, ScormError> {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return utf8(rest, file);
    }
    let utf16 = |rest: &[u8], le: bool| -> Result<String, ScormError> {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|_| malformed(file, 1, 1, "invalid UTF-16 text"))
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => {
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_lowercase();
            if head.contains("iso-8859-1")
                || head.contains("windows-1252")
                || head.contains("latin1")
            {
                Ok(bytes.iter().map(|&b| char::from(b)).collect())
            } else {
                let (line, column) = line_col(bytes, e.valid_up_to());
                Err(malformed(file, line, column, "the text is not UTF-8"))
            }
        }
    }
}

fn utf8(bytes: &[u8], file: &str) -> Result<String, ScormError> {
    std::str::from_utf8(bytes).map(str::to_string).map_err(|e| {
        let (line, column) = line_col(bytes, e.valid_up_to());
        malformed(file, line, column, "the text is not UTF-8")
    })
}

fn line_col(bytes: &[u8], at: usize) -> (u32, u32) {
    let before = &bytes[..at.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

fn malformed(file: &str, line: u32, column: u32, detail: &str) -> ScormError {
    ScormError::MalformedManifest {
        file: file.to_string(),
        line,
        column,
        detail: detail.to_string(),
    }
}

fn parse_xml<'a>(text: &'a str, file: &str) -> Result<Document<'a>, ScormError> {
    let options = ParsingOptions {
        // An internal DTD subset is harmless (the parser bounds entity expansion and never
        // fetches external entities); refusing it would refuse a few old manifests.
        allow_dtd: true,
        nodes_limit: NODES_LIMIT,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, options).map_err(|e| {
        let pos = e.pos();
        let mut detail = e.to_string();
        // The parser appends " at row:col"; the position is given separately.
        let suffix = format!(" at {}:{}", pos.row, pos.col);
        if let Some(stripped) = detail.strip_suffix(&suffix) {
            detail = stripped.to_string();
        }
        malformed(file, pos.row, pos.col, &detail)
    })
}

/// Elements by local name, ignoring namespaces (see the module docs).
fn children<'a, 'i>(node: Node<'a, 'i>, name: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name().eq_ignore_ascii_case(name))
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &'static str) -> Option<Node<'a, 'i>> {
    children(node, name).next()
}

/// An attribute by local name, case-insensitively (`scormtype` / `scormType`).
fn attr<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.name().eq_ignore_ascii_case(name) && a.namespace() != Some(XML_NS))
        .map(|a| a.value())
}

fn xml_base<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    node.attribute((XML_NS, "base"))
}

/// The trimmed text of an element (all text descendants), `None` when empty.
fn text_of(node: Node<'_, '_>) -> Option<String> {
    let s: String = node
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn line_of(doc: &Document<'_>, node: Node<'_, '_>) -> u32 {
    doc.text_pos_at(node.range().start).row
}

/// Parses `imsmanifest.xml` (SCORM 1.2 or 2004).
pub fn parse_imsmanifest(bytes: &[u8]) -> Result<Manifest, ScormError> {
    let file = IMSMANIFEST;
    let text = decode(bytes, file)?;
    let doc = parse_xml(&text, file)?;
    let root = doc.root_element();
    let invalid = |node: Node<'_, '_>, detail: String| ScormError::InvalidManifest {
        file: file.to_string(),
        line: Some(line_of(&doc, node)),
        detail,
    };
    if !root.tag_name().name().eq_ignore_ascii_case("manifest") {
        return Err(invalid(
            root,
            format!(
                "the root element is <{}>, not <manifest>",
                root.tag_name().name()
            ),
        ));
    }
    let (version, edition) = detect_version(root);
    let identifier = attr(root, "identifier")
        .unwrap_or_default()
        .trim()
        .to_string();

    // Resources first: items refer to them.
    let mut resources = Vec::new();
    let manifest_base = xml_base(root).unwrap_or_default();
    if let Some(res_node) = child(root, "resources") {
        let resources_base = xml_base(res_node).unwrap_or_default();
        for r in children(res_node, "resource") {
            let Some(id) = attr(r, "identifier")
                .map(str::trim)
                .filter(|s| !s.is_empty())
            else {
                return Err(invalid(r, "a <resource> has no identifier".to_string()));
            };
            let scorm_type = match attr(r, "scormtype").map(|s| s.trim().to_ascii_lowercase()) {
                Some(t) if t == "sco" => ScormType::Sco,
                _ => ScormType::Asset,
            };
            let base = format!(
                "{manifest_base}{resources_base}{}",
                xml_base(r).unwrap_or_default()
            );
            resources.push(Resource {
                identifier: id.to_string(),
                resource_type: attr(r, "type").unwrap_or_default().to_string(),
                scorm_type,
                href: attr(r, "href")
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                base: (!base.is_empty()).then_some(base),
                files: children(r, "file")
                    .filter_map(|f| attr(f, "href"))
                    .map(|h| h.trim().to_string())
                    .collect(),
                dependencies: children(r, "dependency")
                    .filter_map(|d| attr(d, "identifierref"))
                    .map(|h| h.trim().to_string())
                    .collect(),
            });
            // A SCO must be launchable even when no item points at it.
            if scorm_type == ScormType::Sco && attr(r, "href").is_none_or(|h| h.trim().is_empty()) {
                return Err(ScormError::MissingLaunchUrl {
                    file: file.to_string(),
                    line: Some(line_of(&doc, r)),
                    what: format!("the SCO resource \"{id}\""),
                });
            }
        }
    }

    let mut organizations = Vec::new();
    let mut default_organization = None;
    if let Some(orgs) = child(root, "organizations") {
        let default = attr(orgs, "default").map(str::trim);
        for o in children(orgs, "organization") {
            let org_id = attr(o, "identifier").unwrap_or_default().trim().to_string();
            if default == Some(org_id.as_str()) {
                default_organization = Some(org_id.clone());
            }
            organizations.push(Organization {
                title: child(o, "title")
                    .and_then(text_of)
                    .unwrap_or_else(|| org_id.clone()),
                identifier: org_id,
                items: children(o, "item")
                    .map(|i| parse_item(i, version))
                    .collect(),
            });
        }
    }

    let title = default_organization
        .as_deref()
        .and_then(|d| organizations.iter().find(|o| o.identifier == d))
        .or_else(|| organizations.first())
        .map(|o| o.title.clone())
        .unwrap_or_else(|| identifier.clone());

    let mut launchables = Vec::new();
    let chosen = default_organization
        .as_deref()
        .and_then(|d| organizations.iter().find(|o| o.identifier == d))
        .or_else(|| organizations.first());
    match chosen {
        Some(org) if !org.items.is_empty() => {
            let mut leaves = Vec::new();
            collect_leaves(&org.items, &mut leaves);
            for item in leaves {
                let Some(r_id) = item.identifierref.as_deref() else {
                    continue;
                };
                let line = item_line(&doc, &item.identifier);
                let Some(res) = resources.iter().find(|r| r.identifier == r_id) else {
                    return Err(ScormError::InvalidManifest {
                        file: file.to_string(),
                        line,
                        detail: format!(
                            "the item \"{}\" refers to the resource \"{r_id}\", which is not declared",
                            item.identifier
                        ),
                    });
                };
                let Some(href) = res.href.as_deref() else {
                    return Err(ScormError::MissingLaunchUrl {
                        file: file.to_string(),
                        line,
                        what: format!("the item \"{}\" (resource \"{r_id}\")", item.identifier),
                    });
                };
                launchables.push(Launchable {
                    item_identifier: item.identifier.clone(),
                    resource_identifier: res.identifier.clone(),
                    title: item.title.clone(),
                    scorm_type: res.scorm_type,
                    launch_url: launch_url(res.base.as_deref(), href, item.parameters.as_deref()),
                    values: item.values.clone(),
                });
            }
        }
        _ => {
            // No organization (allowed by 1.2 for resource-only packages): every SCO.
            for res in resources.iter().filter(|r| r.scorm_type == ScormType::Sco) {
                if let Some(href) = res.href.as_deref() {
                    launchables.push(Launchable {
                        item_identifier: res.identifier.clone(),
                        resource_identifier: res.identifier.clone(),
                        title: res.identifier.clone(),
                        scorm_type: ScormType::Sco,
                        launch_url: launch_url(res.base.as_deref(), href, None),
                        values: ItemValues::default(),
                    });
                }
            }
        }
    }
    if launchables.is_empty() {
        return Err(ScormError::MissingLaunchUrl {
            file: file.to_string(),
            line: None,
            what: "the package (no item refers to a resource with an href)".to_string(),
        });
    }

    Ok(Manifest {
        version,
        edition,
        identifier,
        title,
        default_organization,
        organizations,
        resources,
        launchables,
    })
}

fn item_line(doc: &Document<'_>, identifier: &str) -> Option<u32> {
    doc.descendants()
        .find(|n| {
            n.is_element()
                && n.tag_name().name().eq_ignore_ascii_case("item")
                && attr(*n, "identifier").map(str::trim) == Some(identifier)
        })
        .map(|n| line_of(doc, n))
}

fn collect_leaves<'a>(items: &'a [Item], out: &mut Vec<&'a Item>) {
    for item in items {
        if item.identifierref.is_some() {
            out.push(item);
        }
        collect_leaves(&item.children, out);
    }
}

/// Tells the SCORM version from `<metadata><schemaversion>`, else from the namespaces.
fn detect_version(root: Node<'_, '_>) -> (ScormVersion, Option<Edition>) {
    let schemaversion = child(root, "metadata")
        .and_then(|m| child(m, "schemaversion"))
        .and_then(text_of)
        .unwrap_or_default()
        .to_ascii_lowercase();
    if schemaversion.contains("1.2") {
        return (ScormVersion::Scorm12, None);
    }
    if schemaversion.contains("cam 1.3") || schemaversion.contains("2nd") {
        return (ScormVersion::Scorm2004, Some(Edition::Second));
    }
    if schemaversion.contains("3rd") {
        return (ScormVersion::Scorm2004, Some(Edition::Third));
    }
    if schemaversion.contains("4th") {
        return (ScormVersion::Scorm2004, Some(Edition::Fourth));
    }
    if schemaversion.contains("2004") {
        return (ScormVersion::Scorm2004, Some(Edition::Unknown));
    }
    // No usable schemaversion: the ADL namespaces in scope tell the generation.
    let namespaces: Vec<&str> = root.namespaces().map(|ns| ns.uri()).collect();
    let any = |needle: &str| namespaces.iter().any(|u| u.contains(needle));
    if any("adlcp_v1p3") || any("imscp_v1p1") || any("imsss") {
        (ScormVersion::Scorm2004, Some(Edition::Unknown))
    } else {
        // adlcp_rootv1p2 / imscp_rootv1p1p2, or nothing at all: 1.2 is the older default.
        (ScormVersion::Scorm12, None)
    }
}

fn parse_item(node: Node<'_, '_>, version: ScormVersion) -> Item {
    let identifier = attr(node, "identifier")
        .unwrap_or_default()
        .trim()
        .to_string();
    let number = |name: &'static str| {
        child(node, name)
            .and_then(text_of)
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    let mut values = ItemValues {
        launch_data: child(node, "datafromlms").and_then(text_of),
        time_limit_action: child(node, "timelimitaction").and_then(text_of),
        ..ItemValues::default()
    };
    match version {
        ScormVersion::Scorm12 => {
            values.mastery_score = number("masteryscore");
            values.scaled_passing_score = values.mastery_score.map(|m| m / 100.0);
            values.max_time_allowed = child(node, "maxtimeallowed").and_then(text_of);
        }
        ScormVersion::Scorm2004 => {
            if let Some(seq) = child(node, "sequencing") {
                if let Some(primary) =
                    child(seq, "objectives").and_then(|o| child(o, "primaryObjective"))
                {
                    values.satisfied_by_measure =
                        attr(primary, "satisfiedByMeasure").is_some_and(|v| v.trim() == "true");
                    // The measure only passes the SCO when the objective is satisfied by it.
                    if values.satisfied_by_measure {
                        values.scaled_passing_score = child(primary, "minNormalizedMeasure")
                            .and_then(text_of)
                            .and_then(|t| t.parse::<f64>().ok())
                            .filter(|v| (-1.0..=1.0).contains(v))
                            .or(Some(1.0));
                    }
                }
                if let Some(objectives) = child(seq, "objectives") {
                    let primary = child(objectives, "primaryObjective");
                    values.objective_ids = primary
                        .into_iter()
                        .chain(children(objectives, "objective"))
                        .filter_map(|o| attr(o, "objectiveID"))
                        .map(|id| id.trim().to_string())
                        .filter(|id| !id.is_empty())
                        .collect();
                }
                values.max_time_allowed = child(seq, "limitConditions")
                    .and_then(|l| attr(l, "attemptAbsoluteDurationLimit"))
                    .map(|s| s.trim().to_string());
            }
            if let Some(ct) = child(node, "completionThreshold") {
                values.completion_threshold = attr(ct, "minProgressMeasure")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .or_else(|| text_of(ct).and_then(|t| t.parse::<f64>().ok()))
                    .filter(|v| (0.0..=1.0).contains(v));
                // 4th edition: completedByMeasure="false" makes the threshold advisory only.
                if attr(ct, "completedByMeasure").is_some_and(|v| v.trim() == "false")
                    && attr(ct, "minProgressMeasure").is_none()
                {
                    values.completion_threshold = None;
                }
            }
        }
    }
    Item {
        title: child(node, "title")
            .and_then(text_of)
            .unwrap_or_else(|| identifier.clone()),
        identifierref: attr(node, "identifierref")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        parameters: attr(node, "parameters")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        is_visible: attr(node, "isvisible").is_none_or(|v| v.trim() != "false"),
        identifier,
        values,
        children: children(node, "item")
            .map(|i| parse_item(i, version))
            .collect(),
    }
}

fn is_absolute_url(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    !scheme.is_empty()
        && scheme.len() > 1 // "C:" is a drive letter, not a scheme
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The URL a launchable opens: `xml:base` prefixed (unless the href is absolute), then the
/// item `parameters` appended as the SCORM CAM describes (a leading `?` or `&` dropped, joined
/// with `&` when the href already has a query; a `#fragment` kept only when the href has none).
pub fn launch_url(base: Option<&str>, href: &str, parameters: Option<&str>) -> String {
    let href = href.trim();
    let mut url = match base {
        Some(b) if !is_absolute_url(href) && !href.starts_with('/') => format!("{b}{href}"),
        _ => href.to_string(),
    };
    let Some(p) = parameters.map(str::trim).filter(|p| !p.is_empty()) else {
        return url;
    };
    if let Some(fragment) = p.strip_prefix('#') {
        if !url.contains('#') {
            url.push('#');
            url.push_str(fragment);
        }
        return url;
    }
    let p = p.trim_start_matches(['?', '&']);
    if p.is_empty() {
        return url;
    }
    let (before, fragment) = match url.find('#') {
        Some(i) => (url[..i].to_string(), url[i..].to_string()),
        None => (url.clone(), String::new()),
    };
    let joiner = if before.contains('?') { '&' } else { '?' };
    format!("{before}{joiner}{p}{fragment}")
}

/// Parses `cmi5.xml` (the cmi5 course structure, section 13). Values are trimmed (13.1).
pub fn parse_cmi5(bytes: &[u8]) -> Result<CourseStructure, ScormError> {
    let file = CMI5_XML;
    let text = decode(bytes, file)?;
    let doc = parse_xml(&text, file)?;
    let root = doc.root_element();
    let invalid = |node: Node<'_, '_>, detail: String| ScormError::InvalidManifest {
        file: file.to_string(),
        line: Some(line_of(&doc, node)),
        detail,
    };
    if root.tag_name().name() != "courseStructure" {
        return Err(invalid(
            root,
            format!(
                "the root element is <{}>, not <courseStructure>",
                root.tag_name().name()
            ),
        ));
    }
    let Some(course) = child(root, "course") else {
        return Err(invalid(
            root,
            "<courseStructure> has no <course>".to_string(),
        ));
    };
    let Some(course_id) = attr(course, "id").map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(invalid(course, "<course> has no id".to_string()));
    };
    let objectives = match child(root, "objectives") {
        Some(list) => children(list, "objective")
            .map(|o| {
                let id = attr(o, "id").map(str::trim).unwrap_or_default();
                if id.is_empty() {
                    return Err(invalid(o, "an <objective> has no id".to_string()));
                }
                Ok(Cmi5Objective {
                    id: id.to_string(),
                    title: langstrings(o, "title"),
                    description: langstrings(o, "description"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let mut aus = Vec::new();
    let mut path = Vec::new();
    let children = parse_cmi5_children(&doc, root, &mut path, &mut aus)?;
    if aus.is_empty() {
        return Err(invalid(
            root,
            "the course structure has no <au>".to_string(),
        ));
    }
    Ok(CourseStructure {
        course: Cmi5Course {
            id: course_id.to_string(),
            title: langstrings(course, "title"),
            description: langstrings(course, "description"),
        },
        objectives,
        children,
        aus,
    })
}

fn langstrings(node: Node<'_, '_>, name: &'static str) -> Vec<LangString> {
    child(node, name)
        .map(|t| {
            children(t, "langstring")
                .map(|l| LangString {
                    lang: attr(l, "lang").map(|s| s.trim().to_string()),
                    value: text_of(l).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn objective_refs(node: Node<'_, '_>) -> Vec<String> {
    child(node, "objectives")
        .map(|o| {
            children(o, "objective")
                .filter_map(|r| attr(r, "idref"))
                .map(|s| s.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn parse_cmi5_children(
    doc: &Document<'_>,
    parent: Node<'_, '_>,
    path: &mut Vec<String>,
    aus: &mut Vec<Au>,
) -> Result<Vec<Cmi5Node>, ScormError> {
    let file = CMI5_XML;
    let invalid = |node: Node<'_, '_>, detail: String| ScormError::InvalidManifest {
        file: file.to_string(),
        line: Some(line_of(doc, node)),
        detail,
    };
    let mut out = Vec::new();
    for node in parent.children().filter(Node::is_element) {
        match node.tag_name().name() {
            "block" => {
                let Some(id) = attr(node, "id").map(str::trim).filter(|s| !s.is_empty()) else {
                    return Err(invalid(node, "a <block> has no id".to_string()));
                };
                path.push(id.to_string());
                let kids = parse_cmi5_children(doc, node, path, aus)?;
                path.pop();
                out.push(Cmi5Node::Block(Cmi5Block {
                    id: id.to_string(),
                    title: langstrings(node, "title"),
                    description: langstrings(node, "description"),
                    objectives: objective_refs(node),
                    children: kids,
                }));
            }
            "au" => {
                let Some(id) = attr(node, "id").map(str::trim).filter(|s| !s.is_empty()) else {
                    return Err(invalid(node, "an <au> has no id".to_string()));
                };
                let Some(url) = child(node, "url").and_then(text_of) else {
                    return Err(ScormError::MissingLaunchUrl {
                        file: file.to_string(),
                        line: Some(line_of(doc, node)),
                        what: format!("the AU \"{id}\""),
                    });
                };
                let launch_method = match attr(node, "launchMethod").map(str::trim) {
                    None | Some("AnyWindow") => LaunchMethod::AnyWindow,
                    Some("OwnWindow") => LaunchMethod::OwnWindow,
                    Some(other) => {
                        return Err(invalid(
                            node,
                            format!("the AU \"{id}\" has launchMethod \"{other}\"; expected AnyWindow or OwnWindow"),
                        ))
                    }
                };
                let move_on = match attr(node, "moveOn").map(str::trim) {
                    None => MoveOn::NotApplicable,
                    Some(v) => MoveOn::parse(v).ok_or_else(|| {
                        invalid(
                            node,
                            format!(
                                "the AU \"{id}\" has moveOn \"{v}\", which cmi5 does not define"
                            ),
                        )
                    })?,
                };
                let mastery_score = match attr(node, "masteryScore").map(str::trim) {
                    None => None,
                    Some(v) => match v.parse::<f64>() {
                        Ok(m) if (0.0..=1.0).contains(&m) => Some(m),
                        _ => {
                            return Err(invalid(
                                node,
                                format!("the AU \"{id}\" has masteryScore \"{v}\"; expected a decimal from 0 to 1"),
                            ))
                        }
                    },
                };
                let au = Au {
                    id: id.to_string(),
                    title: langstrings(node, "title"),
                    description: langstrings(node, "description"),
                    url,
                    launch_method,
                    move_on,
                    mastery_score,
                    activity_type: attr(node, "activityType")
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                    launch_parameters: child(node, "launchParameters").and_then(text_of),
                    entitlement_key: child(node, "entitlementKey").and_then(text_of),
                    objectives: objective_refs(node),
                    blocks: path.clone(),
                };
                aus.push(au.clone());
                out.push(Cmi5Node::Au(au));
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
pub(crate) mod tests;
