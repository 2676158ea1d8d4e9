//! `karmayogi-lrs forwarding create|list|remove`: forwarding rules from the command line,
//! acting as the root's administrator (the same service as `/admin/forwarding`).
use crate::config::StoreArg;
use crate::departments::Department;
use crate::forwarder;
use crate::forwarding::NewRule;
use crate::store;
use clap::Subcommand;
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum ForwardingCommand {
    /// Create a rule and print it with its HMAC secret (shown only now).
    Create {
        #[command(flatten)]
        store: StoreArg,
        /// Where to POST the statements: another LRS's statements resource or any HTTP
        /// collector (http or https).
        #[arg(long)]
        target: String,
        /// The subtree forwarded (`/` is the root).
        #[arg(long, default_value = "/")]
        department: String,
        /// Forward only statements with this verb (repeat for several).
        #[arg(long = "verb")]
        verbs: Vec<String>,
        /// Forward only statements about this activity, as object or context activity
        /// (repeat for several).
        #[arg(long = "activity")]
        activities: Vec<String>,
        /// The `Authorization` header to send, e.g. `Basic …` (stored, never shown).
        #[arg(long, env = "LRS_FORWARDING_AUTHORIZATION", hide_env_values = true)]
        authorization: Option<String>,
        /// `X-Experience-API-Version` to send: 1.0.3 or 2.0.0.
        #[arg(long, default_value = "1.0.3")]
        xapi_version: String,
        /// Statements per request, 1–500.
        #[arg(long, default_value_t = 100)]
        batch_size: i64,
    },
    /// List the rules (id, department, target, cursor, lag, delivered, failures, last error).
    List {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Remove a rule (running LRS processes stop delivering it within seconds).
    Remove {
        #[command(flatten)]
        store: StoreArg,
        id: String,
    },
}

pub async fn run(cmd: ForwardingCommand) -> Result<(), String> {
    let root = Department::root();
    match cmd {
        ForwardingCommand::Create {
            store,
            target,
            department,
            verbs,
            activities,
            authorization,
            xapi_version,
            batch_size,
        } => {
            let store = store::open(&store.store).await?;
            let request = NewRule {
                department: Some(department),
                verbs,
                activities,
                target: Some(target),
                authorization,
                xapi_version: Some(xapi_version),
                batch_size: Some(batch_size),
            };
            let created = forwarder::create(&store, &root, request).await;
            store.close().await;
            let created = created.map_err(|e| e.message)?;
            println!("{:#}", created.to_json());
            Ok(())
        }
        ForwardingCommand::List { store } => {
            let store = store::open(&store.store).await?;
            let listed = async {
                let rules = forwarder::list(&store, &root).await?;
                let size = forwarder::log_size(&store).await?;
                Ok::<_, crate::error::XapiError>((rules, size))
            }
            .await;
            store.close().await;
            let (rules, size) = listed.map_err(|e| e.message)?;
            let mut out = std::io::stdout().lock();
            for r in rules {
                let s = &r.state;
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\tcursor {}\tlag {}\tdelivered {}\tfailures {}\t{}",
                    r.rule.id,
                    r.rule.department,
                    r.rule.target,
                    s.cursor,
                    size.saturating_sub(s.cursor),
                    s.delivered,
                    s.failures,
                    s.last_error.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        ForwardingCommand::Remove { store, id } => {
            let store = store::open(&store.store).await?;
            let removed = forwarder::remove(&store, &root, &id).await;
            store.close().await;
            removed.map_err(|e| e.message)?;
            println!("removed {id}");
            Ok(())
        }
    }
}
