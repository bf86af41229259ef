//! `ferrodyn export`.
use clap::Args;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The table to export.
    pub table: String,
    #[command(flatten)]
    pub common: crate::CommonArgs,
}

pub async fn run(_args: ExportArgs) -> crate::Result<()> {
    Err(crate::DataError::Failed("not yet".into()))
}
