//! The command line: `serve`, `validate`, `messages list|show`, `dlq`, `queue`,
//! `subscription` and `send-sample`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::operate::Operator;
use crate::store::deliveries::{DeadLetterFilter, PauseKind};
use crate::store::{DeliveryRow, Store};

/// Exit code for a configuration error (sysexits `EX_USAGE`).
const EXIT_CONFIG: u8 = 64;

/// as4gate: an AS4 access point and message gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Configuration file. Default: `as4gate.toml` in the current directory if it exists,
    /// otherwise the embedded sample configuration (test PKI, SQLite under ./data).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve,
    /// Check the configuration and P-Modes and report every problem, without starting.
    Validate,
    /// Show stored messages.
    Messages {
        #[command(subcommand)]
        command: MessagesCommand,
    },
    /// Submit a document for sending to the partner its P-Mode names; prints the MessageId.
    /// A running gateway sends it (retrying until a valid receipt arrives).
    Send(SendArgs),
    /// Dead-lettered deliveries: list, show, replay once, discard.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Delivery queues: list, suspend, resume.
    Queue {
        #[command(subcommand)]
        command: PauseCommand,
    },
    /// Subscriptions: list, disable, enable.
    Subscription {
        #[command(subcommand)]
        command: PauseCommand,
    },
    /// Build a signed, encrypted sample message from the test party `blue_gw`, post it to a
    /// running gateway and print the receipt.
    SendSample(crate::sample::SendSampleArgs),
}

#[derive(Debug, Subcommand)]
enum MessagesCommand {
    /// List the newest messages.
    List {
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// List outbound messages that failed (SEND_FAILURE) with their ebMS error code.
    Failed {
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one message: state, parties, service/action, payloads, history and receipt.
    Show {
        /// The ebMS MessageId.
        message_id: String,
    },
}

#[derive(Debug, clap::Args)]
struct SendArgs {
    /// The P-Mode id (this gateway must be its initiator).
    #[arg(long)]
    pmode: String,
    /// A payload file (repeatable; PartInfo order).
    #[arg(long = "payload")]
    payloads: Vec<PathBuf>,
    /// The MIME type of each payload, in the same order (default: from the file extension).
    #[arg(long = "mime-type")]
    mime_types: Vec<String>,
    /// Your id for this submission: submitting it again returns the same MessageId.
    #[arg(long)]
    submission_id: Option<String>,
    /// ConversationId (generated when absent).
    #[arg(long)]
    conversation_id: Option<String>,
    /// `originalSender` message property.
    #[arg(long)]
    original_sender: Option<String>,
    /// `finalRecipient` message property.
    #[arg(long)]
    final_recipient: Option<String>,
    /// `trackingIdentifier` message property.
    #[arg(long)]
    tracking_identifier: Option<String>,
    /// Another message property, `name=value` (repeatable).
    #[arg(long = "property")]
    properties: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// List dead-lettered deliveries, oldest first.
    List {
        /// Only this delivery queue.
        #[arg(long)]
        queue: Option<String>,
        /// Only this subscription.
        #[arg(long)]
        subscription: Option<String>,
        /// Only this reason: retries_exhausted, expired, no_route, permanent_error.
        #[arg(long)]
        reason: Option<String>,
        /// How many to show.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show the deliveries of one message and its history.
    Show {
        /// The ebMS MessageId.
        message_id: String,
    },
    /// Deliver a dead letter again, once (`*` as subscription re-routes a no_route one).
    Replay {
        /// The ebMS MessageId.
        message_id: String,
        /// The subscription it was dead-lettered for.
        subscription: String,
    },
    /// Give up on a dead letter for good (kept as discarded).
    Discard {
        /// The ebMS MessageId.
        message_id: String,
        /// The subscription it was dead-lettered for.
        subscription: String,
    },
}

#[derive(Debug, Subcommand)]
enum PauseCommand {
    /// List them with their state.
    List,
    /// Stop delivering (messages are kept; TTL keeps counting). For a queue: suspend; for a
    /// subscription: disable.
    #[command(alias = "suspend", alias = "disable")]
    Pause {
        /// Queue name or subscription id.
        name: String,
    },
    /// Deliver again, backlog first. For a queue: resume; for a subscription: enable.
    #[command(alias = "resume", alias = "enable")]
    Unpause {
        /// Queue name or subscription id.
        name: String,
    },
}

/// Runs the command line and returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init();
    if let Command::SendSample(args) = &cli.command {
        return report(crate::sample::send_sample(args));
    }
    let config = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return report(Err(e.into())),
    };
    match cli.command {
        Command::Serve => report(runtime.block_on(crate::gateway::run(config))),
        Command::Validate => match crate::gateway::Gateway::load(&config) {
            Ok(_) => {
                println!("configuration and P-Modes are valid");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e:#}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Messages { command } => report(runtime.block_on(messages(&config, command))),
        Command::Dlq { command } => report(runtime.block_on(dlq(&config, command))),
        Command::Send(args) => report(runtime.block_on(send(&config, args))),
        Command::Queue { command } => {
            report(runtime.block_on(pause(&config, PauseKind::Queue, command)))
        }
        Command::Subscription { command } => {
            report(runtime.block_on(pause(&config, PauseKind::Subscription, command)))
        }
        Command::SendSample(_) => unreachable!("handled above"),
    }
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, crate::config::ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None if std::path::Path::new("as4gate.toml").is_file() => {
            Config::load(std::path::Path::new("as4gate.toml"))
        }
        None => Config::embedded(),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn messages(config: &Config, command: MessagesCommand) -> anyhow::Result<()> {
    let store = Store::open(&config.database_path(), config.store.sqlite_synchronous).await?;
    match command {
        MessagesCommand::List { limit } => {
            let rows = store.list(limit).await?;
            println!(
                "{:<25} {:<8} {:<10} {:<12} {:<12} {:<40} MESSAGE ID",
                "RECEIVED", "DIR", "STATE", "FROM", "TO", "SERVICE / ACTION"
            );
            for m in rows {
                println!(
                    "{:<25} {:<8} {:<10} {:<12} {:<12} {:<40} {}",
                    m.received_at,
                    m.direction,
                    m.state,
                    m.from_party,
                    m.to_party,
                    format!("{} / {}", m.service, m.action),
                    m.message_id
                );
            }
        }
        MessagesCommand::Failed { limit } => {
            println!(
                "{:<10} {:>8} {:<12} MESSAGE ID / ERROR",
                "CODE", "ATTEMPTS", "TO"
            );
            for f in store.failed_sends(limit).await? {
                println!(
                    "{:<10} {:>8} {:<12} {}\n{:>32}{}",
                    f.error_code.as_deref().unwrap_or("-"),
                    f.attempts,
                    f.partner,
                    f.message_id,
                    "",
                    f.last_error.as_deref().unwrap_or("")
                );
            }
        }
        MessagesCommand::Show { message_id } => {
            let Some(d) = store.message(&message_id).await? else {
                anyhow::bail!("no message with id {message_id:?}");
            };
            let r = &d.record;
            println!("Message ID:      {}", r.message_id);
            println!("State:           {}", d.state);
            println!("Received at:     {}", r.received_at);
            println!("P-Mode:          {}", r.pmode_id);
            println!("From:            {} ({})", r.from_party, r.from_role);
            println!("To:              {} ({})", r.to_party, r.to_role);
            println!(
                "Service:         {}{}",
                r.service,
                r.service_type
                    .as_deref()
                    .map(|t| format!(" (type {t})"))
                    .unwrap_or_default()
            );
            println!("Action:          {}", r.action);
            println!("Conversation:    {}", r.conversation_id);
            if let Some(a) = &r.agreement {
                println!("Agreement:       {a}");
            }
            println!("MPC:             {}", r.mpc);
            if let Some(x) = &r.ref_to_message_id {
                println!("RefToMessageId:  {x}");
            }
            println!("Sent timestamp:  {}", r.message_timestamp);
            if r.is_test {
                println!("Test message:    yes (receipted, not delivered)");
            }
            if let Some(s) = &r.signer_certificate {
                println!("Signer cert:     sha256:{s}");
            }
            for p in &r.message_properties {
                println!("Property:        {} = {}", p.name, p.value);
            }
            println!("Payloads:");
            for p in &r.payloads {
                println!(
                    "  cid:{}  {} bytes  {}{}{}  blob {}",
                    p.content_id,
                    p.blob.size,
                    p.mime_type.as_deref().unwrap_or("(no MimeType)"),
                    p.character_set
                        .as_deref()
                        .map(|c| format!("; charset={c}"))
                        .unwrap_or_default(),
                    if p.compressed { "  (was gzip)" } else { "" },
                    p.blob.id
                );
            }
            print_deliveries(&store.deliveries_of(&r.message_id).await?);
            println!("History:");
            for h in &d.history {
                println!(
                    "  {}  {}{}",
                    h.at,
                    h.state,
                    h.detail
                        .as_deref()
                        .map(|d| format!("  ({d})"))
                        .unwrap_or_default()
                );
            }
            println!("Receipt:");
            println!("{}", String::from_utf8_lossy(&r.receipt));
        }
    }
    Ok(())
}

/// Who is acting, for the audit log: `cli:<login>`.
fn actor() -> String {
    let login = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{login}")
}

fn print_deliveries(rows: &[DeliveryRow]) {
    if rows.is_empty() {
        return;
    }
    println!("Deliveries:");
    for d in rows {
        println!(
            "  {:<20} queue {:<16} {:<10} attempts {}{}{}{}  updated {}",
            d.subscription,
            d.queue,
            d.state,
            d.attempts,
            d.reason
                .as_deref()
                .map(|r| format!("  reason {r}"))
                .unwrap_or_default(),
            if d.replays > 0 {
                format!("  replayed {}x", d.replays)
            } else {
                String::new()
            },
            d.last_error
                .as_deref()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default(),
            d.updated_at
        );
    }
}

async fn dlq(config: &Config, command: DlqCommand) -> anyhow::Result<()> {
    let operator = Operator::open(config, actor()).await?;
    match command {
        DlqCommand::List {
            queue,
            subscription,
            reason,
            limit,
        } => {
            let rows = operator
                .dead_letters(&DeadLetterFilter {
                    queue,
                    subscription,
                    reason,
                    limit,
                })
                .await?;
            println!(
                "{:<25} {:<18} {:<16} {:<18} {:>8}  MESSAGE ID / LAST ERROR",
                "DEAD-LETTERED", "REASON", "QUEUE", "SUBSCRIPTION", "ATTEMPTS"
            );
            for d in rows {
                println!(
                    "{:<25} {:<18} {:<16} {:<18} {:>8}  {}\n{:>90}{}",
                    d.updated_at,
                    d.reason.as_deref().unwrap_or("-"),
                    d.queue,
                    d.subscription,
                    d.attempts,
                    d.message_id,
                    "",
                    d.last_error.as_deref().unwrap_or("")
                );
            }
        }
        DlqCommand::Show { message_id } => {
            let store = operator.store();
            let Some(m) = store.message(&message_id).await? else {
                anyhow::bail!("no message with id {message_id:?}");
            };
            println!("Message ID:      {}", m.record.message_id);
            println!("State:           {}", m.state);
            println!("Received at:     {}", m.record.received_at);
            println!(
                "From / to:       {} -> {}",
                m.record.from_party, m.record.to_party
            );
            println!(
                "Service/action:  {} / {}",
                m.record.service, m.record.action
            );
            print_deliveries(&store.deliveries_of(&message_id).await?);
            println!("History:");
            for h in &m.history {
                println!(
                    "  {}  {}  {}",
                    h.at,
                    h.state,
                    h.detail.as_deref().unwrap_or("")
                );
            }
        }
        DlqCommand::Replay {
            message_id,
            subscription,
        } => {
            let to = operator.replay(&message_id, &subscription).await?;
            println!("replayed {message_id} for {}", to.join(", "));
        }
        DlqCommand::Discard {
            message_id,
            subscription,
        } => {
            operator.discard(&message_id, &subscription).await?;
            println!("discarded {message_id} for {subscription}");
        }
    }
    Ok(())
}

async fn pause(config: &Config, kind: PauseKind, command: PauseCommand) -> anyhow::Result<()> {
    let operator = Operator::open(config, actor()).await?;
    let (what, paused_word) = match kind {
        PauseKind::Queue => ("queue", "suspended"),
        PauseKind::Subscription => ("subscription", "disabled"),
    };
    let set = |name: &str, paused: bool| {
        let operator = &operator;
        let name = name.to_owned();
        async move {
            match kind {
                PauseKind::Queue => operator.set_queue_suspended(&name, paused).await,
                PauseKind::Subscription => operator.set_subscription_disabled(&name, paused).await,
            }
        }
    };
    match command {
        PauseCommand::List => {
            for (k, name, paused) in operator.overview().await? {
                if k == kind {
                    println!("{name:<24} {}", if paused { paused_word } else { "active" });
                }
            }
        }
        PauseCommand::Pause { name } => {
            set(&name, true).await?;
            println!("{what} {name} {paused_word}");
        }
        PauseCommand::Unpause { name } => {
            let released = set(&name, false).await?;
            println!("{what} {name} active again; {released} held deliveries released");
        }
    }
    Ok(())
}

/// A MIME type for a payload file from its extension.
fn mime_type_of(path: &std::path::Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("xml") => "application/xml",
        Some("json") => "application/json",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("csv") => "text/csv",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    }
}

async fn send(config: &Config, args: SendArgs) -> anyhow::Result<()> {
    use crate::outbound::submit::{PayloadSource, Submission, SubmittedPayload, submit};
    if !args.mime_types.is_empty() && args.mime_types.len() != args.payloads.len() {
        anyhow::bail!(
            "{} --mime-type for {} --payload: give one per payload or none",
            args.mime_types.len(),
            args.payloads.len()
        );
    }
    let mut properties = Vec::new();
    for p in &args.properties {
        let (name, value) = p
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--property {p:?} is not name=value"))?;
        properties.push((name.to_owned(), value.to_owned()));
    }
    let payloads = args
        .payloads
        .iter()
        .enumerate()
        .map(|(i, path)| SubmittedPayload {
            mime_type: args
                .mime_types
                .get(i)
                .cloned()
                .unwrap_or_else(|| mime_type_of(path).to_owned()),
            source: PayloadSource::File(path.clone()),
            character_set: None,
            content_id: None,
        })
        .collect();
    let gateway = crate::gateway::Gateway::load(config)?;
    std::fs::create_dir_all(&config.data_dir)?;
    let store = Store::open(&config.database_path(), config.store.sqlite_synchronous).await?;
    let blobs = crate::store::BlobStore::open(&config.data_dir.join("blobs"))?;
    let submitted = submit(
        &gateway,
        &store,
        &blobs,
        Submission {
            submission_id: args.submission_id,
            pmode_id: args.pmode,
            conversation_id: args.conversation_id,
            original_sender: args.original_sender,
            final_recipient: args.final_recipient,
            tracking_identifier: args.tracking_identifier,
            properties,
            payloads,
        },
    )
    .await?;
    if submitted.duplicate {
        println!("{} (submitted before)", submitted.message_id);
    } else {
        println!("{}", submitted.message_id);
    }
    Ok(())
}
