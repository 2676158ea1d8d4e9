//! Command line and environment settings.
use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "karmayogi-lrs",
    version,
    about = "xAPI 1.0.3 + 2.0 Learning Record Store"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the LRS (the default).
    Serve(ServeArgs),
    /// Manage Basic-auth credentials.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
}

#[derive(Args, Debug, Clone)]
pub struct StoreArg {
    /// `sqlite:PATH` (embedded) or a `mongodb://…` URI.
    #[arg(long, env = "LRS_STORE", default_value = "sqlite:./data/lrs.db")]
    pub store: String,
}

#[derive(Subcommand, Debug)]
pub enum CredentialsCommand {
    /// Create a credential and print its key and secret.
    Create {
        #[command(flatten)]
        store: StoreArg,
        #[arg(long)]
        name: String,
        /// Comma-separated xAPI scopes, e.g. `all` or `statements/write,state`.
        #[arg(long, default_value = "all")]
        scopes: String,
    },
    /// List credentials (never their secrets).
    List {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Revoke a credential by key.
    Revoke {
        #[command(flatten)]
        store: StoreArg,
        key: String,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "LRS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[command(flatten)]
    pub store: StoreArg,
    /// Ensure a credential with this key and scope `all` exists at start.
    #[arg(long, env = "LRS_BOOTSTRAP_KEY")]
    pub bootstrap_key: Option<String>,
    #[arg(long, env = "LRS_BOOTSTRAP_SECRET", hide_env_values = true)]
    pub bootstrap_secret: Option<String>,
    /// Largest request body accepted (statements with attachments included); larger → 413.
    #[arg(long, env = "LRS_MAX_BODY_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Page size of GET /statements when `limit` is 0 or absent.
    #[arg(long, env = "LRS_PAGE_SIZE", default_value_t = 100)]
    pub page_size: usize,
    /// Largest page GET /statements returns.
    #[arg(long, env = "LRS_MAX_PAGE_SIZE", default_value_t = 1000)]
    pub max_page_size: usize,
    /// `homePage` of the account in the authority the LRS sets for Basic credentials.
    #[arg(
        long,
        env = "LRS_AUTHORITY_HOMEPAGE",
        default_value = "https://karmayogi-lrs.local/credentials"
    )]
    pub authority_homepage: String,
    /// Shared secret for HS256 JWT bearer tokens.
    #[arg(long, env = "LRS_JWT_HS256_SECRET", hide_env_values = true)]
    pub jwt_hs256_secret: Option<String>,
    /// PEM file with the RSA public key for RS256 JWT bearer tokens.
    #[arg(long, env = "LRS_JWT_RS256_PUBLIC_KEY")]
    pub jwt_rs256_public_key: Option<String>,
    /// Required `iss` of JWT bearer tokens, if set.
    #[arg(long, env = "LRS_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of JWT bearer tokens, if set.
    #[arg(long, env = "LRS_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "LRS_WORKERS")]
    pub workers: Option<usize>,
}
