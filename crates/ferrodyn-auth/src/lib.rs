//! Authentication and authorization, free of HTTP and of the engine.
//!
//! - `sigv4`: verifies AWS Signature Version 4 (Authorization header and presigned query forms)
//!   against a secret looked up by access key id; pure functions of the request's parts and the
//!   current time.
//! - `policy`: IAM policy documents (identity- and resource-based) parsed into data, and one pure
//!   evaluation function: request context in, Allow / explicit Deny / implicit Deny out.
//! - `keys`: the access keys the server accepts and the policies attached to them.
//!
//! Architecture invariant: nothing here performs I/O except `keys` reading its files; secrets
//! never appear in `Debug` output or error messages.
#![forbid(unsafe_code)]

pub mod keys;
pub mod policy;
pub mod sigv4;
