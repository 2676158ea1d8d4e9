//! `karmayogi-lrs audit witness`.
use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct WitnessArgs {}

pub async fn run(_args: WitnessArgs) -> ExitCode {
    eprintln!("audit witness: not available yet");
    ExitCode::FAILURE
}
