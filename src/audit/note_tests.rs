//! Tests of `note`. Fixed keys and signatures below are published test values (facts):
//! the example of c2sp.org/signed-note, and the PeterNeumann / EnochRoot keys and
//! signatures of the tests of Go's golang.org/x/mod/sumdb/note.
use ed25519_dalek::Signer as _;

use super::*;
use crate::audit::merkle::{empty_root, leaf_hash};

/// golang.org/x/mod/sumdb/note tests: a private key, its verifier key, a text and the
/// signature line that key makes over it.
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter() -> Signer {
    Signer::parse(PETER_SKEY).unwrap()
}

fn note_of(parts: &[&str]) -> Vec<u8> {
    parts.concat().into_bytes()
}

#[test]
fn key_id_and_vkey_match_the_go_test_keys() {
    let s = peter();
    assert_eq!(s.name(), "PeterNeumann");
    assert_eq!(s.key_id(), 0xc74f20a3);
    assert_eq!(s.verifier().to_string(), PETER_VKEY);
    assert_eq!(s.to_private_key_string(), PETER_SKEY);
    let v = Verifier::parse(PETER_VKEY).unwrap();
    assert_eq!(v, s.verifier());
    assert_eq!(v.alg(), ALG_ED25519);
    let e = Verifier::parse(ENOCH_VKEY).unwrap();
    assert_eq!((e.name(), e.key_id()), ("EnochRoot", 0xaf0cfe78));
}

#[test]
fn sign_reproduces_the_go_signature() {
    let note = sign(TEXT, &[&peter()]).unwrap();
    assert_eq!(note, format!("{TEXT}\n{PETER_SIG}"));
}

#[test]
fn c2sp_signed_note_example_verifies() {
    // The example of c2sp.org/signed-note, "Verifier keys".
    let vkey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    let msg = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    let v = Verifier::parse(vkey).unwrap();
    let opened = open(msg.as_bytes(), &[v]).unwrap();
    assert_eq!(opened.text, "This is an example message.\n");
    assert_eq!(opened.verified.len(), 1);
    assert_eq!(opened.verified[0].key_id, 0x530d903a);
}

#[test]
fn open_verifies_known_keys_and_ignores_unknown_ones() {
    let pv = Verifier::parse(PETER_VKEY).unwrap();
    let ev = Verifier::parse(ENOCH_VKEY).unwrap();
    let msg = note_of(&[TEXT, "\n", PETER_SIG, ENOCH_SIG]);

    let one = open(&msg, std::slice::from_ref(&pv)).unwrap();
    assert_eq!(one.text, TEXT);
    assert_eq!(one.verified.len(), 1);
    assert_eq!(one.verified[0].name, "PeterNeumann");
    assert_eq!(one.verified[0].timestamp, None);
    assert_eq!(one.unverified.len(), 1);
    assert_eq!(one.unverified[0].name, "EnochRoot");
    assert_eq!(one.unverified[0].key_id, 0xaf0cfe78);

    let both = open(&msg, &[pv.clone(), ev.clone()]).unwrap();
    assert_eq!(both.verified.len(), 2);
    assert!(both.unverified.is_empty());

    assert_eq!(open(&msg, &[]), Err(NoteError::NoVerifiedSignature));

    // Two configured keys with one name and id: ambiguous only when that key signed.
    let enoch_only = note_of(&[TEXT, "\n", ENOCH_SIG]);
    assert!(matches!(
        open(&enoch_only, &[ev.clone(), pv.clone(), ev.clone()]),
        Err(NoteError::AmbiguousKey { .. })
    ));
    let peter_only = note_of(&[TEXT, "\n", PETER_SIG]);
    assert!(open(&peter_only, &[ev.clone(), pv.clone(), ev]).is_ok());

    // Duplicated lines count once.
    let dup = note_of(&[TEXT, "\n", PETER_SIG, PETER_SIG, ENOCH_SIG, ENOCH_SIG]);
    let opened = open(&dup, &[pv]).unwrap();
    assert_eq!((opened.verified.len(), opened.unverified.len()), (1, 1));
}

#[test]
fn a_bad_signature_by_a_known_key_rejects_the_note() {
    let pv = Verifier::parse(PETER_VKEY).unwrap();
    // Four characters inserted into the base64 keep it valid base64 of a longer value.
    let bad_sig = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    let msg = note_of(&[TEXT, "\n", &bad_sig]);
    assert_eq!(
        open(&msg, std::slice::from_ref(&pv)),
        Err(NoteError::InvalidSignature {
            name: "PeterNeumann".into(),
            id: 0xc74f20a3
        })
    );
    // The same line with an unknown key is simply ignored.
    let unknown = bad_sig.replace("PeterNeumann", "SomeoneElse");
    let msg = note_of(&[TEXT, "\n", PETER_SIG, &unknown]);
    let opened = open(&msg, &[pv]).unwrap();
    assert_eq!(opened.unverified[0].name, "SomeoneElse");
}

#[test]
fn every_changed_byte_fails() {
    let s = peter();
    let msg = sign(TEXT, &[&s]).unwrap().into_bytes();
    let v = s.verifier();
    assert!(open(&msg, std::slice::from_ref(&v)).is_ok());
    for i in 0..msg.len() {
        let mut bad = msg.clone();
        bad[i] ^= 0x01;
        assert!(
            open(&bad, std::slice::from_ref(&v)).is_err(),
            "byte {i} changed and the note still opens"
        );
    }
}

#[test]
fn another_key_does_not_verify() {
    let a = Signer::from_seed("example.com/a", &[7; 32]).unwrap();
    let b = Signer::from_seed("example.com/a", &[8; 32]).unwrap();
    assert_ne!(a.key_id(), b.key_id());
    let msg = sign("hello\n", &[&a]).unwrap();
    // Same name, other key: the id differs, the line is ignored, nothing verifies.
    assert_eq!(
        open(msg.as_bytes(), &[b.verifier()]),
        Err(NoteError::NoVerifiedSignature)
    );
    // Forged: a line carrying a's name and id but b's signature.
    let sig_b = b.sign_text("hello\n");
    let lie = Signature {
        name: a.name().into(),
        key_id: a.key_id(),
        bytes: sig_b.bytes,
    };
    let msg = format("hello\n", &[lie]).unwrap();
    assert!(matches!(
        open(msg.as_bytes(), &[a.verifier()]),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn malformed_notes_are_rejected() {
    let pv = Verifier::parse(PETER_VKEY).unwrap();
    let bad: Vec<Vec<u8>> = vec![
        TEXT.into(),
        format!("{TEXT}\n").into(),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]).into(),
        format!("\x01{TEXT}\n{PETER_SIG}").into(),
        [&[0xff][..], format!("{TEXT}\n{PETER_SIG}").as_bytes()].concat(),
        format!("{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").into(),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n").into(),
        format!("{TEXT}\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").into(),
        format!("{TEXT}\n\u{2014} PeterNeumann AAAA\n").into(),
        format!("{TEXT}\n\u{2014} PeterNeumann not base64!\n").into(),
        format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1)).into(),
        format!("{}\n{PETER_SIG}", TEXT.replace(',', "\t")).into(),
        format!("{TEXT}\n{}", PETER_SIG.replace('\n', "\r\n")).into(),
    ];
    for msg in bad {
        let got = open(&msg, std::slice::from_ref(&pv));
        assert!(
            matches!(got, Err(NoteError::Malformed(_))),
            "{:?}: {got:?}",
            String::from_utf8_lossy(&msg)
        );
    }
    assert!(format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES)).len() < MAX_NOTE_SIZE);
    assert!(open(
        format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES)).as_bytes(),
        &[pv]
    )
    .is_ok());
}

#[test]
fn texts_with_blank_lines_split_at_the_last_one() {
    let s = Signer::from_seed("example.com/log", &[1; 32]).unwrap();
    for text in [
        "\n",
        "a\n\nb\n",
        "a\n\n",
        "a\n\n\n",
        "\u{2014} looks like a sig\n",
    ] {
        let msg = sign(text, &[&s]).unwrap();
        let opened = open(msg.as_bytes(), &[s.verifier()]).unwrap();
        assert_eq!(opened.text, text);
    }
    for text in ["", "no newline", "tab\there\n", "cr\r\n"] {
        assert!(
            matches!(sign(text, &[&s]), Err(NoteError::Malformed(_))),
            "{text:?}"
        );
    }
}

#[test]
fn key_strings_reject_every_mangling() {
    // As in Go's sumdb/note tests: every proper substring and every single-byte increment
    // of a valid key string is refused.
    fn check(key: &str, parse: fn(&str) -> bool) {
        assert!(parse(key));
        let b = key.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if (i, j) != (0, b.len()) {
                    let sub = std::str::from_utf8(&b[i..j]).unwrap();
                    assert!(!parse(sub), "{sub:?} accepted");
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] += 1;
            if let Ok(s) = std::str::from_utf8(&m) {
                assert!(!parse(s), "{s:?} accepted");
            }
        }
    }
    check(PETER_VKEY, |k| Verifier::parse(k).is_ok());
    check(PETER_SKEY, |k| Signer::parse(k).is_ok());
    // Wrong length key with adjusted key id; unknown algorithm with adjusted key id (Go).
    assert!(Verifier::parse(
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
    )
    .is_err());
    assert!(
        Verifier::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .is_err()
    );
    // Uppercase hex is not the canonical form.
    assert!(
        Verifier::parse("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .is_err()
    );
}

#[test]
fn key_names() {
    for ok in ["a", "example.com/log", "PeterNeumann", "émile"] {
        assert!(is_valid_key_name(ok), "{ok}");
    }
    for bad in [
        "",
        "a b",
        "a+b",
        "a\tb",
        "a\u{00a0}b",
        "a\u{2003}b",
        "a\nb",
        "a\u{1}b",
    ] {
        assert!(!is_valid_key_name(bad), "{bad:?}");
        assert!(Signer::from_seed(bad, &[0; 32]).is_err());
    }
}

#[test]
fn generated_keys_round_trip() {
    let s = Signer::generate("lrs.example.org/audit").unwrap();
    let again = Signer::parse(&s.to_private_key_string()).unwrap();
    assert_eq!(again.verifier(), s.verifier());
    let v = Verifier::parse(&s.verifier().to_string()).unwrap();
    let msg = sign("x\n", &[&s]).unwrap();
    assert!(open(msg.as_bytes(), &[v]).is_ok());
    assert!(!format!("{s:?}").contains(&s.to_private_key_string()[20..]));
}

#[test]
fn checkpoint_round_trip_and_c2sp_example() {
    // The example checkpoint of c2sp.org/tlog-checkpoint.
    let text =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let cp = Checkpoint::parse(text).unwrap();
    assert_eq!(cp.origin, "example.com/behind-the-sofa");
    assert_eq!(cp.size, 20852163);
    assert!(cp.extensions.is_empty());
    assert_eq!(cp.to_text().unwrap(), text);

    let mut cp = Checkpoint::new("lrs.example.org/audit", 0, empty_root());
    assert_eq!(
        cp.to_text().unwrap(),
        "lrs.example.org/audit\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    );
    cp.size = 5;
    cp.root = leaf_hash(b"x");
    cp.extensions = vec!["ext one".into()];
    let text = cp.to_text().unwrap();
    assert_eq!(Checkpoint::parse(&text).unwrap(), cp);

    let s = Signer::from_seed("lrs.example.org/audit", &[3; 32]).unwrap();
    let msg = cp.sign(&s).unwrap();
    let (got, note) =
        Checkpoint::open(msg.as_bytes(), "lrs.example.org/audit", &[s.verifier()]).unwrap();
    assert_eq!(got, cp);
    assert_eq!(note.verified.len(), 1);
    assert!(matches!(
        Checkpoint::open(msg.as_bytes(), "other.example/log", &[s.verifier()]),
        Err(NoteError::WrongOrigin { .. })
    ));
}

#[test]
fn malformed_checkpoints_are_rejected() {
    let root = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    let bad = [
        String::new(),
        format!("o\n1\n{root}"),
        "o\n1\n".to_string(),
        format!("\n1\n{root}\n"),
        format!("o\n01\n{root}\n"),
        format!("o\n-1\n{root}\n"),
        format!("o\n+1\n{root}\n"),
        format!("o\n\n{root}\n"),
        format!("o\n18446744073709551616\n{root}\n"),
        "o\n1\nV3JvbmdSb290\n".to_string(),
        format!("o\n1\n{}\n", &root[..43]),
        format!("o\n1\n{root}\n\n"),
        format!("o\n1\n{root}\next\n\n"),
        format!("o\n1\n{root}\nex\tt\n"),
    ];
    for t in bad {
        assert!(
            matches!(Checkpoint::parse(&t), Err(NoteError::Checkpoint(_))),
            "{t:?}"
        );
    }
    assert!(Checkpoint::parse(&format!("o\n18446744073709551615\n{root}\n")).is_ok());
    let mut cp = Checkpoint::new("two\nlines", 1, empty_root());
    assert!(cp.to_text().is_err());
    cp.origin = "o".into();
    cp.extensions = vec![String::new()];
    assert!(cp.to_text().is_err());
}

#[test]
fn witness_cosignatures_verify_and_others_are_ignored() {
    // A witness signs `cosignature/v1\ntime <t>\n` ‖ checkpoint text (c2sp.org/tlog-cosignature);
    // its key id uses type 0x04.
    let log = Signer::from_seed("lrs.example.org/audit", &[4; 32]).unwrap();
    let witness_key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let witness = Verifier::new(
        "witness.example/w1",
        ALG_COSIGNATURE_V1,
        witness_key.verifying_key().as_bytes(),
    )
    .unwrap();
    assert_eq!(
        witness.key_id(),
        key_id(
            "witness.example/w1",
            ALG_COSIGNATURE_V1,
            witness_key.verifying_key().as_bytes()
        )
    );
    assert_eq!(Verifier::parse(&witness.to_string()).unwrap(), witness);

    let text = Checkpoint::new("lrs.example.org/audit", 3, leaf_hash(b"r"))
        .to_text()
        .unwrap();
    let t = 1_700_000_000u64;
    let sig = witness_key.sign(&cosignature_v1_message(&text, t));
    let mut bytes = t.to_be_bytes().to_vec();
    bytes.extend_from_slice(&sig.to_bytes());
    let cosig = Signature {
        name: "witness.example/w1".into(),
        key_id: witness.key_id(),
        bytes,
    };
    let log_sig = log.sign_text(&text);
    let msg = format(&text, &[log_sig.clone(), cosig.clone()]).unwrap();

    // The log's verifier alone: the cosignature is an unknown line.
    let only_log = open(msg.as_bytes(), &[log.verifier()]).unwrap();
    assert_eq!(only_log.unverified, vec![cosig.clone()]);
    // With the witness configured, both verify and the timestamp comes back.
    let both = open(msg.as_bytes(), &[log.verifier(), witness.clone()]).unwrap();
    assert_eq!(both.verified.len(), 2);
    assert_eq!(both.verified[1].timestamp, Some(t));
    assert_eq!(both.verified[1].alg, ALG_COSIGNATURE_V1);

    // A cosignature over another timestamp than the one it carries fails.
    let mut wrong = cosig;
    wrong.bytes[7] ^= 1;
    let msg = format(&text, &[log_sig, wrong]).unwrap();
    assert!(matches!(
        open(msg.as_bytes(), &[log.verifier(), witness]),
        Err(NoteError::InvalidSignature { .. })
    ));
}
