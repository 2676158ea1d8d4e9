//! `karmayogi-lrs audit monitor`.
use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct MonitorArgs {}

pub async fn run(_args: MonitorArgs) -> ExitCode {
    eprintln!("audit monitor: not available yet");
    ExitCode::FAILURE
}
