//! `karmayogi-lrs audit verify CERT.json --vkey VKEY`: checks a completion certificate
//! offline (no network) against the log's verifier key, prints who completed what, when
//! and where it was logged, or why the certificate is refused (docs/AUDIT.md §7).
//!
//! Exit status: 0 verified, 1 not verified, 2 the certificate or key could not be read.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::audit::certificate;
use crate::audit::note::Verifier;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The certificate file, as the LRS issued it.
    pub certificate: PathBuf,
    /// The log's verifier key (`<name>+<id>+<key>`), or a file holding it.
    #[arg(long)]
    pub vkey: String,
}

const NOT_READ: u8 = 2;

pub async fn run(args: VerifyArgs) -> ExitCode {
    let vkey = match read_vkey(&args.vkey) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("audit verify: {e}");
            return ExitCode::from(NOT_READ);
        }
    };
    let file = match std::fs::read(&args.certificate) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "audit verify: cannot read {}: {e}",
                args.certificate.display()
            );
            return ExitCode::from(NOT_READ);
        }
    };
    let v = certificate::verify(&file, &vkey);
    println!("{}", v.summary);
    for f in &v.failures {
        println!("- {f}");
    }
    if v.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The key itself, else the content of the file it names (surrounding white space,
/// such as a final newline, ignored).
fn read_vkey(arg: &str) -> Result<Verifier, String> {
    if let Ok(v) = Verifier::parse(arg) {
        return Ok(v);
    }
    let text = std::fs::read_to_string(arg)
        .map_err(|e| format!("--vkey is neither a verifier key nor a readable file ({e})"))?;
    Verifier::parse(text.trim()).map_err(|e| format!("{arg}: {e}"))
}
