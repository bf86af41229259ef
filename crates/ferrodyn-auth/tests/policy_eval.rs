//! Evaluation: actions and resources, variables, deny over allow, resource policies and
//! principals, the AccessDenied messages, and the fine-grained access examples of the DynamoDB
//! Developer Guide ("Using IAM policy conditions for fine-grained access control") adapted to
//! `${aws:username}` / `${aws:userid}`.

use ferrodyn_auth::policy::{
    access_denied_message, evaluate, evaluate_detailed, Decision, Outcome, PolicyDocument,
    PolicyKind, RequestContext,
};

const ACCOUNT: &str = "123456789012";
const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
const GAME_SCORES: &str = "arn:aws:dynamodb:us-west-2:123456789012:table/GameScores";
const INDEX: &str =
    "arn:aws:dynamodb:us-west-2:123456789012:table/GameScores/index/TopScoreDateTimeIndex";

fn identity(text: &str) -> PolicyDocument {
    PolicyDocument::parse(text, PolicyKind::Identity).unwrap()
}

fn resource(text: &str) -> PolicyDocument {
    PolicyDocument::parse(text, PolicyKind::Resource).unwrap()
}

fn request(action: &str, resource: &str) -> RequestContext {
    RequestContext::new(action, resource, ALICE, ACCOUNT)
        .with("aws:username", "alice")
        .with("aws:userid", "AIDAALICE")
}

fn decide(policy: &PolicyDocument, ctx: &RequestContext) -> Decision {
    evaluate(&[policy], &[], ctx)
}

#[test]
fn no_policy_is_implicit_deny() {
    let ctx = request("dynamodb:GetItem", GAME_SCORES);
    assert_eq!(evaluate(&[], &[], &ctx), Decision::ImplicitDeny);
    assert!(!Decision::ImplicitDeny.is_allow());
    assert!(!Decision::ExplicitDeny.is_allow());
    assert!(Decision::Allow.is_allow());
}

#[test]
fn actions_are_case_insensitive_with_wildcards() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["DynamoDB:get*","dynamodb:?uery"],"Resource":"*"}}"#,
    );
    for action in ["dynamodb:GetItem", "dynamodb:getitem", "dynamodb:Query"] {
        assert_eq!(
            decide(&p, &request(action, GAME_SCORES)),
            Decision::Allow,
            "{action}"
        );
    }
    for action in ["dynamodb:PutItem", "dynamodb:BatchGetItem", "s3:GetObject"] {
        assert_eq!(
            decide(&p, &request(action, GAME_SCORES)),
            Decision::ImplicitDeny,
            "{action}"
        );
    }
    let all = identity(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#);
    assert_eq!(
        decide(&all, &request("s3:GetObject", "arn:aws:s3:::b/k")),
        Decision::Allow
    );
}

#[test]
fn resources_are_case_sensitive_arn_globs() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"arn:aws:dynamodb:us-west-2:123456789012:table/Game*"}}"#,
    );
    assert_eq!(
        decide(&p, &request("dynamodb:GetItem", GAME_SCORES)),
        Decision::Allow
    );
    // The pattern's last part also covers the table's indexes.
    assert_eq!(
        decide(&p, &request("dynamodb:Query", INDEX)),
        Decision::Allow
    );
    assert_eq!(
        decide(
            &p,
            &request(
                "dynamodb:GetItem",
                "arn:aws:dynamodb:us-west-2:123456789012:table/gamescores"
            )
        ),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(
            &p,
            &request(
                "dynamodb:GetItem",
                "arn:aws:dynamodb:us-east-1:123456789012:table/GameScores"
            )
        ),
        Decision::ImplicitDeny
    );
    let exact = identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"dynamodb:*","Resource":"{GAME_SCORES}"}}}}"#
    ));
    assert_eq!(
        decide(&exact, &request("dynamodb:Query", INDEX)),
        Decision::ImplicitDeny
    );
}

#[test]
fn not_action_and_not_resource() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","NotAction":["dynamodb:Delete*","dynamodb:Update*"],"Resource":"*"},
            {"Effect":"Allow","Action":"dynamodb:DeleteItem","NotResource":"arn:aws:dynamodb:*:*:table/GameScores*"}
        ]}"#,
    );
    assert_eq!(
        decide(&p, &request("dynamodb:GetItem", GAME_SCORES)),
        Decision::Allow
    );
    assert_eq!(
        decide(&p, &request("dynamodb:UpdateItem", GAME_SCORES)),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&p, &request("dynamodb:DeleteItem", GAME_SCORES)),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(
            &p,
            &request(
                "dynamodb:DeleteItem",
                "arn:aws:dynamodb:us-west-2:123456789012:table/Scratch"
            )
        ),
        Decision::Allow
    );
}

#[test]
fn explicit_deny_overrides_allow() {
    let allow =
        identity(r#"{"Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}}"#);
    let deny = identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"dynamodb:DeleteTable","Resource":"*"}}"#,
    );
    let ctx = request("dynamodb:DeleteTable", GAME_SCORES);
    assert_eq!(
        evaluate(&[&allow, &deny], &[], &ctx),
        Decision::ExplicitDeny
    );
    assert_eq!(
        evaluate(&[&deny, &allow], &[], &ctx),
        Decision::ExplicitDeny
    );
    assert_eq!(evaluate(&[&deny], &[], &ctx), Decision::ExplicitDeny);
    assert_eq!(
        evaluate(
            &[&allow, &deny],
            &[],
            &request("dynamodb:GetItem", GAME_SCORES)
        ),
        Decision::Allow
    );
    // Deny in the same policy as the allow.
    let both = identity(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"dynamodb:*","Resource":"*"},
            {"Effect":"Deny","Action":"dynamodb:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}
        ]}"#,
    );
    let plain = request("dynamodb:GetItem", GAME_SCORES).with("aws:SecureTransport", "false");
    assert_eq!(decide(&both, &plain), Decision::ExplicitDeny);
    let tls = request("dynamodb:GetItem", GAME_SCORES).with("aws:SecureTransport", "true");
    assert_eq!(decide(&both, &tls), Decision::Allow);
}

#[test]
fn variables_in_resources() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"arn:aws:dynamodb:*:*:table/${aws:username}-*"}}"#,
    );
    let own = "arn:aws:dynamodb:us-west-2:123456789012:table/alice-notes";
    let other = "arn:aws:dynamodb:us-west-2:123456789012:table/bob-notes";
    assert_eq!(
        decide(&p, &request("dynamodb:PutItem", own)),
        Decision::Allow
    );
    assert_eq!(
        decide(&p, &request("dynamodb:PutItem", other)),
        Decision::ImplicitDeny
    );
    // Without aws:username (a role, say) the statement is not applicable at all.
    let mut role = request("dynamodb:PutItem", own);
    role.remove("aws:username");
    assert_eq!(decide(&p, &role), Decision::ImplicitDeny);
    // In a 2008-10-17 document the text is literal.
    let old = identity(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"arn:aws:dynamodb:*:*:table/${aws:username}-*"}}"#,
    );
    assert_eq!(
        decide(&old, &request("dynamodb:PutItem", own)),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(
            &old,
            &request(
                "dynamodb:PutItem",
                "arn:aws:dynamodb:us-west-2:123456789012:table/${aws:username}-x"
            )
        ),
        Decision::Allow
    );
}

#[test]
fn variable_defaults() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"arn:aws:dynamodb:*:*:table/${aws:username, 'shared'}"}}"#,
    );
    let shared = "arn:aws:dynamodb:us-west-2:123456789012:table/shared";
    let own = "arn:aws:dynamodb:us-west-2:123456789012:table/alice";
    assert_eq!(
        decide(&p, &request("dynamodb:GetItem", own)),
        Decision::Allow
    );
    assert_eq!(
        decide(&p, &request("dynamodb:GetItem", shared)),
        Decision::ImplicitDeny
    );
    let mut anonymous = request("dynamodb:GetItem", shared);
    anonymous.remove("aws:username");
    assert_eq!(decide(&p, &anonymous), Decision::Allow);
}

#[test]
fn unresolvable_variable_makes_a_deny_inapplicable_too() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"dynamodb:*","Resource":"*"},
            {"Effect":"Deny","Action":"dynamodb:*","Resource":"*","Condition":{"StringNotEquals":{"dynamodb:LeadingKeys":"${aws:PrincipalTag/team}"}}}
        ]}"#,
    );
    let ctx = request("dynamodb:GetItem", GAME_SCORES).with_multi("dynamodb:LeadingKeys", ["x"]);
    assert_eq!(decide(&p, &ctx), Decision::Allow);
    let tagged = ctx.clone().with("aws:PrincipalTag/team", "red");
    assert_eq!(decide(&p, &tagged), Decision::ExplicitDeny);
    let own = tagged.with_multi("dynamodb:LeadingKeys", ["red"]);
    assert_eq!(decide(&p, &own), Decision::Allow);
}

/// Example 1: items whose partition key is the caller's own id.
#[test]
fn example_leading_keys() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[{
            "Sid":"FullAccessToUserItems","Effect":"Allow",
            "Action":["dynamodb:GetItem","dynamodb:BatchGetItem","dynamodb:Query","dynamodb:PutItem",
                      "dynamodb:UpdateItem","dynamodb:DeleteItem","dynamodb:BatchWriteItem"],
            "Resource":["arn:aws:dynamodb:us-west-2:123456789012:table/GameScores"],
            "Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":["${aws:userid}"]}}
        }]}"#,
    );
    let keys = |ks: &[&str]| {
        request("dynamodb:GetItem", GAME_SCORES).with_multi("dynamodb:LeadingKeys", ks.to_vec())
    };
    assert_eq!(decide(&p, &keys(&["AIDAALICE"])), Decision::Allow);
    assert_eq!(decide(&p, &keys(&["AIDABOB"])), Decision::ImplicitDeny);
    // BatchGetItem on own and foreign items: every key must be the caller's.
    let mut batch = keys(&["AIDAALICE", "AIDABOB"]);
    batch.action = "dynamodb:BatchGetItem".into();
    assert_eq!(decide(&p, &batch), Decision::ImplicitDeny);
    let mut batch_own = keys(&["AIDAALICE", "AIDAALICE"]);
    batch_own.action = "dynamodb:BatchGetItem".into();
    assert_eq!(decide(&p, &batch_own), Decision::Allow);
    // Scan is not in the list.
    let mut scan = keys(&["AIDAALICE"]);
    scan.action = "dynamodb:Scan".into();
    assert_eq!(decide(&p, &scan), Decision::ImplicitDeny);
    // Without aws:userid the variable cannot be resolved: no access.
    let mut anonymous = keys(&["AIDAALICE"]);
    anonymous.remove("aws:userid");
    assert_eq!(decide(&p, &anonymous), Decision::ImplicitDeny);
}

/// Example 2: an allow-list of attributes, Select and ReturnValues constrained if present.
#[test]
fn example_specific_attributes() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[{
            "Sid":"LimitAccessToSpecificAttributes","Effect":"Allow",
            "Action":["dynamodb:UpdateItem","dynamodb:GetItem","dynamodb:Query","dynamodb:BatchGetItem","dynamodb:Scan"],
            "Resource":["arn:aws:dynamodb:us-west-2:123456789012:table/GameScores"],
            "Condition":{
                "ForAllValues:StringEquals":{"dynamodb:Attributes":["UserId","TopScore"]},
                "StringEqualsIfExists":{"dynamodb:Select":"SPECIFIC_ATTRIBUTES",
                                        "dynamodb:ReturnValues":["NONE","UPDATED_OLD","UPDATED_NEW"]}
            }
        }]}"#,
    );
    let query = |attrs: &[&str], select: &str| {
        request("dynamodb:Query", GAME_SCORES)
            .with_multi("dynamodb:Attributes", attrs.to_vec())
            .with("dynamodb:Select", select)
    };
    assert_eq!(
        decide(&p, &query(&["UserId", "TopScore"], "SPECIFIC_ATTRIBUTES")),
        Decision::Allow
    );
    assert_eq!(
        decide(&p, &query(&["UserId", "Wins"], "SPECIFIC_ATTRIBUTES")),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&p, &query(&["UserId"], "ALL_ATTRIBUTES")),
        Decision::ImplicitDeny
    );
    let update = |rv: &str| {
        request("dynamodb:UpdateItem", GAME_SCORES)
            .with_multi("dynamodb:Attributes", ["UserId", "TopScore"])
            .with("dynamodb:ReturnValues", rv)
    };
    assert_eq!(decide(&p, &update("UPDATED_NEW")), Decision::Allow);
    assert_eq!(decide(&p, &update("ALL_OLD")), Decision::ImplicitDeny);
    // PutItem replaces whole items: not granted.
    let put = request("dynamodb:PutItem", GAME_SCORES)
        .with_multi("dynamodb:Attributes", ["UserId", "TopScore"]);
    assert_eq!(decide(&p, &put), Decision::ImplicitDeny);
}

/// Example 3: updates that must not touch certain attributes.
#[test]
fn example_prevent_updates_on_certain_attributes() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[{
            "Sid":"PreventUpdatesOnCertainAttributes","Effect":"Allow",
            "Action":["dynamodb:UpdateItem"],
            "Resource":"arn:aws:dynamodb:us-west-2:123456789012:table/GameScores",
            "Condition":{
                "ForAllValues:StringNotLike":{"dynamodb:Attributes":["FreeGamesAvailable","BossLevelUnlocked"]},
                "StringEquals":{"dynamodb:ReturnValues":["NONE","UPDATED_OLD","UPDATED_NEW"]}
            }
        }]}"#,
    );
    let update = |attrs: &[&str], rv: Option<&str>| {
        let mut c = request("dynamodb:UpdateItem", GAME_SCORES)
            .with_multi("dynamodb:Attributes", attrs.to_vec());
        if let Some(rv) = rv {
            c.set("dynamodb:ReturnValues", rv);
        }
        c
    };
    assert_eq!(
        decide(&p, &update(&["Wins", "Losses"], Some("NONE"))),
        Decision::Allow
    );
    assert_eq!(
        decide(&p, &update(&["Wins", "BossLevelUnlocked"], Some("NONE"))),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&p, &update(&["Wins"], Some("ALL_NEW"))),
        Decision::ImplicitDeny
    );
    // ReturnValues is required here (plain StringEquals): absent means no access.
    assert_eq!(decide(&p, &update(&["Wins"], None)), Decision::ImplicitDeny);
}

/// Example 4: queries on an index limited to its projected attributes.
#[test]
fn example_index_projected_attributes() {
    let specific = identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{
            "Sid":"QueryOnlyProjectedIndexAttributes","Effect":"Allow","Action":["dynamodb:Query"],
            "Resource":["{INDEX}"],
            "Condition":{{
                "ForAllValues:StringEquals":{{"dynamodb:Attributes":["TopScoreDateTime","GameTitle","Wins","Losses","Attempts"]}},
                "StringEquals":{{"dynamodb:Select":"SPECIFIC_ATTRIBUTES"}}
            }}
        }}]}}"#
    ));
    let q = |res: &str, attrs: &[&str], select: &str| {
        request("dynamodb:Query", res)
            .with_multi("dynamodb:Attributes", attrs.to_vec())
            .with("dynamodb:Select", select)
    };
    assert_eq!(
        decide(
            &specific,
            &q(INDEX, &["Wins", "Losses"], "SPECIFIC_ATTRIBUTES")
        ),
        Decision::Allow
    );
    assert_eq!(
        decide(
            &specific,
            &q(INDEX, &["Wins", "UserId"], "SPECIFIC_ATTRIBUTES")
        ),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&specific, &q(INDEX, &["Wins"], "ALL_PROJECTED_ATTRIBUTES")),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&specific, &q(GAME_SCORES, &["Wins"], "SPECIFIC_ATTRIBUTES")),
        Decision::ImplicitDeny
    );
    let all_projected = identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{
            "Sid":"QueryAllIndexAttributes","Effect":"Allow","Action":["dynamodb:Query"],
            "Resource":["{INDEX}"],
            "Condition":{{"StringEquals":{{"dynamodb:Select":"ALL_PROJECTED_ATTRIBUTES"}}}}
        }}]}}"#
    ));
    assert_eq!(
        decide(&all_projected, &q(INDEX, &[], "ALL_PROJECTED_ATTRIBUTES")),
        Decision::Allow
    );
    assert_eq!(
        decide(&all_projected, &q(INDEX, &[], "ALL_ATTRIBUTES")),
        Decision::ImplicitDeny
    );
}

/// Example 5: attribute allow-list and own partition key, on a table and its index.
#[test]
fn example_attributes_and_leading_keys() {
    let p = identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{
            "Sid":"LimitAccessToCertainAttributesAndKeyValues","Effect":"Allow",
            "Action":["dynamodb:UpdateItem","dynamodb:GetItem","dynamodb:Query","dynamodb:BatchGetItem"],
            "Resource":["{GAME_SCORES}","{INDEX}"],
            "Condition":{{
                "ForAllValues:StringEquals":{{"dynamodb:LeadingKeys":["${{aws:username}}"],
                                             "dynamodb:Attributes":["attribute-A","attribute-B"]}},
                "StringEqualsIfExists":{{"dynamodb:Select":"SPECIFIC_ATTRIBUTES",
                                        "dynamodb:ReturnValues":["NONE","UPDATED_OLD","UPDATED_NEW"]}}
            }}
        }}]}}"#
    ));
    let get = |res: &str, key: &str, attrs: &[&str]| {
        request("dynamodb:GetItem", res)
            .with_multi("dynamodb:LeadingKeys", [key])
            .with_multi("dynamodb:Attributes", attrs.to_vec())
            .with("dynamodb:Select", "SPECIFIC_ATTRIBUTES")
    };
    assert_eq!(
        decide(&p, &get(GAME_SCORES, "alice", &["attribute-A"])),
        Decision::Allow
    );
    assert_eq!(
        decide(&p, &get(INDEX, "alice", &["attribute-B"])),
        Decision::Allow
    );
    assert_eq!(
        decide(&p, &get(GAME_SCORES, "bob", &["attribute-A"])),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&p, &get(GAME_SCORES, "alice", &["attribute-C"])),
        Decision::ImplicitDeny
    );
    let mut all = get(GAME_SCORES, "alice", &["attribute-A"]);
    all.set("dynamodb:Select", "ALL_ATTRIBUTES");
    assert_eq!(decide(&p, &all), Decision::ImplicitDeny);
    let mut write = get(GAME_SCORES, "alice", &["attribute-A"]);
    write.action = "dynamodb:UpdateItem".into();
    write.remove("dynamodb:Select");
    write.set("dynamodb:ReturnValues", "ALL_NEW");
    assert_eq!(decide(&p, &write), Decision::ImplicitDeny);
    write.set("dynamodb:ReturnValues", "UPDATED_OLD");
    assert_eq!(decide(&p, &write), Decision::Allow);
}

/// ReturnConsumedCapacity, as a deny for a caller who must not see capacity figures.
#[test]
fn return_consumed_capacity_deny() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"dynamodb:*","Resource":"*"},
            {"Effect":"Deny","Action":"dynamodb:*","Resource":"*",
             "Condition":{"StringEquals":{"dynamodb:ReturnConsumedCapacity":["TOTAL","INDEXES"]}}}
        ]}"#,
    );
    let ctx = request("dynamodb:GetItem", GAME_SCORES);
    assert_eq!(decide(&p, &ctx), Decision::Allow);
    let none = ctx.clone().with("dynamodb:ReturnConsumedCapacity", "NONE");
    assert_eq!(decide(&p, &none), Decision::Allow);
    let total = ctx.clone().with("dynamodb:ReturnConsumedCapacity", "TOTAL");
    assert_eq!(decide(&p, &total), Decision::ExplicitDeny);
    // The negated IfExists form denies when the key is absent too (IfExists holds then).
    let strict = identity(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"dynamodb:*","Resource":"*"},
            {"Effect":"Deny","Action":"dynamodb:*","Resource":"*",
             "Condition":{"StringNotEqualsIfExists":{"dynamodb:ReturnConsumedCapacity":"NONE"}}}
        ]}"#,
    );
    assert_eq!(decide(&strict, &ctx), Decision::ExplicitDeny);
    assert_eq!(decide(&strict, &none), Decision::Allow);
    assert_eq!(decide(&strict, &total), Decision::ExplicitDeny);
}

#[test]
fn resource_policy_naming_the_caller_allows_without_identity_policy() {
    let rp = resource(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"1111","Effect":"Allow",
            "Principal":{{"AWS":["{ALICE}","arn:aws:iam::123456789012:user/Jane"]}},
            "Action":["dynamodb:GetItem","dynamodb:BatchGetItem"],
            "Resource":["{GAME_SCORES}"]}}]}}"#
    ));
    let ctx = request("dynamodb:GetItem", GAME_SCORES);
    assert_eq!(evaluate(&[], &[&rp], &ctx), Decision::Allow);
    assert_eq!(
        evaluate(&[], &[&rp], &request("dynamodb:PutItem", GAME_SCORES)),
        Decision::ImplicitDeny
    );
    let bob = RequestContext::new(
        "dynamodb:GetItem",
        GAME_SCORES,
        "arn:aws:iam::123456789012:user/bob",
        ACCOUNT,
    );
    assert_eq!(evaluate(&[], &[&rp], &bob), Decision::ImplicitDeny);
}

#[test]
fn resource_policy_naming_the_account_delegates() {
    for principal in [r#""123456789012""#, r#""arn:aws:iam::123456789012:root""#] {
        let rp = resource(&format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Principal":{{"AWS":{principal}}},"Action":"dynamodb:*","Resource":"*"}}}}"#
        ));
        let ctx = request("dynamodb:GetItem", GAME_SCORES);
        // Same account: the account principal grants nothing by itself...
        assert_eq!(evaluate(&[], &[&rp], &ctx), Decision::ImplicitDeny);
        // ...but the account's root is the account itself.
        let root = RequestContext::new(
            "dynamodb:GetItem",
            GAME_SCORES,
            "arn:aws:iam::123456789012:root",
            ACCOUNT,
        );
        assert_eq!(evaluate(&[], &[&rp], &root), Decision::Allow);
    }
}

#[test]
fn anyone_principal() {
    let rp = resource(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"dynamodb:GetItem","Resource":"*"}}"#,
    );
    assert_eq!(
        evaluate(&[], &[&rp], &request("dynamodb:GetItem", GAME_SCORES)),
        Decision::Allow
    );
    let rp = resource(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"dynamodb:GetItem","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalAccount":"123456789012"}}}}"#,
    );
    assert_eq!(
        evaluate(&[], &[&rp], &request("dynamodb:GetItem", GAME_SCORES)),
        Decision::Allow
    );
    let stranger = RequestContext::new(
        "dynamodb:GetItem",
        GAME_SCORES,
        "arn:aws:iam::999999999999:user/eve",
        "999999999999",
    );
    assert_eq!(evaluate(&[], &[&rp], &stranger), Decision::ImplicitDeny);
}

#[test]
fn resource_policy_deny_wins_and_is_reported() {
    let allow =
        identity(r#"{"Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}}"#);
    let rp = resource(&format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Deny","Principal":{{"AWS":"{ALICE}"}},"Action":"dynamodb:DeleteItem","Resource":"*"}}}}"#
    ));
    let ctx = request("dynamodb:DeleteItem", GAME_SCORES);
    let out = evaluate_detailed(&[&allow], &[&rp], &ctx);
    assert_eq!(
        out,
        Outcome {
            decision: Decision::ExplicitDeny,
            policy_kind: Some(PolicyKind::Resource)
        }
    );
    assert_eq!(
        access_denied_message(&out, &ctx).unwrap(),
        "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: dynamodb:DeleteItem on resource: arn:aws:dynamodb:us-west-2:123456789012:table/GameScores with an explicit deny in a resource-based policy"
    );
    // A deny naming the account covers every principal of it.
    let acct = resource(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":{"AWS":"123456789012"},"Action":"dynamodb:DeleteItem","Resource":"*"}}"#,
    );
    assert_eq!(evaluate(&[&allow], &[&acct], &ctx), Decision::ExplicitDeny);
    // A deny naming someone else does not.
    let other = resource(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"dynamodb:DeleteItem","Resource":"*"}}"#,
    );
    assert_eq!(evaluate(&[&allow], &[&other], &ctx), Decision::Allow);
}

#[test]
fn not_principal() {
    let allow =
        identity(r#"{"Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}}"#);
    let rp = resource(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::123456789012:user/admin","123456789012"]},"Action":"dynamodb:DeleteTable","Resource":"*"}}"#,
    );
    let ctx = request("dynamodb:DeleteTable", GAME_SCORES);
    // Alice's account is listed, so the deny does not reach her.
    assert_eq!(evaluate(&[&allow], &[&rp], &ctx), Decision::Allow);
    let rp_user_only = resource(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:user/admin"},"Action":"dynamodb:DeleteTable","Resource":"*"}}"#,
    );
    assert_eq!(
        evaluate(&[&allow], &[&rp_user_only], &ctx),
        Decision::ExplicitDeny
    );
}

#[test]
fn cross_account_needs_both_policies() {
    let foreign = "arn:aws:dynamodb:us-west-2:210987654321:table/Shared";
    let idp =
        identity(r#"{"Statement":{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}}"#);
    let rp_account = resource(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"dynamodb:GetItem","Resource":"*"}}"#,
    );
    let ctx = request("dynamodb:GetItem", foreign);
    assert_eq!(evaluate(&[&idp], &[], &ctx), Decision::ImplicitDeny);
    let out = evaluate_detailed(&[&idp], &[], &ctx);
    assert_eq!(out.policy_kind, Some(PolicyKind::Resource));
    assert_eq!(evaluate(&[], &[&rp_account], &ctx), Decision::ImplicitDeny);
    assert_eq!(
        evaluate_detailed(&[], &[&rp_account], &ctx).policy_kind,
        Some(PolicyKind::Identity)
    );
    assert_eq!(evaluate(&[&idp], &[&rp_account], &ctx), Decision::Allow);
}

#[test]
fn identity_policies_ignore_resource_kind_documents_and_vice_versa() {
    // A resource policy passed among identity policies has principals and is skipped there.
    let rp = resource(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}"#,
    );
    let idp = identity(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#);
    let ctx = request("dynamodb:GetItem", GAME_SCORES);
    assert_eq!(evaluate(&[&rp], &[], &ctx), Decision::ImplicitDeny);
    assert_eq!(evaluate(&[], &[&idp], &ctx), Decision::ImplicitDeny);
}

#[test]
fn messages() {
    let ctx = RequestContext::new(
        "dynamodb:PutItem",
        "arn:aws:dynamodb:us-east-1:000000000000:table/T",
        "arn:aws:iam::000000000000:user/reporting",
        "000000000000",
    );
    let implicit = evaluate_detailed(&[], &[], &ctx);
    assert_eq!(
        access_denied_message(&implicit, &ctx).unwrap(),
        "User: arn:aws:iam::000000000000:user/reporting is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/T because no identity-based policy allows the dynamodb:PutItem action"
    );
    let deny =
        identity(r#"{"Statement":{"Effect":"Deny","Action":"dynamodb:PutItem","Resource":"*"}}"#);
    let explicit = evaluate_detailed(&[&deny], &[], &ctx);
    assert_eq!(
        access_denied_message(&explicit, &ctx).unwrap(),
        "User: arn:aws:iam::000000000000:user/reporting is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/T with an explicit deny in an identity-based policy"
    );
    let allow = identity(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#);
    let ok = evaluate_detailed(&[&allow], &[], &ctx);
    assert_eq!(ok.decision, Decision::Allow);
    assert_eq!(access_denied_message(&ok, &ctx), None);
    // Cross-account, identity allows but the table's policy does not.
    let foreign = RequestContext::new(
        "dynamodb:GetItem",
        "arn:aws:dynamodb:us-east-1:111111111111:table/T",
        "arn:aws:iam::000000000000:user/reporting",
        "000000000000",
    );
    let out = evaluate_detailed(&[&allow], &[], &foreign);
    assert_eq!(
        access_denied_message(&out, &foreign).unwrap(),
        "User: arn:aws:iam::000000000000:user/reporting is not authorized to perform: dynamodb:GetItem on resource: arn:aws:dynamodb:us-east-1:111111111111:table/T because no resource-based policy allows the dynamodb:GetItem action"
    );
}

#[test]
fn documents_say_whether_they_read_condition_keys() {
    let parse = |t: &str, k| PolicyDocument::parse(t, k).unwrap().reads_context_keys();
    assert!(!parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"arn:aws:dynamodb:*:*:table/T*"}]}"#,
        PolicyKind::Identity
    ));
    assert!(parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#,
        PolicyKind::Identity
    ));
    assert!(parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"arn:aws:dynamodb:*:*:table/${aws:username}"}]}"#,
        PolicyKind::Identity
    ));
    // In a 2008-10-17 document `${...}` is text, not a variable.
    assert!(!parse(
        r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"arn:aws:dynamodb:*:*:table/${aws:username}"}]}"#,
        PolicyKind::Identity
    ));
}
