//! Behaviour of SigV4 verification: each refusal (type and exact message), canonicalization,
//! presigned requests, session tokens and the signing-key cache.

mod sigv4_support;

use std::time::Duration;

use ferrodyn_auth::sigv4::{
    KeyMaterial, SigV4Error, SigningKeyCache, Verifier, INVALID_SESSION_TOKEN_MESSAGE,
    SIGNATURE_MISMATCH_MESSAGE,
};
use sha2::{Digest, Sha256};
use sigv4_support::*;

const BODY: &str = r#"{"TableName":"t","Item":{"p":{"S":"x"}}}"#;
const INVALID_SIG: &str = "InvalidSignatureException";
const INCOMPLETE: &str = "IncompleteSignatureException";
const UNRECOGNIZED: &str = "UnrecognizedClientException";

fn mismatch() -> (&'static str, String) {
    (INVALID_SIG, SIGNATURE_MISMATCH_MESSAGE.to_owned())
}

fn auth_of(req: &Req) -> String {
    req.get_header("authorization").expect("signed")
}

/// An unsigned request carrying this Authorization header and X-Amz-Date.
fn with_auth(auth: &str, amz_date: &str) -> Req {
    Req::dynamodb(BODY)
        .header("X-Amz-Date", amz_date)
        .header("Authorization", auth)
}

// ---------------------------------------------------------------------------------------------
// Accepted requests and canonicalization

#[test]
fn accepts_a_request_signed_by_the_sdk() {
    let req = signed(BODY);
    let v = req.verify(now()).expect("verifies");
    assert_eq!(v.access_key_id, AKID);
    assert_eq!(v.region, "us-east-1");
    assert_eq!(v.service, "dynamodb");
    assert_eq!(v.session_token, None);
    assert!(!v.presigned);
}

#[test]
fn accepts_any_syntactically_valid_region() {
    for region in ["local", "us-east-1", "eu_test-2", "ddblocal", "X"] {
        let mut req = Req::dynamodb(BODY);
        sign_req(
            &mut req,
            &Signing {
                region,
                ..Signing::default()
            },
        );
        assert_eq!(req.verify(now()).expect(region).region, region);
    }
}

#[test]
fn authorization_components_separated_by_commas_only() {
    let mut req = signed(BODY);
    let auth = auth_of(&req);
    let mut words = auth.split_whitespace();
    let first = words.next().unwrap();
    let joined = format!("{first} {}", words.collect::<String>());
    assert!(joined.contains(",SignedHeaders=") && !joined[17..].contains(' '));
    req = req.set_header("Authorization", &joined);
    req.verify(now()).expect("commas only");
}

#[test]
fn authorization_components_separated_by_spaces_only_or_many() {
    let req = signed(BODY);
    let auth = auth_of(&req);
    for variant in [
        auth.replace(", ", " "),
        auth.replace(", ", " ,  "),
        auth.replace("AWS4-HMAC-SHA256 ", "  AWS4-HMAC-SHA256   "),
        auth.replace(", ", ",\t"),
    ] {
        req.clone()
            .set_header("Authorization", &variant)
            .verify(now())
            .unwrap_or_else(|e| panic!("{variant}: {e}"));
    }
}

#[test]
fn header_names_in_any_case_and_order() {
    let req = signed(BODY);
    let mut shouted = req.clone();
    for (name, _) in &mut shouted.headers {
        *name = name.to_ascii_uppercase();
    }
    shouted.verify(now()).expect("upper-case names");
    let mut reversed = req.clone();
    reversed.headers.reverse();
    reversed.verify(now()).expect("reversed order");
}

#[test]
fn header_values_are_trimmed_and_inner_spaces_collapsed() {
    let mut req = Req::dynamodb(BODY).header("X-Custom", "a   b  c");
    sign_req(&mut req, &Signing::default());
    for sent in ["a b c", "  a b   c  ", "\ta    b c\t", "a b c "] {
        req.clone()
            .set_header("X-Custom", sent)
            .verify(now())
            .unwrap_or_else(|e| panic!("{sent:?}: {e}"));
    }
    for sent in ["ab c", "a b c d", "a\tb c"] {
        assert_eq!(
            err(req.clone().set_header("X-Custom", sent).verify(now())),
            mismatch()
        );
    }
}

#[test]
fn repeated_headers_join_in_arrival_order() {
    let mut req = Req::dynamodb(BODY)
        .header("My-Header1", "value2")
        .header("My-Header1", "value1");
    sign_req(&mut req, &Signing::default());
    req.verify(now()).expect("repeated header");
    // Swapping the two values changes the canonical request.
    let mut swapped = req.clone();
    let idx: Vec<usize> = swapped
        .headers
        .iter()
        .enumerate()
        .filter(|(_, (n, _))| n == "My-Header1")
        .map(|(i, _)| i)
        .collect();
    swapped.headers.swap(idx[0], idx[1]);
    assert_eq!(err(swapped.verify(now())), mismatch());
    // Dropping one changes it too.
    let mut dropped = req.clone();
    dropped.headers.remove(idx[0]);
    assert_eq!(err(dropped.verify(now())), mismatch());
}

#[test]
fn unsigned_headers_may_change() {
    let req = signed(BODY)
        .header("User-Agent", "anything")
        .header("X-Extra", "1");
    req.verify(now()).expect("unsigned headers are free");
}

#[test]
fn query_parameters_are_signed_in_canonical_order() {
    let mut req = Req::dynamodb(BODY);
    req.query = Some("b=2&a=x%20y&a=1".into());
    sign_req(&mut req, &Signing::default());
    req.verify(now()).expect("query");
    let mut reordered = req.clone();
    reordered.query = Some("a=1&b=2&a=x+y".into());
    reordered.verify(now()).expect("same canonical query");
    let mut changed = req.clone();
    changed.query = Some("b=3&a=x%20y&a=1".into());
    assert_eq!(err(changed.verify(now())), mismatch());
}

#[test]
fn path_is_normalized_and_double_encoded() {
    let mut req = Req::dynamodb(BODY);
    req.path = "/a/./b/../c%3D/".into();
    sign_req(&mut req, &Signing::default());
    req.verify(now()).expect("path");
    let mut other = req.clone();
    other.path = "/a/c%3D/".into();
    other.verify(now()).expect("same normalized path");
    other.path = "/a/c=/".into();
    assert_eq!(err(other.verify(now())), mismatch());
}

/// The `Date` header stands in for `X-Amz-Date`; the string to sign then carries its ISO 8601
/// basic form. Signed here by hand with the SDK's key derivation and HMAC.
#[test]
fn date_header_instead_of_x_amz_date() {
    let req = Req::dynamodb(BODY).header("Date", "Sun, 06 Dec 2026 00:00:00 GMT");
    let body_hash = hex::encode(Sha256::digest(BODY.as_bytes()));
    let canonical = format!(
        "POST\n/\n\ndate:Sun, 06 Dec 2026 00:00:00 GMT\nhost:localhost:8000\n\ndate;host\n{body_hash}"
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n20261206T000000Z\n20261206/local/dynamodb/aws4_request\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = aws_sigv4::sign::v4::generate_signing_key(SECRET, now(), "local", "dynamodb");
    let signature =
        aws_sigv4::sign::v4::calculate_signature(key.as_ref(), string_to_sign.as_bytes());
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20261206/local/dynamodb/aws4_request, \
         SignedHeaders=date;host, Signature={signature}"
    );
    let req = req.header("Authorization", &auth);
    assert_eq!(req.verify(now()).expect("Date header").region, "local");
    let bad = req
        .clone()
        .set_header("Date", "Sun, 06 Dec 2026 00:00:01 GMT");
    assert_eq!(err(bad.verify(now())), mismatch());
}

// ---------------------------------------------------------------------------------------------
// Refusals, in DynamoDB's order

#[test]
fn no_authentication_at_all() {
    let req = Req::dynamodb(BODY).header("X-Amz-Date", "20261206T000000Z");
    let e = req.verify(now()).unwrap_err();
    assert_eq!(e, SigV4Error::MissingAuthenticationToken);
    assert_eq!(e.type_name(), "MissingAuthenticationTokenException");
    assert_eq!(
        e.qualified_type_name(),
        "com.amazon.coral.service#MissingAuthenticationTokenException"
    );
    assert_eq!(e.message(), "Request is missing Authentication Token");
    assert_eq!(e.http_status(), 400);
}

#[test]
fn authorization_not_starting_with_aws4_dash_is_missing_token() {
    for auth in [
        "AWS4",
        "Bearer abc",
        "AWS AKID:sig",
        " ",
        "aws4-hmac-sha256 Credential=x",
    ] {
        let e = with_auth(auth, "20261206T000000Z")
            .verify(now())
            .unwrap_err();
        assert_eq!(e, SigV4Error::MissingAuthenticationToken, "{auth:?}");
    }
    // Presigned parameters other than X-Amz-Algorithm do not make a presigned request.
    let mut req = Req::dynamodb(BODY);
    req.query =
        Some("X-Amz-Credential=a&X-Amz-Signature=b&X-Amz-SignedHeaders=c&X-Amz-Date=d".into());
    assert_eq!(
        req.verify(now()).unwrap_err(),
        SigV4Error::MissingAuthenticationToken
    );
}

#[test]
fn header_and_query_together() {
    let mut req = signed(BODY);
    req.query = Some("X-Amz-Algorithm".into());
    assert_eq!(
        err(req.verify(now())),
        (
            INVALID_SIG,
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP \
             header."
                .to_owned()
        )
    );
}

#[test]
fn every_missing_part_at_once() {
    let req = Req::dynamodb(BODY).header("Authorization", "AWS4-");
    assert_eq!(
        err(req.verify(now())),
        (
            INCOMPLETE,
            "Authorization header requires 'Credential' parameter. Authorization header requires \
             'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
             header. Authorization=AWS4-"
                .to_owned()
        )
    );
}

#[test]
fn some_missing_parts() {
    for auth in [
        "AWS4- Signature=b Credential=a",
        "AWS4- Signature=b,Credential=a",
        "AWS4- Signature=b, Credential=a",
    ] {
        let req = Req::dynamodb(BODY)
            .header("Date", "a")
            .header("Authorization", auth);
        assert_eq!(
            err(req.verify(now())),
            (
                INCOMPLETE,
                format!(
                    "Authorization header requires 'SignedHeaders' parameter. Authorization={auth}"
                )
            )
        );
    }
    // Empty values count as missing, except SignedHeaders (refused later for lacking host).
    let req = with_auth(
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
        "20261206T000000Z",
    );
    assert_eq!(
        err(req.verify(now())),
        (
            INCOMPLETE,
            "Authorization header requires 'Credential' parameter. Authorization header requires \
             'Signature' parameter. Authorization=AWS4-HMAC-SHA256 Credential=, SignedHeaders=, \
             Signature="
                .to_owned()
        )
    );
}

#[test]
fn component_without_equal_sign() {
    let auth = "AWS4-HMAC-SHA256 Signature=b,    Credential,    SignedHeaders";
    assert_eq!(
        err(with_auth(auth, "20261206T000000Z").verify(now())),
        (
            INCOMPLETE,
            format!(
                "'Credential' not a valid key=value pair (missing equal-sign) in Authorization \
                 header: '{auth}'."
            )
        )
    );
}

#[test]
fn malformed_dates() {
    for (date, shown) in [
        ("201", "201"),
        ("2026-12-06T00:00:00Z", "2026-12-06T00:00:00Z"),
    ] {
        let auth =
            "AWS4-HMAC-SHA256 Credential=x/2/3/4/aws4_request SignedHeaders=host Signature=1";
        assert_eq!(
            err(with_auth(auth, date).verify(now())),
            (
                INCOMPLETE,
                format!(
                    "Date must be in ISO-8601 'basic format'. Got '{shown}'. See \
                     http://en.wikipedia.org/wiki/ISO_8601"
                )
            )
        );
    }
    let req = Req::dynamodb(BODY).header("Date", "not a date").header(
        "Authorization",
        "AWS4-HMAC-SHA256 Credential=x SignedHeaders=host Signature=1",
    );
    assert_eq!(err(req.verify(now())).0, INCOMPLETE);
}

/// The ScyllaDB Alternator tests' requests: the skew check precedes everything about the
/// credential (an unknown key and a nonsense scope here).
#[test]
fn expired_before_anything_about_the_credential() {
    let auth = "AWS4-HMAC-SHA256 Credential=cassandra/2/3/4/aws4_request \
                SignedHeaders=x-amz-date;host Signature=123";
    assert_eq!(
        err(with_auth(auth, "20170101T010101Z").verify(now())),
        (
            INVALID_SIG,
            "Signature expired: 20170101T010101Z is now earlier than 20261205T234500Z \
             (20261206T000000Z - 15 min.)"
                .to_owned()
        )
    );
    assert_eq!(
        err(with_auth(auth, "30200101T010101Z").verify(now())),
        (
            INVALID_SIG,
            "Signature not yet current: 30200101T010101Z is still later than 20261206T001500Z \
             (20261206T000000Z + 15 min.)"
                .to_owned()
        )
    );
}

#[test]
fn skew_boundaries_are_inclusive() {
    let fifteen = Duration::from_secs(15 * 60);
    for (time, ok) in [
        (now() - fifteen, true),
        (now() + fifteen, true),
        (now() - fifteen - Duration::from_secs(1), false),
        (now() + fifteen + Duration::from_secs(1), false),
    ] {
        let mut req = Req::dynamodb(BODY);
        sign_req(
            &mut req,
            &Signing {
                time,
                ..Signing::default()
            },
        );
        assert_eq!(req.verify(now()).is_ok(), ok, "{time:?}");
    }
}

#[test]
fn configurable_clock_skew() {
    let verifier = Verifier::new().with_max_clock_skew(Duration::from_secs(300));
    let mut req = Req::dynamodb(BODY);
    sign_req(
        &mut req,
        &Signing {
            time: now() - Duration::from_secs(301),
            ..Signing::default()
        },
    );
    assert_eq!(
        err(req.verify_with(&verifier, now(), &keys)).1,
        "Signature expired: 20261205T235459Z is now earlier than 20261205T235500Z \
         (20261206T000000Z - 5 min.)"
    );
}

#[test]
fn host_must_be_signed() {
    let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/us-east-1/dynamodb/aws4_request, \
                SignedHeaders=content-type;x-amz-date, Signature=00";
    assert_eq!(
        err(with_auth(auth, "20261206T000000Z").verify(now())),
        (
            INVALID_SIG,
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".to_owned()
        )
    );
    let empty = "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=, Signature=00";
    assert_eq!(
        err(with_auth(empty, "20261206T000000Z").verify(now())).0,
        INVALID_SIG
    );
}

#[test]
fn unsupported_algorithm() {
    let auth = "AWS4-HMAC-SHA25 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00";
    assert_eq!(
        err(with_auth(auth, "20261206T000000Z").verify(now())),
        (
            INCOMPLETE,
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA25' (only AWS4-HMAC-SHA256 for now). "
                .to_owned()
        )
    );
}

#[test]
fn credential_needs_five_parts() {
    for cred in ["a/b/c/d", "AKIDEXAMPLE", "a/b/c/d/e/f", ""] {
        let auth = format!("AWS4-HMAC-SHA256 Credential={cred}x, SignedHeaders=host, Signature=00");
        let cred = format!("{cred}x");
        assert_eq!(
            err(with_auth(&auth, "20261206T000000Z").verify(now())),
            (
                INCOMPLETE,
                format!(
                    "Credential must have exactly 5 slash-delimited elements, e.g. \
                     keyid/date/region/service/term, got '{cred}'"
                )
            ),
            "{auth}"
        );
    }
    // Trailing slashes are ignored: this one reaches the key look-up.
    let auth = "AWS4-HMAC-SHA256 Credential=nobody/20261206/r/dynamodb/aws4_request//, \
                SignedHeaders=host, Signature=00";
    assert_eq!(
        err(with_auth(auth, "20261206T000000Z").verify(now())).0,
        UNRECOGNIZED
    );
}

#[test]
fn scope_faults_reported_together() {
    let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261205/bad!region/s3/aws5_request, \
                SignedHeaders=host, Signature=00";
    assert_eq!(
        err(with_auth(auth, "20261206T000000Z").verify(now())),
        (
            INVALID_SIG,
            "Credential should be scoped to a valid region, not 'bad!region'. Credential should \
             be scoped to correct service: 'dynamodb'. Credential should be scoped with a valid \
             terminator: 'aws4_request', not 'aws5_request'. Date in Credential scope does not \
             match YYYYMMDD from ISO-8601 version of date from HTTP: '20261205' != '20261206', \
             from '20261206T000000Z'."
                .to_owned()
        )
    );
    let auth =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/us-east-1/dynamodbstreams/aws4_request, \
                SignedHeaders=host, Signature=00";
    assert_eq!(
        err(with_auth(auth, "20261206T000000Z").verify(now())),
        (
            INVALID_SIG,
            "Credential should be scoped to correct service: 'dynamodb'.".to_owned()
        )
    );
    let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206//dynamodb/aws4_request, \
                SignedHeaders=host, Signature=00";
    assert_eq!(
        err(with_auth(auth, "20261206T000000Z").verify(now())).1,
        "Credential should be scoped to a valid region, not ''."
    );
}

#[test]
fn unknown_access_key() {
    let mut req = Req::dynamodb(BODY);
    sign_req(
        &mut req,
        &Signing {
            akid: "AKIDUNKNOWN",
            ..Signing::default()
        },
    );
    assert_eq!(
        err(req.verify(now())),
        (
            UNRECOGNIZED,
            "The security token included in the request is invalid.".to_owned()
        )
    );
}

#[test]
fn wrong_secret() {
    let mut req = Req::dynamodb(BODY);
    sign_req(
        &mut req,
        &Signing {
            secret: "not-the-secret",
            ..Signing::default()
        },
    );
    let e = req.verify(now()).unwrap_err();
    assert_eq!((e.type_name(), e.message()), mismatch());
    assert_eq!(
        e.message(),
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. Consult the service documentation for \
         details."
    );
    let detailed = e.detailed_message();
    assert!(detailed.starts_with(SIGNATURE_MISMATCH_MESSAGE));
    assert!(detailed.contains(
        "\n\nThe Canonical String for this request should have been\n'POST\n/\n\ncontent-type:"
    ));
    assert!(detailed.contains(
        "\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20261206T000000Z\n\
         20261206/us-east-1/dynamodb/aws4_request\n"
    ));
    // Debug output leaves the canonical request (header values) out.
    assert!(!format!("{e:?}").contains("x-amz-target"));
}

#[test]
fn tampered_parts() {
    let req = signed(BODY);
    let mut body = req.clone();
    body.body.push(b' ');
    assert_eq!(err(body.verify(now())), mismatch());
    let mut method = req.clone();
    method.method = "PUT".into();
    assert_eq!(err(method.verify(now())), mismatch());
    let target = req
        .clone()
        .set_header("X-Amz-Target", "DynamoDB_20120810.DeleteItem");
    assert_eq!(err(target.verify(now())), mismatch());
    let auth = auth_of(&req);
    let last = auth.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &auth[..auth.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let sig = req.clone().set_header("Authorization", &flipped);
    assert_eq!(err(sig.verify(now())), mismatch());
    // The signature is compared as sent: upper-case hex is not the signature.
    let (head, hex_sig) = auth.split_once("Signature=").unwrap();
    let upper = format!("{head}Signature={}", hex_sig.to_ascii_uppercase());
    assert_ne!(upper, auth);
    let upper = req.clone().set_header("Authorization", &upper);
    assert_eq!(err(upper.verify(now())), mismatch());
}

#[test]
fn content_sha256_header_must_match_the_body() {
    let hash = hex::encode(Sha256::digest(BODY.as_bytes()));
    let mut req = Req::dynamodb(BODY).header("X-Amz-Content-Sha256", &hash);
    sign_req(&mut req, &Signing::default());
    req.verify(now()).expect("matching content hash");

    // Signed with a hash that is not the body's: refused even though the signer agreed.
    let other = hex::encode(Sha256::digest(b"other"));
    let mut lying = Req::dynamodb(BODY).header("X-Amz-Content-Sha256", &other);
    sign_req(&mut lying, &Signing::default());
    assert_eq!(err(lying.verify(now())), mismatch());
    let mut unsigned = Req::dynamodb(BODY).header("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");
    sign_req(&mut unsigned, &Signing::default());
    assert_eq!(err(unsigned.verify(now())), mismatch());
}

// ---------------------------------------------------------------------------------------------
// Session tokens

#[test]
fn session_token_must_match_the_key() {
    let temp = Signing {
        akid: TEMP_AKID,
        token: Some(TOKEN),
        ..Signing::default()
    };
    let mut ok = Req::dynamodb(BODY);
    sign_req(&mut ok, &temp);
    let v = ok.verify(now()).expect("temporary credentials");
    assert_eq!(v.session_token.as_deref(), Some(TOKEN));
    assert!(!format!("{v:?}").contains(TOKEN));

    let refused = (
        UNRECOGNIZED,
        "The security token included in the request is invalid".to_owned(),
    );
    assert_eq!(refused.1, INVALID_SESSION_TOKEN_MESSAGE);
    let mut missing = Req::dynamodb(BODY);
    sign_req(
        &mut missing,
        &Signing {
            token: None,
            ..temp.clone()
        },
    );
    assert_eq!(err(missing.verify(now())), refused);

    let mut wrong = Req::dynamodb(BODY);
    sign_req(
        &mut wrong,
        &Signing {
            token: Some("other-token"),
            ..temp.clone()
        },
    );
    assert_eq!(err(wrong.verify(now())), refused);

    let mut unexpected = Req::dynamodb(BODY);
    sign_req(
        &mut unexpected,
        &Signing {
            token: Some(TOKEN),
            ..Signing::default()
        },
    );
    assert_eq!(err(unexpected.verify(now())), refused);

    // A wrong secret is reported as such even with a wrong token: the signature comes first.
    let mut both = Req::dynamodb(BODY);
    sign_req(
        &mut both,
        &Signing {
            secret: "bad",
            token: Some("bad"),
            ..temp
        },
    );
    assert_eq!(err(both.verify(now())), mismatch());
}

// ---------------------------------------------------------------------------------------------
// Presigned requests

fn presigned(expires: u64, time: std::time::SystemTime, signing: Signing<'_>) -> Req {
    let mut req = Req::dynamodb("");
    req.method = "GET".into();
    req.query = Some("Action=ListTables&Limit=10".into());
    sign_req(
        &mut req,
        &Signing {
            presign: Some(Duration::from_secs(expires)),
            time,
            ..signing
        },
    );
    req
}

#[test]
fn presigned_request_verifies() {
    let req = presigned(300, now(), Signing::default());
    assert!(req.get_header("authorization").is_none());
    let v = req.verify(now()).expect("presigned");
    assert!(v.presigned);
    assert_eq!(v.access_key_id, AKID);
}

#[test]
fn presigned_expiry_is_honoured() {
    // An hour's validity reaches further back than the 15-minute skew.
    let req = presigned(3600, now() - Duration::from_secs(3000), Signing::default());
    req.verify(now()).expect("within X-Amz-Expires");
    let req = presigned(3600, now() - Duration::from_secs(3601), Signing::default());
    assert_eq!(
        err(req.verify(now())),
        (
            INVALID_SIG,
            "Signature expired: 20261205T225959Z is now earlier than 20261205T230000Z \
             (20261206T000000Z - 60 min.)"
                .to_owned()
        )
    );
    let req = presigned(90, now() - Duration::from_secs(91), Signing::default());
    assert_eq!(
        err(req.verify(now())).1,
        "Signature expired: 20261205T235829Z is now earlier than 20261205T235830Z \
         (20261206T000000Z - 90 sec.)"
    );
    let req = presigned(
        604_800,
        now() + Duration::from_secs(16 * 60),
        Signing::default(),
    );
    assert!(err(req.verify(now()))
        .1
        .starts_with("Signature not yet current: "));
}

#[test]
fn presigned_tampering() {
    let req = presigned(300, now(), Signing::default());
    let q = req.query.clone().unwrap();
    for tampered in [
        q.replace("Limit=10", "Limit=11"),
        q.replace("Action=ListTables&", ""),
        format!("{q}&Extra=1"),
        q.replace("X-Amz-Expires=300", "X-Amz-Expires=301"),
    ] {
        let mut r = req.clone();
        r.query = Some(tampered.clone());
        assert_eq!(err(r.verify(now())), mismatch(), "{tampered}");
    }
    let mut r = req.clone();
    let sig_at = q.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut bytes = q.into_bytes();
    bytes[sig_at] = if bytes[sig_at] == b'a' { b'b' } else { b'a' };
    r.query = Some(String::from_utf8(bytes).unwrap());
    assert_eq!(err(r.verify(now())), mismatch());
}

#[test]
fn presigned_missing_parameters() {
    let mut req = Req::dynamodb("");
    req.query = Some("X-Amz-Algorithm".into());
    assert_eq!(
        err(req.verify(now())),
        (
            INCOMPLETE,
            "AWS query-string parameters must include 'X-Amz-Algorithm'. AWS query-string \
             parameters must include 'X-Amz-Credential'. AWS query-string parameters must include \
             'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. \
             AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string \
             parameters."
                .to_owned()
        )
    );
    req.query = Some("X-Amz-Algorithm=a&X-Amz-Credential=b&X-Amz-Signature=c&X-Amz-Date=d".into());
    assert_eq!(
        err(req.verify(now())),
        (
            INCOMPLETE,
            "AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the \
             query-string parameters."
                .to_owned()
        )
    );
}

#[test]
fn presigned_expires_out_of_range() {
    let req = presigned(300, now(), Signing::default());
    for (expires, message) in [
        (
            "604801",
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ),
        (
            "99999999999999999999999",
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ),
        ("-5", "X-Amz-Expires must be non-negative"),
        ("0", "X-Amz-Expires must be greater than 0"),
        ("soon", "X-Amz-Expires should be a number"),
        ("", "X-Amz-Expires should be a number"),
    ] {
        let mut r = req.clone();
        r.query = Some(
            r.query
                .unwrap()
                .replace("X-Amz-Expires=300", &format!("X-Amz-Expires={expires}")),
        );
        assert_eq!(
            err(r.verify(now())),
            (INCOMPLETE, message.to_owned()),
            "{expires}"
        );
    }
}

#[test]
fn presigned_with_session_token() {
    let temp = Signing {
        akid: TEMP_AKID,
        token: Some(TOKEN),
        ..Signing::default()
    };
    let req = presigned(300, now(), temp);
    assert!(req
        .query
        .as_deref()
        .unwrap()
        .contains("X-Amz-Security-Token="));
    let v = req.verify(now()).expect("presigned with token");
    assert_eq!(v.session_token.as_deref(), Some(TOKEN));
    // The token is part of the canonical query: altering it breaks the signature first.
    let mut r = req.clone();
    r.query = Some(
        r.query
            .unwrap()
            .replace("X-Amz-Security-Token=", "X-Amz-Security-Token=x"),
    );
    assert_eq!(err(r.verify(now())), mismatch());
}

// ---------------------------------------------------------------------------------------------
// The signing-key cache

#[test]
fn cache_reuses_keys_and_never_a_rotated_secrets() {
    let verifier = Verifier::new().with_cache(SigningKeyCache::new(16));
    let secret = std::cell::RefCell::new(SECRET.to_owned());
    let lookup = |akid: &str| {
        (akid == AKID).then(|| KeyMaterial {
            secret_access_key: secret.borrow().clone(),
            session_token: None,
        })
    };
    let req = signed(BODY);
    req.verify_with(&verifier, now(), &lookup).expect("first");
    req.verify_with(&verifier, now(), &lookup).expect("second");
    assert_eq!((verifier.cache().misses(), verifier.cache().hits()), (1, 1));

    // Rotate the secret: the old signature must now fail, the new one verify.
    *secret.borrow_mut() = "rotated-secret".to_owned();
    assert_eq!(err(req.verify_with(&verifier, now(), &lookup)), mismatch());
    let mut fresh = Req::dynamodb(BODY);
    sign_req(
        &mut fresh,
        &Signing {
            secret: "rotated-secret",
            ..Signing::default()
        },
    );
    fresh
        .verify_with(&verifier, now(), &lookup)
        .expect("rotated");
    assert_eq!(verifier.cache().len(), 2);

    // And back: the cache never hands the rotated key to the original secret or vice versa.
    *secret.borrow_mut() = SECRET.to_owned();
    req.verify_with(&verifier, now(), &lookup)
        .expect("original again");
    assert_eq!(
        err(fresh.verify_with(&verifier, now(), &lookup)),
        mismatch()
    );
}

#[test]
fn cache_is_shared_across_threads() {
    let verifier = Verifier::new();
    let req = signed(BODY);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    req.verify_with(&verifier, now(), &keys).expect("verifies");
                }
            });
        }
    });
    assert_eq!(verifier.cache().hits() + verifier.cache().misses(), 100);
    assert_eq!(verifier.cache().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Secrets stay out of Debug output; odd bytes never panic

#[test]
fn key_material_debug_hides_secrets() {
    let k = KeyMaterial {
        secret_access_key: SECRET.into(),
        session_token: Some(TOKEN.into()),
    };
    let shown = format!("{k:?}");
    assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
}

#[test]
fn non_utf8_and_odd_bytes_are_refused_not_panicked_on() {
    let mut req = signed(BODY);
    req.headers
        .push(("X-Odd".into(), vec![0xff, 0xfe, b' ', 0x80]));
    req.verify(now()).expect("unsigned odd header is ignored");
    let mut auth = auth_of(&req).into_bytes();
    auth.push(0xff);
    let r = Req {
        headers: vec![("Authorization".into(), auth)],
        ..req.clone()
    };
    assert!(r.verify(now()).is_err());
    let r = Req::dynamodb(BODY)
        .header("X-Amz-Date", "20261206T000000Z")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=é/ü/ß/€/aws4_request, SignedHeaders=host, Signature=ø",
        );
    assert!(r.verify(now()).is_err());
    let mut r = Req::dynamodb(BODY);
    r.query = Some("X-Amz-Algorithm=%ff%&X-Amz-Credential=%C3%28&X-Amz-Signature=%&X-Amz-SignedHeaders=host&X-Amz-Date=%00".into());
    assert_eq!(err(r.verify(now())).0, INCOMPLETE);
}
