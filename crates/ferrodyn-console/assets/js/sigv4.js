// AWS Signature Version 4 for the console's requests, on ./sha256.js (no crypto.subtle).
// The secret never leaves this module's arguments: it is neither logged nor put in a URL.

import { sha256, hmacSha256, hex } from "./sha256.js";

/** `YYYYMMDDTHHMMSSZ` for a Date. */
export function amzDate(date) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

function encodeRfc3986(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

/** The canonical query string of `a=1&b=2` text (already split on `&` and `=`). */
function canonicalQuery(query) {
  if (!query) return "";
  return query
    .split("&")
    .filter((p) => p.length > 0)
    .map((p) => {
      const i = p.indexOf("=");
      const k = i < 0 ? p : p.slice(0, i);
      const v = i < 0 ? "" : p.slice(i + 1);
      return [encodeRfc3986(decodeURIComponent(k)), encodeRfc3986(decodeURIComponent(v))];
    })
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

/** The derived signing key for a day, region and service. */
export function signingKey(secret, day, region, service) {
  const kDate = hmacSha256("AWS4" + secret, day);
  const kRegion = hmacSha256(kDate, region);
  const kService = hmacSha256(kRegion, service);
  return hmacSha256(kService, "aws4_request");
}

/**
 * Signs a request. `headers` is an object of the headers to sign (a `host` header is required);
 * returns the headers to send: the given ones plus `x-amz-date`, `x-amz-security-token` (with a
 * session token) and `authorization`.
 * @param {{method: string, path: string, query?: string, headers: Record<string,string>,
 *   body: string|Uint8Array, credentials: {accessKeyId: string, secretAccessKey: string,
 *   sessionToken?: string}, region: string, service: string, date?: Date}} req
 */
export function sign(req) {
  const date = req.date || new Date();
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = String(v);
  if (!("x-amz-date" in headers)) headers["x-amz-date"] = amzDate(date);
  const when = headers["x-amz-date"];
  if (req.credentials.sessionToken) headers["x-amz-security-token"] = req.credentials.sessionToken;
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names
    .map((n) => `${n}:${headers[n].trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const signedHeaders = names.join(";");
  const canonicalRequest = [
    req.method,
    req.path,
    canonicalQuery(req.query),
    canonicalHeaders,
    signedHeaders,
    hex(sha256(req.body || "")),
  ].join("\n");
  const day = when.slice(0, 8);
  const scope = `${day}/${req.region}/${req.service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", when, scope, hex(sha256(canonicalRequest))].join("\n");
  const key = signingKey(req.credentials.secretAccessKey, day, req.region, req.service);
  const signature = hex(hmacSha256(key, stringToSign));
  headers["authorization"] =
    `AWS4-HMAC-SHA256 Credential=${req.credentials.accessKeyId}/${scope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { headers, canonicalRequest, stringToSign, signature };
}
