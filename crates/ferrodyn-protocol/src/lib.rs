//! The DynamoDB JSON 1.0 wire format, without HTTP.
//!
//! Owns: validation of request bodies against the API's input shapes (`shapes`), and the
//! conversion between JSON and attribute values / items (`codec`). Produces `ferrodyn_model::Error`
//! values; never maps them to HTTP (the server's wire module does that).
#![forbid(unsafe_code)]

pub mod codec;
pub mod shapes;
