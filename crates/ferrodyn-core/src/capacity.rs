//! Capacity-unit arithmetic, as DynamoDB charges it.
//!
//! Reads: one unit per started 4 KB of data read (half for eventually consistent reads), at least
//! one started block even when nothing is found. Writes: one unit per started 1 KB of the larger of
//! the old and new item, at least one. Transactional operations cost double.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnConsumedCapacity {
    #[default]
    None,
    Total,
    Indexes,
}

/// What a response reports in `ConsumedCapacity`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumedCapacity {
    pub table_name: String,
    pub capacity_units: f64,
    pub read_capacity_units: Option<f64>,
    pub write_capacity_units: Option<f64>,
    /// Set with INDEXES: the table's own share.
    pub table_units: Option<f64>,
}

pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let blocks = bytes.div_ceil(4096).max(1) as f64;
    if consistent {
        blocks
    } else {
        blocks / 2.0
    }
}

pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

impl ConsumedCapacity {
    pub fn read(mode: ReturnConsumedCapacity, table: &str, units: f64) -> Option<ConsumedCapacity> {
        Self::make(mode, table, units, true)
    }
    pub fn write(
        mode: ReturnConsumedCapacity,
        table: &str,
        units: f64,
    ) -> Option<ConsumedCapacity> {
        Self::make(mode, table, units, false)
    }
    fn make(
        mode: ReturnConsumedCapacity,
        table: &str,
        units: f64,
        read: bool,
    ) -> Option<ConsumedCapacity> {
        let _ = read;
        match mode {
            ReturnConsumedCapacity::None => None,
            ReturnConsumedCapacity::Total => Some(ConsumedCapacity {
                table_name: table.to_string(),
                capacity_units: units,
                read_capacity_units: None,
                write_capacity_units: None,
                table_units: None,
            }),
            ReturnConsumedCapacity::Indexes => Some(ConsumedCapacity {
                table_name: table.to_string(),
                capacity_units: units,
                read_capacity_units: None,
                write_capacity_units: None,
                table_units: Some(units),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_arithmetic() {
        assert_eq!(read_units(0, true), 1.0);
        assert_eq!(read_units(0, false), 0.5);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(8193, false), 1.5);
        assert_eq!(write_units(1), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
    }
}
