//! Completion certificates, against `docs/AUDIT.md` §7: 7.1 `shows_completion`
//! (`completed_and_passed_…`, `other_statements_…`), 7.2 the file and its tlog-proofs
//! (`the_file_is_canonical_…`, `every_changed_byte_fails`, `members_are_exactly_…`,
//! `tlog_proofs_have_one_spelling`), 7.3 the VC-JWT (`the_credential_is_…`,
//! `the_jws_signing_input_…`, `agents_without_a_uri_…`), 7.4 each verification step
//! (`a_wrong_verifier_key_fails`, `a_checkpoint_signed_by_another_key_fails`,
//! `a_proof_for_another_index_fails`, `a_statement_that_is_not_a_completion_fails`,
//! `a_tampered_jwt_fails`, `witness_cosignatures_are_kept_and_bound`).
use super::*;
use crate::audit::merkle::{inclusion_proof, stored_hashes_for_append};

const ORIGIN: &str = "lrs.example.gov.in/audit";
const ISSUER: &str = "https://lrs.example.gov.in";
const ACTIVITY: &str = "https://example.gov.in/course/ethics-101";
const LEARNER: &str = "mailto:learner@example.gov.in";
const NOW_US: i64 = 1_796_103_000_000_000;

fn agent() -> Value {
    json!({"objectType": "Agent", "name": "A Learner", "mbox": LEARNER})
}

fn statement(i: u64, mbox: &str, verb: &str, activity: &str, result: Option<Value>) -> Value {
    let mut s = json!({
        "id": format!("3f0c2a5e-8d1b-4c7a-9e2f-6b5d4a3c2b{i:02x}"),
        "actor": {"objectType": "Agent", "mbox": mbox},
        "verb": {"id": verb, "display": {"en-US": verb.rsplit('/').next().unwrap()}},
        "object": {
            "objectType": "Activity",
            "id": activity,
            "definition": {"name": {"hi-IN": "नैतिकता 101", "en-US": "Ethics 101"}},
        },
        "stored": format!("2026-12-01T04:30:0{i}.123456Z"),
        "timestamp": format!("2026-12-01T04:29:5{i}.5+05:30"),
        "authority": {"objectType": "Agent", "account": {"homePage": ISSUER, "name": "moe-dhe"}},
        "version": "1.0.3",
    });
    if let Some(r) = result {
        s["result"] = r;
    }
    s
}

/// A small log: seven statements, of which leaves 2 (completed, in `moe/dhe`) and 4
/// (passed, root department) show that the learner completed the course.
struct Log {
    signer: Signer,
    entries: Vec<(Value, Salt, Department)>,
    stored: Vec<Hash>,
    checkpoint: String,
}

impl Log {
    fn new() -> Log {
        let completed = "http://adlnet.gov/expapi/verbs/completed";
        let passed = "http://adlnet.gov/expapi/verbs/passed";
        let attempted = "http://adlnet.gov/expapi/verbs/attempted";
        let statements = [
            statement(0, LEARNER, attempted, ACTIVITY, None),
            statement(1, "mailto:other@example.gov.in", completed, ACTIVITY, None),
            statement(
                2,
                LEARNER,
                completed,
                ACTIVITY,
                Some(json!({"completion": true})),
            ),
            statement(
                3,
                LEARNER,
                completed,
                ACTIVITY,
                Some(json!({"completion": false})),
            ),
            statement(
                4,
                LEARNER,
                passed,
                ACTIVITY,
                Some(json!({"success": true, "score": {"scaled": 0.9}})),
            ),
            statement(
                5,
                LEARNER,
                completed,
                "https://example.gov.in/course/other",
                None,
            ),
            statement(
                6,
                LEARNER,
                passed,
                ACTIVITY,
                Some(json!({"success": false})),
            ),
        ];
        let mut entries = Vec::new();
        let mut stored: Vec<Hash> = Vec::new();
        for (i, s) in statements.into_iter().enumerate() {
            let salt = Salt::from_bytes([i as u8 + 1; 32]);
            let dept = if i == 2 {
                Department::parse("moe/dhe").unwrap()
            } else {
                Department::root()
            };
            let leaf = leaf::statement_leaf(&s, &salt, &dept, leaf::stored_us_of(&s).unwrap())
                .unwrap()
                .leaf_hash();
            let add = stored_hashes_for_append(i as u64, &leaf, stored.as_slice()).unwrap();
            stored.extend(add);
            entries.push((s, salt, dept));
        }
        let signer = Signer::generate(ORIGIN).unwrap();
        let mut log = Log {
            signer,
            entries,
            stored,
            checkpoint: String::new(),
        };
        log.checkpoint = log.checkpoint_by(&[&log.signer]);
        log
    }

    fn size(&self) -> u64 {
        self.entries.len() as u64
    }

    fn checkpoint_by(&self, signers: &[&Signer]) -> String {
        let root = merkle::tree_hash(self.size(), self.stored.as_slice()).unwrap();
        note::sign(
            &Checkpoint::new(ORIGIN, self.size(), root)
                .to_text()
                .unwrap(),
            signers,
        )
        .unwrap()
    }

    /// The statement logged at `leaf`, certified with the proof of `proof_for`.
    fn certified_with_proof(&self, leaf: u64, proof_for: u64) -> CertifiedStatement {
        let (statement, salt, department) = self.entries[leaf as usize].clone();
        CertifiedStatement {
            statement,
            salt,
            department,
            leaf_index: leaf,
            proof: inclusion_proof(proof_for, self.size(), self.stored.as_slice()).unwrap(),
        }
    }

    fn certified(&self, leaf: u64) -> CertifiedStatement {
        self.certified_with_proof(leaf, leaf)
    }

    fn build(&self) -> Vec<u8> {
        build(
            &agent(),
            ACTIVITY,
            &[self.certified(2), self.certified(4)],
            &self.checkpoint,
            &self.signer,
            ISSUER,
            NOW_US,
        )
        .unwrap()
    }

    /// A certificate signed by the log's key but built without any check.
    fn forge(&self, statements: &[CertifiedStatement], checkpoint: &str) -> Vec<u8> {
        let ifi = agent_ifi(&agent()).unwrap();
        assemble(
            &ifi,
            ACTIVITY,
            statements,
            checkpoint,
            &self.signer,
            ISSUER,
            "2026-12-01T05:30:00Z",
        )
        .unwrap()
    }

    fn verify(&self, file: &[u8]) -> Verification {
        verify(file, &self.signer.verifier())
    }
}

fn assert_fails(v: &Verification, needle: &str) {
    assert!(!v.ok, "verified: {}", v.summary);
    assert!(v.summary.starts_with("NOT VERIFIED"), "{}", v.summary);
    assert!(
        v.failures.iter().any(|f| f.contains(needle)),
        "no failure mentions `{needle}`: {:#?}",
        v.failures
    );
}

fn parse_file(file: &[u8]) -> Value {
    serde_json::from_slice(file).unwrap()
}

fn write_file(cert: &Value) -> Vec<u8> {
    let mut f = leaf::canonicalize(cert).unwrap();
    f.push(b'\n');
    f
}

fn jwt_parts(file: &[u8]) -> (Value, Value, String) {
    let cert = parse_file(file);
    let jwt = cert["credential"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = jwt.split('.').collect();
    let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let payload = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    (header, payload, parts[2].to_owned())
}

// ---------------------------------------------------------------------------------------
// Building and verifying

#[test]
fn a_certificate_from_a_real_log_verifies() {
    let log = Log::new();
    let file = log.build();
    let v = log.verify(&file);
    assert!(v.ok, "{:#?}", v.failures);
    assert!(v.failures.is_empty());
    for part in [
        "VERIFIED",
        LEARNER,
        "completed \"Ethics 101\"",
        ACTIVITY,
        "2026-11-30T22:59:52.500Z",
        "at leaf 2",
        "at leaf 4",
        ORIGIN,
        "tree size 7",
        ISSUER,
    ] {
        assert!(
            v.summary.contains(part),
            "`{part}` missing from {}",
            v.summary
        );
    }
}

#[test]
fn the_file_is_canonical_json_and_one_newline() {
    let log = Log::new();
    let file = log.build();
    let (body, nl) = file.split_at(file.len() - 1);
    assert_eq!(nl, b"\n");
    assert_eq!(leaf::canonicalize(&parse_file(body)).unwrap(), body);
    let cert = parse_file(&file);
    assert_eq!(cert["format"], FORMAT);
    assert_eq!(
        cert["agent"],
        json!({"objectType": "Agent", "mbox": LEARNER})
    );
    assert_eq!(cert["activity"], ACTIVITY);
    assert_eq!(cert["checkpoint"], log.checkpoint.as_str());
    assert_eq!(cert["verifierKey"], log.signer.verifier().to_string());
    let s = &cert["statements"][0];
    assert_eq!(s["department"], "moe/dhe");
    assert_eq!(cert["statements"][1]["department"], "");
    assert_eq!(s["leafIndex"], 2);
    assert_eq!(s["salt"], "03".repeat(32));
    assert_eq!(s["statement"], log.entries[2].0);
    let proof = TlogProof::parse(s["tlogProof"].as_str().unwrap()).unwrap();
    assert_eq!(proof.index, 2);
    assert_eq!(proof.checkpoint, log.checkpoint);
    // The final newline is optional; nothing else may follow.
    assert!(log.verify(body).ok);
    assert_fails(&log.verify(&[&file[..], b"\n"].concat()), "canonical");
    assert_fails(&log.verify(&[&file[..], b" "].concat()), "canonical");
    assert_fails(&log.verify(&[b" ", &file[..]].concat()), "canonical");
}

#[test]
fn building_is_deterministic() {
    let log = Log::new();
    assert_eq!(log.build(), log.build());
}

/// The whole point of the format: a changed byte anywhere makes verification fail.
#[test]
fn every_changed_byte_fails() {
    let log = Log::new();
    let file = log.build();
    let vkey = log.signer.verifier();
    let threads = std::thread::available_parallelism()
        .map_or(4, |n| n.get())
        .min(16);
    let chunk = file.len().div_ceil(threads);
    let passed: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (file, vkey) = (&file, &vkey);
                scope.spawn(move || {
                    let mut passed = Vec::new();
                    let end = ((t + 1) * chunk).min(file.len());
                    for pos in t * chunk..end {
                        for replacement in [file[pos] ^ 0x01, b' '] {
                            if replacement == file[pos] {
                                continue;
                            }
                            let mut changed = file.clone();
                            changed[pos] = replacement;
                            let v = verify(&changed, vkey);
                            if v.ok || v.failures.is_empty() {
                                passed.push(format!("byte {pos} -> {replacement:#04x}"));
                            }
                        }
                    }
                    passed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(passed.is_empty(), "changes that verified: {passed:?}");
}

#[test]
fn a_wrong_verifier_key_fails() {
    let log = Log::new();
    let file = log.build();
    // Same name, another key.
    let other = Signer::generate(ORIGIN).unwrap();
    assert_fails(&verify(&file, &other.verifier()), "verifier key");
    // Another name.
    let other = Signer::generate("someone.else/log").unwrap();
    assert_fails(&verify(&file, &other.verifier()), "verifier key");
    // A witness's cosignature key, same public key.
    let cosigner = Verifier::new(
        ORIGIN,
        note::ALG_COSIGNATURE_V1,
        &log.signer.verifier().public_key(),
    )
    .unwrap();
    assert_fails(&verify(&file, &cosigner), "Ed25519 log key");
}

#[test]
fn a_statement_that_is_not_a_completion_fails() {
    let log = Log::new();
    // Leaf 0: attempted; 1: someone else; 3: completion false; 5: another activity;
    // 6: success false. All logged and proved, none a completion of the learner.
    for leaf in [0, 1, 3, 5, 6] {
        let err = build(
            &agent(),
            ACTIVITY,
            &[log.certified(2), log.certified(leaf)],
            &log.checkpoint,
            &log.signer,
            ISSUER,
            NOW_US,
        )
        .unwrap_err();
        assert!(
            matches!(err, CertificateError::Statement { leaf_index, .. } if leaf_index == leaf),
            "{err}"
        );
        let forged = log.forge(&[log.certified(leaf)], &log.checkpoint);
        assert_fails(
            &log.verify(&forged),
            "does not show that the agent completed",
        );
    }
}

#[test]
fn a_proof_for_another_index_fails() {
    let log = Log::new();
    let err = build(
        &agent(),
        ACTIVITY,
        &[log.certified_with_proof(2, 3)],
        &log.checkpoint,
        &log.signer,
        ISSUER,
        NOW_US,
    )
    .unwrap_err();
    assert!(matches!(err, CertificateError::Statement { .. }), "{err}");
    let forged = log.forge(&[log.certified_with_proof(2, 3)], &log.checkpoint);
    assert_fails(&log.verify(&forged), "not included");
    // The statement of leaf 4 claimed at leaf 2, with leaf 2's proof.
    let mut moved = log.certified(4);
    moved.leaf_index = 2;
    moved.proof = log.certified(2).proof;
    assert_fails(
        &log.verify(&log.forge(&[moved], &log.checkpoint)),
        "not included",
    );
}

#[test]
fn a_tlog_proof_for_another_index_or_checkpoint_fails() {
    let log = Log::new();
    let mut cert = parse_file(&log.build());
    let proof2 = cert["statements"][0]["tlogProof"].clone();
    cert["statements"][0]["tlogProof"] = cert["statements"][1]["tlogProof"].clone();
    assert_fails(&log.verify(&write_file(&cert)), "for index 4, not leaf 2");
    cert["statements"][0]["tlogProof"] = proof2;
    cert["checkpoint"] = json!(log.checkpoint_by(&[&log.signer]));
    // Ed25519 signing is deterministic: the same checkpoint again is byte-identical.
    assert!(log.verify(&write_file(&cert)).ok);
}

#[test]
fn a_checkpoint_signed_by_another_key_fails() {
    let log = Log::new();
    let impostor = Signer::generate(ORIGIN).unwrap();
    let checkpoint = log.checkpoint_by(&[&impostor]);
    let err = build(
        &agent(),
        ACTIVITY,
        &[log.certified(2)],
        &checkpoint,
        &log.signer,
        ISSUER,
        NOW_US,
    )
    .unwrap_err();
    assert!(matches!(err, CertificateError::Checkpoint(_)), "{err}");
    let forged = log.forge(&[log.certified(2)], &checkpoint);
    assert_fails(&log.verify(&forged), "the checkpoint does not verify");
}

#[test]
fn witness_cosignatures_are_kept_and_bound() {
    let log = Log::new();
    let witness = Signer::generate("witness.example").unwrap();
    let checkpoint = log.checkpoint_by(&[&log.signer, &witness]);
    let file = build(
        &agent(),
        ACTIVITY,
        &[log.certified(4)],
        &checkpoint,
        &log.signer,
        ISSUER,
        NOW_US,
    )
    .unwrap();
    assert!(log.verify(&file).ok);
    // Dropping the witness line leaves a checkpoint the log's key still opens, but the
    // credential's evidence binds the tlog-proof with the witness line.
    let mut cert = parse_file(&file);
    cert["checkpoint"] = json!(log.checkpoint);
    let proof = TlogProof::parse(cert["statements"][0]["tlogProof"].as_str().unwrap()).unwrap();
    cert["statements"][0]["tlogProof"] = json!(TlogProof {
        checkpoint: log.checkpoint.clone(),
        ..proof
    }
    .to_text());
    assert_fails(&log.verify(&write_file(&cert)), "evidence");
}

#[test]
fn a_tampered_jwt_fails() {
    let log = Log::new();
    let file = log.build();
    let (header, mut payload, signature) = jwt_parts(&file);
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(leaf::canonicalize(v).unwrap());
    let with_jwt = |jwt: String| {
        let mut cert = parse_file(&file);
        cert["credential"] = json!(jwt);
        write_file(&cert)
    };
    // The payload changed, the signature kept.
    payload["credentialSubject"]["achievement"]["name"] = json!("Advanced Ethics");
    let jwt = format!("{}.{}.{signature}", enc(&header), enc(&payload));
    assert_fails(&log.verify(&with_jwt(jwt)), "signature does not verify");
    // The same change signed by another key, named in the header.
    let other = Signer::generate(ORIGIN).unwrap();
    let mut header2 = header.clone();
    header2["jwk"]["x"] = json!(URL_SAFE_NO_PAD.encode(other.verifier().public_key()));
    let input = format!("{}.{}", enc(&header2), enc(&payload));
    let jwt = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(other.sign_bytes(input.as_bytes()))
    );
    assert_fails(&log.verify(&with_jwt(jwt)), "header");
    // Signed by the log's key but for another agent, activity, or other evidence.
    let resign = |payload: &Value| {
        let input = format!("{}.{}", enc(&header), enc(payload));
        with_jwt(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(log.signer.sign_bytes(input.as_bytes()))
        ))
    };
    let (_, original, _) = jwt_parts(&file);
    let mut p = original.clone();
    p["credentialSubject"]["id"] = json!("mailto:other@example.gov.in");
    assert_fails(&log.verify(&resign(&p)), "agent");
    let mut p = original.clone();
    p["credentialSubject"]["achievement"]["id"] = json!("https://example.gov.in/course/other");
    assert_fails(&log.verify(&resign(&p)), "activity");
    let mut p = original.clone();
    p["evidence"].as_array_mut().unwrap().pop();
    assert_fails(&log.verify(&resign(&p)), "evidence");
    let mut p = original.clone();
    p["nbf"] = json!(0);
    assert_fails(&log.verify(&resign(&p)), "nbf");
    // Re-signing the original payload with the log's key gives a valid certificate.
    assert!(log.verify(&resign(&original)).ok);
    // Not a compact JWS.
    assert_fails(&log.verify(&with_jwt("a.b".into())), "compact JWS");
}

// ---------------------------------------------------------------------------------------
// The credential (Open Badges 3.0 VC-JWT)

#[test]
fn the_credential_is_an_open_badges_3_vc_jwt() {
    let log = Log::new();
    let file = log.build();
    let (header, payload, _) = jwt_parts(&file);
    assert_eq!(
        header,
        json!({"alg": "EdDSA", "typ": "JWT", "jwk": {
            "kty": "OKP", "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(log.signer.verifier().public_key()),
        }})
    );
    assert_eq!(payload["@context"], json!([VC_V2_CONTEXT, OB_V3_CONTEXT]));
    assert_eq!(
        payload["type"],
        json!(["VerifiableCredential", "OpenBadgeCredential"])
    );
    let id = payload["id"].as_str().unwrap();
    assert!(id.starts_with("urn:uuid:"), "{id}");
    assert_eq!(payload["jti"], id);
    assert_eq!(payload["iss"], ISSUER);
    assert_eq!(
        payload["issuer"],
        json!({"id": ISSUER, "type": ["Profile"], "name": ORIGIN})
    );
    assert_eq!(payload["sub"], LEARNER);
    // validFrom: the earliest completion timestamp (leaf 2's, 04:29:52.5+05:30), in UTC.
    assert_eq!(payload["validFrom"], "2026-11-30T22:59:52.500Z");
    assert_eq!(payload["nbf"], 1_796_079_592);
    assert_eq!(payload["awardedDate"], "2026-12-01T05:30:00Z");
    let subject = &payload["credentialSubject"];
    assert_eq!(subject["id"], LEARNER);
    assert_eq!(subject["type"], json!(["AchievementSubject"]));
    let achievement = &subject["achievement"];
    assert_eq!(achievement["id"], ACTIVITY);
    assert_eq!(achievement["type"], json!(["Achievement"]));
    assert_eq!(achievement["name"], "Ethics 101");
    assert_eq!(payload["name"], "Ethics 101");
    assert!(achievement["criteria"]["narrative"].is_string());
    assert!(achievement["description"].is_string());
    let evidence = payload["evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), 2);
    assert_eq!(
        evidence[0]["id"],
        "urn:uuid:3f0c2a5e-8d1b-4c7a-9e2f-6b5d4a3c2b02"
    );
    assert_eq!(
        evidence[1]["id"],
        "urn:uuid:3f0c2a5e-8d1b-4c7a-9e2f-6b5d4a3c2b04"
    );
    assert_eq!(evidence[0]["type"], json!(["Evidence"]));
    assert!(evidence[0]["description"]
        .as_str()
        .unwrap()
        .contains("leaf index 2"));
    let cert = parse_file(&file);
    assert_eq!(evidence[1]["narrative"], cert["statements"][1]["tlogProof"]);
}

#[test]
fn the_jws_signing_input_can_never_be_a_note_text() {
    let log = Log::new();
    let jwt = parse_file(&log.build())["credential"]
        .as_str()
        .unwrap()
        .to_owned();
    let input = &jwt[..jwt.rfind('.').unwrap()];
    assert!(!input.contains('\n'));
    assert!(input
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
    // A note signature over the same bytes plus a newline is another message.
    let note_sig = note::sign(&format!("{input}\n"), &[&log.signer]).unwrap();
    assert!(!note_sig.contains(jwt.rsplit('.').next().unwrap()));
}

#[test]
fn agents_without_a_uri_are_named_by_an_identity_object() {
    let account = json!({"account": {"homePage": "https://igot.gov.in", "name": "u-42"}});
    let ifi = agent_ifi(&account).unwrap();
    assert_eq!(
        ifi.agent(),
        json!({"objectType": "Agent", "account": {"homePage": "https://igot.gov.in", "name": "u-42"}})
    );
    let identity = ifi.subject_identity();
    assert!(identity.get("id").is_none());
    assert_eq!(
        identity["identifier"][0]["identityHash"],
        "https://igot.gov.in u-42"
    );
    assert_eq!(identity["identifier"][0]["identityType"], "ext:xapiAccount");
    let sha = agent_ifi(&json!({"mbox_sha1sum": "ab12"})).unwrap();
    assert_eq!(
        sha.subject_identity()["identifier"][0]["identityHash"],
        "sha1$ab12"
    );
    let openid = agent_ifi(&json!({"openid": "https://id.example/u"})).unwrap();
    assert_eq!(openid.subject_identity()["id"], "https://id.example/u");
}

#[test]
fn a_certificate_for_an_account_agent_verifies() {
    let mut log = Log::new();
    let who = json!({"objectType": "Agent", "account": {"homePage": "https://igot.gov.in", "name": "u-42"}});
    let s = &mut log.entries[2].0;
    s["actor"] = who.clone();
    // Rebuild the log with the changed statement.
    let mut stored: Vec<Hash> = Vec::new();
    for (i, (s, salt, dept)) in log.entries.iter().enumerate() {
        let leaf = leaf::statement_leaf(s, salt, dept, leaf::stored_us_of(s).unwrap())
            .unwrap()
            .leaf_hash();
        stored.extend(stored_hashes_for_append(i as u64, &leaf, stored.as_slice()).unwrap());
    }
    log.stored = stored;
    log.checkpoint = log.checkpoint_by(&[&log.signer]);
    let file = build(
        &who,
        ACTIVITY,
        &[log.certified(2)],
        &log.checkpoint,
        &log.signer,
        ISSUER,
        NOW_US,
    )
    .unwrap();
    let v = log.verify(&file);
    assert!(v.ok, "{:#?}", v.failures);
    assert!(
        v.summary.contains("account u-42 at https://igot.gov.in"),
        "{}",
        v.summary
    );
    let (_, payload, _) = jwt_parts(&file);
    assert!(payload.get("sub").is_none());
}

#[test]
fn build_refuses_what_it_cannot_certify() {
    let log = Log::new();
    let run = |agent: &Value, activity: &str, statements: &[CertifiedStatement], issuer: &str| {
        build(
            agent,
            activity,
            statements,
            &log.checkpoint,
            &log.signer,
            issuer,
            NOW_US,
        )
    };
    assert_eq!(
        run(&agent(), ACTIVITY, &[], ISSUER),
        Err(CertificateError::NoStatements)
    );
    let group = json!({"objectType": "Group", "mbox": LEARNER});
    assert_eq!(
        run(&group, ACTIVITY, &[log.certified(2)], ISSUER),
        Err(CertificateError::Agent)
    );
    let two_ifis = json!({"mbox": LEARNER, "openid": "https://id.example/u"});
    assert_eq!(
        run(&two_ifis, ACTIVITY, &[log.certified(2)], ISSUER),
        Err(CertificateError::Agent)
    );
    assert_eq!(
        run(&agent(), "not an iri", &[log.certified(2)], ISSUER),
        Err(CertificateError::Activity)
    );
    assert_eq!(
        run(&agent(), ACTIVITY, &[log.certified(2)], "no iri"),
        Err(CertificateError::Issuer)
    );
    assert_eq!(
        run(
            &agent(),
            ACTIVITY,
            &[log.certified(2), log.certified(2)],
            ISSUER
        ),
        Err(CertificateError::DuplicateLeaf(2))
    );
    let mut wrong_salt = log.certified(2);
    wrong_salt.salt = Salt::from_bytes([9; 32]);
    assert!(matches!(
        run(&agent(), ACTIVITY, &[wrong_salt], ISSUER),
        Err(CertificateError::Statement { leaf_index: 2, .. })
    ));
    let mut wrong_dept = log.certified(2);
    wrong_dept.department = Department::root();
    assert!(matches!(
        run(&agent(), ACTIVITY, &[wrong_dept], ISSUER),
        Err(CertificateError::Statement { leaf_index: 2, .. })
    ));
}

#[test]
fn a_forged_certificate_naming_a_leaf_twice_fails() {
    let log = Log::new();
    let forged = log.forge(&[log.certified(2), log.certified(2)], &log.checkpoint);
    assert_fails(&log.verify(&forged), "certified twice");
}

#[test]
fn members_are_exactly_those_of_the_format() {
    let log = Log::new();
    let cert = parse_file(&log.build());
    let mut extra = cert.clone();
    extra["note"] = json!("hello");
    assert_fails(&log.verify(&write_file(&extra)), "exactly the members");
    let mut extra = cert.clone();
    extra["statements"][0]["extra"] = json!(1);
    assert_fails(&log.verify(&write_file(&extra)), "exactly the members");
    let mut named = cert.clone();
    named["agent"]["name"] = json!("A Learner");
    assert_fails(&log.verify(&write_file(&named)), "one IFI alone");
    let mut root = cert.clone();
    root["statements"][1]["department"] = json!("/");
    assert_fails(&log.verify(&write_file(&root)), "department path");
    let mut format = cert.clone();
    format["format"] = json!("karmayogi-lrs/certificate/v2");
    assert_fails(&log.verify(&write_file(&format)), "format");
    let mut none = cert;
    none["statements"] = json!([]);
    assert_fails(&log.verify(&write_file(&none)), "non-empty");
    assert_fails(&log.verify(b"[]\n"), "not a JSON object");
    assert_fails(&log.verify(b""), "not JSON");
}

// ---------------------------------------------------------------------------------------
// shows_completion

#[test]
fn completed_and_passed_show_a_completion() {
    let completed = statement(1, LEARNER, VERB_COMPLETED, ACTIVITY, None);
    assert!(shows_completion(&completed, &agent(), ACTIVITY));
    let passed = statement(
        1,
        LEARNER,
        VERB_PASSED,
        ACTIVITY,
        Some(json!({"success": true})),
    );
    assert!(shows_completion(&passed, &agent(), ACTIVITY));
    // The flag of the other verb does not matter.
    let passed = statement(
        1,
        LEARNER,
        VERB_PASSED,
        ACTIVITY,
        Some(json!({"completion": false})),
    );
    assert!(shows_completion(&passed, &agent(), ACTIVITY));
    let mut no_type = statement(1, LEARNER, VERB_COMPLETED, ACTIVITY, None);
    no_type["object"]
        .as_object_mut()
        .unwrap()
        .remove("objectType");
    no_type["actor"]
        .as_object_mut()
        .unwrap()
        .remove("objectType");
    assert!(shows_completion(
        &no_type,
        &json!({"mbox": LEARNER}),
        ACTIVITY
    ));
}

#[test]
fn other_statements_do_not_show_a_completion() {
    let s = |verb, result| statement(1, LEARNER, verb, ACTIVITY, result);
    assert!(!shows_completion(
        &s("http://adlnet.gov/expapi/verbs/attempted", None),
        &agent(),
        ACTIVITY
    ));
    assert!(!shows_completion(
        &s("http://adlnet.gov/expapi/verbs/failed", None),
        &agent(),
        ACTIVITY
    ));
    assert!(!shows_completion(
        &s(VERB_COMPLETED, Some(json!({"completion": false}))),
        &agent(),
        ACTIVITY
    ));
    assert!(!shows_completion(
        &s(VERB_COMPLETED, Some(json!({"completion": "true"}))),
        &agent(),
        ACTIVITY
    ));
    assert!(!shows_completion(
        &s(VERB_PASSED, Some(json!({"success": false}))),
        &agent(),
        ACTIVITY
    ));
    let completed = s(VERB_COMPLETED, None);
    assert!(!shows_completion(
        &completed,
        &agent(),
        "https://example.gov.in/course/other"
    ));
    // IFIs are compared exactly: no case folding of the mbox.
    assert!(!shows_completion(
        &completed,
        &json!({"mbox": "mailto:Learner@example.gov.in"}),
        ACTIVITY
    ));
    assert!(!shows_completion(
        &completed,
        &json!({"mbox_sha1sum": "ab"}),
        ACTIVITY
    ));
    assert!(!shows_completion(
        &completed,
        &json!({"objectType": "Group", "mbox": LEARNER}),
        ACTIVITY
    ));
    let mut group_actor = completed.clone();
    group_actor["actor"]["objectType"] = json!("Group");
    assert!(!shows_completion(&group_actor, &agent(), ACTIVITY));
    let mut sub = completed.clone();
    sub["object"] = json!({"objectType": "StatementRef", "id": ACTIVITY});
    assert!(!shows_completion(&sub, &agent(), ACTIVITY));
    let account = json!({"account": {"homePage": "https://igot.gov.in", "name": "u-42"}});
    let mut by_account = completed.clone();
    by_account["actor"] = account.clone();
    assert!(shows_completion(&by_account, &account, ACTIVITY));
    let other = json!({"account": {"homePage": "https://igot.gov.in", "name": "u-43"}});
    assert!(!shows_completion(&by_account, &other, ACTIVITY));
}

// ---------------------------------------------------------------------------------------
// tlog-proof@v1

#[test]
fn tlog_proofs_have_one_spelling() {
    let p = TlogProof {
        index: 73894,
        proof: vec![Hash([1; 32]), Hash([2; 32])],
        checkpoint: "origin\n1\nAAAA\n\n— origin sig\n".into(),
    };
    let text = p.to_text();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nindex 73894\nAQEB"));
    assert_eq!(TlogProof::parse(&text), Ok(p.clone()));
    let empty = TlogProof {
        index: 0,
        proof: vec![],
        checkpoint: p.checkpoint.clone(),
    };
    assert_eq!(TlogProof::parse(&empty.to_text()), Ok(empty));
    for bad in [
        text.replace("index 73894", "index 073894"),
        text.replace("index 73894", "index +73894"),
        text.replace("index 73894", "extra AAAA\nindex 73894"),
        text.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
        text.replace("AQEB", "AQE B"),
        text.replacen('\n', "\r\n", 1),
        text.replace("\n\norigin", "\norigin"),
    ] {
        assert!(TlogProof::parse(&bad).is_err(), "{bad:?}");
    }
}
