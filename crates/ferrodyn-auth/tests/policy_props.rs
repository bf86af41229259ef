//! Properties of parsing and evaluation over generated documents and contexts.

use ferrodyn_auth::policy::{
    evaluate, wildcard_match, Decision, PolicyDocument, PolicyKind, RequestContext,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------------
// Generators

/// Any JSON value, small.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        vocabulary().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop_oneof![vocabulary(), ".{0,8}"], inner), 0..5)
                .prop_map(|kvs| Value::Object(kvs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Words of the policy language, so that random documents get past the first checks.
fn vocabulary() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "Version",
        "2012-10-17",
        "2008-10-17",
        "Id",
        "Statement",
        "Sid",
        "Effect",
        "Allow",
        "Deny",
        "Principal",
        "NotPrincipal",
        "AWS",
        "Service",
        "*",
        "123456789012",
        "arn:aws:iam::123456789012:root",
        "arn:aws:iam::123456789012:user/alice",
        "Action",
        "NotAction",
        "dynamodb:*",
        "dynamodb:Get?tem",
        "Resource",
        "NotResource",
        "arn:aws:dynamodb:*:*:table/${aws:username}",
        "arn:aws:dynamodb:us-east-1:123456789012:table/Books",
        "Condition",
        "StringEquals",
        "StringLikeIfExists",
        "ForAllValues:StringEquals",
        "ForAnyValue:StringNotLike",
        "NumericLessThan",
        "DateGreaterThan",
        "IpAddress",
        "Bool",
        "Null",
        "ArnLike",
        "BinaryEquals",
        "aws:username",
        "aws:SourceIp",
        "aws:CurrentTime",
        "dynamodb:LeadingKeys",
        "dynamodb:Attributes",
        "${aws:userid, 'x'}",
        "${*}",
        "${",
        "10.0.0.0/8",
        "2026-01-01T00:00:00Z",
        "true",
        "12",
        "QUJD",
    ])
    .prop_map(str::to_owned)
}

/// A documented-shape statement: valid by construction.
fn statement(with_principal: bool) -> impl Strategy<Value = Value> {
    let actions = prop::collection::vec(
        prop::sample::select(vec![
            "*",
            "dynamodb:*",
            "dynamodb:Get*",
            "dynamodb:GetItem",
            "dynamodb:?utItem",
            "dynamodb:query",
            "s3:*",
        ]),
        1..3,
    );
    let resources = prop::collection::vec(
        prop::sample::select(vec![
            "*",
            "arn:aws:dynamodb:*:*:table/*",
            "arn:aws:dynamodb:us-east-1:123456789012:table/Books",
            "arn:aws:dynamodb:us-east-1:123456789012:table/Books/*",
            "arn:aws:dynamodb:*:*:table/${aws:username}",
            "arn:aws:dynamodb:*:*:table/${aws:userid, 'x'}-*",
            "arn:aws:dynamodb:us-?ast-1:*",
        ]),
        1..3,
    );
    let conditions = prop::collection::vec(condition(), 0..3);
    let principal = prop::sample::select(vec![
        json!("*"),
        json!({"AWS": "*"}),
        json!({"AWS": "123456789012"}),
        json!({"AWS": "arn:aws:iam::123456789012:root"}),
        json!({"AWS": ["arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/bob"]}),
        json!({"AWS": "999999999999"}),
    ]);
    (
        any::<bool>(),
        any::<bool>(),
        actions,
        any::<bool>(),
        resources,
        conditions,
        principal,
        any::<bool>(),
    )
        .prop_map(
            move |(deny, not_action, actions, not_resource, resources, conds, principal, not_p)| {
                let mut st = Map::new();
                st.insert("Effect".into(), json!(if deny { "Deny" } else { "Allow" }));
                let a = if not_action { "NotAction" } else { "Action" };
                st.insert(a.into(), json!(actions));
                let r = if not_resource {
                    "NotResource"
                } else {
                    "Resource"
                };
                st.insert(r.into(), json!(resources));
                if with_principal {
                    let p = if not_p { "NotPrincipal" } else { "Principal" };
                    st.insert(p.into(), principal);
                }
                let mut block = Map::new();
                for (op, key, value) in conds {
                    let entry = block
                        .entry(op.to_owned())
                        .or_insert_with(|| Value::Object(Map::new()));
                    entry.as_object_mut().unwrap().insert(key.to_owned(), value);
                }
                if !block.is_empty() {
                    st.insert("Condition".into(), Value::Object(block));
                }
                Value::Object(st)
            },
        )
}

fn condition() -> impl Strategy<Value = (&'static str, &'static str, Value)> {
    prop::sample::select(vec![
        ("StringEquals", "aws:username", json!("alice")),
        ("StringNotEquals", "aws:username", json!(["alice", "bob"])),
        (
            "StringEqualsIgnoreCase",
            "dynamodb:Select",
            json!("specific_attributes"),
        ),
        ("StringLikeIfExists", "dynamodb:Select", json!("SPECIFIC_*")),
        ("StringNotLike", "aws:userid", json!("AIDA*")),
        (
            "ForAllValues:StringEquals",
            "dynamodb:LeadingKeys",
            json!("${aws:username}"),
        ),
        (
            "ForAllValues:StringLike",
            "dynamodb:Attributes",
            json!(["a*", "b?"]),
        ),
        (
            "ForAnyValue:StringEquals",
            "dynamodb:Attributes",
            json!("secret"),
        ),
        (
            "ForAnyValue:StringNotEqualsIfExists",
            "dynamodb:Attributes",
            json!("a"),
        ),
        ("NumericLessThan", "dynamodb:Limit", json!(10)),
        (
            "NumericGreaterThanEqualsIfExists",
            "dynamodb:Limit",
            json!("2.5"),
        ),
        (
            "DateLessThan",
            "aws:CurrentTime",
            json!("2026-06-01T00:00:00Z"),
        ),
        ("DateGreaterThan", "aws:EpochTime", json!(1700000000)),
        ("Bool", "aws:SecureTransport", json!(true)),
        ("BoolIfExists", "aws:SecureTransport", json!("false")),
        (
            "IpAddress",
            "aws:SourceIp",
            json!(["10.0.0.0/8", "2001:db8::/32"]),
        ),
        ("NotIpAddress", "aws:SourceIp", json!("192.0.2.0/24")),
        (
            "ArnLike",
            "aws:PrincipalArn",
            json!("arn:aws:iam::*:user/*"),
        ),
        (
            "ArnNotEquals",
            "aws:PrincipalArn",
            json!("arn:aws:iam::123456789012:user/${aws:username}"),
        ),
        ("Null", "aws:TokenIssueTime", json!("true")),
        ("Null", "dynamodb:Attributes", json!(false)),
        ("BinaryEquals", "k", json!("QUJD")),
    ])
}

fn document(with_principal: bool) -> impl Strategy<Value = Value> {
    (
        any::<bool>(),
        prop::collection::vec(statement(with_principal), 0..4),
    )
        .prop_map(|(new, statements)| {
            json!({
                "Version": if new { "2012-10-17" } else { "2008-10-17" },
                "Statement": statements,
            })
        })
}

fn parse(v: &Value, kind: PolicyKind) -> PolicyDocument {
    PolicyDocument::parse(&v.to_string(), kind)
        .unwrap_or_else(|e| panic!("generated policy rejected: {e}\n{v}"))
}

/// Arbitrary request contexts, with keys that policies look at and junk values.
fn context() -> impl Strategy<Value = RequestContext> {
    let action = prop_oneof![
        prop::sample::select(vec![
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "DynamoDB:getitem",
            "s3:GetObject",
        ])
        .prop_map(str::to_owned),
        ".{0,16}",
    ];
    let resource = prop_oneof![
        prop::sample::select(vec![
            "arn:aws:dynamodb:us-east-1:123456789012:table/Books",
            "arn:aws:dynamodb:us-east-1:123456789012:table/Books/index/I",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/alice",
            "arn:aws:dynamodb:us-east-1:999999999999:table/x-1",
            "arn:aws:dynamodb",
            "",
        ])
        .prop_map(str::to_owned),
        "[a-z:/*?]{0,24}",
    ];
    let principal = prop::sample::select(vec![
        ("arn:aws:iam::123456789012:user/alice", "123456789012"),
        ("arn:aws:iam::123456789012:root", "123456789012"),
        ("arn:aws:iam::999999999999:user/eve", "999999999999"),
        ("", ""),
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "alice",
            "AIDAALICE",
            "SPECIFIC_ATTRIBUTES",
            "5",
            "12.5",
            "-1e3",
            "true",
            "FALSE",
            "10.1.2.3",
            "2001:db8::1",
            "2026-01-01T00:00:00Z",
            "1767225600",
            "QUJD",
            "arn:aws:iam::123456789012:user/alice",
            "",
        ])
        .prop_map(str::to_owned),
        ".{0,10}",
    ];
    let key = prop::sample::select(vec![
        "aws:username",
        "AWS:UserId",
        "dynamodb:Select",
        "dynamodb:LeadingKeys",
        "dynamodb:Attributes",
        "dynamodb:Limit",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:SecureTransport",
        "aws:SourceIp",
        "aws:PrincipalArn",
        "aws:TokenIssueTime",
        "k",
    ]);
    let entry = (
        key,
        prop_oneof![
            value.clone().prop_map(|v| vec![v]).prop_map(|v| (false, v)),
            prop::collection::vec(value, 0..4).prop_map(|v| (true, v)),
        ],
    );
    (
        action,
        resource,
        principal,
        prop::collection::vec(entry, 0..8),
    )
        .prop_map(|(action, resource, (arn, account), entries)| {
            let mut ctx = RequestContext::new(action, resource, arn, account);
            for (key, (multi, values)) in entries {
                if multi {
                    ctx.set_multi(key, values);
                } else {
                    ctx.set(key, values[0].clone());
                }
            }
            ctx
        })
}

/// Contexts whose resource, when an ARN with an account, is in the caller's account.
fn same_account_context() -> impl Strategy<Value = RequestContext> {
    context().prop_map(|mut ctx| {
        let parts: Vec<&str> = ctx.resource.splitn(6, ':').collect();
        if parts.len() == 6 && parts[0] == "arn" && !parts[4].is_empty() {
            let mut fixed: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
            fixed[4] = ctx.principal_account.clone();
            ctx.resource = fixed.join(":");
        }
        ctx
    })
}

// ---------------------------------------------------------------------------------------------
// Reference matcher: the obvious recursive definition.

fn reference_match(p: &[char], t: &[char]) -> bool {
    match p.split_first() {
        None => t.is_empty(),
        Some(('*', rest)) => (0..=t.len()).any(|i| reference_match(rest, &t[i..])),
        Some(('?', rest)) => !t.is_empty() && reference_match(rest, &t[1..]),
        Some((c, rest)) => t.first() == Some(c) && reference_match(rest, &t[1..]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_any_json(v in any_json()) {
        let text = v.to_string();
        let _ = PolicyDocument::parse(&text, PolicyKind::Identity);
        let _ = PolicyDocument::parse(&text, PolicyKind::Resource);
    }

    #[test]
    fn parser_never_panics_on_policy_shaped_json(
        v in any_json(),
        statement in prop::collection::vec((vocabulary(), any_json()), 0..7),
    ) {
        let st: Map<String, Value> = statement.into_iter().collect();
        for doc in [
            json!({"Version": "2012-10-17", "Statement": [Value::Object(st.clone())]}),
            json!({"Version": "2012-10-17", "Statement": Value::Object(st.clone()), "Id": v.clone()}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": v.clone()}]}),
            json!({"Statement": [{"Effect": "Allow", "Principal": v.clone(), "Action": "*", "Resource": "*"}]}),
        ] {
            let text = doc.to_string();
            let _ = PolicyDocument::parse(&text, PolicyKind::Identity);
            let _ = PolicyDocument::parse(&text, PolicyKind::Resource);
        }
    }

    #[test]
    fn parser_never_panics_on_any_text(text in ".{0,64}") {
        let _ = PolicyDocument::parse(&text, PolicyKind::Identity);
    }

    #[test]
    fn evaluation_never_panics(
        idp in document(false),
        rp in document(true),
        ctx in context(),
    ) {
        let idp = parse(&idp, PolicyKind::Identity);
        let rp = parse(&rp, PolicyKind::Resource);
        let _ = evaluate(&[&idp], &[&rp], &ctx);
        let _ = evaluate(&[&rp, &idp], &[&idp, &rp], &ctx);
    }

    #[test]
    fn adding_a_deny_never_grants(
        idp in document(false),
        rp in document(true),
        deny in statement(false),
        ctx in context(),
    ) {
        let idp_doc = parse(&idp, PolicyKind::Identity);
        let rp_doc = parse(&rp, PolicyKind::Resource);
        let before = evaluate(&[&idp_doc], &[&rp_doc], &ctx);
        let mut with_deny = idp.clone();
        let mut deny = deny;
        deny["Effect"] = json!("Deny");
        with_deny["Statement"].as_array_mut().unwrap().push(deny);
        let after_doc = parse(&with_deny, PolicyKind::Identity);
        let after = evaluate(&[&after_doc], &[&rp_doc], &ctx);
        if before != Decision::Allow {
            prop_assert_ne!(after, Decision::Allow);
        }
        if before == Decision::ExplicitDeny {
            prop_assert_eq!(after, Decision::ExplicitDeny);
        }
        // A deny that matches everything decides.
        let mut deny_all = idp;
        deny_all["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Effect": "Deny", "Action": "*", "Resource": "*"}));
        let deny_all = parse(&deny_all, PolicyKind::Identity);
        prop_assert_eq!(evaluate(&[&deny_all], &[&rp_doc], &ctx), Decision::ExplicitDeny);
    }

    #[test]
    fn allow_everything_allows_everything(ctx in same_account_context()) {
        let doc = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
            PolicyKind::Identity,
        )
        .unwrap();
        prop_assert_eq!(evaluate(&[&doc], &[], &ctx), Decision::Allow);
    }

    #[test]
    fn wildcard_matching_agrees_with_reference(
        pattern in "[ab*?é]{0,8}",
        text in "[abé]{0,10}",
    ) {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        prop_assert_eq!(wildcard_match(&pattern, &text, false), reference_match(&p, &t));
    }

    #[test]
    fn case_insensitive_matching_agrees_with_reference(
        pattern in "[aAbBéÉ*?]{0,8}",
        text in "[aAbBéÉ]{0,10}",
    ) {
        let p: Vec<char> = pattern.to_lowercase().chars().collect();
        let t: Vec<char> = text.to_lowercase().chars().collect();
        prop_assert_eq!(wildcard_match(&pattern, &text, true), reference_match(&p, &t));
    }
}
