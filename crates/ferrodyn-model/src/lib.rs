//! Domain types of DynamoDB, shared by every other Ferrodyn crate.
//!
//! Owns: attribute values, exact decimal numbers, item size arithmetic, the order-preserving key
//! encoding, the error vocabulary of DynamoDB, and a visitor over item contents.
//! Must not: do I/O, know HTTP, or expose JSON in its public API.
#![forbid(unsafe_code)]

pub mod calendar;
pub mod error;
pub mod keycodec;
pub mod number;
pub mod size;
pub mod value;
pub mod visit;

pub use error::{Error, Result};
pub use number::{Number, NumberError};
pub use value::{AttributeValue, Item, ScalarType};
