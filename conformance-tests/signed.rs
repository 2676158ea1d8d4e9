//! Signed Statements (Data 2.6): a JWS (RFC 7515, RS256/RS384/RS512) over the statement,
//! sent as an attachment with usageType `http://adlnet.gov/expapi/attachments/signature`.
//!
//! The key pair and self-signed certificates below are test fixtures made for this suite
//! with `openssl` (RSA 2048, valid 2000–2100); they protect nothing.
use crate::attachments::{parse_multipart, post_multipart, sha256, OutPart};
use crate::harness::{statement, Lrs, Response, VERSIONS};
use crate::statements::{assert_not_stored, fetch, id_of};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

/// A change made to a statement before signing it.
type Change = fn(&mut Value);

const SIGNATURE_USAGE: &str = "http://adlnet.gov/expapi/attachments/signature";

/// The signing key (PKCS#8).
const SIGNER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDZX40Y+kkXv7M1
9ndu60C077h3WqprRysRPBdgHJF2E+miAnZAtCB/J9rRtwIfzx9Gifdpq3+hfhm1
3/QqNT3ICoLdri7zKk6dIWgEUvjCgpDA6x8lY0yt8SZT9ejZl4t4iW0A9PvJ0wk4
XIerhn5nwSsYbbkT8Zq2c7QtQBQXUI6EceP9pWy/CIXlwRC1UsE49q5CUgFNOvLG
6OJNnRJ9w7UlMYtHAFeemAztqQeIzDrURxf1uYVE0dexDIT8fcJFDLAtYd7va4D1
QmTO29uKLuqDoxURDmbWfTvJ3Y4chEoiXQk4+yckLpJftCXVAhVfFB3EsgmeLxRI
iFp8ilQvAgMBAAECggEAG8QcI9qknNynKaIdSL/Szh8+MuYT6rbL24cPfVQTiJUB
POk6Qwg/NmmC2/2XzzRdIbIx4P+VGAMhiZ0ydR8ZOy+MiSsyDWw+tSI1RTLMBRyP
HPVrpGegvdSV5Bep8fwXnAKsjSNonjPPc7GYwDeNIfeyEjbByLhjM3cSxszumWOR
KcdOyzCDqRp2Olj4dkr6hWmeq3qPcT6u3mwwQ6ht6wW46HhvPZPQx2PlS6KfnLa7
9iShWf7dHyEQt6dh0vducO4mD8y2a1975vwHiN8Pcvls0jzv5zP4JvnUlo2oegdT
AnnYi1JdImRhAwpbS5wIydktth4IErQrAYmttuhbEQKBgQD5jonwBQcktIK++IjY
nWwaMRGFiPMZVlrzoJDvHxA6efNslx88LBM/3VPcN1VwC9cxUlb+yt83466Lxqde
3D+vDXEZr7c6reNf8A+c1t8m+CHOQW7edFJAwhLayWdP/2FFewaD8qEdZtsBNTyv
UT72pSdCD88Jshlu2eZxt1jmqwKBgQDe/EsOqbii4IWDGDhREdKGpO6i85lovB2f
iqLFDPjOXkLxNgUGhueEKB5kYyZgPTd6bMdHTfPfzKIMJLLxAc6Ys1GSrhpV4rbw
fB43EiVY6Mqs38hhyabIT65iDNmEMZIYhElxE4oy24Od/JhBYxouTji2ImnqT1I+
0BT55dnYjQKBgHQYM2NNc31H3GsrA76BvYCRwyz0AOOQoM8lq0cSlGIfyXaC9yzu
9CWJuTGBLGXrnDh9rarqhd1iNhkgWUxv+dBd2HeynvLVYimHbDvyWe2vEUr6dbFX
O8yUfGD7wOweSgogqW9IuFsNNmThd1G34iqrug+pew9voxVGmUXdnaXxAoGBAJjG
tw42zqAZwKAPKhaxZVKHElFnIYaWzJ0QuXDU8GtEPg1R+6N7LohnjFsva42oo6gn
e2mpSRve8m/rfQaPPGN3CL68tqJ9kOW3xGPq9Nezt5k2Qe5t4O2BWnMnZqih5f0S
NddZkehCai0GcbLrGXb8dPKlJXg6HJmYq6aECvvJAoGAWKm94xkhPZOdtQrhNEH8
Nb7UhvjBUYBrGwDUVK3GLDa+m1B+mPIepR7mT2KIQNa8ZK0A8Y7AT/7tKLLQbf98
81sCTqJWePFZH/u5TK/bBS9s8m/C5EVLNBdfCzEQjf8dVAMAaauGMO+quN7hdukd
nE0LJ55qojncX02xT0Ht8Nk=
-----END PRIVATE KEY-----
";

/// Self-signed certificate of [`SIGNER_KEY`].
const SIGNER_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIDDzCCAfegAwIBAgIBATANBgkqhkiG9w0BAQsFADAwMS4wLAYDVQQDDCVrYXJt
YXlvZ2ktbHJzIGNvbmZvcm1hbmNlIHRlc3Qgc2lnbmVyMCAXDTAwMDEwMTAwMDAw
MFoYDzIxMDAwMTAxMDAwMDAwWjAwMS4wLAYDVQQDDCVrYXJtYXlvZ2ktbHJzIGNv
bmZvcm1hbmNlIHRlc3Qgc2lnbmVyMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIB
CgKCAQEA2V+NGPpJF7+zNfZ3butAtO+4d1qqa0crETwXYByRdhPpogJ2QLQgfyfa
0bcCH88fRon3aat/oX4Ztd/0KjU9yAqC3a4u8ypOnSFoBFL4woKQwOsfJWNMrfEm
U/Xo2ZeLeIltAPT7ydMJOFyHq4Z+Z8ErGG25E/GatnO0LUAUF1COhHHj/aVsvwiF
5cEQtVLBOPauQlIBTTryxujiTZ0SfcO1JTGLRwBXnpgM7akHiMw61EcX9bmFRNHX
sQyE/H3CRQywLWHe72uA9UJkztvbii7qg6MVEQ5m1n07yd2OHIRKIl0JOPsnJC6S
X7Ql1QIVXxQdxLIJni8USIhafIpULwIDAQABozIwMDAPBgNVHRMBAf8EBTADAQH/
MB0GA1UdDgQWBBQBNj2AHX5r6rInHOiIX0HqWbO/ZjANBgkqhkiG9w0BAQsFAAOC
AQEAg/VPvtNX14SfeCvZ2jyWTeVZYXmUD9FIGuqz3VhdwembVrI9Qhq8efCoFGAD
rM1eAp0tnt6bhVo1rLuXkwlpPvSQORgwS26bQaL0aYOPkFz6vvJ8yZHBRC2SAHUd
5RtUm/5VOOQsfhKYOXxBJV1exnwJfy3JjaCSx7wdL70ZoryfIv6+cQ3wKo2wKpb9
E9USi1pXasPuVZDAEe62MhcZUKYS8HBrWyNh2iqnnRvCRaZI7t6ud9h8gCDt8l1x
ntFepiAzpDe5mbwFnLbPELAVeuZ+8Y4AtcOywHsDGx6fmQpyKVjyklfBvQVmGXNt
Yw+L7sanBB6MB5S7qnfKn9j41A==
-----END CERTIFICATE-----
";

/// A self-signed certificate of another RSA key (its private key was discarded).
const UNRELATED_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIDGTCCAgGgAwIBAgIBAjANBgkqhkiG9w0BAQsFADA1MTMwMQYDVQQDDCprYXJt
YXlvZ2ktbHJzIGNvbmZvcm1hbmNlIHVucmVsYXRlZCBzaWduZXIwIBcNMDAwMTAx
MDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMDUxMzAxBgNVBAMMKmthcm1heW9naS1s
cnMgY29uZm9ybWFuY2UgdW5yZWxhdGVkIHNpZ25lcjCCASIwDQYJKoZIhvcNAQEB
BQADggEPADCCAQoCggEBANPziR/IqI2euBbE4AwcrKQh4U+YLX5CMh8Z0v7vsGml
zFZTUiaWpNtwUtUEFWRLgeVPT+oD8mO3GgIknLI0EpdIXTX9wbBM4QaXWzseby6B
FXK0w9UlRPJKXHfsCd0zagKEU9qnphgrZbAi/dMRGTXGM7jxXOzxZWFJ5Su8dy2u
PBlGiycJpQt+MR26otJw7jyaLCwXDKLOhLxQqF5kXNzFzDtvWX7ckixRn++8RBnW
RdPUIHpV069s/LUlU7ecnB0mgnqy5+Akj2/rsLp/7NOmJAJMnOAIstqOnyWiLsd0
NuxK3zh5mpg8E8vciH2Zf5rHILAE4SctzsEYVhUUVckCAwEAAaMyMDAwDwYDVR0T
AQH/BAUwAwEB/zAdBgNVHQ4EFgQUzkSLZTTQp4KImqAIgjHsfGws6QowDQYJKoZI
hvcNAQELBQADggEBAJIzLrNQYqD55+ZjSYP1MOvHmegfmw1Z5ViSvO7tUNhKuLlf
9om9QuxZbPhOg2zEd/kXe6MatzL+2unM6v0gK5mdWpIPullzns5Imv62ZU/z6iSa
xhtFA+UQYuQZXRnA6LcIDsxxLIVHKFUPmbCX/8MFSYAvoKFn02TTz61cT7zHzuSr
Sax5qnr/Kkkev+awofSMNHtYCtR6LnOGEkJntLKgQbG++PpTZlNW3fhpHn1jd8YS
4WrJoYPHoVzMm9cqlA0cl5gyL9vpH/1DfV+BU8mYrXrMAtN7xAv4+BUAoXSmejGP
o7MPKrFXMtUPfzsBARElzdoGV1shIVjt0T1vrXk=
-----END CERTIFICATE-----
";

/// The base64 DER of a PEM certificate, as the JWS `x5c` header holds it.
fn x5c_entry(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn signer() -> EncodingKey {
    EncodingKey::from_rsa_pem(SIGNER_KEY.as_bytes()).expect("test signing key")
}

/// A JWS Compact Serialization of `payload` under `header`, signed with `key` / `alg`.
fn jws(header: &Value, payload: &[u8], alg: Algorithm, key: &EncodingKey) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(payload)
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).expect("sign");
    format!("{input}.{signature}")
}

/// An RS* JWS over `statement` by the test signer, with its certificate in `x5c`.
fn sign(statement: &Value, alg: Algorithm, alg_name: &str) -> String {
    jws(
        &json!({"alg": alg_name, "x5c": [x5c_entry(SIGNER_CERT)]}),
        &serde_json::to_vec(statement).unwrap(),
        alg,
        &signer(),
    )
}

/// A statement worth signing (fresh id).
fn signable() -> Value {
    let mut s = statement();
    s["timestamp"] = json!("2024-05-04T12:00:00.000Z");
    s["result"] = json!({"score": {"scaled": 0.75}, "success": true, "duration": "PT1H2M3S"});
    s
}

/// The signature Attachment object for `content`.
fn signature_attachment(content: &[u8]) -> Value {
    json!({
        "usageType": SIGNATURE_USAGE,
        "display": {"en-US": "Signature"},
        "contentType": "application/octet-stream",
        "length": content.len(),
        "sha2": sha256(content)
    })
}

/// `statement` with a signature attachment of `content`, POSTed as multipart/mixed.
fn post_signed(lrs: &Lrs, v: &str, statement: &Value, content: &[u8]) -> Response {
    let mut sent = statement.clone();
    sent["attachments"] = json!([signature_attachment(content)]);
    post_multipart(
        lrs,
        v,
        &[
            OutPart::json(&sent),
            OutPart::attachment(content, "application/octet-stream"),
        ],
    )
}

fn reject_signed(lrs: &Lrs, v: &str, statement: &Value, content: &[u8], why: &str) {
    let r = post_signed(lrs, v, statement, content);
    if r.status != 400 {
        panic!("{v}: {why}: expected 400\n{}", r.describe());
    }
    r.assert_error(400);
    assert_not_stored(lrs, &id_of(statement));
}

/// Data 2.6 (the LRS validates and stores signatures, XAPI-00115..00117): a statement
/// carrying a valid JWS of itself — RS256, RS384 or RS512, with or without its
/// certificate in `x5c` — is accepted by POST and PUT, and the signature is returned as
/// an attachment.
#[test]
fn data_2_6_valid_signed_statement_accepted() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = signable();
        let token = sign(&s, Algorithm::RS256, "RS256");
        let r = post_signed(&lrs, v, &s, token.as_bytes());
        r.assert_status(200).assert_version(v);

        let r = lrs
            .get("/statements")
            .query("statementId", &id_of(&s))
            .query("attachments", "true")
            .version(v)
            .send();
        r.assert_status(200);
        let parts = parse_multipart(&r);
        let got: Value = serde_json::from_slice(&parts[0].body).unwrap();
        assert_eq!(got["attachments"][0]["usageType"], json!(SIGNATURE_USAGE));
        assert_eq!(parts.len(), 2, "{v}: the signature part");
        assert_eq!(parts[1].body, token.as_bytes());
        assert_eq!(
            parts[1]
                .header("X-Experience-API-Hash")
                .map(str::to_ascii_lowercase),
            Some(sha256(token.as_bytes()))
        );

        for (alg, name) in [(Algorithm::RS384, "RS384"), (Algorithm::RS512, "RS512")] {
            let s = signable();
            let token = sign(&s, alg, name);
            post_signed(&lrs, v, &s, token.as_bytes()).assert_status(200);
            fetch(&lrs, v, &id_of(&s));
        }

        // Without x5c.
        let s = signable();
        let token = jws(
            &json!({"alg": "RS256"}),
            &serde_json::to_vec(&s).unwrap(),
            Algorithm::RS256,
            &signer(),
        );
        post_signed(&lrs, v, &s, token.as_bytes()).assert_status(200);

        // The payload need not carry what the LRS assigns (here: id).
        let s = signable();
        let mut unsigned_id = s.clone();
        unsigned_id.as_object_mut().unwrap().remove("id");
        let token = sign(&unsigned_id, Algorithm::RS256, "RS256");
        post_signed(&lrs, v, &s, token.as_bytes()).assert_status(200);

        // PUT.
        let s = signable();
        let token = sign(&s, Algorithm::RS256, "RS256");
        let mut sent = s.clone();
        sent["attachments"] = json!([signature_attachment(token.as_bytes())]);
        let (ct, body) = crate::attachments::multipart(&[
            OutPart::json(&sent),
            OutPart::attachment(token.as_bytes(), "application/octet-stream"),
        ]);
        lrs.put("/statements")
            .query("statementId", &id_of(&s))
            .version(v)
            .body(&ct, body)
            .send()
            .assert_status(204);
        fetch(&lrs, v, &id_of(&s));
    }
}

/// Data 2.6 (LRS requirements: the signature is validated with the X.509 certificate):
/// a JWS whose payload was altered after signing, or whose signature bytes were altered,
/// or whose `x5c` certificate holds another key, is rejected.
#[test]
fn data_2_6_tampered_signature_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        // The payload swapped for the statement actually sent, the signature kept.
        let s = signable();
        let mut original = s.clone();
        original["result"]["success"] = json!(false);
        let token = sign(&original, Algorithm::RS256, "RS256");
        let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
        segments[1] = b64url(&serde_json::to_vec(&s).unwrap());
        let tampered = segments.join(".");
        reject_signed(
            &lrs,
            v,
            &s,
            tampered.as_bytes(),
            "payload altered after signing",
        );

        // Signature bytes altered.
        let s = signable();
        let token = sign(&s, Algorithm::RS256, "RS256");
        let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut sig = URL_SAFE_NO_PAD.decode(&segments[2]).unwrap();
        sig[10] ^= 0x55;
        segments[2] = b64url(&sig);
        let tampered = segments.join(".");
        reject_signed(&lrs, v, &s, tampered.as_bytes(), "signature altered");

        // Signed with our key, certificate of another key.
        let s = signable();
        let token = jws(
            &json!({"alg": "RS256", "x5c": [x5c_entry(UNRELATED_CERT)]}),
            &serde_json::to_vec(&s).unwrap(),
            Algorithm::RS256,
            &signer(),
        );
        reject_signed(&lrs, v, &s, token.as_bytes(), "certificate of another key");
    }
}

/// Data 2.6.s4.b3 (XAPI-00116) and the LRS requirement that the JWS payload and the
/// statement are logically equivalent: a valid signature of another statement is
/// rejected.
#[test]
fn data_2_6_s4_b3_payload_differing_from_statement_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = signable();
        let changes: [(&str, Change); 4] = [
            ("verb", |x| {
                x["verb"]["id"] = json!("http://example.com/verbs/forged")
            }),
            ("score", |x| x["result"]["score"]["scaled"] = json!(1)),
            ("actor", |x| {
                x["actor"]["mbox"] = json!("mailto:someone-else@example.com")
            }),
            ("extra context", |x| {
                x["context"] = json!({"registration": crate::harness::new_id()})
            }),
        ];
        for (what, change) in changes {
            let mut signed = s.clone();
            change(&mut signed);
            let token = sign(&signed, Algorithm::RS256, "RS256");
            reject_signed(&lrs, v, &s, token.as_bytes(), what);
        }
        // The payload is a statement (a JSON object).
        let token = jws(
            &json!({"alg": "RS256"}),
            b"[1, 2, 3]",
            Algorithm::RS256,
            &signer(),
        );
        reject_signed(&lrs, v, &s, token.as_bytes(), "payload not an object");
        let token = jws(
            &json!({"alg": "RS256"}),
            b"not json",
            Algorithm::RS256,
            &signer(),
        );
        reject_signed(&lrs, v, &s, token.as_bytes(), "payload not JSON");
    }
}

/// Data 2.6.s4.b1 (XAPI-00115: the signature is a JWS in an application/octet-stream
/// attachment whose content is sent): non-JWS content, another contentType, or no content
/// part is rejected.
#[test]
fn data_2_6_s4_b1_non_jws_signature_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = signable();
        let token = sign(&s, Algorithm::RS256, "RS256");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("plain text", b"this is not a signature".to_vec()),
            ("two segments", {
                let t: Vec<&str> = token.split('.').collect();
                format!("{}.{}", t[0], t[1]).into_bytes()
            }),
            ("empty signature segment", {
                let t: Vec<&str> = token.split('.').collect();
                format!("{}.{}.", t[0], t[1]).into_bytes()
            }),
            ("header not base64url", {
                let t: Vec<&str> = token.split('.').collect();
                format!("!!!.{}.{}", t[1], t[2]).into_bytes()
            }),
            ("binary", vec![0, 159, 146, 150, 255]),
        ];
        for (what, content) in cases {
            reject_signed(&lrs, v, &s, &content, what);
        }

        // contentType other than application/octet-stream.
        let mut sent = s.clone();
        let mut att = signature_attachment(token.as_bytes());
        att["contentType"] = json!("text/plain");
        sent["attachments"] = json!([att]);
        let r = post_multipart(
            &lrs,
            v,
            &[
                OutPart::json(&sent),
                OutPart::attachment(token.as_bytes(), "text/plain"),
            ],
        );
        r.assert_error(400);
        assert_not_stored(&lrs, &id_of(&s));

        // A signature whose content is not sent (application/json, fileUrl).
        let mut att = signature_attachment(token.as_bytes());
        att["fileUrl"] = json!("http://example.com/signatures/1.jws");
        let mut sent = s.clone();
        sent["attachments"] = json!([att]);
        let r = lrs.post("/statements").version(v).json(&sent).send();
        r.assert_error(400);
        assert_not_stored(&lrs, &id_of(&s));
    }
}

/// Data 2.6.s4.b4 (XAPI-00117): the JWS algorithm is RS256, RS384 or RS512; HS256, `none`,
/// or another algorithm name is rejected.
#[test]
fn data_2_6_s4_b4_wrong_algorithm_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = signable();
        let payload = serde_json::to_vec(&s).unwrap();
        let hs256 = jws(
            &json!({"alg": "HS256"}),
            &payload,
            Algorithm::HS256,
            &EncodingKey::from_secret(b"a shared secret"),
        );
        reject_signed(&lrs, v, &s, hs256.as_bytes(), "HS256");

        let none = format!("{}.{}.", b64url(br#"{"alg":"none"}"#), b64url(&payload));
        reject_signed(&lrs, v, &s, none.as_bytes(), "alg none");
        let none_signed = format!(
            "{}.{}.{}",
            b64url(br#"{"alg":"none"}"#),
            b64url(&payload),
            b64url(b"signature")
        );
        reject_signed(
            &lrs,
            v,
            &s,
            none_signed.as_bytes(),
            "alg none with a signature",
        );

        // An RSA signature labelled with another algorithm, or no algorithm at all.
        for header in [
            json!({"alg": "ES256", "x5c": [x5c_entry(SIGNER_CERT)]}),
            json!({"alg": "rs256"}),
            json!({"typ": "JWT"}),
        ] {
            let token = jws(&header, &payload, Algorithm::RS256, &signer());
            reject_signed(&lrs, v, &s, token.as_bytes(), &header.to_string());
        }
    }
}

/// Data 2.6.s4.b2 and the 2.0 change (Compact Serialization only): under 2.0 the JWS JSON
/// Serialization of a valid signature is rejected.
#[test]
fn xapi_2_0_jws_json_serialization_rejected() {
    let lrs = Lrs::start();
    let s = signable();
    let token = sign(&s, Algorithm::RS256, "RS256");
    let t: Vec<&str> = token.split('.').collect();
    let flattened = json!({"protected": t[0], "payload": t[1], "signature": t[2]}).to_string();
    reject_signed(
        &lrs,
        "2.0.0",
        &s,
        flattened.as_bytes(),
        "JSON serialization",
    );
}
