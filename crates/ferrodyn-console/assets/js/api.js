// The console's only way to the server: the public API on the same origin, signed with SigV4
// like any SDK request (POST / with X-Amz-Target; GET /metrics). The session (access key id,
// secret, region) lives in sessionStorage only: never in a URL, a cookie or a log line.

import { sign } from "./sigv4.js";

const SESSION_KEY = "ferrodyn-console-session";
/** Credentials used under `--auth none`, where any well-formed signature is accepted. */
export const ANONYMOUS = Object.freeze({
  accessKeyId: "ferrodyn-console",
  secretAccessKey: "ferrodyn-console",
  region: "us-east-1",
  anonymous: true,
});
/** A key id no key file holds: the mode probe signs with it (see `detectMode`). */
const PROBE = Object.freeze({ accessKeyId: "FERRODYN-CONSOLE-PROBE", secretAccessKey: "probe", region: "us-east-1" });

/** An error answered by the API: its `__type` (short and full), message and HTTP status. */
export class ApiError extends Error {
  constructor(fullType, message, status) {
    super(message || "");
    this.fullType = fullType;
    this.type = String(fullType || "Error").split("#").pop();
    this.status = status;
  }
}

export function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    return s && s.accessKeyId && s.secretAccessKey ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(s) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

function credentials() {
  return loadSession() || ANONYMOUS;
}

function signedHeaders(method, path, body, extra, creds) {
  const signed = sign({
    method,
    path,
    headers: { host: location.host, ...extra },
    body,
    credentials: creds,
    region: creds.region || "us-east-1",
    service: "dynamodb",
  });
  // The browser sets Host itself (it is a forbidden header name for fetch).
  delete signed.headers.host;
  return signed.headers;
}

/**
 * Calls an operation, e.g. `call("DynamoDB_20120810.PutItem", {...})`; resolves to the parsed
 * answer, rejects with an `ApiError`.
 */
export async function call(target, input, creds = credentials()) {
  const body = JSON.stringify(input || {});
  const headers = signedHeaders(
    "POST",
    "/",
    body,
    { "content-type": "application/x-amz-json-1.0", "x-amz-target": target },
    creds,
  );
  let resp;
  try {
    resp = await fetch("/", { method: "POST", headers, body, cache: "no-store", credentials: "omit" });
  } catch (e) {
    throw new ApiError("NetworkError", `The server did not answer (${e.message})`, 0);
  }
  const text = await resp.text();
  let json = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    throw new ApiError("InvalidResponse", `Unexpected answer (HTTP ${resp.status})`, resp.status);
  }
  if (!resp.ok) {
    throw new ApiError(json.__type || `HTTP${resp.status}`, json.message || json.Message || "", resp.status);
  }
  return json;
}

/** A DynamoDB operation by name. */
export function ddb(op, input) {
  return call(`DynamoDB_20120810.${op}`, input);
}

/** A DynamoDB Streams operation by name. */
export function streams(op, input) {
  return call(`DynamoDBStreams_20120810.${op}`, input);
}

/** The Prometheus text of GET /metrics (signed, as `ferrodyn:GetMetrics` is authorized). */
export async function metricsText() {
  const headers = signedHeaders("GET", "/metrics", "", {}, credentials());
  const resp = await fetch("/metrics", { headers, cache: "no-store", credentials: "omit" });
  const text = await resp.text();
  if (!resp.ok) {
    let json = {};
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    throw new ApiError(json.__type || `HTTP${resp.status}`, json.message || json.Message || text, resp.status);
  }
  return text;
}

/**
 * Which authentication mode the server is in, learned without a secret: a ListTables signed
 * with a key id no key file holds. `--auth none` accepts any well-formed signature and answers;
 * `--auth keys` refuses the unknown key (UnrecognizedClientException). Returns "none" or "keys".
 */
export async function detectMode() {
  try {
    await call("DynamoDB_20120810.ListTables", { Limit: 1 }, PROBE);
    return "none";
  } catch (e) {
    if (/^(UnrecognizedClient|InvalidSignature|IncompleteSignature|MissingAuthenticationToken)/.test(e.type)) return "keys";
    if (e.status === 0) throw e;
    // Any other answer came from an operation that ran: nothing was enforced.
    return "none";
  }
}

/** Every table name (ListTables pages followed). */
export async function listAllTables() {
  const names = [];
  let start;
  do {
    const page = await ddb("ListTables", start ? { ExclusiveStartTableName: start } : {});
    names.push(...(page.TableNames || []));
    start = page.LastEvaluatedTableName;
  } while (start && names.length < 10000);
  return names;
}
