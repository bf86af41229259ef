//! Authentication and authorization against a real server: SigV4 errors with DynamoDB's exact
//! bodies, IAM identity- and resource-based policies (fine-grained conditions included), presigned
//! requests, session tokens, key reloads under load, and the `ferrodyn keys` command line.

mod auth_support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_support::*;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue as AV, KeysAndAttributes, Put, PutRequest, TransactWriteItem, WriteRequest,
};
use ferrodyn_auth::keys::{KeySource, KeyStore};
use ferrodyn_core::EngineConfig;
use ferrodyn_server::auth::AuthMode;
use ferrodyn_server::ServerOptions;
use ferrodyn_storage::{Durability, MemoryStorage};
use ferrodyn_testkit::{RawResponse, ServerProcess, TestServer};
use serde_json::{json, Value};

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the \
signature you provided. Check your AWS Secret Access Key and signing method. Consult the service \
documentation for details.";

fn admin() -> Cred {
    Cred::new("AKIDADMIN", "admin-secret")
}

fn admin_entry() -> Value {
    key_entry("admin", &admin(), Some(allow(&["dynamodb:*"], "*")))
}

/// A server on memory storage that enforces the keys of a key file.
struct Enforced {
    dir: tempfile::TempDir,
    store: Arc<KeyStore>,
    server: TestServer,
}

impl Enforced {
    fn start(keys: &[Value]) -> Enforced {
        let dir = tempfile::tempdir().unwrap();
        let path = keys_path(dir.path());
        write_keys(&path, keys);
        let store = Arc::new(
            KeyStore::open(vec![KeySource {
                path,
                required: true,
            }])
            .unwrap(),
        );
        let config = EngineConfig {
            durability: Durability::Buffered,
            ..EngineConfig::default()
        };
        let server = TestServer::with_options(
            Arc::new(MemoryStorage::new()),
            config,
            ServerOptions {
                auth: AuthMode::Enforced(store.clone()),
                tls: None,
                ..ServerOptions::default()
            },
        );
        Enforced { dir, store, server }
    }

    fn url(&self) -> &str {
        &self.server.url
    }

    fn keys_file(&self) -> std::path::PathBuf {
        keys_path(self.dir.path())
    }

    fn sdk(&self, cred: &Cred) -> aws_sdk_dynamodb::Client {
        self.server
            .client_as(&cred.akid, &cred.secret, cred.token.as_deref())
    }

    /// Runs `op` as `cred`; asserts success and returns the response.
    async fn ok(&self, cred: &Cred, op: &str, body: Value) -> Value {
        let r = call(self.url(), cred, op, &body).await;
        assert_eq!(r.status, 200, "{op} as {}: {}", cred.akid, r.body);
        r.json()
    }

    /// Table `Tbl` (pk S, sk N) with a stream, and two items of partition `alice` and one of `bob`.
    async fn with_table(self) -> Enforced {
        self.ok(
            &admin(),
            "CreateTable",
            json!({"TableName": "Tbl",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                         {"AttributeName": "sk", "AttributeType": "N"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                              {"AttributeName": "sk", "KeyType": "RANGE"}],
                "BillingMode": "PAY_PER_REQUEST",
                "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"}}),
        )
        .await;
        for (pk, sk) in [("alice", "1"), ("alice", "2"), ("bob", "1")] {
            self.ok(
                &admin(),
                "PutItem",
                json!({"TableName": "Tbl", "Item": {"pk": {"S": pk}, "sk": {"N": sk},
                       "name": {"S": format!("{pk}-{sk}")}, "secret": {"S": "hidden"}}}),
            )
            .await;
        }
        self
    }

    async fn count(&self) -> u64 {
        self.ok(
            &admin(),
            "Scan",
            json!({"TableName": "Tbl", "Select": "COUNT"}),
        )
        .await["Count"]
            .as_u64()
            .unwrap()
    }
}

fn assert_error(r: &RawResponse, ty: &str, message: &str) {
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["__type"], ty, "{}", r.body);
    assert_eq!(r.message(), message, "{}", r.body);
}

fn assert_denied(r: &RawResponse, message: &str) {
    assert_error(r, "com.amazon.coral.service#AccessDeniedException", message);
}

fn key(pk: &str, sk: &str) -> std::collections::HashMap<String, AV> {
    [
        ("pk".to_string(), AV::S(pk.into())),
        ("sk".to_string(), AV::N(sk.into())),
    ]
    .into()
}

fn get_body(pk: &str, sk: &str) -> Value {
    json!({"TableName": "Tbl", "Key": {"pk": {"S": pk}, "sk": {"N": sk}}})
}

fn put_body(pk: &str, sk: &str) -> Value {
    json!({"TableName": "Tbl", "Item": {"pk": {"S": pk}, "sk": {"N": sk}}})
}

fn query_body(pk: &str) -> Value {
    json!({"TableName": "Tbl", "KeyConditionExpression": "pk = :p",
           "ExpressionAttributeValues": {":p": {"S": pk}}})
}

// ---- 1. SigV4 errors, exact bodies ---------------------------------------------------------

#[tokio::test]
async fn signature_errors_carry_dynamodb_types_and_messages() {
    let e = Enforced::start(&[admin_entry()]);
    let client = reqwest::Client::new();
    let body = "{}";
    let list = dynamodb("ListTables");

    // No Authorization header at all.
    let mut unsigned = signed(e.url(), &list, body, &Signing::now(&admin()));
    unsigned
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
    let r = send(&client, &unsigned).await.unwrap();
    assert_error(
        &r,
        "com.amazon.coral.service#MissingAuthenticationTokenException",
        "Request is missing Authentication Token",
    );

    // A correctly signed request from a key the server does not know.
    let stranger = Cred::new("AKIDSTRANGER", "whatever");
    let r = send(
        &client,
        &signed(e.url(), &list, body, &Signing::now(&stranger)),
    )
    .await
    .unwrap();
    assert_error(
        &r,
        "com.amazon.coral.service#UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );

    // A known key signed with the wrong secret.
    let wrong = Cred::new("AKIDADMIN", "not-the-secret");
    let r = send(
        &client,
        &signed(e.url(), &list, body, &Signing::now(&wrong)),
    )
    .await
    .unwrap();
    assert_error(
        &r,
        "com.amazon.coral.service#InvalidSignatureException",
        SIGNATURE_MISMATCH,
    );

    // Signed (correctly) long ago: X-Amz-Date 20170101T010101Z.
    let old = UNIX_EPOCH + Duration::from_secs(1_483_232_461);
    let req = signed(
        e.url(),
        &list,
        body,
        &Signing {
            time: old,
            ..Signing::now(&admin())
        },
    );
    assert!(req
        .headers
        .iter()
        .any(|(n, v)| n == "x-amz-date" && v == "20170101T010101Z"));
    let before = whole_seconds(SystemTime::now());
    let r = send(&client, &req).await.unwrap();
    let after = SystemTime::now();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["__type"],
        "com.amazon.coral.service#InvalidSignatureException"
    );
    let expired_at = |now: SystemTime| {
        format!(
            "Signature expired: 20170101T010101Z is now earlier than {} ({} - 15 min.)",
            iso_basic(now - Duration::from_secs(900)),
            iso_basic(now)
        )
    };
    assert!(
        seconds_between(before, after).any(|t| r.message() == expired_at(t)),
        "{}",
        r.body
    );

    // Signed an hour in the future.
    let later = whole_seconds(SystemTime::now()) + Duration::from_secs(3600);
    let req = signed(
        e.url(),
        &list,
        body,
        &Signing {
            time: later,
            ..Signing::now(&admin())
        },
    );
    let before = whole_seconds(SystemTime::now());
    let r = send(&client, &req).await.unwrap();
    let after = SystemTime::now();
    assert_eq!(
        r.json()["__type"],
        "com.amazon.coral.service#InvalidSignatureException"
    );
    let not_yet = |now: SystemTime| {
        format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            iso_basic(later),
            iso_basic(now + Duration::from_secs(900)),
            iso_basic(now)
        )
    };
    assert!(
        seconds_between(before, after).any(|t| r.message() == not_yet(t)),
        "{}",
        r.body
    );
    assert_eq!(r.status, 400);

    // Malformed Authorization headers.
    let date = iso_basic(SystemTime::now());
    let credential = format!("AKIDADMIN/{}/us-east-1/dynamodb/aws4_request", &date[..8]);
    for (header, message) in [
        (
            format!("AWS4-HMAC-SHA256 Credential={credential}"),
            format!(
                "Authorization header requires 'Signature' parameter. Authorization header \
                 requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 \
                 Credential={credential}"
            ),
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders, Signature=abc"),
            format!(
                "'SignedHeaders' not a valid key=value pair (missing equal-sign) in \
                 Authorization header: 'AWS4-HMAC-SHA256 Credential={credential}, \
                 SignedHeaders, Signature=abc'."
            ),
        ),
    ] {
        let req = Signed {
            url: format!("{}/", e.url()),
            headers: vec![
                ("content-type".into(), "application/x-amz-json-1.0".into()),
                ("x-amz-target".into(), list.clone()),
                ("x-amz-date".into(), date.clone()),
                ("authorization".into(), header),
            ],
            body: body.into(),
        };
        let r = send(&client, &req).await.unwrap();
        assert_error(
            &r,
            "com.amazon.coral.service#IncompleteSignatureException",
            &message,
        );
    }

    // The admin key itself works, so none of the above was a server fault.
    e.ok(&admin(), "ListTables", json!({})).await;
}

/// Every whole second from `from` to `to`, inclusive.
fn seconds_between(from: SystemTime, to: SystemTime) -> impl Iterator<Item = SystemTime> {
    let a = from.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let b = to.duration_since(UNIX_EPOCH).unwrap().as_secs();
    (a..=b).map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

// ---- 2. A full-access key through the SDK --------------------------------------------------

#[tokio::test]
async fn full_access_key_runs_items_batches_transactions_and_streams() {
    let e = Enforced::start(&[admin_entry()]).with_table().await;
    let c = e.sdk(&admin());

    c.put_item()
        .table_name("Tbl")
        .set_item(Some(key("carol", "1")))
        .item("name", AV::S("carol".into()))
        .send()
        .await
        .unwrap();
    let got = c
        .get_item()
        .table_name("Tbl")
        .set_key(Some(key("carol", "1")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().unwrap()["name"], AV::S("carol".into()));
    let q = c
        .query()
        .table_name("Tbl")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", AV::S("alice".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(q.count(), 2);
    let batch: Vec<WriteRequest> = ["10", "11"]
        .iter()
        .map(|sk| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(key("dave", sk)))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .collect();
    let w = c
        .batch_write_item()
        .request_items("Tbl", batch)
        .send()
        .await
        .unwrap();
    assert!(w.unprocessed_items().is_none_or(|u| u.is_empty()));
    c.transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("Tbl")
                        .set_item(Some(key("erin", "1")))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let s = c.scan().table_name("Tbl").send().await.unwrap();
    assert_eq!(s.count(), 3 + 1 + 2 + 1);

    // DynamoDB Streams, signed the same way under the `dynamodb` service name.
    let streams = |op: &str| format!("DynamoDBStreams_20120810.{op}");
    let client = reqwest::Client::new();
    let sign = |op: &str, body: Value| {
        signed(
            e.url(),
            &streams(op),
            &body.to_string(),
            &Signing::now(&admin()),
        )
    };
    let r = send(&client, &sign("ListStreams", json!({"TableName": "Tbl"})))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let arn = r.json()["Streams"][0]["StreamArn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        arn.starts_with(&format!("{}/stream/", table_arn("Tbl"))),
        "{arn}"
    );
    let r = send(&client, &sign("DescribeStream", json!({"StreamArn": arn})))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let shard = r.json()["StreamDescription"]["Shards"][0]["ShardId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = send(
        &client,
        &sign(
            "GetShardIterator",
            json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let iterator = r.json()["ShardIterator"].as_str().unwrap().to_owned();
    let r = send(
        &client,
        &sign("GetRecords", json!({"ShardIterator": iterator})),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["Records"].is_array(), "{}", r.body);
}

// ---- 3. A read-only key --------------------------------------------------------------------

fn reader() -> Cred {
    Cred::new("AKIDREADER", "reader-secret")
}

fn reader_entry() -> Value {
    key_entry(
        "reader",
        &reader(),
        Some(allow(
            &[
                "dynamodb:GetItem",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:BatchGetItem",
                "dynamodb:Describe*",
            ],
            &table_arn("Tbl"),
        )),
    )
}

#[tokio::test]
async fn read_only_key_reads_and_is_denied_every_write() {
    let e = Enforced::start(&[admin_entry(), reader_entry()])
        .with_table()
        .await;
    let c = e.sdk(&reader());

    let got = c
        .get_item()
        .table_name("Tbl")
        .set_key(Some(key("alice", "1")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().unwrap()["name"], AV::S("alice-1".into()));
    let q = c
        .query()
        .table_name("Tbl")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", AV::S("alice".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(q.count(), 2);
    assert_eq!(c.scan().table_name("Tbl").send().await.unwrap().count(), 3);
    let b = c
        .batch_get_item()
        .request_items(
            "Tbl",
            KeysAndAttributes::builder()
                .keys(key("alice", "1"))
                .keys(key("bob", "1"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(b.responses().unwrap()["Tbl"].len(), 2);
    let d = c.describe_table().table_name("Tbl").send().await.unwrap();
    assert_eq!(d.table().unwrap().table_name(), Some("Tbl"));
    // Authorization comes before existence: a table outside the policy is denied whether or
    // not it exists, so a key cannot probe for table names.
    let r = call(
        e.url(),
        &reader(),
        "DescribeTable",
        &json!({"TableName": "Nope"}),
    )
    .await;
    assert_denied(
        &r,
        &implicit_deny("reader", "dynamodb:DescribeTable", &table_arn("Nope")),
    );
    let r = call(
        e.url(),
        &admin(),
        "DescribeTable",
        &json!({"TableName": "Nope"}),
    )
    .await;
    assert_eq!(r.error_code(), "ResourceNotFoundException", "{}", r.body);

    // PutItem: the exact message in the raw body, the error code through the SDK.
    let message = implicit_deny("reader", "dynamodb:PutItem", &table_arn("Tbl"));
    let r = call(e.url(), &reader(), "PutItem", &put_body("mallory", "1")).await;
    assert_denied(&r, &message);
    let err = c
        .put_item()
        .table_name("Tbl")
        .set_item(Some(key("mallory", "1")))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
    assert_eq!(err.message(), Some(message.as_str()));

    // A transaction with a Put is checked as dynamodb:PutItem.
    let r = call(
        e.url(),
        &reader(),
        "TransactWriteItems",
        &json!({"TransactItems": [
            {"ConditionCheck": {"TableName": "Tbl", "Key": {"pk": {"S": "alice"}, "sk": {"N": "1"}},
                                "ConditionExpression": "attribute_exists(pk)"}},
            {"Put": {"TableName": "Tbl", "Item": {"pk": {"S": "mallory"}, "sk": {"N": "2"}}}}]}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_code(), "AccessDeniedException", "{}", r.body);
    // The first action refused is the ConditionCheck, which the key may not do either.
    assert_eq!(
        r.message(),
        implicit_deny("reader", "dynamodb:ConditionCheckItem", &table_arn("Tbl"))
    );
    let r = call(
        e.url(),
        &reader(),
        "TransactWriteItems",
        &json!({"TransactItems": [
            {"Put": {"TableName": "Tbl", "Item": {"pk": {"S": "mallory"}, "sk": {"N": "2"}}}}]}),
    )
    .await;
    assert_denied(&r, &message);

    // A batch of writes is refused whole, and writes nothing.
    let r = call(
        e.url(),
        &reader(),
        "BatchWriteItem",
        &json!({"RequestItems": {"Tbl": [
            {"PutRequest": {"Item": {"pk": {"S": "mallory"}, "sk": {"N": "3"}}}},
            {"DeleteRequest": {"Key": {"pk": {"S": "alice"}, "sk": {"N": "1"}}}}]}}),
    )
    .await;
    assert_denied(
        &r,
        &implicit_deny("reader", "dynamodb:BatchWriteItem", &table_arn("Tbl")),
    );
    assert_eq!(e.count().await, 3);
    let r = call(e.url(), &admin(), "GetItem", &get_body("alice", "1")).await;
    assert_eq!(r.json()["Item"]["name"]["S"], "alice-1");
}

// ---- 4. Fine-grained access ----------------------------------------------------------------

#[tokio::test]
async fn leading_keys_confine_a_user_to_its_own_partition() {
    let alice = Cred::new("AKIDALICE", "alice-secret");
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchGetItem"],
        "Resource": table_arn("Tbl"),
        "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["${aws:username}"]}}
    }]});
    let e = Enforced::start(&[admin_entry(), key_entry("alice", &alice, Some(policy))])
        .with_table()
        .await;
    let arn = table_arn("Tbl");

    // Own partition: read and write.
    e.ok(&alice, "PutItem", put_body("alice", "3")).await;
    let got = e.ok(&alice, "GetItem", get_body("alice", "1")).await;
    assert_eq!(got["Item"]["name"]["S"], "alice-1");
    let q = e.ok(&alice, "Query", query_body("alice")).await;
    assert_eq!(q["Count"], 3);
    let c = e.sdk(&alice);
    let b = c
        .batch_get_item()
        .request_items(
            "Tbl",
            KeysAndAttributes::builder()
                .keys(key("alice", "1"))
                .keys(key("alice", "2"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(b.responses().unwrap()["Tbl"].len(), 2);

    // Someone else's partition.
    let r = call(e.url(), &alice, "GetItem", &get_body("bob", "1")).await;
    assert_denied(&r, &implicit_deny("alice", "dynamodb:GetItem", &arn));
    let r = call(e.url(), &alice, "PutItem", &put_body("bob", "9")).await;
    assert_denied(&r, &implicit_deny("alice", "dynamodb:PutItem", &arn));
    let r = call(e.url(), &alice, "Query", &query_body("bob")).await;
    assert_denied(&r, &implicit_deny("alice", "dynamodb:Query", &arn));
    // One foreign key in a batch denies the whole batch.
    let err = c
        .batch_get_item()
        .request_items(
            "Tbl",
            KeysAndAttributes::builder()
                .keys(key("alice", "1"))
                .keys(key("bob", "1"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
    assert_eq!(
        err.message(),
        Some(implicit_deny("alice", "dynamodb:BatchGetItem", &arn).as_str())
    );
    // Nothing was written to bob's partition.
    let r = call(e.url(), &admin(), "GetItem", &get_body("bob", "9")).await;
    assert_eq!(r.json(), json!({}));
}

#[tokio::test]
async fn attribute_allow_list_requires_projections_within_it() {
    let viewer = Cred::new("AKIDVIEWER", "viewer-secret");
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem", "dynamodb:Query"],
        "Resource": table_arn("Tbl"),
        "Condition": {
            "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk", "name"]},
            "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}
        }
    }]});
    let e = Enforced::start(&[admin_entry(), key_entry("viewer", &viewer, Some(policy))])
        .with_table()
        .await;
    let arn = table_arn("Tbl");

    let mut get = get_body("alice", "1");
    get["ProjectionExpression"] = json!("#n, sk");
    get["ExpressionAttributeNames"] = json!({"#n": "name"});
    let got = e.ok(&viewer, "GetItem", get).await;
    assert_eq!(
        got["Item"],
        json!({"name": {"S": "alice-1"}, "sk": {"N": "1"}})
    );
    let mut q = query_body("alice");
    q["ProjectionExpression"] = json!("pk, #n");
    q["ExpressionAttributeNames"] = json!({"#n": "name"});
    assert_eq!(e.ok(&viewer, "Query", q).await["Count"], 2);
    let c = e.sdk(&viewer);
    let got = c
        .get_item()
        .table_name("Tbl")
        .set_key(Some(key("bob", "1")))
        .projection_expression("#n")
        .expression_attribute_names("#n", "name")
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().unwrap().len(), 1);

    // Outside the list.
    let mut get = get_body("alice", "1");
    get["ProjectionExpression"] = json!("secret");
    let r = call(e.url(), &viewer, "GetItem", &get).await;
    assert_denied(&r, &implicit_deny("viewer", "dynamodb:GetItem", &arn));
    // No projection at all: every attribute, which the list does not cover.
    let r = call(e.url(), &viewer, "Query", &query_body("alice")).await;
    assert_denied(&r, &implicit_deny("viewer", "dynamodb:Query", &arn));
    let r = call(e.url(), &viewer, "GetItem", &get_body("alice", "1")).await;
    assert_denied(&r, &implicit_deny("viewer", "dynamodb:GetItem", &arn));
}

// ---- 5. Explicit deny ----------------------------------------------------------------------

#[tokio::test]
async fn explicit_deny_overrides_allow() {
    let cautious = Cred::new("AKIDCAUTIOUS", "cautious-secret");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"}
    ]});
    let e = Enforced::start(&[
        admin_entry(),
        key_entry("cautious", &cautious, Some(policy)),
    ])
    .with_table()
    .await;
    e.ok(&cautious, "PutItem", put_body("frank", "1")).await;
    let r = call(e.url(), &cautious, "DeleteItem", &get_body("frank", "1")).await;
    assert_denied(
        &r,
        &explicit_deny(
            "cautious",
            "dynamodb:DeleteItem",
            &table_arn("Tbl"),
            "identity-based",
        ),
    );
    let err = e
        .sdk(&cautious)
        .delete_item()
        .table_name("Tbl")
        .set_key(Some(key("frank", "1")))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
    assert_eq!(e.count().await, 4);
}

// ---- 6. Resource-based policies ------------------------------------------------------------

#[tokio::test]
async fn resource_policy_grants_and_denies_until_deleted() {
    let guest = Cred::new("AKIDGUEST", "guest-secret");
    let e = Enforced::start(&[admin_entry(), key_entry("guest", &guest, None)])
        .with_table()
        .await;
    let arn = table_arn("Tbl");
    let g = e.sdk(&guest);
    let a = e.sdk(&admin());

    let r = call(e.url(), &guest, "GetItem", &get_body("alice", "1")).await;
    assert_denied(&r, &implicit_deny("guest", "dynamodb:GetItem", &arn));

    // No policy yet.
    let err = a
        .get_resource_policy()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("PolicyNotFoundException"), "{err:?}");
    let r = call(
        e.url(),
        &admin(),
        "GetResourcePolicy",
        &json!({"ResourceArn": arn}),
    )
    .await;
    assert_error(
        &r,
        "com.amazonaws.dynamodb.v20120810#PolicyNotFoundException",
        &format!("Resource-based policy not found for the provided ResourceArn: {arn}"),
    );

    // Allowed by the admin's own policy before any resource policy exists (and remembered as
    // allowed): the Deny put below must still take effect at once.
    e.ok(&admin(), "DeleteItem", get_body("guest", "1")).await;

    let document = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "GuestReadsAndWrites", "Effect": "Allow",
         "Principal": {"AWS": user_arn("guest")},
         "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": arn},
        {"Sid": "NoDeletesEvenForAdmin", "Effect": "Deny",
         "Principal": {"AWS": user_arn("admin")},
         "Action": "dynamodb:DeleteItem", "Resource": arn}
    ]})
    .to_string();
    let put = a
        .put_resource_policy()
        .resource_arn(&arn)
        .policy(&document)
        .send()
        .await
        .unwrap();
    let revision = put.revision_id().unwrap().to_owned();
    let got = a
        .get_resource_policy()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy(), Some(document.as_str()));
    assert_eq!(got.revision_id(), Some(revision.as_str()));

    // The resource policy alone lets the guest in, for what it names.
    let item = g
        .get_item()
        .table_name("Tbl")
        .set_key(Some(key("alice", "1")))
        .send()
        .await
        .unwrap();
    assert_eq!(item.item().unwrap()["name"], AV::S("alice-1".into()));
    g.put_item()
        .table_name("Tbl")
        .set_item(Some(key("guest", "1")))
        .send()
        .await
        .unwrap();
    let r = call(e.url(), &guest, "Scan", &json!({"TableName": "Tbl"})).await;
    assert_denied(&r, &implicit_deny("guest", "dynamodb:Scan", &arn));

    // Its Deny overrides the admin's identity-based Allow.
    let r = call(e.url(), &admin(), "DeleteItem", &get_body("guest", "1")).await;
    assert_denied(
        &r,
        &explicit_deny("admin", "dynamodb:DeleteItem", &arn, "resource-based"),
    );

    let deleted = a
        .delete_resource_policy()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.revision_id(), Some(revision.as_str()));
    let err = g
        .get_item()
        .table_name("Tbl")
        .set_key(Some(key("alice", "1")))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
    assert_eq!(
        err.message(),
        Some(implicit_deny("guest", "dynamodb:GetItem", &arn).as_str())
    );
    e.ok(&admin(), "DeleteItem", get_body("guest", "1")).await;
    let err = a
        .get_resource_policy()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("PolicyNotFoundException"), "{err:?}");
}

// ---- 7. Presigned requests -----------------------------------------------------------------

#[tokio::test]
async fn presigned_requests_work_until_tampered_or_expired() {
    let e = Enforced::start(&[admin_entry()]).with_table().await;
    let client = reqwest::Client::new();
    let body = get_body("alice", "1").to_string();
    let presigned = |time: SystemTime, expires: u64| Signing {
        time,
        presign: Some(Duration::from_secs(expires)),
        ..Signing::now(&admin())
    };

    let req = signed(
        e.url(),
        &dynamodb("GetItem"),
        &body,
        &presigned(SystemTime::now(), 300),
    );
    assert!(req.url.contains("X-Amz-Signature="), "{}", req.url);
    assert!(!req
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("authorization")));
    let r = send(&client, &req).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["Item"]["name"]["S"], "alice-1");

    // Another body under the same signature.
    let mut tampered = req.clone();
    tampered.body = get_body("bob", "1").to_string();
    let r = send(&client, &tampered).await.unwrap();
    assert_error(
        &r,
        "com.amazon.coral.service#InvalidSignatureException",
        SIGNATURE_MISMATCH,
    );
    // Another operation under the same signature.
    let mut tampered = req.clone();
    for (n, v) in &mut tampered.headers {
        if n == "x-amz-target" {
            *v = dynamodb("DeleteItem");
        }
    }
    let r = send(&client, &tampered).await.unwrap();
    assert_error(
        &r,
        "com.amazon.coral.service#InvalidSignatureException",
        SIGNATURE_MISMATCH,
    );

    // Signed ten minutes ago, valid for one.
    let signed_at = whole_seconds(SystemTime::now()) - Duration::from_secs(600);
    let req = signed(
        e.url(),
        &dynamodb("GetItem"),
        &body,
        &presigned(signed_at, 60),
    );
    let before = whole_seconds(SystemTime::now());
    let r = send(&client, &req).await.unwrap();
    let after = SystemTime::now();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["__type"],
        "com.amazon.coral.service#InvalidSignatureException"
    );
    let expected = |now: SystemTime| {
        format!(
            "Signature expired: {} is now earlier than {} ({} - 1 min.)",
            iso_basic(signed_at),
            iso_basic(now - Duration::from_secs(60)),
            iso_basic(now)
        )
    };
    assert!(
        seconds_between(before, after).any(|t| r.message() == expected(t)),
        "{}",
        r.body
    );
    assert_eq!(e.count().await, 3, "nothing was deleted");
}

// ---- 8. Session tokens ---------------------------------------------------------------------

#[tokio::test]
async fn session_token_is_required_and_must_match() {
    let temp = Cred::new("ASIATEMPORARY", "temp-secret").with_token("FQoGZXIvYXdzEXAMPLETOKEN");
    let e = Enforced::start(&[
        admin_entry(),
        key_entry("temporary", &temp, Some(allow(&["dynamodb:*"], "*"))),
    ])
    .with_table()
    .await;

    let ok = e.sdk(&temp);
    let got = ok
        .get_item()
        .table_name("Tbl")
        .set_key(Some(key("alice", "2")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().unwrap()["name"], AV::S("alice-2".into()));
    ok.list_tables().send().await.unwrap();

    let without = Cred {
        token: None,
        ..temp.clone()
    };
    let wrong = temp.clone().with_token("FQoGZXIvYXdzSOMETHINGELSE");
    for cred in [&without, &wrong] {
        let err = e.sdk(cred).list_tables().send().await.unwrap_err();
        assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");
        let r = call(e.url(), cred, "ListTables", &json!({})).await;
        assert_error(
            &r,
            "com.amazon.coral.service#UnrecognizedClientException",
            "The security token included in the request is invalid",
        );
    }
    // A token sent with a key that has none.
    let r = call(
        e.url(),
        &admin().with_token("FQoGZXIvYXdzEXAMPLETOKEN"),
        "ListTables",
        &json!({}),
    )
    .await;
    assert_error(
        &r,
        "com.amazon.coral.service#UnrecognizedClientException",
        "The security token included in the request is invalid",
    );
}

// ---- 9. Key reloads under load -------------------------------------------------------------

#[test]
fn reloading_keys_never_fails_a_request_of_an_unchanged_key() {
    let a = Cred::new("AKIDSTEADY", "steady-secret");
    let a_entry = key_entry(
        "steady",
        &a,
        Some(allow(&["dynamodb:GetItem"], &table_arn("Tbl"))),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = rt.block_on(async {
        Enforced::start(&[admin_entry(), a_entry.clone()])
            .with_table()
            .await
    });
    drop(rt);
    let url = e.url().to_owned();
    let get = get_body("alice", "1").to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU32::new(0));
    let load = {
        let (stop, sent) = (stop.clone(), sent.clone());
        let (url, a, get) = (url.clone(), a.clone(), get.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut failures = Vec::new();
            // Bounded: stops when told, or after this many requests.
            while !stop.load(Ordering::Relaxed) && sent.load(Ordering::Relaxed) < 20_000 {
                let req = signed(&url, &dynamodb("GetItem"), &get, &Signing::now(&a));
                let r = send_blocking(&client, &req);
                if r.status != 200 {
                    failures.push(r.body);
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            failures
        })
    };
    // The load is running before the first reload.
    while sent.load(Ordering::Relaxed) < 10 {
        std::thread::sleep(Duration::from_millis(5));
    }

    let client = reqwest::blocking::Client::new();
    let path = e.keys_file();
    for i in 0..40 {
        // Spread the reloads over the load (about a second in all).
        std::thread::sleep(Duration::from_millis(25));
        let b = Cred::new(&format!("AKIDNEWCOMER{i}"), &format!("newcomer-secret-{i}"));
        let b_entry = key_entry(
            "newcomer",
            &b,
            Some(allow(&["dynamodb:GetItem"], &table_arn("Tbl"))),
        );
        let r = send_blocking(
            &client,
            &signed(&url, &dynamodb("GetItem"), &get, &Signing::now(&b)),
        );
        assert_eq!(r.error_code(), "UnrecognizedClientException", "{}", r.body);
        write_keys(&path, &[admin_entry(), a_entry.clone(), b_entry]);
        assert!(e.store.reload(false).unwrap(), "change seen");
        let r = send_blocking(
            &client,
            &signed(&url, &dynamodb("GetItem"), &get, &Signing::now(&b)),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        // Then B goes away again.
        write_keys(&path, &[admin_entry(), a_entry.clone()]);
        assert!(e.store.reload(false).unwrap());
    }

    // A broken file is refused whole; the keys in force stay in force.
    let b = Cred::new("AKIDLASTONE", "last-secret");
    write_keys(
        &path,
        &[
            admin_entry(),
            a_entry.clone(),
            key_entry("last", &b, Some(allow(&["dynamodb:GetItem"], "*"))),
        ],
    );
    assert!(e.store.reload(false).unwrap());
    write_file(&path, "{\"keys\": [ broken");
    assert!(e.store.reload(false).is_err());
    for cred in [&a, &b] {
        let r = send_blocking(
            &client,
            &signed(&url, &dynamodb("GetItem"), &get, &Signing::now(cred)),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }

    stop.store(true, Ordering::Relaxed);
    let failures = load.join().unwrap();
    let done = sent.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {done} failed: {:?}",
        failures.len(),
        failures.first()
    );
}

// ---- 10. The command line ------------------------------------------------------------------

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ferrodyn"))
}

fn ferrodyn(args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(binary())
        .args(args)
        .env("FERRODYN_LOG", "warn")
        .env_remove("FERRODYN_AUTH")
        .env_remove("FERRODYN_KEYS_FILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ferrodyn {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The id and secret `ferrodyn keys create|rotate` printed.
fn printed_key(out: &std::process::Output) -> Cred {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {text:?}"))
            .trim()
            .to_owned()
    };
    Cred::new(&field("access_key_id:"), &field("secret_access_key:"))
}

/// ListTables as `cred`, retried (bounded) until it answers `status`.
fn eventually(url: &str, cred: &Cred, status: u16) -> RawResponse {
    let client = reqwest::blocking::Client::new();
    let mut last = None;
    for _ in 0..100 {
        let r = send_blocking(
            &client,
            &signed(url, &dynamodb("ListTables"), "{}", &Signing::now(cred)),
        );
        if r.status == status {
            return r;
        }
        last = Some(r);
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never answered {status}: {last:?}");
}

#[test]
fn keys_command_line_manages_keys_of_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, allow(&["dynamodb:*"], "*").to_string()).unwrap();
    let server = ServerProcess::start_with(binary(), &data, &["--auth", "keys"]);

    let out = ferrodyn(&[
        "keys",
        "create",
        "ops",
        "--policy",
        policy.to_str().unwrap(),
        "--data-dir",
        data_arg,
    ]);
    let first = printed_key(&out);
    assert!(first.akid.starts_with("FDAK"), "{first:?}");
    assert_eq!(first.secret.len(), 40);
    assert!(data.join("access-keys.json").exists());
    // Picked up by the running server without a restart.
    eventually(&server.url, &first, 200);

    let list = ferrodyn(&["keys", "list", "--data-dir", data_arg]);
    let list = String::from_utf8(list.stdout).unwrap();
    assert_eq!(list, format!("ops\t{}\tpolicy\n", first.akid));
    assert!(!list.contains(&first.secret));

    let second = printed_key(&ferrodyn(&[
        "keys",
        "rotate",
        "ops",
        "--data-dir",
        data_arg,
    ]));
    assert_ne!(second.akid, first.akid);
    assert_ne!(second.secret, first.secret);
    eventually(&server.url, &second, 200);
    let client = reqwest::blocking::Client::new();
    let r = send_blocking(
        &client,
        &signed(
            &server.url,
            &dynamodb("ListTables"),
            "{}",
            &Signing::now(&first),
        ),
    );
    assert_error(
        &r,
        "com.amazon.coral.service#UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
    let list = ferrodyn(&["keys", "list", "--data-dir", data_arg]);
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(!list.contains(&second.secret) && !list.contains(&first.secret));

    ferrodyn(&["keys", "delete", "ops", "--data-dir", data_arg]);
    let r = eventually(&server.url, &second, 400);
    assert_eq!(r.error_code(), "UnrecognizedClientException");
}

/// Runs a command that must exit by itself; a server that started instead is killed (the wait
/// is bounded) and the test fails.
fn run_to_exit(mut cmd: std::process::Command) -> std::process::Output {
    let mut child = cmd
        .env("FERRODYN_LOG", "warn")
        .env_remove("FERRODYN_AUTH")
        .env_remove("FERRODYN_KEYS_FILE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!(
        "still running (stdout {:?}); it should have refused to start",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_public_address_without_keys_refuses_to_start() {
    let mut cmd = std::process::Command::new(binary());
    cmd.args(["serve", "--host", "0.0.0.0", "--in-memory", "--port", "0"]);
    let out = run_to_exit(cmd);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--auth none"), "{stderr}");
    assert!(stderr.contains("0.0.0.0"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn dynamodb_local_command_line_accepts_any_credentials() {
    let server = ServerProcess::start_args(binary(), &["-inMemory", "-port", "0"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (akid, secret) in [("anything", "goes"), ("AKIDOTHER", "x")] {
            let c = sdk_client(&server.url, akid, secret, None);
            let tables = c.list_tables().send().await.unwrap();
            assert!(tables.table_names().is_empty());
        }
        // Even a signature that could not be right.
        let r = call(
            &server.url,
            &Cred::new("nobody", "wrong").with_token("junk"),
            "ListTables",
            &json!({}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    });
}

/// An SDK client for any endpoint.
fn sdk_client(
    url: &str,
    akid: &str,
    secret: &str,
    token: Option<&str>,
) -> aws_sdk_dynamodb::Client {
    let creds = aws_credential_types::Credentials::new(
        akid,
        secret,
        token.map(str::to_owned),
        None,
        "test",
    );
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(creds)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

// ---- More conditions and resources ---------------------------------------------------------

#[tokio::test]
async fn presigned_request_with_a_session_token() {
    let temp = Cred::new("ASIAPRESIGN", "presign-secret").with_token("FQoGZXIvYXdzPRESIGNTOKEN");
    let e = Enforced::start(&[
        admin_entry(),
        key_entry("presigner", &temp, Some(allow(&["dynamodb:GetItem"], "*"))),
    ])
    .with_table()
    .await;
    let client = reqwest::Client::new();
    let body = get_body("alice", "1").to_string();
    let s = Signing {
        presign: Some(Duration::from_secs(300)),
        ..Signing::now(&temp)
    };
    let req = signed(e.url(), &dynamodb("GetItem"), &body, &s);
    assert!(req.url.contains("X-Amz-Security-Token="), "{}", req.url);
    let r = send(&client, &req).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let without = Signing {
        cred: Cred {
            token: None,
            ..temp.clone()
        },
        ..s
    };
    let r = send(
        &client,
        &signed(e.url(), &dynamodb("GetItem"), &body, &without),
    )
    .await
    .unwrap();
    assert_error(
        &r,
        "com.amazon.coral.service#UnrecognizedClientException",
        "The security token included in the request is invalid",
    );
}

#[tokio::test]
async fn source_ip_and_username_in_resources() {
    let local = Cred::new("AKIDLOCAL", "local-secret");
    let remote = Cred::new("AKIDREMOTE", "remote-secret");
    let ip_policy = |cidr: &str| {
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "dynamodb:*",
            "Resource": "arn:aws:dynamodb:*:*:table/${aws:username}_*",
            "Condition": {"IpAddress": {"aws:SourceIp": cidr}}}]})
    };
    let e = Enforced::start(&[
        admin_entry(),
        key_entry("local", &local, Some(ip_policy("127.0.0.0/8"))),
        key_entry("remote", &remote, Some(ip_policy("10.0.0.0/8"))),
    ]);
    let create = |name: &str| {
        json!({"TableName": name,
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"})
    };
    e.ok(&local, "CreateTable", create("local_data")).await;
    let r = call(e.url(), &local, "CreateTable", &create("remote_data")).await;
    assert_denied(
        &r,
        &implicit_deny("local", "dynamodb:CreateTable", &table_arn("remote_data")),
    );
    let r = call(e.url(), &remote, "CreateTable", &create("remote_data")).await;
    assert_denied(
        &r,
        &implicit_deny("remote", "dynamodb:CreateTable", &table_arn("remote_data")),
    );
}

#[tokio::test]
async fn leading_keys_on_an_index_updates_and_transactions() {
    let alice = Cred::new("AKIDALICE2", "alice-secret");
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                   "dynamodb:Query", "dynamodb:PutItem"],
        "Resource": [table_arn("Idx"), format!("{}/index/*", table_arn("Idx"))],
        "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["${aws:username}"]}}
    }]});
    let e = Enforced::start(&[admin_entry(), key_entry("alice", &alice, Some(policy))]);
    e.ok(
        &admin(),
        "CreateTable",
        json!({"TableName": "Idx",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                     {"AttributeName": "owner", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{"IndexName": "ByOwner",
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"}}],
            "BillingMode": "PAY_PER_REQUEST"}),
    )
    .await;
    for (pk, owner) in [("alice", "bob"), ("bob", "alice")] {
        e.ok(
            &admin(),
            "PutItem",
            json!({"TableName": "Idx", "Item": {"pk": {"S": pk}, "owner": {"S": owner}}}),
        )
        .await;
    }
    let q = |owner: &str| {
        json!({"TableName": "Idx", "IndexName": "ByOwner",
               "KeyConditionExpression": "#o = :o", "ExpressionAttributeNames": {"#o": "owner"},
               "ExpressionAttributeValues": {":o": {"S": owner}}})
    };
    assert_eq!(e.ok(&alice, "Query", q("alice")).await["Count"], 1);
    let r = call(e.url(), &alice, "Query", &q("bob")).await;
    assert_denied(
        &r,
        &implicit_deny(
            "alice",
            "dynamodb:Query",
            &format!("{}/index/ByOwner", table_arn("Idx")),
        ),
    );

    let c = e.sdk(&alice);
    let k = |pk: &str| std::collections::HashMap::from([("pk".to_string(), AV::S(pk.into()))]);
    c.update_item()
        .table_name("Idx")
        .set_key(Some(k("alice")))
        .update_expression("SET n = :n")
        .expression_attribute_values(":n", AV::N("1".into()))
        .send()
        .await
        .unwrap();
    let err = c
        .update_item()
        .table_name("Idx")
        .set_key(Some(k("bob")))
        .update_expression("SET n = :n")
        .expression_attribute_values(":n", AV::N("1".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(implicit_deny("alice", "dynamodb:UpdateItem", &table_arn("Idx")).as_str())
    );
    let err = c
        .delete_item()
        .table_name("Idx")
        .set_key(Some(k("bob")))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"));

    // TransactGetItems checks dynamodb:GetItem per item (the key may get, but only its own).
    let tget = |pks: &[&str]| {
        json!({"TransactItems": pks.iter().map(|pk| json!({"Get": {"TableName": "Idx",
            "Key": {"pk": {"S": pk}}}})).collect::<Vec<_>>()})
    };
    e.ok(&alice, "TransactGetItems", tget(&["alice"])).await;
    let r = call(
        e.url(),
        &alice,
        "TransactGetItems",
        &tget(&["alice", "bob"]),
    )
    .await;
    assert_denied(
        &r,
        &implicit_deny("alice", "dynamodb:GetItem", &table_arn("Idx")),
    );
    // A transaction of an own-partition put and a foreign update writes nothing.
    let r = call(
        e.url(),
        &alice,
        "TransactWriteItems",
        &json!({"TransactItems": [
            {"Put": {"TableName": "Idx", "Item": {"pk": {"S": "alice"}, "n": {"N": "7"}}}},
            {"Update": {"TableName": "Idx", "Key": {"pk": {"S": "bob"}},
                        "UpdateExpression": "SET n = :n", "ExpressionAttributeValues": {":n": {"N": "7"}}}}]}),
    )
    .await;
    assert_denied(
        &r,
        &implicit_deny("alice", "dynamodb:UpdateItem", &table_arn("Idx")),
    );
    let got = e
        .ok(
            &admin(),
            "GetItem",
            json!({"TableName": "Idx", "Key": {"pk": {"S": "alice"}}}),
        )
        .await;
    assert_eq!(got["Item"]["n"], json!({"N": "1"}));
}

#[tokio::test]
async fn stream_resource_policy_and_account_principals() {
    let guest = Cred::new("AKIDGUEST2", "guest-secret");
    let e = Enforced::start(&[admin_entry(), key_entry("guest", &guest, None)])
        .with_table()
        .await;
    let a = e.sdk(&admin());
    let arn = table_arn("Tbl");
    let streams = |op: &str| format!("DynamoDBStreams_20120810.{op}");
    let client = reqwest::Client::new();
    let as_ = |cred: &Cred, op: &str, body: Value| {
        signed(
            e.url(),
            &streams(op),
            &body.to_string(),
            &Signing::now(cred),
        )
    };
    let r = send(
        &client,
        &as_(&admin(), "ListStreams", json!({"TableName": "Tbl"})),
    )
    .await
    .unwrap();
    let stream = r.json()["Streams"][0]["StreamArn"]
        .as_str()
        .unwrap()
        .to_owned();

    // A resource policy naming only the account delegates to identity policies: no access.
    let account_only = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "dynamodb:GetItem",
         "Resource": arn}]})
    .to_string();
    a.put_resource_policy()
        .resource_arn(&arn)
        .policy(account_only)
        .send()
        .await
        .unwrap();
    let r = call(e.url(), &guest, "GetItem", &get_body("alice", "1")).await;
    assert_denied(&r, &implicit_deny("guest", "dynamodb:GetItem", &arn));

    // A key without permission may not manage policies.
    let r = call(
        e.url(),
        &guest,
        "DeleteResourcePolicy",
        &json!({"ResourceArn": arn}),
    )
    .await;
    assert_denied(
        &r,
        &implicit_deny("guest", "dynamodb:DeleteResourcePolicy", &arn),
    );

    // The stream's own policy governs the stream.
    let r = send(
        &client,
        &as_(&guest, "DescribeStream", json!({"StreamArn": stream})),
    )
    .await
    .unwrap();
    assert_denied(
        &r,
        &implicit_deny("guest", "dynamodb:DescribeStream", &stream),
    );
    let doc = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user_arn("guest")},
         "Action": ["dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"],
         "Resource": stream}]})
    .to_string();
    a.put_resource_policy()
        .resource_arn(&stream)
        .policy(doc)
        .send()
        .await
        .unwrap();
    let r = send(
        &client,
        &as_(&guest, "DescribeStream", json!({"StreamArn": stream})),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let shard = r.json()["StreamDescription"]["Shards"][0]["ShardId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = send(
        &client,
        &as_(
            &guest,
            "GetShardIterator",
            json!({"StreamArn": stream, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let it = r.json()["ShardIterator"].as_str().unwrap().to_owned();
    let r = send(
        &client,
        &as_(&guest, "GetRecords", json!({"ShardIterator": it})),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // The first shard's records (items of other partitions may be in other shards).
    assert!(
        !r.json()["Records"].as_array().unwrap().is_empty(),
        "{}",
        r.body
    );
    // The table itself stays closed to the guest.
    let r = call(e.url(), &guest, "GetItem", &get_body("alice", "1")).await;
    assert_denied(&r, &implicit_deny("guest", "dynamodb:GetItem", &arn));
    let r = send(
        &client,
        &as_(&guest, "ListStreams", json!({"TableName": "Tbl"})),
    )
    .await
    .unwrap();
    assert_eq!(r.error_code(), "AccessDeniedException", "{}", r.body);
}

#[tokio::test]
async fn return_values_condition() {
    let careful = Cred::new("AKIDCAREFUL", "careful-secret");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem"], "Resource": "*"},
        {"Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": "*",
         "Condition": {"StringNotEquals": {"dynamodb:ReturnValues": "NONE"}}}]});
    let e = Enforced::start(&[admin_entry(), key_entry("careful", &careful, Some(policy))])
        .with_table()
        .await;
    e.ok(&careful, "PutItem", put_body("zed", "1")).await;
    let mut body = put_body("zed", "1");
    body["ReturnValues"] = json!("ALL_OLD");
    let r = call(e.url(), &careful, "PutItem", &body).await;
    assert_denied(
        &r,
        &explicit_deny(
            "careful",
            "dynamodb:PutItem",
            &table_arn("Tbl"),
            "identity-based",
        ),
    );
}

#[tokio::test]
async fn list_tables_is_checked_on_every_table_of_the_account() {
    let lister = Cred::new("AKIDLISTER", "lister-secret");
    let e = Enforced::start(&[
        admin_entry(),
        reader_entry(),
        key_entry(
            "lister",
            &lister,
            Some(allow(
                &["dynamodb:ListTables"],
                "arn:aws:dynamodb:*:*:table/*",
            )),
        ),
    ])
    .with_table()
    .await;
    let r = call(e.url(), &reader(), "ListTables", &json!({})).await;
    assert_denied(
        &r,
        &implicit_deny("reader", "dynamodb:ListTables", &table_arn("*")),
    );
    let tables = e.sdk(&lister).list_tables().send().await.unwrap();
    assert_eq!(tables.table_names(), ["Tbl"]);
}

#[test]
fn keys_command_line_files_and_default_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();

    // A policy that is not valid IAM is refused, and nothing is written.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"Statement": [{"Effect": "Maybe"}]}"#).unwrap();
    let out = std::process::Command::new(binary())
        .args(["keys", "create", "x", "--policy", bad.to_str().unwrap()])
        .args(["--data-dir", data_arg])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!data.join("access-keys.json").exists());

    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, allow(&["dynamodb:*"], "*").to_string()).unwrap();
    let policy_arg = policy.to_str().unwrap();
    let cred = printed_key(&ferrodyn(&[
        "keys",
        "create",
        "svc",
        "--policy",
        policy_arg,
        "--data-dir",
        data_arg,
    ]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("access-keys.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is its owner's only");
    }

    // Keys in the data directory: a server started without --auth enforces them.
    let server = ServerProcess::start(binary(), &data);
    let client = reqwest::blocking::Client::new();
    let list = |cred: &Cred| {
        send_blocking(
            &client,
            &signed(
                &server.url,
                &dynamodb("ListTables"),
                "{}",
                &Signing::now(cred),
            ),
        )
    };
    assert_eq!(list(&cred).status, 200);
    let r = list(&Cred::new("ferrodyn", "ferrodyn"));
    assert_eq!(r.error_code(), "UnrecognizedClientException", "{}", r.body);
    drop(server);

    // A keys file that does not load stops the server from starting.
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"keys\": [").unwrap();
    let mut cmd = std::process::Command::new(binary());
    cmd.args(["serve", "--in-memory", "--port", "0", "--keys-file"])
        .arg(&broken);
    let out = run_to_exit(cmd);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loading access keys"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn create_table_attaches_its_resource_policy() {
    let guest = Cred::new("AKIDGUEST", "guest-secret");
    let e = Enforced::start(&[admin_entry(), key_entry("guest", &guest, None)]);
    let a = e.sdk(&admin());
    let arn = table_arn("Born");
    let document = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user_arn("guest")},
         "Action": "dynamodb:GetItem", "Resource": arn}]})
    .to_string();
    let create = |policy: String| {
        a.create_table()
            .table_name("Born")
            .attribute_definitions(
                aws_sdk_dynamodb::types::AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                aws_sdk_dynamodb::types::KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            .resource_policy(policy)
            .send()
    };
    // A document that is not a resource policy (no Principal) creates nothing.
    let bad = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": arn}]})
    .to_string();
    let err = create(bad).await.unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
    assert!(a.describe_table().table_name("Born").send().await.is_err());

    create(document.clone()).await.unwrap();
    let got = a
        .get_resource_policy()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy(), Some(document.as_str()));
    let g = e.sdk(&guest);
    let key = aws_sdk_dynamodb::types::AttributeValue::S("x".into());
    let out = g
        .get_item()
        .table_name("Born")
        .key("pk", key)
        .send()
        .await
        .unwrap();
    assert!(out.item().is_none());
}

// ---- PartiQL -------------------------------------------------------------------------------

#[tokio::test]
async fn partiql_select_only_key_selects_but_cannot_insert() {
    let cred = Cred::new("AKIDPARTIQL", "partiql-secret");
    let entry = key_entry(
        "partiql",
        &cred,
        Some(allow(&["dynamodb:PartiQLSelect"], &table_arn("Tbl"))),
    );
    let e = Enforced::start(&[admin_entry(), entry]).with_table().await;
    let got = e
        .ok(
            &cred,
            "ExecuteStatement",
            json!({"Statement": "SELECT name FROM Tbl WHERE pk = 'alice' AND sk = 1"}),
        )
        .await;
    assert_eq!(got["Items"], json!([{"name": {"S": "alice-1"}}]));
    let r = call(
        e.url(),
        &cred,
        "ExecuteStatement",
        &json!({"Statement": "INSERT INTO Tbl VALUE {'pk': 'carol', 'sk': 1}"}),
    )
    .await;
    assert_denied(
        &r,
        &implicit_deny("partiql", "dynamodb:PartiQLInsert", &table_arn("Tbl")),
    );
    // The classic operations are other actions.
    let r = call(
        e.url(),
        &cred,
        "GetItem",
        &json!({"TableName": "Tbl", "Key": {"pk": {"S": "alice"}, "sk": {"N": "1"}}}),
    )
    .await;
    assert_denied(
        &r,
        &implicit_deny("partiql", "dynamodb:GetItem", &table_arn("Tbl")),
    );
    // In a transaction, each statement is authorized by its own action.
    let r = call(
        e.url(),
        &cred,
        "ExecuteTransaction",
        &json!({"TransactStatements": [
            {"Statement": "EXISTS(SELECT * FROM Tbl WHERE pk = 'alice' AND sk = 1)"},
            {"Statement": "DELETE FROM Tbl WHERE pk = 'bob' AND sk = 1"}
        ]}),
    )
    .await;
    assert_denied(
        &r,
        &implicit_deny("partiql", "dynamodb:PartiQLDelete", &table_arn("Tbl")),
    );
    assert_eq!(e.count().await, 3);
}

#[tokio::test]
async fn partiql_full_table_scans_can_be_denied() {
    // AWS's example policy: allow PartiQL selects, deny those that scan the whole table.
    let cred = Cred::new("AKIDNOSCAN", "noscan-secret");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:PartiQLSelect", "Resource": table_arn("Tbl")},
        {"Effect": "Deny", "Action": "dynamodb:PartiQLSelect", "Resource": table_arn("Tbl"),
         "Condition": {"Bool": {"dynamodb:FullTableScan": "true"}}}
    ]});
    let e = Enforced::start(&[admin_entry(), key_entry("noscan", &cred, Some(policy))])
        .with_table()
        .await;
    for statement in [
        "SELECT * FROM Tbl WHERE pk = 'alice'",
        "SELECT * FROM Tbl WHERE pk IN ['alice', 'bob'] AND sk = 1",
        "SELECT * FROM Tbl WHERE pk = 'alice' OR pk = 'bob'",
    ] {
        e.ok(&cred, "ExecuteStatement", json!({ "Statement": statement }))
            .await;
    }
    for statement in [
        "SELECT * FROM Tbl",
        "SELECT * FROM Tbl WHERE sk = 1",
        "SELECT * FROM Tbl WHERE pk = 'alice' OR sk = 1",
    ] {
        let r = call(
            e.url(),
            &cred,
            "ExecuteStatement",
            &json!({ "Statement": statement }),
        )
        .await;
        assert_denied(
            &r,
            &explicit_deny(
                "noscan",
                "dynamodb:PartiQLSelect",
                &table_arn("Tbl"),
                "identity-based",
            ),
        );
    }
}
