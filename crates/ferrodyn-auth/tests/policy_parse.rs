//! Grammar of policy documents: what parses, and the messages for what does not.

use ferrodyn_auth::policy::{PolicyDocument, PolicyKind, PolicyVersion};

fn identity(text: &str) -> Result<PolicyDocument, String> {
    PolicyDocument::parse(text, PolicyKind::Identity).map_err(|e| e.to_string())
}

fn resource(text: &str) -> Result<PolicyDocument, String> {
    PolicyDocument::parse(text, PolicyKind::Resource).map_err(|e| e.to_string())
}

fn err(result: Result<PolicyDocument, String>) -> String {
    match result {
        Ok(doc) => panic!("expected an error, parsed {doc:?}"),
        Err(e) => e,
    }
}

#[test]
fn minimal_documents_parse() {
    let doc = identity(
        r#"{"Version":"2012-10-17","Id":"p1","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}}"#,
    )
    .unwrap();
    assert_eq!(doc.version(), PolicyVersion::V2012_10_17);
    assert_eq!(doc.id(), Some("p1"));
    assert_eq!(doc.len(), 1);
    assert_eq!(doc.kind(), PolicyKind::Identity);

    let doc = identity(
        r#"{"Version":"2008-10-17","Statement":[
            {"Sid":"a","Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:Query"],"Resource":["arn:aws:dynamodb:*:*:table/T"]},
            {"Sid":"b","Effect":"Deny","NotAction":"dynamodb:Get*","NotResource":"arn:aws:dynamodb:*:*:table/T"}
        ]}"#,
    )
    .unwrap();
    assert_eq!(doc.version(), PolicyVersion::V2008_10_17);
    assert_eq!(doc.sids().collect::<Vec<_>>(), vec![Some("a"), Some("b")]);

    // Version defaults to 2008-10-17.
    let doc = identity(r#"{"Statement":[]}"#).unwrap();
    assert_eq!(doc.version(), PolicyVersion::V2008_10_17);
    assert!(doc.is_empty());
}

#[test]
fn resource_policies_parse() {
    let doc = resource(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":"*","Action":"dynamodb:GetItem","Resource":"*"},
            {"Effect":"Allow","Principal":{"AWS":"*"},"Action":"dynamodb:GetItem","Resource":"*"},
            {"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"dynamodb:GetItem","Resource":"*"},
            {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:root","arn:aws:iam::123456789012:user/alice"]},"Action":"dynamodb:GetItem","Resource":"*"},
            {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:role/admin"},"Action":"dynamodb:DeleteTable","Resource":"*"},
            {"Effect":"Allow","Principal":{"Service":"dynamodb.amazonaws.com"},"Action":"dynamodb:GetItem","Resource":"*"},
            {"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::123456789012:assumed-role/reader/session"},"Action":"dynamodb:GetItem","Resource":"*"}
        ]}"#,
    )
    .unwrap();
    assert_eq!(doc.len(), 7);
}

#[test]
fn top_level_errors() {
    assert!(err(identity("")).contains("not valid JSON"));
    assert!(err(identity("[]")).contains("must be a JSON object"));
    assert_eq!(
        err(identity(r#"{"Version":"2012-10-17"}"#)),
        "the policy has no Statement element"
    );
    assert_eq!(
        err(identity(
            r#"{"Version":"2012-10-17","Statement":[],"Extra":1}"#
        )),
        "unknown policy element 'Extra'"
    );
    assert_eq!(
        err(identity(r#"{"Version":"2020-01-01","Statement":[]}"#)),
        "Version '2020-01-01' is not supported (use 2012-10-17 or 2008-10-17)"
    );
    assert_eq!(
        err(identity(
            r#"{"Version":"2012-10-17","Version":"2012-10-17","Statement":[]}"#
        )),
        "element 'Version' appears twice in the policy"
    );
    assert!(err(identity(r#"{"Statement":"x"}"#)).starts_with("Statement must be"));
    assert!(err(identity(r#"{"Id":5,"Statement":[]}"#)).starts_with("Id must be a string"));
}

fn stmt_err(statement: &str) -> String {
    err(identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}},{statement}]}}"#
    )))
}

#[test]
fn statement_errors() {
    assert_eq!(
        stmt_err(r#"{"Action":"dynamodb:GetItem","Resource":"*"}"#),
        "Statement[1]: missing Effect"
    );
    assert_eq!(
        stmt_err(r#"{"Effect":"allow","Action":"dynamodb:GetItem","Resource":"*"}"#),
        "Statement[1]: Effect must be Allow or Deny, not 'allow'"
    );
    assert_eq!(
        stmt_err(
            r#"{"Effect":"Allow","Action":"dynamodb:GetItem","NotAction":"dynamodb:Query","Resource":"*"}"#
        ),
        "Statement[1]: a statement cannot have both Action and NotAction"
    );
    assert_eq!(
        stmt_err(
            r#"{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*","NotResource":"*"}"#
        ),
        "Statement[1]: a statement cannot have both Resource and NotResource"
    );
    assert_eq!(
        stmt_err(r#"{"Effect":"Allow","Resource":"*"}"#),
        "Statement[1]: missing Action or NotAction"
    );
    assert_eq!(
        stmt_err(r#"{"Effect":"Allow","Action":"dynamodb:GetItem"}"#),
        "Statement[1]: missing Resource or NotResource"
    );
    assert_eq!(
        stmt_err(
            r#"{"Effect":"Allow","Principal":"*","Action":"dynamodb:GetItem","Resource":"*"}"#
        ),
        "Statement[1]: Principal is not allowed in an identity-based policy"
    );
    assert_eq!(
        stmt_err(r#"{"Effect":"Allow","Actions":"dynamodb:GetItem","Resource":"*"}"#),
        "Statement[1]: unknown statement element 'Actions'"
    );
    assert_eq!(
        stmt_err(r#"{"Effect":"Allow","Action":"GetItem","Resource":"*"}"#),
        "Statement[1]: Action: 'GetItem' is not an action (expected service:Action or '*')"
    );
    assert_eq!(
        stmt_err(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#),
        "Statement[1]: Action: empty list"
    );
    assert_eq!(
        stmt_err(r#"{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"table/Books"}"#),
        "Statement[1]: Resource: 'table/Books' is not an ARN (expected arn:... or '*')"
    );
    assert_eq!(
        stmt_err(r#"{"Effect":"Allow","Action":["dynamodb:GetItem",3],"Resource":"*"}"#),
        "Statement[1]: Action: expected strings, found a number"
    );
    assert_eq!(
        stmt_err(
            r#"{"Sid":"x","Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"},{"Sid":"x","Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}"#
        ),
        "Statement[2]: Sid 'x' is not unique in the policy"
    );
    assert_eq!(
        stmt_err(
            r#"{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"arn:aws:dynamodb:*:*:table/${aws:username"}"#
        ),
        "Statement[1]: Resource: unterminated policy variable in '${aws:username'"
    );
}

#[test]
fn condition_errors() {
    let c = |cond: &str| {
        stmt_err(&format!(
            r#"{{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*","Condition":{cond}}}"#
        ))
    };
    assert_eq!(
        c(r#"{"StringEqualz":{"aws:username":"a"}}"#),
        "Statement[1]: unknown condition operator 'StringEqualz'"
    );
    assert_eq!(
        c(r#"{"ForSomeValues:StringEquals":{"aws:username":"a"}}"#),
        "Statement[1]: unknown set qualifier 'ForSomeValues' in condition operator 'ForSomeValues:StringEquals' (expected ForAllValues or ForAnyValue)"
    );
    assert_eq!(
        c(r#"{"NullIfExists":{"aws:username":"true"}}"#),
        "Statement[1]: condition operator 'NullIfExists': Null takes neither IfExists nor a set qualifier"
    );
    assert_eq!(
        c(r#"{"NumericLessThan":{"dynamodb:Count":"ten"}}"#),
        "Statement[1]: Condition.NumericLessThan.dynamodb:Count: 'ten' is not a number"
    );
    assert!(
        c(r#"{"DateLessThan":{"aws:CurrentTime":"yesterday"}}"#).starts_with(
            "Statement[1]: Condition.DateLessThan.aws:CurrentTime: 'yesterday' is not a date"
        )
    );
    assert_eq!(
        c(r#"{"Bool":{"aws:SecureTransport":"yes"}}"#),
        "Statement[1]: Condition.Bool.aws:SecureTransport: 'yes' is not true or false"
    );
    assert_eq!(
        c(r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}"#),
        "Statement[1]: Condition.IpAddress.aws:SourceIp: '10.0.0.0/33' is not an IP address or CIDR block"
    );
    assert_eq!(
        c(r#"{"BinaryEquals":{"k":"%%%"}}"#),
        "Statement[1]: Condition.BinaryEquals.k: '%%%' is not base64"
    );
    assert_eq!(
        c(r#"{"StringEquals":{"aws:username":[]}}"#),
        "Statement[1]: Condition.StringEquals.aws:username: empty list of condition values"
    );
    assert_eq!(
        c(r#"{"StringEquals":{"aws:username":{"a":1}}}"#),
        "Statement[1]: Condition.StringEquals.aws:username: a condition value must be a string, number or boolean, not an object"
    );
    assert_eq!(
        c(r#"{"StringEquals":"x"}"#),
        "Statement[1]: Condition.StringEquals must be an object of condition keys, not a string"
    );
    assert_eq!(
        c(r#"{"StringEquals":{"aws:username":"a","AWS:UserName":"b"}}"#),
        "Statement[1]: Condition.StringEquals: key 'AWS:UserName' appears twice"
    );
    assert_eq!(
        c(r#"{"StringEquals":{"aws:username":"a"},"StringEquals":{"aws:userid":"b"}}"#),
        "Statement[1]: Condition: operator 'StringEquals' appears twice"
    );
    assert_eq!(
        c(r#"{"StringEquals":{"aws:username":"${aws:userid, nope}"}}"#),
        "Statement[1]: Condition.StringEquals.aws:username: policy variable '${aws:userid, nope}': the default value must be in single quotes"
    );
    assert_eq!(
        c("[]"),
        "Statement[1]: Condition must be an object, not an array"
    );
}

#[test]
fn condition_values_of_every_json_scalar_parse() {
    identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
            "NumericLessThan":{"n":10},
            "NumericGreaterThanEquals":{"m":[1.5,"2"]},
            "Bool":{"aws:SecureTransport":true},
            "DateGreaterThan":{"aws:CurrentTime":["2020-01-01T00:00:00Z","2020-01-01",1577836800]},
            "IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32","192.0.2.1"]},
            "ForAnyValue:StringLikeIfExists":{"dynamodb:Attributes":"a*"},
            "ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/${aws:username}"},
            "Null":{"aws:TokenIssueTime":"true"},
            "BinaryEquals":{"k":"QmluYXJ5"},
            "stringequalsignorecase":{"k":"case-insensitive operator name"}
        }}}"#,
    )
    .unwrap();
}

#[test]
fn principal_errors() {
    let p = |principal: &str| {
        err(resource(&format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow",{principal}"Action":"dynamodb:GetItem","Resource":"*"}}}}"#
        )))
    };
    assert_eq!(
        p(""),
        "Statement[0]: a resource-based policy statement needs a Principal or NotPrincipal"
    );
    assert_eq!(
        p(r#""Principal":"*","NotPrincipal":"*","#),
        "Statement[0]: a statement cannot have both Principal and NotPrincipal"
    );
    assert_eq!(
        p(r#""Principal":{"AWS":"alice"},"#),
        "Statement[0]: Principal: 'alice' is not an AWS principal (expected \"*\", an account id or an IAM ARN)"
    );
    assert_eq!(
        p(r#""Principal":{"AWS":"arn:aws:iam::123456789012:user/*"},"#),
        "Statement[0]: Principal: 'arn:aws:iam::123456789012:user/*': wildcards are not allowed in a principal ARN"
    );
    assert_eq!(
        p(r#""Principal":{"Robot":"x"},"#),
        "Statement[0]: Principal: unknown principal type 'Robot'"
    );
    assert_eq!(
        p(r#""Principal":"alice","#),
        "Statement[0]: Principal: 'alice' is not a principal (use \"*\" or {\"AWS\": ...})"
    );
    assert_eq!(
        p(r#""Principal":{},"#),
        "Statement[0]: Principal: names no principal"
    );
}
