//! Condition operators, one by one: values, negation, `...IfExists`, set qualifiers, absent keys
//! and empty sets.

use ferrodyn_auth::policy::{evaluate, Decision, PolicyDocument, PolicyKind, RequestContext};

const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/Books";

fn ctx() -> RequestContext {
    RequestContext::new(
        "dynamodb:GetItem",
        TABLE,
        "arn:aws:iam::123456789012:user/alice",
        "123456789012",
    )
}

/// Whether an Allow statement with this `Condition` element allows the request.
fn holds(condition: &str, ctx: &RequestContext) -> bool {
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{condition}}}}}"#
    );
    let doc = PolicyDocument::parse(&text, PolicyKind::Identity).unwrap();
    evaluate(&[&doc], &[], ctx) == Decision::Allow
}

fn with(key: &str, value: &str) -> RequestContext {
    ctx().with(key, value)
}

fn with_multi(key: &str, values: &[&str]) -> RequestContext {
    ctx().with_multi(key, values.iter().copied())
}

#[test]
fn string_equals() {
    let c = r#"{"StringEquals":{"dynamodb:Select":["SPECIFIC_ATTRIBUTES","COUNT"]}}"#;
    assert!(holds(c, &with("dynamodb:Select", "COUNT")));
    assert!(holds(c, &with("dynamodb:Select", "SPECIFIC_ATTRIBUTES")));
    assert!(!holds(c, &with("dynamodb:Select", "count")));
    assert!(!holds(c, &with("dynamodb:Select", "ALL_ATTRIBUTES")));
    // Absent key: a plain operator does not hold.
    assert!(!holds(c, &ctx()));
    // Key names are case-insensitive, on both sides.
    assert!(holds(c, &with("DYNAMODB:select", "COUNT")));
    assert!(holds(
        r#"{"StringEquals":{"DynamoDB:SELECT":"COUNT"}}"#,
        &with("dynamodb:Select", "COUNT")
    ));
    // No wildcards in StringEquals.
    assert!(!holds(r#"{"StringEquals":{"k":"a*"}}"#, &with("k", "abc")));
    assert!(holds(r#"{"StringEquals":{"k":"a*"}}"#, &with("k", "a*")));
}

#[test]
fn string_not_equals_is_nor_and_true_when_absent() {
    let c = r#"{"StringNotEquals":{"dynamodb:ReturnValues":["ALL_OLD","ALL_NEW"]}}"#;
    assert!(holds(c, &with("dynamodb:ReturnValues", "NONE")));
    assert!(!holds(c, &with("dynamodb:ReturnValues", "ALL_OLD")));
    assert!(!holds(c, &with("dynamodb:ReturnValues", "ALL_NEW")));
    assert!(holds(c, &ctx()));
}

#[test]
fn string_ignore_case() {
    let c = r#"{"StringEqualsIgnoreCase":{"aws:username":"Alice"}}"#;
    assert!(holds(c, &with("aws:username", "ALICE")));
    assert!(holds(c, &with("aws:username", "alice")));
    assert!(!holds(c, &with("aws:username", "alicia")));
    assert!(!holds(c, &ctx()));
    let n = r#"{"StringNotEqualsIgnoreCase":{"aws:username":"Alice"}}"#;
    assert!(!holds(n, &with("aws:username", "aLiCe")));
    assert!(holds(n, &with("aws:username", "bob")));
    assert!(holds(n, &ctx()));
    // Beyond ASCII.
    assert!(holds(
        r#"{"StringEqualsIgnoreCase":{"k":"ÉCOLE"}}"#,
        &with("k", "école")
    ));
}

#[test]
fn string_like() {
    let c = r#"{"StringLike":{"k":["Top*","?ins"]}}"#;
    assert!(holds(c, &with("k", "TopScore")));
    assert!(holds(c, &with("k", "Top")));
    assert!(holds(c, &with("k", "Wins")));
    assert!(!holds(c, &with("k", "topScore")));
    assert!(!holds(c, &with("k", "Winss")));
    assert!(!holds(c, &ctx()));
    let n = r#"{"StringNotLike":{"k":["Top*","?ins"]}}"#;
    assert!(!holds(n, &with("k", "TopScore")));
    assert!(holds(n, &with("k", "Losses")));
    assert!(holds(n, &ctx()));
    // ${*} is a literal star.
    assert!(holds(r#"{"StringLike":{"k":"a${*}"}}"#, &with("k", "a*")));
    assert!(!holds(r#"{"StringLike":{"k":"a${*}"}}"#, &with("k", "ab")));
}

#[test]
fn numeric() {
    let k = |v: &str| with("dynamodb:Limit", v);
    let n = |op: &str, v: &str| format!(r#"{{"{op}":{{"dynamodb:Limit":{v}}}}}"#);
    assert!(holds(&n("NumericEquals", "10"), &k("10")));
    assert!(holds(&n("NumericEquals", "\"10\""), &k("10.0")));
    assert!(!holds(&n("NumericEquals", "10"), &k("11")));
    assert!(holds(&n("NumericNotEquals", "10"), &k("11")));
    assert!(!holds(&n("NumericNotEquals", "10"), &k("10")));
    assert!(holds(&n("NumericLessThan", "10"), &k("9")));
    assert!(!holds(&n("NumericLessThan", "10"), &k("10")));
    assert!(holds(&n("NumericLessThanEquals", "10"), &k("10")));
    assert!(!holds(&n("NumericLessThanEquals", "10"), &k("10.5")));
    assert!(holds(&n("NumericGreaterThan", "10"), &k("10.5")));
    assert!(!holds(&n("NumericGreaterThan", "10"), &k("10")));
    assert!(holds(&n("NumericGreaterThanEquals", "10"), &k("10")));
    assert!(!holds(&n("NumericGreaterThanEquals", "10"), &k("-3")));
    assert!(holds(&n("NumericLessThan", "[1, 100]"), &k("50")));
    // Large integers compare exactly.
    assert!(holds(
        &n("NumericLessThan", "9007199254740993"),
        &k("9007199254740992")
    ));
    // A value that is not a number matches nothing.
    assert!(!holds(&n("NumericLessThan", "10"), &k("five")));
    assert!(holds(&n("NumericNotEquals", "10"), &k("five")));
    // Absent.
    assert!(!holds(&n("NumericLessThan", "10"), &ctx()));
    assert!(holds(&n("NumericNotEquals", "10"), &ctx()));
    assert!(holds(&n("NumericLessThanIfExists", "10"), &ctx()));
    assert!(!holds(&n("NumericLessThanIfExists", "10"), &k("11")));
}

#[test]
fn dates() {
    let d = |op: &str, v: &str| format!(r#"{{"{op}":{{"aws:CurrentTime":"{v}"}}}}"#);
    let now = |v: &str| with("aws:CurrentTime", v);
    assert!(holds(
        &d("DateLessThan", "2026-01-01T00:00:00Z"),
        &now("2025-12-31T23:59:59Z")
    ));
    assert!(!holds(
        &d("DateLessThan", "2026-01-01T00:00:00Z"),
        &now("2026-01-01T00:00:00Z")
    ));
    assert!(holds(
        &d("DateLessThanEquals", "2026-01-01T00:00:00Z"),
        &now("2026-01-01T00:00:00Z")
    ));
    assert!(holds(
        &d("DateGreaterThan", "2026-01-01"),
        &now("2026-01-01T00:00:00.001Z")
    ));
    assert!(holds(
        &d("DateGreaterThanEquals", "2026-01-01"),
        &now("2026-01-01T00:00:00Z")
    ));
    // Offsets, and epoch seconds on either side.
    assert!(holds(
        &d("DateEquals", "2026-01-01T02:00:00+02:00"),
        &now("2026-01-01T00:00:00Z")
    ));
    assert!(holds(
        &d("DateEquals", "1767225600"),
        &now("2026-01-01T00:00:00Z")
    ));
    assert!(holds(
        r#"{"DateGreaterThan":{"aws:EpochTime":"2025-06-01T00:00:00Z"}}"#,
        &with("aws:EpochTime", "1767225600")
    ));
    assert!(holds(
        &d("DateNotEquals", "2026-01-01T00:00:00Z"),
        &now("2026-01-01T00:00:01Z")
    ));
    assert!(!holds(
        &d("DateNotEquals", "2026-01-01T00:00:00Z"),
        &now("2026-01-01T00:00:00Z")
    ));
    assert!(!holds(&d("DateLessThan", "2026-01-01"), &now("not a date")));
    assert!(!holds(&d("DateLessThan", "2026-01-01"), &ctx()));
    assert!(holds(&d("DateNotEquals", "2026-01-01"), &ctx()));
    assert!(holds(&d("DateLessThanIfExists", "2026-01-01"), &ctx()));
    // Leap day.
    assert!(holds(
        &d("DateLessThan", "2024-03-01"),
        &now("2024-02-29T23:59:59Z")
    ));
}

#[test]
fn bool_operator() {
    let c = r#"{"Bool":{"aws:SecureTransport":"true"}}"#;
    assert!(holds(c, &with("aws:SecureTransport", "true")));
    assert!(holds(c, &with("aws:SecureTransport", "TRUE")));
    assert!(!holds(c, &with("aws:SecureTransport", "false")));
    assert!(!holds(c, &with("aws:SecureTransport", "maybe")));
    assert!(!holds(c, &ctx()));
    let f = r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":false}}"#;
    assert!(holds(f, &ctx()));
    assert!(holds(f, &with("aws:MultiFactorAuthPresent", "false")));
    assert!(!holds(f, &with("aws:MultiFactorAuthPresent", "true")));
}

#[test]
fn binary() {
    let c = r#"{"BinaryEquals":{"k":"QmluYXJ5VmFsdWU="}}"#;
    assert!(holds(c, &with("k", "QmluYXJ5VmFsdWU=")));
    assert!(!holds(c, &with("k", "QmluYXJ5")));
    assert!(!holds(c, &with("k", "%%")));
    assert!(!holds(c, &ctx()));
    assert!(holds(
        r#"{"BinaryEqualsIfExists":{"k":"QmluYXJ5VmFsdWU="}}"#,
        &ctx()
    ));
}

#[test]
fn ip_addresses() {
    let c = r#"{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:db8::/32","198.51.100.7"]}}"#;
    let ip = |v: &str| with("aws:SourceIp", v);
    assert!(holds(c, &ip("203.0.113.200")));
    assert!(!holds(c, &ip("203.0.114.1")));
    assert!(holds(c, &ip("2001:db8:1::5")));
    assert!(!holds(c, &ip("2001:db9::1")));
    assert!(holds(c, &ip("198.51.100.7")));
    assert!(!holds(c, &ip("198.51.100.8")));
    assert!(!holds(c, &ip("not-an-ip")));
    assert!(!holds(c, &ctx()));
    let n = r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#;
    assert!(holds(n, &ip("192.0.2.1")));
    assert!(!holds(n, &ip("10.1.2.3")));
    assert!(holds(n, &ctx()));
    // A CIDR with host bits set still names its network.
    assert!(holds(
        r#"{"IpAddress":{"aws:SourceIp":"10.1.2.3/8"}}"#,
        &ip("10.200.0.1")
    ));
}

#[test]
fn arns() {
    let c = r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::123456789012:user/*"}}"#;
    // aws:PrincipalArn defaults to the caller's ARN.
    assert!(holds(c, &ctx()));
    let role = with("aws:PrincipalArn", "arn:aws:iam::123456789012:role/r");
    assert!(!holds(c, &role));
    let eq = r#"{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:user/alice"}}"#;
    assert!(holds(eq, &ctx()));
    assert!(!holds(eq, &role));
    // A wildcard does not span ARN parts.
    assert!(!holds(
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*"}}"#,
        &with("aws:PrincipalArn", "arn:aws:iam:us:123456789012:user/alice")
    ));
    assert!(holds(
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/alice"}}"#,
        &ctx()
    ));
    let n = r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:dynamodb:*:*:table/Secret*"}}"#;
    assert!(holds(n, &ctx()));
    assert!(!holds(
        n,
        &with(
            "aws:SourceArn",
            "arn:aws:dynamodb:us-east-1:1:table/SecretX"
        )
    ));
    assert!(holds(
        n,
        &with("aws:SourceArn", "arn:aws:dynamodb:us-east-1:1:table/Open")
    ));
    assert!(holds(
        r#"{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:user/bob"}}"#,
        &ctx()
    ));
}

#[test]
fn null_operator() {
    let absent = r#"{"Null":{"aws:TokenIssueTime":"true"}}"#;
    let present = r#"{"Null":{"aws:TokenIssueTime":"false"}}"#;
    assert!(holds(absent, &ctx()));
    assert!(!holds(present, &ctx()));
    let t = with("aws:TokenIssueTime", "2026-01-01T00:00:00Z");
    assert!(!holds(absent, &t));
    assert!(holds(present, &t));
    // A multivalued key with no values is null.
    let empty = with_multi("dynamodb:Attributes", &[]);
    assert!(holds(r#"{"Null":{"dynamodb:Attributes":true}}"#, &empty));
    assert!(!holds(r#"{"Null":{"dynamodb:Attributes":false}}"#, &empty));
}

#[test]
fn if_exists_only_when_absent() {
    let c = r#"{"StringEqualsIfExists":{"dynamodb:Select":"SPECIFIC_ATTRIBUTES"}}"#;
    assert!(holds(c, &ctx()));
    assert!(holds(c, &with("dynamodb:Select", "SPECIFIC_ATTRIBUTES")));
    assert!(!holds(c, &with("dynamodb:Select", "ALL_ATTRIBUTES")));
    let n = r#"{"StringNotEqualsIfExists":{"dynamodb:Select":"ALL_ATTRIBUTES"}}"#;
    assert!(holds(n, &ctx()));
    assert!(!holds(n, &with("dynamodb:Select", "ALL_ATTRIBUTES")));
    assert!(holds(n, &with("dynamodb:Select", "COUNT")));
}

#[test]
fn for_all_values() {
    let c = r#"{"ForAllValues:StringEquals":{"dynamodb:Attributes":["UserId","TopScore"]}}"#;
    let attrs = |v: &[&str]| with_multi("dynamodb:Attributes", v);
    assert!(holds(c, &attrs(&["UserId"])));
    assert!(holds(c, &attrs(&["UserId", "TopScore"])));
    assert!(!holds(c, &attrs(&["UserId", "Secret"])));
    // Absent key and empty set: true.
    assert!(holds(c, &ctx()));
    assert!(holds(c, &attrs(&[])));
    // A single-valued key is a set of one.
    assert!(holds(c, &with("dynamodb:Attributes", "TopScore")));
    assert!(!holds(c, &with("dynamodb:Attributes", "Secret")));
    // Negated: every value must match none of the policy's values.
    let n = r#"{"ForAllValues:StringNotLike":{"dynamodb:Attributes":["Free*","Boss*"]}}"#;
    assert!(holds(n, &attrs(&["Wins", "Losses"])));
    assert!(!holds(n, &attrs(&["Wins", "FreeGamesAvailable"])));
    assert!(holds(n, &ctx()));
    assert!(holds(n, &attrs(&[])));
}

#[test]
fn for_any_value() {
    let c = r#"{"ForAnyValue:StringEquals":{"dynamodb:Attributes":["Secret","Salary"]}}"#;
    let attrs = |v: &[&str]| with_multi("dynamodb:Attributes", v);
    assert!(holds(c, &attrs(&["UserId", "Salary"])));
    assert!(!holds(c, &attrs(&["UserId", "TopScore"])));
    // Absent key and empty set: false.
    assert!(!holds(c, &ctx()));
    assert!(!holds(c, &attrs(&[])));
    // Negated: some value matches none of the policy's values.
    let n = r#"{"ForAnyValue:StringNotEquals":{"dynamodb:Attributes":["UserId","TopScore"]}}"#;
    assert!(holds(n, &attrs(&["UserId", "Secret"])));
    assert!(!holds(n, &attrs(&["UserId", "TopScore"])));
    assert!(!holds(n, &ctx()));
    assert!(!holds(n, &attrs(&[])));
}

#[test]
fn qualifiers_with_if_exists() {
    let any = r#"{"ForAnyValue:StringEqualsIfExists":{"dynamodb:Attributes":"a"}}"#;
    assert!(holds(any, &ctx()));
    // Present but empty: the key exists, so ForAnyValue decides.
    assert!(!holds(any, &with_multi("dynamodb:Attributes", &[])));
    let all = r#"{"ForAllValues:StringLikeIfExists":{"dynamodb:Attributes":"a*"}}"#;
    assert!(holds(all, &ctx()));
    assert!(!holds(
        all,
        &with_multi("dynamodb:Attributes", &["ab", "b"])
    ));
}

#[test]
fn plain_operator_on_a_multivalued_key() {
    let attrs = |v: &[&str]| with_multi("dynamodb:Attributes", v);
    let c = r#"{"StringEquals":{"dynamodb:Attributes":"Secret"}}"#;
    assert!(holds(c, &attrs(&["a", "Secret"])));
    assert!(!holds(c, &attrs(&["a", "b"])));
    assert!(!holds(c, &attrs(&[])));
    let n = r#"{"StringNotEquals":{"dynamodb:Attributes":"Secret"}}"#;
    assert!(!holds(n, &attrs(&["a", "Secret"])));
    assert!(holds(n, &attrs(&["a", "b"])));
}

#[test]
fn block_is_and_of_operators_and_keys() {
    let c = r#"{
        "StringEquals":{"dynamodb:Select":"SPECIFIC_ATTRIBUTES","aws:username":"alice"},
        "Bool":{"aws:SecureTransport":"true"}
    }"#;
    let full = ctx()
        .with("dynamodb:Select", "SPECIFIC_ATTRIBUTES")
        .with("aws:username", "alice")
        .with("aws:SecureTransport", "true");
    assert!(holds(c, &full));
    let mut no_tls = full.clone();
    no_tls.set("aws:SecureTransport", "false");
    assert!(!holds(c, &no_tls));
    let mut other_user = full.clone();
    other_user.set("aws:username", "bob");
    assert!(!holds(c, &other_user));
    let mut missing = full;
    assert!(missing.remove("AWS:USERNAME").is_some());
    assert!(!holds(c, &missing));
}

#[test]
fn condition_values_may_be_numbers_and_booleans() {
    assert!(holds(r#"{"StringEquals":{"k":5}}"#, &with("k", "5")));
    assert!(holds(r#"{"StringEquals":{"k":true}}"#, &with("k", "true")));
    assert!(holds(r#"{"StringEquals":{"k":[1,"x"]}}"#, &with("k", "x")));
}
