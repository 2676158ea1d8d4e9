//! The fuzz targets, run briefly by the test command: each target's property
//! (`fuzz/src/lib.rs`, the same code the libFuzzer binaries in `fuzz/fuzz_targets/` run)
//! is applied to its seeds and to a fixed number of inputs mutated from them, with a
//! seeded generator so that a run repeats. No coverage guidance (that needs the
//! instrumented build `scripts/fuzz` makes, too slow for the suite): this catches a
//! property broken on the seeds or near them; the long guided runs are in
//! docs/RELIABILITY.md ("Fuzzing").
//!
//! Each test also writes its seeds to `fuzz/corpus/<target>/` (ignored by git), where
//! `scripts/fuzz` starts from. A failing input is written to
//! `target/fuzz-smoke/<target>-failure` and named in the panic.
#[path = "src/lib.rs"]
mod props;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Mutated inputs per target (on top of the seeds).
const ITERATIONS: usize = 50_000;

/// xorshift64*: small, seeded, repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Tokens that tend to reach new branches of parsers of JSON, XML, headers and notes.
const DICTIONARY: &[&[u8]] = &[
    b"null",
    b"true",
    b"false",
    b"-0",
    b"1e309",
    b"-1",
    b"0.5",
    b"18446744073709551616",
    b"\"\"",
    b"{}",
    b"[]",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"\"objectType\"",
    b"\"Group\"",
    b"\"SubStatement\"",
    b"\"StatementRef\"",
    b"\"mbox\"",
    b"mailto:",
    b"\"member\"",
    b"\"attachments\"",
    b"\"sha2\"",
    b"\"extensions\"",
    b"\"version\"",
    b"2.0.0",
    b"1.0.3",
    b"--",
    b"\r\n",
    b"\r\n\r\n",
    b"boundary=",
    b"Content-Type: ",
    b"X-Experience-API-Hash: ",
    b"application/json",
    b"\xe2\x80\x94 ",
    b"\n\n",
    b"<",
    b"/>",
    b"</",
    b"&amp;",
    b"<![CDATA[",
    b"xml:base=\"",
    b"href=\"",
    b"../",
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"=",
    b"&",
    b"%00",
    b"%ZZ",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b".",
    b"eyJ",
    b"\"exp\"",
    b"\"nbf\"",
    b"\"iat\"",
    b"\"department\"",
    b"moe/dhe",
    b"a//b",
    b"..",
    b"+05:30",
    b"Z",
    b"T",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                const PUNCTUATION: &[u8] = b"\"{}[],:\\\n-09 <>/&=";
                out[i] = PUNCTUATION[rng.below(PUNCTUATION.len())];
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(16)).min(len);
                out.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(32)).min(len);
                let chunk = out[a..b].to_vec();
                let at = rng.below(len + 1);
                out.splice(at..at, chunk);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(64)).min(other.len());
                    let at = rng.below(len + 1);
                    out.splice(at..at, other[a..b].iter().copied());
                }
            }
            5 => {
                let word = DICTIONARY[rng.below(DICTIONARY.len())];
                let at = rng.below(len + 1);
                out.splice(at..at, word.iter().copied());
            }
            6 if len > 0 => out.truncate(rng.below(len)),
            _ => {
                let at = rng.below(len + 1);
                out.insert(at, rng.next() as u8);
            }
        }
    }
    out
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `fuzz/seeds/<dir>`.
fn seed_files(dir: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let path = repo().join("fuzz/seeds").join(dir);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        out.push(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
    }
    assert!(!out.is_empty(), "no seeds in {}", path.display());
    out
}

/// Runs `target` on every seed, then on `ITERATIONS` mutated inputs.
fn run(name: &str, seeds: Vec<Vec<u8>>, target: fn(&[u8])) {
    run_n(name, seeds, target, ITERATIONS)
}

/// As `run`, with `iterations` mutated inputs.
fn run_n(name: &str, seeds: Vec<Vec<u8>>, target: fn(&[u8]), iterations: usize) {
    write_corpus(name, &seeds);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    let inputs = seeds
        .iter()
        .cloned()
        .chain((0..iterations).map(|_| mutate(&mut rng, &seeds)));
    for (i, input) in inputs.enumerate() {
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let dir = repo().join("target/fuzz-smoke");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{name}-failure"));
            let _ = std::fs::write(&file, &input);
            panic!(
                "fuzz target {name} failed on input {i} (kept in {}): {:?}",
                file.display(),
                String::from_utf8_lossy(&input)
            );
        }
    }
}

/// The seeds as libFuzzer's starting corpus (`scripts/fuzz`).
fn write_corpus(name: &str, seeds: &[Vec<u8>]) {
    let dir = repo().join("fuzz/corpus").join(name);
    if std::fs::create_dir_all(&dir).is_ok() {
        for (i, s) in seeds.iter().enumerate() {
            let _ = std::fs::write(dir.join(format!("seed-{i}")), s);
        }
    }
}

#[test]
fn statement_v1() {
    run("statement_v1", seed_files("statement"), |d| {
        props::statement(d, karmayogi_lrs::xapi::XapiVersion::V1_0)
    });
}

#[test]
fn statement_v2() {
    run("statement_v2", seed_files("statement"), |d| {
        props::statement(d, karmayogi_lrs::xapi::XapiVersion::V2_0)
    });
}

#[test]
fn query() {
    run("query", seed_files("query"), props::query);
}

#[test]
fn multipart() {
    use karmayogi_lrs::xapi::multipart::{build, AttachmentContent};
    let mut seeds = Vec::new();
    for s in seed_files("statement") {
        let content = bytes::Bytes::from_static(b"certificate text");
        let sha2 = "a2a9ad5e3bd3a0ed7ea64b7fb2d2c4a6f2c5c6ffae0b5b48f1c9ad9a5c5fa2f0".to_owned();
        let attachment = AttachmentContent {
            sha2,
            content_type: "text/plain".into(),
            content,
        };
        for attachments in [Vec::new(), vec![attachment]] {
            let (content_type, body) = build(&s, &attachments);
            let mut input = content_type.into_bytes();
            input.push(b'\n');
            input.extend_from_slice(&body);
            seeds.push(input);
        }
    }
    run("multipart", seeds, props::multipart);
}

#[test]
fn jwt() {
    let mut seeds = seed_files("jwt");
    let key = jsonwebtoken::EncodingKey::from_secret(props::JWT_SECRET);
    let now = props::JWT_NOW;
    for claims in [
        serde_json::json!({"exp": now + 600, "iat": now, "department": "moe"}),
        serde_json::json!({"exp": 4_000_000_000u64, "iat": 3_999_990_000u64, "sub": "a"}),
    ] {
        let token =
            jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("a token");
        let mut input = vec![0u8];
        input.extend_from_slice(token.as_bytes());
        seeds.push(input);
    }
    run("jwt", seeds, props::jwt);
}

#[test]
fn notes() {
    use karmayogi_lrs::audit::merkle::Hash;
    use karmayogi_lrs::audit::note::{Checkpoint, Signer};
    let signer = Signer::from_seed("lrs.fuzz.example", &[7u8; 32]).expect("a signer");
    let mut seeds = Vec::new();
    for size in [0u64, 1, 7, 1 << 40] {
        let note = Checkpoint::new("lrs.fuzz.example", size, Hash([size as u8; 32]))
            .sign(&signer)
            .expect("a checkpoint note");
        seeds.push(note.into_bytes());
    }
    seeds.push(signer.verifier().to_string().into_bytes());
    seeds.extend(seed_files("notes"));
    run("notes", seeds, props::notes);
}

#[test]
fn scorm() {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut seeds = seed_files("scorm");
    let packages = [
        (seeds[1].clone(), "imsmanifest.xml"),
        (seeds[0].clone(), "cmi5.xml"),
    ];
    for (manifest, name) in packages {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (path, bytes) in [
            (name, manifest.as_slice()),
            ("a/index.html", b"<html></html>"),
        ] {
            w.start_file(path, SimpleFileOptions::default())
                .expect("a zip entry");
            w.write_all(bytes).expect("zip bytes");
        }
        seeds.push(w.finish().expect("a zip").into_inner());
    }
    run("scorm", seeds, props::scorm);
}

#[test]
fn signature() {
    // Statements signed (RS256/384/512, with and without x5c, compact and JSON
    // serialization) by the conformance tests' signer key, each as `statement NUL JWS`.
    // The seeds reach past the form checks: the good signatures verify, under 2.0 only in
    // the compact serialization (Data 2.6.s4.b2), and the others fail where they should.
    let seed =
        |name: &str| std::fs::read(repo().join("fuzz/seeds/signature").join(name)).expect("a seed");
    assert_eq!(props::signature_verdicts(&seed("rs256_x5c")), [true, true]);
    assert_eq!(
        props::signature_verdicts(&seed("rs384_no_x5c")),
        [true, true]
    );
    assert_eq!(
        props::signature_verdicts(&seed("json_serialization")),
        [true, false]
    );
    // The second certificate did not issue the first.
    assert_eq!(
        props::signature_verdicts(&seed("rs512_x5c_chain")),
        [false, false]
    );
    assert_eq!(
        props::signature_verdicts(&seed("payload_differs")),
        [false, false]
    );
    // A fifth of the others' inputs: one that gets past the form checks costs an RSA
    // verification, and 50,000 took 39 s of the suite (the long runs do the rest).
    run_n(
        "signature",
        seed_files("signature"),
        props::signature,
        ITERATIONS / 5,
    );
}

#[test]
fn documents() {
    run("documents", seed_files("documents"), props::documents);
}

#[test]
fn seeds_are_where_the_fuzz_targets_expect_them() {
    // Every libFuzzer target has a smoke test above and a seed directory.
    let targets: Vec<String> = std::fs::read_dir(repo().join("fuzz/fuzz_targets"))
        .expect("fuzz/fuzz_targets")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.path()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .collect();
    let me = std::fs::read_to_string(repo().join("fuzz/smoke.rs")).expect("this file");
    for t in &targets {
        assert!(
            me.contains(&format!("fn {t}()")),
            "fuzz target {t} has no smoke test"
        );
    }
    assert!(Path::new(&repo().join("fuzz/seeds")).is_dir());
}

/// The runner itself: a property that breaks on some mutated input is reported.
#[test]
#[should_panic(expected = "fuzz target self_check failed")]
fn a_broken_property_is_reported() {
    run("self_check", vec![b"{\"a\": [1, 2]}".to_vec()], |d| {
        assert!(
            d.len() != 13 || d == b"{\"a\": [1, 2]}",
            "changed but same length"
        );
    });
}
