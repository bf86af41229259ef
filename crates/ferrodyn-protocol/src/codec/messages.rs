//! DynamoDB's exact wording for attribute-value problems, in one place.
//!
//! Invariant: every string here is byte-for-byte what DynamoDB sends, odd spacing included
//! ("An string set  may not be empty", "]of type BS").

use ferrodyn_model::Error;

/// Levels of nesting an attribute value may have, counting the attribute itself as level 1.
pub const MAX_NESTING_LEVELS: usize = 32;

pub(crate) const INVALID_PREFIX: &str = "One or more parameter values were invalid: ";

pub(crate) const EMPTY_VALUE: &str =
    "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
pub(crate) const MANY_TYPES: &str = "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes";
pub(crate) const NULL_NOT_TRUE: &str = "Null attribute value types must have the value of true";
pub(crate) const EMPTY_SS: &str = "An string set  may not be empty";
pub(crate) const EMPTY_NS: &str = "An number set  may not be empty";
pub(crate) const EMPTY_BS: &str = "Binary sets should not be empty";
pub(crate) const NESTING: &str = "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";

pub(crate) const NOT_NUMERIC: &str = "The parameter cannot be converted to a numeric value";
pub(crate) const TOO_MANY_DIGITS: &str =
    "Attempting to store more than 38 significant digits in a Number";
pub(crate) const OVERFLOW: &str =
    "Number overflow. Attempting to store a number with magnitude larger than supported range";
pub(crate) const UNDERFLOW: &str =
    "Number underflow. Attempting to store a number with magnitude smaller than supported range";

// Deserialization (SerializationException) wording, from DynamoDB's JSON reader.
pub(crate) const START_OF_STRUCTURE: &str = "Start of structure or map found where not expected";
pub(crate) const UNEXPECTED_FIELD_TYPE: &str = "Unexpected field type";
pub(crate) const UNEXPECTED_VALUE_TYPE: &str = "Unexpected value type in payload";
pub(crate) const UNEXPECTED_TOKEN: &str = "Unexpected token received from parser";
pub(crate) const ONLY_BASE64: &str = "only base-64-encoded strings are convertible to bytes";
pub(crate) const BAD_BASE64_LAST: &str = "Invalid last non-pad Base64 character dectected";
pub(crate) const COLLECTION_ATTRIBUTE_VALUE: &str =
    "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue";
pub(crate) const COLLECTION_MAP: &str = "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>";
pub(crate) const COLLECTION_STRING: &str = "Unrecognized collection type class java.lang.String";
pub(crate) const COLLECTION_BOOLEAN: &str = "Unrecognized collection type class java.lang.Boolean";
pub(crate) const COLLECTION_BYTES: &str = "Unrecognized collection type class java.nio.ByteBuffer";

pub(crate) fn invalid(msg: &str) -> Error {
    Error::Validation(format!("{INVALID_PREFIX}{msg}"))
}

pub(crate) fn bare(msg: impl Into<String>) -> Error {
    Error::Validation(msg.into())
}

pub(crate) fn serialization(msg: impl Into<String>) -> Error {
    Error::Serialization(msg.into())
}

pub(crate) fn base64_length(len: usize) -> Error {
    serialization(format!(
        "Base64 encoded length is expected a multiple of 4 bytes but found: {len}"
    ))
}
