//! AWS Signature Version 4 verification.
