//! The command line: `serve`, `validate`, `messages list|show` and `send-sample`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::store::Store;

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
    /// Show one message: state, parties, service/action, payloads, history and receipt.
    Show {
        /// The ebMS MessageId.
        message_id: String,
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
