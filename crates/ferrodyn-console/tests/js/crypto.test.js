// Known-answer tests for the console's SHA-256, HMAC-SHA-256 and SigV4 (run by tests/js.rs
// with `node --test`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { sha256, hmacSha256, hex } from "../../assets/js/sha256.js";
import { sign, signingKey } from "../../assets/js/sigv4.js";
import { createHash, createHmac } from "node:crypto";

test("SHA-256 FIPS 180-2 vectors", () => {
  assert.equal(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(
    hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  assert.equal(
    hex(sha256("a".repeat(1000000))),
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
  );
});

test("SHA-256 agrees with node:crypto on every length around the block boundaries", () => {
  const enc = new TextEncoder();
  for (let n = 0; n < 200; n++) {
    const s = "é".repeat(n % 7) + "x".repeat(n);
    assert.equal(hex(sha256(s)), createHash("sha256").update(enc.encode(s)).digest("hex"), `length ${n}`);
  }
});

test("HMAC-SHA-256 RFC 4231 vectors", () => {
  const key1 = new Uint8Array(20).fill(0x0b);
  assert.equal(
    hex(hmacSha256(key1, "Hi There")),
    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
  );
  assert.equal(
    hex(hmacSha256("Jefe", "what do ya want for nothing?")),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
  // Test case 6: a key longer than the block is hashed first.
  const key6 = new Uint8Array(131).fill(0xaa);
  assert.equal(
    hex(hmacSha256(key6, "Test Using Larger Than Block-Size Key - Hash Key First")),
    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
  );
  for (let n = 0; n < 150; n += 13) {
    const key = "k".repeat(n);
    assert.equal(hex(hmacSha256(key, "msg" + n)), createHmac("sha256", key).update("msg" + n).digest("hex"));
  }
});

test("SigV4: AWS's documented example (IAM ListUsers, 2015-08-30)", () => {
  const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  assert.equal(
    hex(signingKey(secret, "20150830", "us-east-1", "iam")),
    "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9",
  );
  const signed = sign({
    method: "GET",
    path: "/",
    query: "Action=ListUsers&Version=2010-05-08",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
      Host: "iam.amazonaws.com",
      "X-Amz-Date": "20150830T123600Z",
    },
    body: "",
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: secret },
    region: "us-east-1",
    service: "iam",
  });
  assert.equal(signed.signature, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
  assert.equal(
    signed.headers.authorization,
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, " +
      "SignedHeaders=content-type;host;x-amz-date, " +
      "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
  );
});

test("SigV4 adds the session token and signs it", () => {
  const signed = sign({
    method: "POST",
    path: "/",
    headers: { host: "localhost:8000", "x-amz-target": "DynamoDB_20120810.ListTables" },
    body: "{}",
    credentials: { accessKeyId: "AKID", secretAccessKey: "s", sessionToken: "tok" },
    region: "us-east-1",
    service: "dynamodb",
    date: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
  });
  assert.equal(signed.headers["x-amz-date"], "20260102T030405Z");
  assert.equal(signed.headers["x-amz-security-token"], "tok");
  assert.match(signed.headers.authorization, /SignedHeaders=host;x-amz-date;x-amz-security-token;x-amz-target,/);
  assert.match(signed.headers.authorization, /Credential=AKID\/20260102\/us-east-1\/dynamodb\/aws4_request/);
});
