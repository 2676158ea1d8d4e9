//! Agent and Group identity: Inverse Functional Identifiers (Data 2.4.2.3).
use serde_json::Value;

/// Whether `statement`'s authority is `authority` (the `statements/read/mine` scope: a
/// credential reads only the statements it wrote), compared by identity key.
pub fn is_authority_of(authority: &Value, statement: &Value) -> bool {
    let mine = ifi_key(authority);
    mine.is_some() && statement.get("authority").and_then(ifi_key) == mine
}

/// The identity key of an Agent or identified Group: objectType plus its one inverse
/// functional identifier, normalised where the standard says comparison is
/// case-insensitive (the mbox domain, sha1 hex). `None` for an anonymous Group or a
/// value without an IFI.
pub fn ifi_key(agent: &Value) -> Option<String> {
    let mut key = String::new();
    push_ifi_key(&mut key, agent).then_some(key)
}

/// Appends the identity key of `agent` (see [`ifi_key`]) to `out`, so callers building
/// prefixed keys write each one once. False, with `out` untouched, when there is none.
pub fn push_ifi_key(out: &mut String, agent: &Value) -> bool {
    let Some(obj) = agent.as_object() else {
        return false;
    };
    // One walk over the (few) properties instead of a hashed lookup for each.
    let (mut kind, mut mbox, mut sha1, mut openid, mut account) = ("Agent", None, None, None, None);
    for (k, v) in obj {
        match k.as_str() {
            "objectType" if v.as_str() == Some("Group") => kind = "Group",
            "mbox" => mbox = v.as_str(),
            "mbox_sha1sum" => sha1 = v.as_str(),
            "openid" => openid = v.as_str(),
            "account" => account = v.as_object(),
            _ => {}
        }
    }
    if mbox.is_none() && sha1.is_none() && openid.is_none() && account.is_none() {
        return false;
    }
    out.push_str(kind);
    if let Some(mbox) = mbox {
        out.push_str("|mbox|");
        match mbox.rsplit_once('@') {
            Some((local, domain)) => {
                out.push_str(local);
                out.push('@');
                push_ascii_lowercase(out, domain);
            }
            None => out.push_str(mbox),
        }
    } else if let Some(sha) = sha1 {
        out.push_str("|mbox_sha1sum|");
        push_ascii_lowercase(out, sha);
    } else if let Some(openid) = openid {
        out.push_str("|openid|");
        out.push_str(openid);
    } else if let Some(account) = account {
        let home = account
            .get("homePage")
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = account.get("name").and_then(Value::as_str).unwrap_or("");
        out.push_str("|account|");
        out.push_str(home);
        out.push('|');
        out.push_str(name);
    }
    true
}

/// Appends `s.to_ascii_lowercase()` without an intermediate string.
fn push_ascii_lowercase(out: &mut String, s: &str) {
    let start = out.len();
    out.push_str(s);
    out[start..].make_ascii_lowercase();
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
