//! The `credentials` command (issue 2): list shows a created credential without its
//! secret; a revoked credential is refused (401) by the running server.
use crate::harness::{Lrs, DEFAULT_VERSION};
use std::process::{Command, Stdio};

fn cli(lrs: &Lrs, args: &[&str]) -> String {
    let store = lrs.store().expect("spawned server has a store").to_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_karmayogi-lrs"))
        .arg("credentials")
        .args(args)
        .args(["--store", &store])
        .env_remove("LRS_STORE")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "credentials {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn comm_4_0_revoked_credential_is_refused() {
    let lrs = Lrs::start();
    lrs.require_spawned("it manages credentials with the CLI");
    let (key, secret) = lrs.credential(&["statements/read"]);
    let listed = cli(&lrs, &["list"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&key))
        .unwrap_or_else(|| panic!("{key} not listed:\n{listed}"));
    assert!(
        line.contains("statements/read") && line.ends_with("active"),
        "{line}"
    );
    assert!(!listed.contains(&secret), "list must never print secrets");

    cli(&lrs, &["revoke", &key]);
    let listed = cli(&lrs, &["list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&key) && l.ends_with("revoked")),
        "{listed}"
    );
    let r = lrs
        .get("/statements")
        .auth(&key, &secret)
        .version(DEFAULT_VERSION)
        .send();
    r.assert_error(401);
}
