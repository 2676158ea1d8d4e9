use actix_web::{web, App, HttpServer};
use clap::Parser;
use karmayogi_lrs::admin;
use karmayogi_lrs::auth::{
    self, Authenticator, Jwks, JwksOrigin, JwksSettings, JwtConfig, JwtKeys,
};
use karmayogi_lrs::cli;
use karmayogi_lrs::config::{
    AuditCommand, Cli, Command, CredentialsCommand, DepartmentsCommand, ServeArgs,
};
use karmayogi_lrs::departments::Department;
use karmayogi_lrs::error::XapiError;
use karmayogi_lrs::http::middleware::{LastVersions, XapiHeaders};
use karmayogi_lrs::http::{self, AppState, Limits};
use karmayogi_lrs::store;
use std::io::Write;
use std::process::ExitCode;

/// Requests allocate and free many small JSON values on every worker thread; mimalloc's
/// thread-local free lists cost a fraction of the system allocator's (profiled in W2).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Arenas glibc's malloc may keep. SQLite's page caches, statements and sorts are
/// allocated with glibc's malloc (Rust's own allocations go to mimalloc), and glibc gives
/// threads that meet contention arenas of their own, up to eight per core, each keeping
/// the memory freed into it. At 1M statements the peak resident memory was 184–207 MB
/// with two arenas and 232–251 MB with four or sixteen (docs/PERFORMANCE.md, "Peak memory
/// at 1M statements"); an operator can choose with `MALLOC_ARENA_MAX`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: libc::c_int = 2;

/// Sets `MALLOC_ARENAS` unless the operator chose with glibc's own `MALLOC_ARENA_MAX`.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called first in `main`, before any other thread exists; mallopt only
        // sets a limit for arenas created later.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LRS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        None => runtime.block_on(serve(cli.serve)),
        Some(Command::Serve(args)) => runtime.block_on(serve(args)),
        Some(Command::Credentials(cmd)) => runtime.block_on(credentials(cmd)),
        Some(Command::Departments(cmd)) => runtime.block_on(departments(cmd)),
        Some(Command::Forwarding(cmd)) => runtime.block_on(cli::forwarding::run(cmd)),
        Some(Command::Erase {
            store,
            agent,
            department,
            reference,
        }) => runtime.block_on(erase(store.store, agent, department, reference)),
        // These decide their own exit status (verify and monitor: 0 only if all checks).
        Some(Command::Audit(AuditCommand::Verify(args))) => {
            return runtime.block_on(cli::audit_verify::run(args))
        }
        Some(Command::Audit(AuditCommand::Monitor(args))) => {
            return runtime.block_on(cli::audit_monitor::run(args))
        }
        Some(Command::Audit(AuditCommand::Witness(args))) => {
            return runtime.block_on(cli::audit_witness::run(args))
        }
        Some(Command::Export(args)) => runtime.block_on(cli::export::run(args)),
        Some(Command::Import(args)) => return runtime.block_on(cli::import::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A command's error: the message alone (the status is for HTTP clients).
fn cli_error(e: XapiError) -> String {
    e.message
}

/// How long a stop waits for the background work once the HTTP servers have stopped.
/// Steps that only read stop at once; a write in progress (one short transaction) always
/// finishes, since one left open would hold its documents until the database expires it.
const BACKGROUND_DRAIN: std::time::Duration = std::time::Duration::from_secs(25);

async fn credentials(cmd: CredentialsCommand) -> Result<(), String> {
    // The command line administers the whole tree: it acts as the root.
    let root = Department::root();
    match cmd {
        CredentialsCommand::Create {
            store,
            name,
            scopes,
            department,
        } => {
            let store = store::open(&store.store).await?;
            let request = admin::NewCredential {
                name,
                scopes: auth::scope_list(&scopes),
                department: Some(department),
            };
            let issued = admin::create_credential(&store, &root, request).await;
            store.close().await;
            let issued = issued.map_err(cli_error)?;
            println!(
                "key: {}\nsecret: {}\nscopes: {}\ndepartment: {}",
                issued.key,
                issued.secret,
                issued.scopes.join(","),
                issued.department
            );
            Ok(())
        }
        CredentialsCommand::List { store } => {
            let store = store::open(&store.store).await?;
            let list = admin::list_credentials(&store, &root).await;
            store.close().await;
            let mut out = std::io::stdout().lock();
            for c in list.map_err(cli_error)? {
                let created = chrono::DateTime::from_timestamp_micros(c.created_us)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    c.key,
                    c.name,
                    c.scopes.join(","),
                    c.department,
                    created,
                    if c.revoked { "revoked" } else { "active" }
                );
            }
            Ok(())
        }
        CredentialsCommand::Revoke { store, key } => {
            let store = store::open(&store.store).await?;
            let revoked = admin::revoke_credential(&store, &root, &key).await;
            store.close().await;
            revoked.map_err(cli_error)?;
            println!("revoked {key}");
            Ok(())
        }
    }
}

async fn departments(cmd: DepartmentsCommand) -> Result<(), String> {
    let root = Department::root();
    match cmd {
        DepartmentsCommand::Create { store, path } => {
            let store = store::open(&store.store).await?;
            let created = admin::create_department(&store, &root, &path).await;
            store.close().await;
            println!("created {}", created.map_err(cli_error)?.path);
            Ok(())
        }
        DepartmentsCommand::List { store } => {
            let store = store::open(&store.store).await?;
            let list = admin::list_departments(&store, &root).await;
            store.close().await;
            let mut out = std::io::stdout().lock();
            for d in list.map_err(cli_error)? {
                let created = d
                    .created_us
                    .and_then(chrono::DateTime::from_timestamp_micros)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "-".to_owned());
                let parent = d
                    .parent()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".to_owned());
                let _ = writeln!(out, "{}\t{parent}\t{created}", d.path);
            }
            Ok(())
        }
        DepartmentsCommand::Remove { store, path, force } => {
            let store = store::open(&store.store).await?;
            let removed = admin::remove_department(&store, &root, &path, force).await;
            store.close().await;
            let removed = removed.map_err(cli_error)?;
            for key in &removed.revoked {
                println!("revoked {key}");
            }
            println!("removed {path} (its statements and documents are kept)");
            Ok(())
        }
    }
}

async fn erase(
    store: String,
    agent: String,
    department: Option<String>,
    reference: Option<String>,
) -> Result<(), String> {
    let store = store::open(&store).await?;
    let requested_by = serde_json::json!({
        "objectType": "Agent",
        "account": {"homePage": "https://karmayogi-lrs.local/command-line", "name": "erase"},
    });
    let outcome = admin::erase_agent(
        &store,
        &Department::root(),
        requested_by,
        admin::EraseRequest {
            agent,
            department,
            reference,
        },
    )
    .await;
    store.close().await;
    let outcome = outcome.map_err(cli_error)?;
    eprintln!(
        "erased {} statements, {} documents, {} attachments; the log names leaves {:?} (receipt SHA-256 {})",
        outcome.erased.statements,
        outcome.erased.documents,
        outcome.erased.attachments,
        outcome.leaves,
        outcome.receipt_hash
    );
    // The receipt on stdout, byte for byte (its hash is in the log).
    print!("{}", outcome.receipt);
    Ok(())
}

/// Bearer-token settings from the flags; with an identity provider, the first fetch of
/// its keys happens here (a failure is logged and the LRS starts anyway: bearer tokens
/// get 503 until the keys load).
async fn jwt_config(args: &ServeArgs) -> Result<Option<JwtConfig>, String> {
    let authority_homepage = args.authority_homepage.clone();
    let args = &args.jwt;
    let statics = [&args.jwt_hs256_secret, &args.jwt_rs256_public_key]
        .iter()
        .filter(|a| a.is_some())
        .count();
    let providers = [&args.oidc_issuer, &args.jwt_jwks_url]
        .iter()
        .filter(|a| a.is_some())
        .count();
    if statics + providers > 1 {
        return Err("set one source of bearer-token keys: LRS_JWT_HS256_SECRET, LRS_JWT_RS256_PUBLIC_KEY, LRS_JWT_JWKS_URL or LRS_OIDC_ISSUER".into());
    }
    if args.jwt_department_claim.is_empty() {
        return Err("LRS_JWT_DEPARTMENT_CLAIM must not be empty".into());
    }
    let mut issuer = args.jwt_issuer.clone();
    let keys = if let Some(secret) = &args.jwt_hs256_secret {
        JwtKeys::Static {
            key: jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
            algorithm: jsonwebtoken::Algorithm::HS256,
        }
    } else if let Some(path) = &args.jwt_rs256_public_key {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(&pem)
            .map_err(|e| format!("bad RSA key in {path}: {e}"))?;
        JwtKeys::Static {
            key,
            algorithm: jsonwebtoken::Algorithm::RS256,
        }
    } else if providers == 1 {
        let origin = match (&args.oidc_issuer, &args.jwt_jwks_url) {
            (Some(iss), _) => {
                auth::check_url(iss).map_err(|e| format!("LRS_OIDC_ISSUER: {e}"))?;
                match &issuer {
                    Some(other) if other != iss => {
                        return Err(format!("LRS_JWT_ISSUER (`{other}`) differs from LRS_OIDC_ISSUER (`{iss}`): unset LRS_JWT_ISSUER"));
                    }
                    _ => issuer = Some(iss.clone()),
                }
                JwksOrigin::Discovery {
                    issuer: iss.clone(),
                }
            }
            (None, Some(url)) => {
                auth::check_url(url).map_err(|e| format!("LRS_JWT_JWKS_URL: {e}"))?;
                JwksOrigin::Url(url.clone())
            }
            (None, None) => return Ok(None),
        };
        let jwks = Jwks::new(
            origin,
            JwksSettings {
                min_refresh: std::time::Duration::from_secs(args.jwt_jwks_min_refresh_secs),
                ttl: std::time::Duration::from_secs(args.jwt_jwks_ttl_secs.max(1)),
                timeout: std::time::Duration::from_secs(10),
            },
        );
        jwks.refresh().await;
        JwtKeys::Jwks(jwks)
    } else {
        return Ok(None);
    };
    let config = JwtConfig {
        keys,
        issuer,
        audience: args.jwt_audience.clone(),
        authority_homepage,
        department_claim: args.jwt_department_claim.clone(),
        leeway_secs: args.jwt_leeway_secs,
        max_lifetime_secs: args.jwt_max_lifetime_secs,
    };
    tracing::info!("{}", config.describe());
    Ok(Some(config))
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let witnesses = karmayogi_lrs::auditlog::witnesses::parse_list(&args.audit_witness)?;
    // Held while the server runs (released when the process ends).
    let _exclusive = store::exclusive(&args.store.store)?;
    let store = store::open_with(&args.store.store, &args.store.options()).await?;
    match (&args.bootstrap_key, &args.bootstrap_secret) {
        (Some(key), Some(secret)) => {
            let record = auth::new_credential(
                key,
                secret,
                "bootstrap",
                &[auth::Scope::All, auth::Scope::Admin],
                &Department::root(),
            )?;
            match store.put_credential(&record).await {
                Ok(()) => tracing::info!(
                    "bootstrap credential `{key}` (scopes all, admin; root department) is ready"
                ),
                // A full disk must not keep the LRS from starting to serve reads: the
                // credential stored at an earlier start stays as it was.
                Err(store::StoreError::Full(e))
                    if store.get_credential(key).await.is_ok_and(|c| c.is_some()) =>
                {
                    tracing::warn!(
                        "the store is full ({e}): bootstrap credential `{key}` stays as stored \
                         before; it is written again at a start with space"
                    )
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        (None, None) => {
            let n = store
                .list_credentials()
                .await
                .map_err(|e| e.to_string())?
                .len();
            if n == 0 {
                tracing::warn!(
                    "no credentials yet: create one with `karmayogi-lrs credentials create --name NAME --scopes all --store {}`",
                    args.store.store
                );
            }
        }
        _ => return Err("set both LRS_BOOTSTRAP_KEY and LRS_BOOTSTRAP_SECRET, or neither".into()),
    }
    let key_path = audit_key_path(&args);
    let signer = karmayogi_lrs::auditlog::load_or_create_key(
        std::path::Path::new(&key_path),
        &args.audit_origin,
    )?;
    let audit = karmayogi_lrs::auditlog::AuditLog::new(store.clone(), signer);
    let clock = std::sync::Arc::new(karmayogi_lrs::store::clock::StoredClock::default());
    let (stop_sequencer, sequencer_stop) = tokio::sync::watch::channel(false);
    let sequencer = tokio::spawn(karmayogi_lrs::auditlog::sequencer::run(
        audit.clone(),
        clock.clone(),
        witnesses,
        sequencer_stop.clone(),
    ));
    let metrics = std::sync::Arc::new(karmayogi_lrs::metrics::Metrics::new());
    // Forwarding: its own tasks, never on the path of a request.
    let forwarder = tokio::spawn(karmayogi_lrs::forwarder::worker::run(
        store.clone(),
        audit.clone(),
        (&args.forwarding).into(),
        metrics.clone(),
        sequencer_stop,
    ));
    let projector = tokio::spawn(karmayogi_lrs::completions::run(
        store.clone(),
        audit.clone(),
        stop_sequencer.subscribe(),
    ));
    let state = web::Data::new(AppState {
        auth: Authenticator::new(
            store.clone(),
            args.authority_homepage.clone(),
            jwt_config(&args).await?,
        ),
        store: store.clone(),
        clock,
        audit,
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            page_size: args.page_size.max(1),
            max_page_size: args.max_page_size.max(1),
        },
        metrics: metrics.clone(),
        quotas: std::sync::Arc::new(karmayogi_lrs::quota::Quotas::new(
            karmayogi_lrs::quota::Limit::new(args.rate_requests, args.rate_requests_burst),
            karmayogi_lrs::quota::Limit::new(args.rate_statements, args.rate_statements_burst),
        )),
        console_oidc: karmayogi_lrs::http::console::oidc::ConsoleOidc::from_args(&args.jwt)?
            .map(std::sync::Arc::new),
    });
    // Departments' rate limits: read now, and again every `quota::REFRESH` for those
    // another process sharing the store sets (this process applies its own at once).
    {
        let quotas = state.quotas.clone();
        let store = store.clone();
        quotas.set_department_limits(
            karmayogi_lrs::admin::department_limits(&store)
                .await
                .map_err(|e| format!("cannot read the departments' rate limits: {e}"))?,
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(karmayogi_lrs::quota::REFRESH).await;
                match karmayogi_lrs::admin::department_limits(&store).await {
                    Ok(l) => quotas.set_department_limits(l),
                    Err(e) => tracing::warn!("cannot read the departments' rate limits: {e}"),
                }
            }
        });
    }
    http::set_body_deadlines(http::BodyDeadlines {
        idle: std::time::Duration::from_secs(args.body_idle_secs),
        grace: std::time::Duration::from_secs(args.body_grace_secs),
        min_rate: args.body_min_rate_bytes,
    });
    let max_body = args.max_body_bytes;
    let last_versions = std::sync::Arc::new(LastVersions::default());
    let metrics_server = match &args.metrics_listen {
        Some(addr) => Some(metrics_server(addr, state.clone())?),
        None => None,
    };
    let (content_server, content) = content_server(&args, &state)?;
    let content = web::Data::new(content);
    let in_flight = http::middleware::InFlight::new(args.max_in_flight, metrics.clone());
    let mut server = HttpServer::new(move || {
        let in_flight = in_flight.clone();
        App::new()
            .app_data(state.clone())
            .app_data(content.clone())
            .wrap(XapiHeaders {
                max_body_bytes: max_body,
                last_versions: last_versions.clone(),
            })
            .wrap_fn(http::console::quiet_challenge)
            .wrap(actix_web::middleware::Compress::default())
            .wrap(http::metrics::RecordRequests(metrics.clone()))
            .configure(http::configure)
            .wrap_fn(move |req, srv| http::middleware::shed_load(&in_flight, req, srv))
    })
    .shutdown_timeout(30)
    // Slow or idle clients are cut off on a deadline instead of holding a connection
    // (and its buffers) for ever; connection counts are capped so memory stays bounded.
    .client_request_timeout(std::time::Duration::from_millis(
        args.client_request_timeout_ms,
    ))
    .client_disconnect_timeout(std::time::Duration::from_millis(
        args.client_disconnect_timeout_ms,
    ))
    .keep_alive(if args.keep_alive_secs == 0 {
        actix_web::http::KeepAlive::Disabled
    } else {
        actix_web::http::KeepAlive::Timeout(std::time::Duration::from_secs(args.keep_alive_secs))
    })
    .max_connections(args.max_connections.max(1))
    .max_connection_rate(args.max_connection_rate.max(1))
    .backlog(args.backlog.max(1));
    if let Some(w) = args.workers {
        server = server.workers(w.max(1));
    }
    let server = server
        .disable_signals()
        .bind(&args.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    // SIGTERM/SIGINT handlers exist before anyone is told the address: a stop asked for
    // the moment the server is up is a graceful stop, not a kill.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    let addrs = server.addrs();
    let server = server.run();
    let mut handles = vec![server.handle(), content_server.handle()];
    handles.extend(metrics_server.as_ref().map(|m| m.handle()));
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        // Stop accepting, let in-flight requests finish (up to the shutdown timeout).
        for h in handles {
            h.stop(true).await;
        }
    });
    for addr in addrs {
        println!("listening on http://{addr}");
        tracing::info!("xAPI endpoint: http://{addr}/xapi/");
    }
    let _ = std::io::stdout().flush();
    let served = match metrics_server {
        Some(m) => {
            futures_util::future::join3(server, m, content_server)
                .await
                .0
        }
        None => futures_util::future::join(server, content_server).await.0,
    }
    .map_err(|e| e.to_string());
    // The background tasks stop at once while they read, and finish a write they are in
    // (see each). The stop still waits a bounded time, then goes on without them: each is
    // crash-safe and resumes from the store on the next start, and an operator's stop (or
    // an orchestrator's grace period) must not be outlasted.
    let _ = stop_sequencer.send(true);
    let background = async {
        let _ = sequencer.await;
        let _ = forwarder.await;
        let _ = projector.await;
    };
    if tokio::time::timeout(BACKGROUND_DRAIN, background)
        .await
        .is_err()
    {
        tracing::warn!(
            "background work (audit log, forwarding, completion figures) still busy {} s after the stop: \
             stopping without it; it resumes from the store on the next start",
            BACKGROUND_DRAIN.as_secs()
        );
    }
    store.close().await;
    served?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The listener of `--metrics-listen`: `GET /metrics` only, unauthenticated. Its address
/// is printed before the main `listening on` line (tests read both).
fn metrics_server(
    addr: &str,
    state: web::Data<AppState>,
) -> Result<actix_web::dev::Server, String> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(http::metrics::configure_listener)
    })
    .workers(1)
    .shutdown_timeout(5)
    // Stopped with the main server, by its signal handler.
    .disable_signals()
    .bind(addr)
    .map_err(|e| format!("cannot listen on {addr} (--metrics-listen): {e}"))?;
    for addr in server.addrs() {
        println!("metrics listening on http://{addr}");
    }
    Ok(server.run())
}

/// The content origin (`--content-listen`): the SCORM player, package files and session
/// commits, on an origin of their own. Its address is printed before the main
/// `listening on` line.
fn content_server(
    args: &ServeArgs,
    state: &web::Data<AppState>,
) -> Result<
    (
        actix_web::dev::Server,
        karmayogi_lrs::launcher::ContentSettings,
    ),
    String,
> {
    let addr = match &args.content.content_listen {
        Some(a) => a.clone(),
        None => {
            let main: std::net::SocketAddr = args.listen.parse().map_err(|e| {
                format!(
                    "cannot derive --content-listen from --listen {}: {e} (set --content-listen)",
                    args.listen
                )
            })?;
            let port = if main.port() == 0 {
                0
            } else {
                main.port().saturating_add(1)
            };
            std::net::SocketAddr::new(main.ip(), port).to_string()
        }
    };
    let content_state = web::Data::new(http::player::ContentState {
        store: state.store.clone(),
        clock: state.clock.clone(),
        audit: state.audit.clone(),
        metrics: state.metrics.clone(),
        max_body_bytes: state.limits.max_body_bytes,
        last_versions: std::sync::Arc::new(LastVersions::default()),
    });
    let server = HttpServer::new(move || {
        let routes = content_state.clone();
        App::new()
            .app_data(content_state.clone())
            .configure(move |c| http::player::configure(c, &routes))
    })
    .shutdown_timeout(5)
    .disable_signals()
    .bind(&addr)
    .map_err(|e| format!("cannot listen on {addr} (--content-listen): {e}"))?;
    let bound = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| format!("--content-listen {addr} bound no address"))?;
    println!("content listening on http://{bound}");
    let origin = args
        .content
        .content_origin
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    let settings = karmayogi_lrs::launcher::ContentSettings {
        origin,
        activity_base: args.content.activity_base.clone(),
        limits: karmayogi_lrs::scorm::package::PackageLimits::default(),
        max_upload_bytes: args.content.max_package_bytes,
    };
    Ok((server.run(), settings))
}

/// Where the audit log's signing key lives: `--audit-key`, else beside an embedded
/// store's file, else `./data/audit.key`.
fn audit_key_path(args: &ServeArgs) -> String {
    if let Some(p) = &args.audit_key {
        return p.clone();
    }
    match args.store.store.strip_prefix("sqlite:") {
        Some(path) => format!("{path}.audit-key"),
        None => "./data/audit.key".to_owned(),
    }
}
