use actix_web::{web, App, HttpServer};
use clap::Parser;
use karmayogi_lrs::auth::{self, Authenticator, JwtConfig};
use karmayogi_lrs::config::{Cli, Command, CredentialsCommand, ServeArgs};
use karmayogi_lrs::http::middleware::{LastVersions, XapiHeaders};
use karmayogi_lrs::http::{self, AppState, Limits};
use karmayogi_lrs::store;
use std::io::Write;
use std::process::ExitCode;

/// Requests allocate and free many small JSON values on every worker thread; mimalloc's
/// thread-local free lists cost a fraction of the system allocator's (profiled in W2).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn credentials(cmd: CredentialsCommand) -> Result<(), String> {
    match cmd {
        CredentialsCommand::Create {
            store,
            name,
            scopes,
        } => {
            let scopes = auth::parse_scopes(&scopes)?;
            if scopes.is_empty() {
                return Err("at least one scope is needed".into());
            }
            let store = store::open(&store.store).await?;
            // A key starting with `-` would be read as an option by `credentials revoke`
            // and most other command lines; draw again (1 key in 64 starts with one).
            let key = std::iter::repeat_with(|| auth::random_token(15))
                .find(|k| !k.starts_with('-'))
                .unwrap_or_default();
            let secret = auth::random_token(30);
            let record = auth::new_credential(&key, &secret, &name, &scopes)?;
            store
                .put_credential(&record)
                .await
                .map_err(|e| e.to_string())?;
            store.close().await;
            println!(
                "key: {key}\nsecret: {secret}\nscopes: {}",
                record.scopes.join(",")
            );
            Ok(())
        }
        CredentialsCommand::List { store } => {
            let store = store::open(&store.store).await?;
            let list = store.list_credentials().await.map_err(|e| e.to_string())?;
            store.close().await;
            let mut out = std::io::stdout().lock();
            for c in list {
                let created = chrono::DateTime::from_timestamp_micros(c.created_us)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    c.key,
                    c.name,
                    c.scopes.join(","),
                    created,
                    if c.revoked { "revoked" } else { "active" }
                );
            }
            Ok(())
        }
        CredentialsCommand::Revoke { store, key } => {
            let store = store::open(&store.store).await?;
            let found = store
                .revoke_credential(&key)
                .await
                .map_err(|e| e.to_string())?;
            store.close().await;
            if found {
                println!("revoked {key}");
                Ok(())
            } else {
                Err(format!("no credential with key {key}"))
            }
        }
    }
}

fn jwt_config(args: &ServeArgs) -> Result<Option<JwtConfig>, String> {
    let (key, algorithm) = match (&args.jwt_hs256_secret, &args.jwt_rs256_public_key) {
        (Some(_), Some(_)) => {
            return Err(
                "set either LRS_JWT_HS256_SECRET or LRS_JWT_RS256_PUBLIC_KEY, not both".into(),
            )
        }
        (Some(secret), None) => (
            jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
            jsonwebtoken::Algorithm::HS256,
        ),
        (None, Some(path)) => {
            let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            let key = jsonwebtoken::DecodingKey::from_rsa_pem(&pem)
                .map_err(|e| format!("bad RSA key in {path}: {e}"))?;
            (key, jsonwebtoken::Algorithm::RS256)
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(JwtConfig {
        key,
        algorithm,
        issuer: args.jwt_issuer.clone(),
        audience: args.jwt_audience.clone(),
        authority_homepage: args.authority_homepage.clone(),
    }))
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let store = store::open(&args.store.store).await?;
    match (&args.bootstrap_key, &args.bootstrap_secret) {
        (Some(key), Some(secret)) => {
            let record = auth::new_credential(key, secret, "bootstrap", &[auth::Scope::All])?;
            store
                .put_credential(&record)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!("bootstrap credential `{key}` (scope all) is ready");
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
    let state = web::Data::new(AppState {
        auth: Authenticator::new(
            store.clone(),
            args.authority_homepage.clone(),
            jwt_config(&args)?,
        ),
        store: store.clone(),
        clock: Default::default(),
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            page_size: args.page_size.max(1),
            max_page_size: args.max_page_size.max(1),
        },
    });
    let max_body = args.max_body_bytes;
    let last_versions = std::sync::Arc::new(LastVersions::default());
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(XapiHeaders {
                max_body_bytes: max_body,
                last_versions: last_versions.clone(),
            })
            .wrap(actix_web::middleware::Compress::default())
            .configure(http::configure)
    })
    .shutdown_timeout(30);
    if let Some(w) = args.workers {
        server = server.workers(w.max(1));
    }
    let server = server
        .bind(&args.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    for addr in server.addrs() {
        println!("listening on http://{addr}");
        tracing::info!("xAPI endpoint: http://{addr}/xapi/");
    }
    let _ = std::io::stdout().flush();
    // actix stops accepting on SIGTERM/SIGINT and lets in-flight requests finish.
    server.run().await.map_err(|e| e.to_string())?;
    store.close().await;
    tracing::info!("stopped cleanly");
    Ok(())
}
