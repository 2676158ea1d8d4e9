//! Agent and Group identity: Inverse Functional Identifiers (Data 2.4.2.3).
use serde_json::Value;

/// The identity key of an Agent or identified Group: objectType plus its one inverse
/// functional identifier, normalised where the standard says comparison is
/// case-insensitive (the mbox domain, sha1 hex). `None` for an anonymous Group or a
/// value without an IFI.
pub fn ifi_key(agent: &Value) -> Option<String> {
    let obj = agent.as_object()?;
    let kind = match obj.get("objectType").and_then(Value::as_str) {
        Some("Group") => "Group",
        _ => "Agent",
    };
    if let Some(mbox) = obj.get("mbox").and_then(Value::as_str) {
        let normalised = match mbox.rsplit_once('@') {
            Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
            None => mbox.to_owned(),
        };
        return Some(format!("{kind}|mbox|{normalised}"));
    }
    if let Some(sha) = obj.get("mbox_sha1sum").and_then(Value::as_str) {
        return Some(format!("{kind}|mbox_sha1sum|{}", sha.to_ascii_lowercase()));
    }
    if let Some(openid) = obj.get("openid").and_then(Value::as_str) {
        return Some(format!("{kind}|openid|{openid}"));
    }
    if let Some(account) = obj.get("account").and_then(Value::as_object) {
        let home = account
            .get("homePage")
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = account.get("name").and_then(Value::as_str).unwrap_or("");
        return Some(format!("{kind}|account|{home}|{name}"));
    }
    None
}

/// The members of a Group (empty for an Agent).
pub fn members(agent: &Value) -> impl Iterator<Item = &Value> {
    agent
        .get("member")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The Person object (Communication 2.4) for an Agent: every identifier known for it,
/// each as an array. This LRS links no identities, so it is the agent itself.
pub fn person(agent: &Value) -> Value {
    let mut p = serde_json::Map::new();
    p.insert("objectType".into(), Value::from("Person"));
    if let Some(obj) = agent.as_object() {
        for k in ["name", "mbox", "mbox_sha1sum", "openid", "account"] {
            if let Some(v) = obj.get(k) {
                p.insert(k.into(), Value::Array(vec![v.clone()]));
            }
        }
    }
    Value::Object(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_2_4_2_3_mbox_domain_is_case_insensitive() {
        let a = ifi_key(&json!({"mbox": "mailto:Ann@Example.COM"}));
        let b = ifi_key(&json!({"objectType": "Agent", "mbox": "mailto:Ann@example.com"}));
        assert_eq!(a, b);
        assert_ne!(a, ifi_key(&json!({"mbox": "mailto:ann@example.com"})));
    }

    #[test]
    fn data_2_4_2_group_and_agent_with_same_ifi_differ() {
        let a = ifi_key(&json!({"mbox": "mailto:a@example.com"}));
        let g = ifi_key(&json!({"objectType": "Group", "mbox": "mailto:a@example.com"}));
        assert_ne!(a, g);
        assert_eq!(ifi_key(&json!({"objectType": "Group", "member": []})), None);
    }

    #[test]
    fn account_identity_uses_home_page_and_name() {
        let a = ifi_key(&json!({"account": {"homePage": "http://x.org", "name": "1"}}));
        let b =
            ifi_key(&json!({"account": {"name": "1", "homePage": "http://x.org"}, "name": "Ann"}));
        assert_eq!(a, b);
    }
}
