use super::*;
use crate::audit::merkle::{consistency_proof, leaf_hash, stored_hashes_for_append, tree_hash};
use crate::audit::note::{Signer, ALG_COSIGNATURE_V1};

const ORIGIN: &str = "lrs.example/audit";

/// A log of `n` leaves: its stored hashes, to make roots and proofs.
fn stored(n: u64) -> Vec<Hash> {
    let mut s: Vec<Hash> = Vec::new();
    for i in 0..n {
        let h = leaf_hash(format!("entry {i}").as_bytes());
        let add = stored_hashes_for_append(i, &h, &s[..]).unwrap();
        s.extend(add);
    }
    s
}

fn root(s: &[Hash], n: u64) -> Hash {
    tree_hash(n, s).unwrap()
}

fn log_key() -> Signer {
    Signer::from_seed(ORIGIN, &[7; 32]).unwrap()
}

fn witness_key() -> CosignatureSigner {
    CosignatureSigner::from_seed("witness.example/w1", &[9; 32]).unwrap()
}

fn signed(n: u64, root: Hash) -> String {
    Checkpoint::new(ORIGIN, n, root).sign(&log_key()).unwrap()
}

fn request(old: u64, proof: &[Hash], note: &str) -> AddCheckpoint {
    parse_request(format_request(old, proof, note).as_bytes()).unwrap()
}

fn recorded(n: u64, root: Hash) -> Cosigned {
    Cosigned {
        origin: ORIGIN.into(),
        size: n,
        root: root.to_base64(),
        checkpoint: String::new(),
    }
}

#[test]
fn request_round_trip_and_spec_example_form() {
    let s = stored(20);
    let proof = consistency_proof(7, 20, &s[..]).unwrap();
    let note = signed(20, root(&s, 20));
    let body = format_request(7, &proof, &note);
    assert!(body.starts_with("old 7\n"));
    assert!(body.contains(&format!("\n\n{note}")));
    let req = parse_request(body.as_bytes()).unwrap();
    assert_eq!(req.old_size, 7);
    assert_eq!(req.proof, proof);
    assert_eq!(req.checkpoint, note);
    // No proof lines: the blank line follows the old size line directly.
    let req = parse_request(format!("old 0\n\n{note}").as_bytes()).unwrap();
    assert_eq!((req.old_size, req.proof.len()), (0, 0));
}

#[test]
fn malformed_requests_are_400() {
    let note = signed(1, leaf_hash(b"x"));
    let h = leaf_hash(b"y").to_base64();
    let many = format!("{h}\n").repeat(64);
    for body in [
        String::new(),
        format!("\n\n{note}"),
        format!("old\n\n{note}"),
        format!("old 01\n\n{note}"),
        format!("old -1\n\n{note}"),
        format!("old  1\n\n{note}"),
        format!("Old 1\n\n{note}"),
        format!("old 1\nnot base64\n\n{note}"),
        format!("old 1\n{}\n\n{note}", STANDARD.encode([1u8; 31])),
        format!("old 1\n{many}\n{note}"),
        format!("old 1\n{h}\n"),
        "old 1\n".to_string(),
        format!("old 1\n{h}"),
    ] {
        let r = parse_request(body.as_bytes());
        assert!(matches!(r, Err(Refusal::BadRequest(_))), "{body:?}: {r:?}");
        assert_eq!(r.unwrap_err().status(), 400);
    }
    assert!(parse_request(b"old 1\n\xff\n\n").is_err());
    // 63 proof lines are allowed.
    let ok = format!("old 1\n{}\n{note}", format!("{h}\n").repeat(63));
    assert_eq!(parse_request(ok.as_bytes()).unwrap().proof.len(), 63);
    // A request whose note does not parse: 400 when checked.
    let req = parse_request(b"old 0\n\nnot a note\n").unwrap();
    assert_eq!(
        check(&req, &[log_key().verifier()], None)
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn first_checkpoint_is_cosigned_and_the_cosignature_verifies() {
    let s = stored(5);
    let note = signed(5, root(&s, 5));
    let req = request(0, &[], &note);
    let acc = check(&req, &[log_key().verifier()], None).unwrap();
    assert_eq!(acc.checkpoint.size, 5);
    let w = witness_key();
    let (body, rec) = respond(&acc, &w, 1_700_000_000).unwrap();
    assert_eq!(rec.size, 5);
    assert_eq!(rec.root, root(&s, 5).to_base64());
    let lines = parse_response(&body).unwrap();
    assert_eq!(lines.len(), 1);
    // The client's way: append the lines to the note and open it with the witness's key.
    let cosigned = format!("{note}{}", lines.concat());
    let opened = note::open(cosigned.as_bytes(), &[w.verifier()]).unwrap();
    assert_eq!(opened.verified.len(), 1);
    assert_eq!(opened.verified[0].alg, ALG_COSIGNATURE_V1);
    assert_eq!(opened.verified[0].timestamp, Some(1_700_000_000));
    // Both keys together; the record's note carries the log signature and the cosignature.
    let both = [log_key().verifier(), w.verifier()];
    assert_eq!(
        note::open(cosigned.as_bytes(), &both)
            .unwrap()
            .verified
            .len(),
        2
    );
    assert_eq!(
        note::open(rec.checkpoint.as_bytes(), &both)
            .unwrap()
            .verified
            .len(),
        2
    );
    // The cosignature does not verify for another text.
    let other = format!("{}{}", signed(6, leaf_hash(b"z")), lines.concat());
    assert!(matches!(
        note::open(other.as_bytes(), &[w.verifier()]),
        Err(NoteError::InvalidSignature { .. })
    ));
    // A zero timestamp is never produced.
    assert!(respond(&acc, &w, 0).is_err());
}

#[test]
fn consistent_extension_is_cosigned() {
    let s = stored(300);
    for (m, n) in [(5, 12), (1, 2), (8, 300), (255, 257), (12, 12)] {
        let proof = consistency_proof(m, n, &s[..]).unwrap();
        let req = request(m, &proof, &signed(n, root(&s, n)));
        let known = recorded(m, root(&s, m));
        let acc = check(&req, &[log_key().verifier()], Some(&known)).unwrap();
        assert_eq!(acc.checkpoint.size, n);
    }
}

#[test]
fn wrong_old_size_is_409_with_the_known_size() {
    let s = stored(12);
    let proof = consistency_proof(5, 12, &s[..]).unwrap();
    let req = request(5, &proof, &signed(12, root(&s, 12)));
    let known = recorded(7, root(&s, 7));
    let r = check(&req, &[log_key().verifier()], Some(&known)).unwrap_err();
    assert_eq!(
        r,
        Refusal::Conflict {
            old_size: 5,
            known_size: 7
        }
    );
    assert_eq!(r.status(), 409);
    assert_eq!(r.body(), "7\n");
    assert_eq!(r.content_type(), "text/x.tlog.size");
    assert_eq!(parse_conflict(&r.body()), Some(7));
    // Never cosigned: the known size is 0.
    let r = check(&req, &[log_key().verifier()], None).unwrap_err();
    assert_eq!(r.body(), "0\n");
    // Old size 0 against a known log: 409 too (how a client learns the size).
    let req = request(0, &[], &signed(12, root(&s, 12)));
    assert_eq!(
        check(&req, &[log_key().verifier()], Some(&known))
            .unwrap_err()
            .status(),
        409
    );
    assert_eq!(parse_conflict("12"), None);
    assert_eq!(parse_conflict("012\n"), None);
}

#[test]
fn unknown_origin_is_404_and_bad_signatures_403() {
    let s = stored(3);
    let note = signed(3, root(&s, 3));
    let req = request(0, &[], &note);
    let r = check(&req, &[], None).unwrap_err();
    assert_eq!(r, Refusal::UnknownOrigin(ORIGIN.into()));
    assert_eq!(r.status(), 404);
    // Signed by another key of the same name: no trusted signature.
    let other = Signer::from_seed(ORIGIN, &[8; 32]).unwrap();
    let forged = Checkpoint::new(ORIGIN, 3, root(&s, 3))
        .sign(&other)
        .unwrap();
    let r = check(&request(0, &[], &forged), &[log_key().verifier()], None).unwrap_err();
    assert!(matches!(r, Refusal::Forbidden(_)), "{r:?}");
    assert_eq!(r.status(), 403);
    // A trusted key's line that does not verify (the text was changed): 403.
    let tampered = note.replacen("\n3\n", "\n4\n", 1);
    let r = check(&request(0, &[], &tampered), &[log_key().verifier()], None).unwrap_err();
    assert_eq!(r.status(), 403, "{r:?}");
    // The trusted signature plus an unknown one: the unknown one is ignored.
    let two = note::sign(
        &Checkpoint::new(ORIGIN, 3, root(&s, 3)).to_text().unwrap(),
        &[&log_key(), &other],
    );
    let two = two.unwrap();
    let acc = check(&request(0, &[], &two), &[log_key().verifier()], None).unwrap();
    assert_eq!(acc.log_signatures.len(), 1);
    // `other` has the log's name but another key id: not a trusted key, so ignored.
    assert_ne!(other.key_id(), log_key().key_id());
}

#[test]
fn old_size_above_the_checkpoint_is_400() {
    let s = stored(9);
    let req = request(9, &[], &signed(4, root(&s, 4)));
    let known = recorded(9, root(&s, 9));
    assert_eq!(
        check(&req, &[log_key().verifier()], Some(&known))
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn inconsistent_requests_are_422() {
    let keys = [log_key().verifier()];
    let s = stored(12);
    let r12 = root(&s, 12);
    // A size-0 checkpoint must have the empty root.
    let r = check(&request(0, &[], &signed(0, r12)), &keys, None).unwrap_err();
    assert_eq!(r.status(), 422, "{r:?}");
    assert!(check(
        &request(0, &[], &signed(0, merkle::empty_root())),
        &keys,
        None
    )
    .is_ok());
    // Old size 0 with a proof.
    let r = check(&request(0, &[r12], &signed(12, r12)), &keys, None).unwrap_err();
    assert_eq!(r.status(), 422);
    // A proof that does not verify: from another tree of size 5.
    let fork = {
        let mut s2: Vec<Hash> = Vec::new();
        for i in 0..12u64 {
            let h = leaf_hash(format!("fork {i}").as_bytes());
            let add = stored_hashes_for_append(i, &h, &s2[..]).unwrap();
            s2.extend(add);
        }
        s2
    };
    let proof = consistency_proof(5, 12, &fork[..]).unwrap();
    let req = request(5, &proof, &signed(12, root(&fork, 12)));
    let r = check(&req, &keys, Some(&recorded(5, root(&s, 5)))).unwrap_err();
    assert_eq!(r.status(), 422, "{r:?}");
    // The right proof, a wrong new root.
    let proof = consistency_proof(5, 12, &s[..]).unwrap();
    let req = request(5, &proof, &signed(12, root(&fork, 12)));
    assert_eq!(
        check(&req, &keys, Some(&recorded(5, root(&s, 5))))
            .unwrap_err()
            .status(),
        422
    );
    // Truncated proof.
    let req = request(5, &proof[1..], &signed(12, r12));
    assert_eq!(
        check(&req, &keys, Some(&recorded(5, root(&s, 5))))
            .unwrap_err()
            .status(),
        422
    );
    // Same size, another root.
    let req = request(12, &[], &signed(12, root(&fork, 12)));
    assert_eq!(
        check(&req, &keys, Some(&recorded(12, r12)))
            .unwrap_err()
            .status(),
        422
    );
    // Same size, same root: cosigned again.
    let req = request(12, &[], &signed(12, r12));
    assert!(check(&req, &keys, Some(&recorded(12, r12))).is_ok());
}

#[test]
fn cosigner_keys_round_trip_and_are_typed() {
    let w = CosignatureSigner::generate("witness.example/w2").unwrap();
    let sk = w.to_private_key_string();
    assert!(sk.starts_with("PRIVATE+KEY+witness.example/w2+"));
    let back = CosignatureSigner::parse(&sk).unwrap();
    assert_eq!(back.verifier(), w.verifier());
    assert_eq!(w.verifier().alg(), ALG_COSIGNATURE_V1);
    let vkey = w.verifier().to_string();
    assert_eq!(Verifier::parse(&vkey).unwrap(), w.verifier());
    // A log (0x01) private key is not a cosigner key, and the other way round.
    assert!(CosignatureSigner::parse(&log_key().to_private_key_string()).is_err());
    assert!(Signer::parse(&sk).is_err());
    assert!(!format!("{w:?}").contains(&sk[20..]));
    assert!(CosignatureSigner::from_seed("bad name", &[1; 32]).is_err());
    // The key id is computed with type 0x04.
    let v = w.verifier();
    let raw: [u8; 32] = STANDARD
        .decode(vkey.splitn(3, '+').nth(2).unwrap())
        .unwrap()[1..]
        .try_into()
        .unwrap();
    assert_eq!(v.key_id(), note::key_id(v.name(), ALG_COSIGNATURE_V1, &raw));
}

#[test]
fn responses_parse() {
    let w = witness_key();
    let sig = w.cosign("a\n", 5).unwrap().line();
    assert_eq!(parse_response(&sig).unwrap(), vec![sig.clone()]);
    assert_eq!(parse_response(&format!("{sig}{sig}")).unwrap().len(), 2);
    for bad in [
        "",
        "\n",
        "hello\n",
        &sig[..sig.len() - 1],
        &format!("{sig}\n"),
    ] {
        assert!(parse_response(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn origin_hash_is_lowercase_hex_sha256() {
    assert_eq!(
        origin_hash(""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}
