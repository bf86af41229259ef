//! `ferrodyn import`.
use clap::Args;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The table to import.
    pub table: String,
    #[command(flatten)]
    pub common: crate::CommonArgs,
}

pub async fn run(_args: ImportArgs) -> crate::Result<()> {
    Err(crate::DataError::Failed("not yet".into()))
}
