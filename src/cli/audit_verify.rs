//! `karmayogi-lrs audit verify`.
use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct VerifyArgs {}

pub async fn run(_args: VerifyArgs) -> ExitCode {
    eprintln!("audit verify: not available yet");
    ExitCode::FAILURE
}
