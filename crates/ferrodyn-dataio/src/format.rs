//! The names DynamoDB's export and import APIs use for formats, compression and views, and the
//! records a data file holds.
//!
//! Owns: the enum values of the service model (`ExportFormat`, `InputFormat`,
//! `InputCompressionType`, `ExportViewType`, `ExportType`) with their wire spellings, and the
//! [`Record`] / [`ChangeRecord`] shapes of full and incremental exports.

use ferrodyn_model::Item;

/// `ExportFormat`: the encoding of an export's data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    DynamoDbJson,
    Ion,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::DynamoDbJson => "DYNAMODB_JSON",
            ExportFormat::Ion => "ION",
        }
    }

    pub fn parse(s: &str) -> Option<ExportFormat> {
        match s {
            "DYNAMODB_JSON" => Some(ExportFormat::DynamoDbJson),
            "ION" => Some(ExportFormat::Ion),
            _ => None,
        }
    }

    /// The data-file extension DynamoDB uses before `.gz`.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::DynamoDbJson => "json",
            ExportFormat::Ion => "ion",
        }
    }

    /// The same encoding as an import format.
    pub fn as_input(self) -> InputFormat {
        match self {
            ExportFormat::DynamoDbJson => InputFormat::DynamoDbJson,
            ExportFormat::Ion => InputFormat::Ion,
        }
    }
}

/// `InputFormat`: the encoding of an import's source files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    DynamoDbJson,
    Ion,
    Csv,
}

impl InputFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            InputFormat::DynamoDbJson => "DYNAMODB_JSON",
            InputFormat::Ion => "ION",
            InputFormat::Csv => "CSV",
        }
    }

    pub fn parse(s: &str) -> Option<InputFormat> {
        match s {
            "DYNAMODB_JSON" => Some(InputFormat::DynamoDbJson),
            "ION" => Some(InputFormat::Ion),
            "CSV" => Some(InputFormat::Csv),
            _ => None,
        }
    }
}

/// `InputCompressionType`; exports always use [`Compression::Gzip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "GZIP",
            Compression::Zstd => "ZSTD",
            Compression::None => "NONE",
        }
    }

    pub fn parse(s: &str) -> Option<Compression> {
        match s {
            "GZIP" => Some(Compression::Gzip),
            "ZSTD" => Some(Compression::Zstd),
            "NONE" => Some(Compression::None),
            _ => None,
        }
    }
}

/// `ExportViewType` of an incremental export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportViewType {
    NewImage,
    NewAndOldImages,
}

impl ExportViewType {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportViewType::NewImage => "NEW_IMAGE",
            ExportViewType::NewAndOldImages => "NEW_AND_OLD_IMAGES",
        }
    }

    pub fn parse(s: &str) -> Option<ExportViewType> {
        match s {
            "NEW_IMAGE" => Some(ExportViewType::NewImage),
            "NEW_AND_OLD_IMAGES" => Some(ExportViewType::NewAndOldImages),
            _ => None,
        }
    }
}

/// `ExportType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportType {
    FullExport,
    IncrementalExport,
}

impl ExportType {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportType::FullExport => "FULL_EXPORT",
            ExportType::IncrementalExport => "INCREMENTAL_EXPORT",
        }
    }

    pub fn parse(s: &str) -> Option<ExportType> {
        match s {
            "FULL_EXPORT" => Some(ExportType::FullExport),
            "INCREMENTAL_EXPORT" => Some(ExportType::IncrementalExport),
            _ => None,
        }
    }
}

/// One change of an incremental export: the item's key, when the change was written, and the
/// images the view type keeps. A deletion has no new image; an insertion has no old image.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    pub write_timestamp_micros: u64,
    pub keys: Item,
    pub new_image: Option<Item>,
    pub old_image: Option<Item>,
}

impl ChangeRecord {
    /// True when the change removed the item.
    pub fn is_delete(&self) -> bool {
        self.new_image.is_none()
    }
}

/// One record of a data file: an item of a full export (or import file), or a change of an
/// incremental export.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Item(Item),
    Change(ChangeRecord),
}

impl Record {
    /// The item an import loads from this record: the item itself, or a change's new image
    /// (`None` for a deletion, which loads nothing).
    pub fn into_item(self) -> Option<Item> {
        match self {
            Record::Item(item) => Some(item),
            Record::Change(change) => change.new_image,
        }
    }
}
