//! Known answers from the AWS Signature Version 4 test suite (the `aws-signing-test-suite`
//! cases of awslabs/aws-c-auth, Apache-2.0, as shipped with the `aws-sigv4` crate): requests
//! signed by AWS's reference signers, in both header and presigned form, must verify; with one
//! signature character changed they must not. The suite signs for service `service` in
//! `us-east-1` at 2015-08-30T12:36:00Z with AKIDEXAMPLE's documented example secret.
//!
//! Left out: the path cases written with raw spaces or UTF-8 (not a valid request target once
//! on the wire) and the presigned `post-sts-header-after`, whose token is added after signing
//! (a mode some services use, not DynamoDB).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrodyn_auth::sigv4::{KeyMaterial, RequestParts, SigV4Error, Verified, Verifier};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

struct Vector {
    name: &'static str,
    presigned: bool,
    method: &'static str,
    /// Path and query as sent.
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    token: Option<&'static str>,
}

fn suite_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

fn run(
    verifier: &Verifier,
    v: &Vector,
    headers: &[(&str, &str)],
    target: &str,
    now: SystemTime,
) -> Result<Verified, SigV4Error> {
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let parts = RequestParts {
        method: v.method,
        path,
        query,
        headers: &headers,
        body: v.body.as_bytes(),
    };
    let token = v.token;
    verifier.verify(&parts, now, &|akid| {
        (akid == "AKIDEXAMPLE").then(|| KeyMaterial {
            secret_access_key: SECRET.to_owned(),
            session_token: token.map(str::to_owned),
        })
    })
}

/// Changes the last hex digit of the signature, wherever it is.
fn flip_signature(s: &str) -> String {
    let at = s.find("Signature=").expect("signature") + "Signature=".len() + 63;
    let mut bytes = s.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).expect("ASCII")
}

#[test]
fn test_suite_vectors_verify() {
    let verifier = Verifier::new().with_service("service");
    assert!(VECTORS.len() >= 40);
    for v in VECTORS {
        let got = run(&verifier, v, v.headers, v.target, suite_time())
            .unwrap_or_else(|e| panic!("{} (presigned {}): {e}", v.name, v.presigned));
        assert_eq!(got.presigned, v.presigned, "{}", v.name);
        assert_eq!(got.region, "us-east-1");
        assert_eq!(got.session_token.as_deref(), v.token, "{}", v.name);
    }
}

#[test]
fn test_suite_vectors_with_a_changed_signature_fail() {
    let verifier = Verifier::new().with_service("service");
    for v in VECTORS {
        let result = if v.presigned {
            run(
                &verifier,
                v,
                v.headers,
                &flip_signature(v.target),
                suite_time(),
            )
        } else {
            let headers: Vec<(&str, String)> = v
                .headers
                .iter()
                .map(|(n, val)| {
                    let val = if n.eq_ignore_ascii_case("authorization") {
                        flip_signature(val)
                    } else {
                        (*val).to_owned()
                    };
                    (*n, val)
                })
                .collect();
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            run(&verifier, v, &headers, v.target, suite_time())
        };
        let e = result.expect_err(v.name);
        assert_eq!(e.type_name(), "InvalidSignatureException", "{}", v.name);
    }
}

#[test]
fn test_suite_vectors_expire() {
    // The presigned cases carry X-Amz-Expires=3600: valid for an hour, then expired.
    let verifier = Verifier::new().with_service("service");
    for v in VECTORS.iter().filter(|v| v.presigned) {
        run(
            &verifier,
            v,
            v.headers,
            v.target,
            suite_time() + Duration::from_secs(3600),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        let e = run(
            &verifier,
            v,
            v.headers,
            v.target,
            suite_time() + Duration::from_secs(3601),
        )
        .expect_err(v.name);
        assert_eq!(
            e.message(),
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z \
             (20150830T133601Z - 60 min.)"
        );
    }
}

/// A path that is already percent-encoded is encoded once more (the `double-url-encode` case,
/// signed for Lambda).
#[test]
fn double_encoded_path() {
    let verifier = Verifier::new().with_service("lambda");
    let v = Vector {
        name: "double-url-encode",
        presigned: false,
        method: "POST",
        target: "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations",
        headers: &[
            ("Host", "lambda.us-east-2.amazonaws.com"),
            ("X-Amz-Date", "20210511T154045Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210511/us-east-2/lambda/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804",
            ),
        ],
        body: "",
        token: None,
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_620_747_645);
    let got = run(&verifier, &v, v.headers, v.target, now).expect("double-url-encode");
    assert_eq!(got.region, "us-east-2");
    let single = v.target.replace("%3A", ":");
    assert!(run(&verifier, &v, v.headers, &single, now).is_err());
}

const VECTORS: &[Vector] = &[
    Vector {
        name: "get-vanilla",
        presigned: false,
        method: "GET",
        target: "/",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla",
        presigned: true,
        method: "GET",
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla-query",
        presigned: false,
        method: "GET",
        target: "/",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla-query",
        presigned: true,
        method: "GET",
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla-empty-query-key",
        presigned: false,
        method: "GET",
        target: "/?Param1=value1",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla-empty-query-key",
        presigned: true,
        method: "GET",
        target: "/?Param1=value1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=49096700cbbaa5753443850f40df10f904fc2fdb544dc9512203cc77c471a9de",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla-query-order-key-case",
        presigned: false,
        method: "GET",
        target: "/?Param2=value2&Param1=value1",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla-query-order-key-case",
        presigned: true,
        method: "GET",
        target: "/?Param2=value2&Param1=value1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla-query-order-encoded",
        presigned: false,
        method: "GET",
        target: "/?Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla-query-order-encoded",
        presigned: true,
        method: "GET",
        target: "/?Param-3=Value3&Param=Value2&%E1%88%B4=Value1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=c5f1848ceec943ac2ca68ee720460c23aaae30a2300586597ada94c4a65e4787",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla-query-unreserved",
        presigned: false,
        method: "GET",
        target: "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla-query-unreserved",
        presigned: true,
        method: "GET",
        target: "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=8e76a88a7433637b12778d5592799b29ad21ecd6cf6325051c21d86f0acda2bf",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla-utf8-query",
        presigned: false,
        method: "GET",
        target: "/?%E1%88%B4=bar",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla-utf8-query",
        presigned: true,
        method: "GET",
        target: "/?%E1%88%B4=bar&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=0bdd809b1519ac4f0c1dc3540e2cc46bd0c7f778eda408b2ebf3b913d21ff600",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-header-value-trim",
        presigned: false,
        method: "GET",
        target: "/",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", " value1"), ("My-Header2", " \"a   b   c\""), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-header-value-trim",
        presigned: true,
        method: "GET",
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host%3Bmy-header1%3Bmy-header2&X-Amz-Expires=3600&X-Amz-Signature=e7bb0fd515e125e1aec2ecc4c0c17484fb06f6846b927c35e46005dd3df3acd4",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-header-key-duplicate",
        presigned: false,
        method: "GET",
        target: "/",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-header-key-duplicate",
        presigned: true,
        method: "GET",
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host%3Bmy-header1&X-Amz-Expires=3600&X-Amz-Signature=3349ee0b81b4b589da0ff28a395c3591e04de515651dd74f298fa992d1507a97",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-header-value-order",
        presigned: false,
        method: "GET",
        target: "/",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-header-value-order",
        presigned: true,
        method: "GET",
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host%3Bmy-header1&X-Amz-Expires=3600&X-Amz-Signature=313720e71ca6202fdcfa9b20f88de01a4eb0638a83c833b1c184359a4eda864e",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2")],
        body: "",
        token: None,
    },
    Vector {
        name: "get-vanilla-with-session-token",
        presigned: false,
        method: "GET",
        target: "/",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Security-Token", "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8")],
        body: "",
        token: Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
    },
    Vector {
        name: "get-vanilla-with-session-token",
        presigned: true,
        method: "GET",
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Security-Token=6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267&X-Amz-Signature=7ff2b50b376cb4d151970630573d6291dc128cc5c2a12ffb237f73cc53f67b6c",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
    },
    Vector {
        name: "post-vanilla",
        presigned: false,
        method: "POST",
        target: "/",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")],
        body: "",
        token: None,
    },
    Vector {
        name: "post-vanilla",
        presigned: true,
        method: "POST",
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=2ce6e6d2e0cf2f9d1b55fafec88cd20574c31dc2e7631979f71ba2310083e95b",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
    },
    Vector {
        name: "post-vanilla-query",
        presigned: false,
        method: "POST",
        target: "/?Param1=value1",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11")],
        body: "",
        token: None,
    },
    Vector {
        name: "post-vanilla-query",
        presigned: true,
        method: "POST",
        target: "/?Param1=value1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=a9ef26247f293bffe40eeff86a0480ba8c14d31503b2e0c3399e3a16bf1a3682",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
    },
    Vector {
        name: "post-vanilla-empty-query-value",
        presigned: false,
        method: "POST",
        target: "/?Param1=value1",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11")],
        body: "",
        token: None,
    },
    Vector {
        name: "post-vanilla-empty-query-value",
        presigned: true,
        method: "POST",
        target: "/?Param1=value1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=a9ef26247f293bffe40eeff86a0480ba8c14d31503b2e0c3399e3a16bf1a3682",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
    },
    Vector {
        name: "post-header-key-case",
        presigned: false,
        method: "POST",
        target: "/",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")],
        body: "",
        token: None,
    },
    Vector {
        name: "post-header-key-case",
        presigned: true,
        method: "POST",
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=2ce6e6d2e0cf2f9d1b55fafec88cd20574c31dc2e7631979f71ba2310083e95b",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: None,
    },
    Vector {
        name: "post-header-key-sort",
        presigned: false,
        method: "POST",
        target: "/",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "value1"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c")],
        body: "",
        token: None,
    },
    Vector {
        name: "post-header-key-sort",
        presigned: true,
        method: "POST",
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host%3Bmy-header1&X-Amz-Expires=3600&X-Amz-Signature=c09d07e0d55871f10f2a6d350d994acf6825a3cae70673d7def55616e6119dd7",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "value1")],
        body: "",
        token: None,
    },
    Vector {
        name: "post-header-value-case",
        presigned: false,
        method: "POST",
        target: "/",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "VALUE1"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d")],
        body: "",
        token: None,
    },
    Vector {
        name: "post-header-value-case",
        presigned: true,
        method: "POST",
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host%3Bmy-header1&X-Amz-Expires=3600&X-Amz-Signature=0698bc9e4f7f9139065ba2909c0e99da257e8e2a42492a097bcd46d792391fed",
        headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "VALUE1")],
        body: "",
        token: None,
    },
    Vector {
        name: "post-x-www-form-urlencoded",
        presigned: false,
        method: "POST",
        target: "/",
        headers: &[("Content-Type", "application/x-www-form-urlencoded"), ("Host", "example.amazonaws.com"), ("Content-Length", "13"), ("X-Amz-Date", "20150830T123600Z"), ("x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b")],
        body: "Param1=value1",
        token: None,
    },
    Vector {
        name: "post-x-www-form-urlencoded",
        presigned: true,
        method: "POST",
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost&X-Amz-Expires=3600&X-Amz-Signature=89a40deed0f26f9461242825a082d2222717248abc7ab41f552ad84a94ad46e9",
        headers: &[("Content-Type", "application/x-www-form-urlencoded"), ("Host", "example.amazonaws.com"), ("Content-Length", "13")],
        body: "Param1=value1",
        token: None,
    },
    Vector {
        name: "post-x-www-form-urlencoded-parameters",
        presigned: false,
        method: "POST",
        target: "/",
        headers: &[("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), ("Host", "example.amazonaws.com"), ("Content-Length", "13"), ("X-Amz-Date", "20150830T123600Z"), ("x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422")],
        body: "Param1=value1",
        token: None,
    },
    Vector {
        name: "post-x-www-form-urlencoded-parameters",
        presigned: true,
        method: "POST",
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost&X-Amz-Expires=3600&X-Amz-Signature=0dbeb9b026c7b6675f266b8427efec9b4fa8b1f6ef1477d717aea231106eab4d",
        headers: &[("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), ("Host", "example.amazonaws.com"), ("Content-Length", "13")],
        body: "Param1=value1",
        token: None,
    },
    Vector {
        name: "post-sts-header-after",
        presigned: false,
        method: "POST",
        target: "/",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Security-Token", "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")],
        body: "",
        token: Some("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="),
    },
    Vector {
        name: "post-sts-header-before",
        presigned: false,
        method: "POST",
        target: "/",
        headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Security-Token", "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead")],
        body: "",
        token: Some("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="),
    },
    Vector {
        name: "post-sts-header-before",
        presigned: true,
        method: "POST",
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Security-Token=AQoDYXdzEPT%2F%2F%2F%2F%2F%2F%2F%2F%2F%2FwEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI%2FqkPpKPi%2FkMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d%2Bxo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz%2BscqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR%2FoLxBA%3D%3D&X-Amz-Signature=46c2e3c63c1dbe7d39f8ada16fe7f001c1f56c5791441565323677f96308871c",
        headers: &[("Host", "example.amazonaws.com")],
        body: "",
        token: Some("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="),
    },
];
