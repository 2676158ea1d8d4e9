//! Command line and environment settings.
use clap::{Args, Parser, Subcommand};

/// Defaults of the request-body deadlines (`crate::http::BodyDeadlines`).
pub const BODY_IDLE_SECS: u64 = 10;
pub const BODY_GRACE_SECS: u64 = 10;
pub const BODY_MIN_RATE_BYTES: u64 = 4096;

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

// Parsed once at start-up and matched once: the size of the serve variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the LRS (the default).
    Serve(ServeArgs),
    /// Manage Basic-auth credentials.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Manage the department tree (as the root's administrator).
    #[command(subcommand)]
    Departments(DepartmentsCommand),
    /// Erase a person's records (statements, documents, attachments only they used) and
    /// print the erasure receipt; the audit log records the erasure.
    Erase {
        #[command(flatten)]
        store: StoreArg,
        /// The person: Agent JSON, e.g. '{"mbox":"mailto:a@example.gov.in"}'.
        #[arg(long)]
        agent: String,
        /// Only within this department's subtree (default: the whole LRS).
        #[arg(long)]
        department: Option<String>,
        /// The request's reference (a case number), recorded in the receipt.
        #[arg(long)]
        reference: Option<String>,
    },
    /// The audit log's tools: verify a certificate offline, monitor a log, run a witness.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write a department subtree's change feed (docs/FEED.md) to an NDJSON file.
    Export(crate::cli::export::ExportArgs),
    /// Store statements from an NDJSON file or a JSON array (any LRS's, or an export).
    Import(crate::cli::import::ImportArgs),
    /// Manage forwarding rules (as the root's administrator; docs/FORWARDING.md).
    #[command(subcommand)]
    Forwarding(crate::cli::forwarding::ForwardingCommand),
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verify a completion certificate offline (exit 0 only if everything checks).
    Verify(crate::cli::audit_verify::VerifyArgs),
    /// Follow a log: check each new checkpoint against the last one seen, and every leaf.
    Monitor(crate::cli::audit_monitor::MonitorArgs),
    /// Run a witness (c2sp.org/tlog-witness) that checks and cosigns checkpoints.
    Witness(crate::cli::audit_witness::WitnessArgs),
}

#[derive(Args, Debug, Clone)]
pub struct StoreArg {
    /// `sqlite:PATH` (embedded) or a `mongodb://…` URI.
    #[arg(long, env = "LRS_STORE", default_value = "sqlite:./data/lrs.db")]
    pub store: String,
    /// Embedded store: size in MiB past which the write-ahead log is checkpointed and
    /// truncated while writes go on (readers never let it wrap by itself under load).
    #[arg(long, env = "LRS_SQLITE_WAL_LIMIT_MB", default_value_t = 64)]
    pub sqlite_wal_limit_mb: u64,
    /// Embedded store: threads that answer reads, each with its own connection (default:
    /// one per core, at least two). More help only when reads wait for a disk rather than
    /// a core: a store much larger than memory.
    #[arg(long, env = "LRS_SQLITE_READERS", value_parser = clap::value_parser!(u64).range(1..=256))]
    pub sqlite_readers: Option<u64>,
    /// Embedded store: most statements whose keys are folded into the key index before
    /// the server listens. A longer catch-up (an index rebuilt whole after an upgrade, or
    /// lost) runs while the server serves; filtered statement queries answer 503 with
    /// Retry-After until it is done, everything else as usual.
    #[arg(long, env = "LRS_SQLITE_INDEX_FOLD_AT_START", default_value_t = crate::store::DEFAULT_INDEX_FOLD_AT_OPEN, value_parser = clap::value_parser!(i64).range(0..))]
    pub sqlite_index_fold_at_start: i64,
    /// MongoDB: seconds a write that keeps conflicting with another (e.g. a transaction
    /// of a process that died, which the server expires after 60 s) is tried again
    /// before the request gets 503 `store_busy` with Retry-After.
    #[arg(long, env = "LRS_MONGO_CONFLICT_RETRY_SECS", default_value_t = 30)]
    pub mongo_conflict_retry_secs: u64,
}

impl StoreArg {
    pub fn options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            wal_limit_bytes: self.sqlite_wal_limit_mb.max(1).saturating_mul(1 << 20),
            readers: self
                .sqlite_readers
                .map_or_else(crate::store::default_readers, |n| n as usize),
            index_fold_at_open: self.sqlite_index_fold_at_start,
            conflict_retry: std::time::Duration::from_secs(self.mongo_conflict_retry_secs),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum CredentialsCommand {
    /// Create a credential and print its key and secret.
    Create {
        #[command(flatten)]
        store: StoreArg,
        #[arg(long)]
        name: String,
        /// Comma-separated xAPI scopes, e.g. `all` or `statements/write,state`; `admin`
        /// (not part of `all`) adds the admin API for the department's subtree.
        #[arg(long, default_value = "all")]
        scopes: String,
        /// The department the credential belongs to (`/` is the root; the department
        /// must exist): it writes there and reads that department's subtree.
        #[arg(long, default_value = "/")]
        department: String,
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

#[derive(Subcommand, Debug)]
pub enum DepartmentsCommand {
    /// Create a department, e.g. `moe` or `moe/dhe` (its parent must exist).
    Create {
        #[command(flatten)]
        store: StoreArg,
        path: String,
    },
    /// List the departments (path, parent, created), the root first.
    List {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Remove a department that has no sub-departments. One holding active credentials,
    /// statements or documents needs --force, which revokes its credentials. Learning
    /// records are never deleted: they stay readable from the departments above.
    Remove {
        #[command(flatten)]
        store: StoreArg,
        path: String,
        /// Remove even though it holds credentials or records (revokes the credentials).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "LRS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// A second address serving only `GET /metrics`, without authentication (for a
    /// Prometheus scraper on a private network); port 0 picks a free port.
    #[arg(long, env = "LRS_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    #[command(flatten)]
    pub store: StoreArg,
    /// Ensure a credential with this key and scopes `all` and `admin` (root department)
    /// exists at start.
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
    /// Bearer tokens (boxed: keeps `Command::Serve` small).
    #[command(flatten, next_help_heading = "Bearer tokens (JWT, OpenID Connect)")]
    pub jwt: Box<JwtArgs>,
    /// The audit log's signing key (a file, mode 0600, created at first start; never in
    /// the database). Default: beside an embedded store's file (`PATH.audit-key`), else
    /// `./data/audit.key`.
    #[arg(long, env = "LRS_AUDIT_KEY")]
    pub audit_key: Option<String>,
    /// The audit log's name: the origin line of its checkpoints and the name of its key
    /// (c2sp.org/tlog-checkpoint), e.g. `lrs.example.gov.in/audit`.
    #[arg(
        long,
        env = "LRS_AUDIT_ORIGIN",
        default_value = "karmayogi-lrs.local/audit"
    )]
    pub audit_origin: String,
    /// A witness that cosigns the audit log's checkpoints (c2sp.org/tlog-witness), as
    /// `URL=VKEY`: its submission prefix (`/add-checkpoint` is appended), `=`, and its
    /// cosignature/v1 verifier key (type 0x04, the `vkey` line `audit witness` prints),
    /// e.g. `https://w.example/=w.example/w1+1a2b3c4d+BASE64`. Repeat the option for
    /// several witnesses (comma-separated in LRS_AUDIT_WITNESS; empty items are
    /// ignored). An invalid value stops the start. Each new checkpoint is
    /// published at once, then again with the valid cosignatures that come back within
    /// 2 s; a witness that is down or refuses is left out and never delays the log.
    #[arg(
        long = "audit-witness",
        env = "LRS_AUDIT_WITNESS",
        value_name = "URL=VKEY"
    )]
    pub audit_witness: Vec<String>,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "LRS_WORKERS")]
    pub workers: Option<usize>,
    /// Overload bounds: a client must send its request headers within this many
    /// milliseconds or the connection is closed with 408 (slow-header clients cannot hold
    /// connections open forever).
    #[arg(long, env = "LRS_CLIENT_REQUEST_TIMEOUT_MS", default_value_t = 5000)]
    pub client_request_timeout_ms: u64,
    /// Milliseconds a closing connection may take to shut down before it is dropped.
    #[arg(long, env = "LRS_CLIENT_DISCONNECT_TIMEOUT_MS", default_value_t = 1000)]
    pub client_disconnect_timeout_ms: u64,
    /// Seconds a request body may pause without a byte before it is answered 408
    /// (`body_too_slow`) and its connection closed.
    #[arg(long, env = "LRS_BODY_IDLE_SECS", default_value_t = BODY_IDLE_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_idle_secs: u64,
    /// Slowest average rate of a request body, in bytes a second, once
    /// `--body-grace-secs` have passed (default 4096: a poor 32 kbit/s mobile link; 0 = no
    /// floor, only the pause limit applies). Slower → 408 `body_too_slow`.
    #[arg(long, env = "LRS_BODY_MIN_RATE_BYTES", default_value_t = BODY_MIN_RATE_BYTES)]
    pub body_min_rate_bytes: u64,
    /// Seconds a request body is given before its average rate is checked.
    #[arg(long, env = "LRS_BODY_GRACE_SECS", default_value_t = BODY_GRACE_SECS)]
    pub body_grace_secs: u64,
    /// Seconds an idle keep-alive connection is kept (0 disables keep-alive).
    #[arg(long, env = "LRS_KEEP_ALIVE_SECS", default_value_t = 5)]
    pub keep_alive_secs: u64,
    /// Connections each worker holds at most; further connections wait in the backlog.
    #[arg(long, env = "LRS_MAX_CONNECTIONS", default_value_t = 2048)]
    pub max_connections: usize,
    /// New connections (TLS or not) each worker accepts concurrently at most.
    #[arg(long, env = "LRS_MAX_CONNECTION_RATE", default_value_t = 256)]
    pub max_connection_rate: usize,
    /// Per-credential request rate limit (requests per second; 0 = unlimited). Counted
    /// in this process's memory: a restart refills it, several processes count apart.
    #[arg(long, env = "LRS_RATE_REQUESTS", default_value_t = 0.0)]
    pub rate_requests: f64,
    /// Requests a credential may make at once above its rate (default: the rate).
    #[arg(long, env = "LRS_RATE_REQUESTS_BURST", default_value_t = 0.0)]
    pub rate_requests_burst: f64,
    /// Per-credential statement rate limit (statements per second, each statement of a
    /// batch counted; 0 = unlimited). A batch over the allowance is refused whole.
    #[arg(long, env = "LRS_RATE_STATEMENTS", default_value_t = 0.0)]
    pub rate_statements: f64,
    /// Statements a credential may send at once above its rate (default: the rate).
    #[arg(long, env = "LRS_RATE_STATEMENTS_BURST", default_value_t = 0.0)]
    pub rate_statements_burst: f64,
    /// Requests served at once across all workers; past it a request gets 503 with
    /// Retry-After at once instead of waiting in a queue (0 = unbounded).
    #[arg(long, env = "LRS_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Listen backlog: connections the kernel queues before the server accepts them.
    #[arg(long, env = "LRS_BACKLOG", default_value_t = 1024)]
    pub backlog: u32,
    #[command(flatten, next_help_heading = "Forwarding")]
    pub forwarding: crate::forwarder::ForwardingArgs,
    #[command(flatten, next_help_heading = "Content packages (SCORM, cmi5)")]
    pub content: ContentArgs,
}

/// Where launched content runs: an origin of its own, apart from the LRS's.
#[derive(Args, Debug, Clone)]
pub struct ContentArgs {
    /// Address of the content origin (player, package files, session commits). Default:
    /// the `--listen` host on the next port (`127.0.0.1:8081`), or a free port when
    /// `--listen` asks for one. Package content is untrusted: it must never share the
    /// LRS's origin.
    #[arg(long, env = "LRS_CONTENT_LISTEN")]
    pub content_listen: Option<String>,
    /// The URL learners reach the content origin at (behind a proxy: its own host name,
    /// e.g. `https://content.lrs.example.gov.in`). Default: `http://` + the bound address.
    #[arg(long, env = "LRS_CONTENT_ORIGIN")]
    pub content_origin: Option<String>,
    /// Base of the course activity IRIs given to SCORM packages (`BASE/<manifest id>`).
    #[arg(
        long,
        env = "LRS_ACTIVITY_BASE",
        default_value = "https://karmayogi-lrs.local/content"
    )]
    pub activity_base: String,
    /// Largest package upload (bytes of the zip).
    #[arg(long, env = "LRS_MAX_PACKAGE_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub max_package_bytes: usize,
}

/// Bearer-token (JWT) settings: one source of keys (a static HS256 secret or RS256 PEM, a
/// JWKS URL, or an OpenID Connect issuer) and the rules tokens must meet.
#[derive(Args, Debug, Clone)]
pub struct JwtArgs {
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
    /// OpenID Connect issuer: its signing keys are found through
    /// `ISSUER/.well-known/openid-configuration`, and tokens must carry `iss` = ISSUER.
    #[arg(long, env = "LRS_OIDC_ISSUER", conflicts_with_all = ["jwt_jwks_url", "jwt_hs256_secret", "jwt_rs256_public_key"])]
    pub oidc_issuer: Option<String>,
    /// The console's client id at the OpenID Connect issuer: with it (and
    /// `--oidc-issuer`) the console's sign-in page offers "Sign in with <issuer>".
    #[arg(long, env = "LRS_OIDC_CLIENT_ID", requires = "oidc_issuer")]
    pub oidc_client_id: Option<String>,
    /// A file (mode 0600) holding the console's client secret, for a confidential client
    /// (sent with HTTP Basic to the token endpoint). Without it the console is a public
    /// client (PKCE only).
    #[arg(long, env = "LRS_OIDC_CLIENT_SECRET_FILE", requires = "oidc_client_id")]
    pub oidc_client_secret_file: Option<String>,
    /// Scopes the console asks for besides `openid` (space- or comma-separated).
    #[arg(long, env = "LRS_OIDC_SCOPES", default_value = "")]
    pub oidc_scopes: String,
    /// The URL people reach the LRS at (e.g. `https://lrs.example.gov.in`): the console's
    /// OpenID Connect redirect URI is `URL/console/oidc/callback`. Default: from the
    /// request (scheme and Host, or `Forwarded` behind a proxy).
    #[arg(long, env = "LRS_CONSOLE_PUBLIC_URL")]
    pub console_public_url: Option<String>,
    /// URL of a JWK set (RS256, ES256 and EdDSA keys) that verifies bearer tokens.
    #[arg(long, env = "LRS_JWT_JWKS_URL", conflicts_with_all = ["jwt_hs256_secret", "jwt_rs256_public_key"])]
    pub jwt_jwks_url: Option<String>,
    /// Claim holding the department path of a bearer token's caller.
    #[arg(long, env = "LRS_JWT_DEPARTMENT_CLAIM", default_value = "department")]
    pub jwt_department_claim: String,
    /// Clock skew allowed on a token's `exp` and `nbf` (seconds).
    #[arg(long, env = "LRS_JWT_LEEWAY_SECS", default_value_t = 5)]
    pub jwt_leeway_secs: u64,
    /// Longest token lifetime accepted: `exp` minus `nbf` (else `iat`, else now), seconds.
    #[arg(long, env = "LRS_JWT_MAX_LIFETIME_SECS", default_value_t = 86_400)]
    pub jwt_max_lifetime_secs: u64,
    /// Least time between two fetches of the JWK set (an unknown `kid` fetches it again
    /// at most this often).
    #[arg(long, env = "LRS_JWT_JWKS_MIN_REFRESH_SECS", default_value_t = 10)]
    pub jwt_jwks_min_refresh_secs: u64,
    /// Age after which the JWK set is fetched again in the background (seconds).
    #[arg(long, env = "LRS_JWT_JWKS_TTL_SECS", default_value_t = 300)]
    pub jwt_jwks_ttl_secs: u64,
}
