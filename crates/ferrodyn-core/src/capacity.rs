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

/// Read or write units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    Read,
    Write,
}

/// What a response reports in `ConsumedCapacity`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumedCapacity {
    pub table_name: String,
    /// Total: the table's share plus every index's.
    pub capacity_units: f64,
    /// Transactions only: every figure (total, table, each index) is also reported as
    /// `ReadCapacityUnits` or `WriteCapacityUnits`, as DynamoDB does there (single-item
    /// operations, batches, Query and Scan report `CapacityUnits` alone).
    pub split: Option<UnitKind>,
    /// Set with INDEXES when the table itself was read or written.
    pub table_units: Option<f64>,
    /// With INDEXES: per global / local secondary index touched, its share.
    pub global_indexes: Vec<(String, f64)>,
    pub local_indexes: Vec<(String, f64)>,
}

/// One secondary index's share of an operation's capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexUnits {
    pub index: String,
    pub global: bool,
    pub units: f64,
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
    /// This INDEXES report as `mode` shows it (TOTAL: without the breakdown).
    pub fn for_mode(self, mode: ReturnConsumedCapacity) -> Option<ConsumedCapacity> {
        match mode {
            ReturnConsumedCapacity::None => None,
            ReturnConsumedCapacity::Indexes => Some(self),
            ReturnConsumedCapacity::Total => Some(ConsumedCapacity {
                table_units: None,
                global_indexes: Vec::new(),
                local_indexes: Vec::new(),
                ..self
            }),
        }
    }

    pub fn read(mode: ReturnConsumedCapacity, table: &str, units: f64) -> Option<ConsumedCapacity> {
        Self::with_indexes(mode, table, Some(units), &[])
    }

    pub fn write(
        mode: ReturnConsumedCapacity,
        table: &str,
        units: f64,
    ) -> Option<ConsumedCapacity> {
        Self::with_indexes(mode, table, Some(units), &[])
    }

    /// A read served by a secondary index alone (Query/Scan with IndexName).
    pub fn index_read(
        mode: ReturnConsumedCapacity,
        table: &str,
        index: &str,
        global: bool,
        units: f64,
    ) -> Option<ConsumedCapacity> {
        let share = IndexUnits {
            index: index.to_string(),
            global,
            units,
        };
        Self::with_indexes(mode, table, None, std::slice::from_ref(&share))
    }

    /// The table's share (if it was touched) plus the shares of the indexes touched. TOTAL
    /// reports only the sum; INDEXES also breaks it down.
    pub fn with_indexes(
        mode: ReturnConsumedCapacity,
        table: &str,
        table_units: Option<f64>,
        indexes: &[IndexUnits],
    ) -> Option<ConsumedCapacity> {
        let total = table_units.unwrap_or(0.0) + indexes.iter().map(|i| i.units).sum::<f64>();
        let base = ConsumedCapacity {
            table_name: table.to_string(),
            capacity_units: total,
            ..Default::default()
        };
        match mode {
            ReturnConsumedCapacity::None => None,
            ReturnConsumedCapacity::Total => Some(base),
            ReturnConsumedCapacity::Indexes => {
                let pick = |global: bool| {
                    indexes
                        .iter()
                        .filter(|i| i.global == global)
                        .map(|i| (i.index.clone(), i.units))
                        .collect::<Vec<_>>()
                };
                Some(ConsumedCapacity {
                    table_units,
                    global_indexes: pick(true),
                    local_indexes: pick(false),
                    ..base
                })
            }
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
