//! The standard itself: pure and synchronous. Nothing here does I/O.
pub mod agent;
pub mod document;
pub mod multipart;
pub mod query;
pub mod records;
pub mod signature;
pub mod statement;
pub mod validate;

use std::fmt;

/// The xAPI version governing one request, from its `X-Experience-API-Version` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XapiVersion {
    /// 1.0.0 – 1.0.3 (answered as 1.0.3).
    V1_0,
    /// 2.0.x, IEEE 9274.1.1-2023 (answered as 2.0.0).
    V2_0,
}

impl XapiVersion {
    /// Parses a header value: `1.0`, `1.0.x`, `2.0`, `2.0.x` (Communication 3.3.s4.b1).
    pub fn parse_header(value: &str) -> Option<Self> {
        let v = value.trim();
        let patch_ok = |rest: &str| {
            rest.is_empty()
                || (rest.starts_with('.')
                    && rest.len() > 1
                    && rest[1..].bytes().all(|b| b.is_ascii_digit()))
        };
        if let Some(rest) = v.strip_prefix("1.0") {
            patch_ok(rest).then_some(XapiVersion::V1_0)
        } else if let Some(rest) = v.strip_prefix("2.0") {
            patch_ok(rest).then_some(XapiVersion::V2_0)
        } else {
            None
        }
    }

    /// The value this LRS sends back in `X-Experience-API-Version`.
    pub fn header_value(self) -> &'static str {
        match self {
            XapiVersion::V1_0 => "1.0.3",
            XapiVersion::V2_0 => "2.0.0",
        }
    }

    /// The `version` a stored statement gets when it arrived without one.
    pub fn default_statement_version(self) -> &'static str {
        match self {
            XapiVersion::V1_0 => "1.0.0",
            XapiVersion::V2_0 => "2.0.0",
        }
    }

    pub fn is_v2(self) -> bool {
        self == XapiVersion::V2_0
    }
}

impl fmt::Display for XapiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header_value())
    }
}

/// Every version served, newest last, as listed by GET /about.
pub const SUPPORTED_VERSIONS: [&str; 2] = ["1.0.3", "2.0.0"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_header_parsing() {
        assert_eq!(XapiVersion::parse_header("1.0.3"), Some(XapiVersion::V1_0));
        assert_eq!(XapiVersion::parse_header("1.0"), Some(XapiVersion::V1_0));
        assert_eq!(XapiVersion::parse_header("2.0.0"), Some(XapiVersion::V2_0));
        assert_eq!(XapiVersion::parse_header("2.0"), Some(XapiVersion::V2_0));
        assert_eq!(XapiVersion::parse_header("1.1.0"), None);
        assert_eq!(XapiVersion::parse_header("0.95"), None);
        assert_eq!(XapiVersion::parse_header("1.0."), None);
        assert_eq!(XapiVersion::parse_header("2.0.x"), None);
        assert_eq!(XapiVersion::parse_header(""), None);
    }
}
