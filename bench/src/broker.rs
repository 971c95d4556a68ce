//! The RabbitMQ broker of end-to-end runs: finding its Erlang VM (`beam.smp`) in `/proc` to
//! read its CPU time, and removing a run's queues and exchange afterwards.
//!
//! Every run uses its own queue-name prefix, so runs never share work items with each other
//! or with anything else on the broker (tests use their own prefixes). At the end the prefix's
//! topology is deleted through the gateway's own [`as4gate::queue::RabbitQueue`] (the same
//! names the gateway declared: exchange `P`, queues `P.work`, `P.dead`, `P.retry.<d>ms`),
//! and `rabbitmqctl list_queues` confirms that no queue with the prefix is left (any that
//! is, is deleted with `rabbitmqctl delete_queue`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use as4gate::config::SqliteSynchronous;
use as4gate::queue::{QueueBackendKind, QueueConfig, RabbitQueue};

/// The default broker: local RabbitMQ, default vhost, user guest.
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Retry tiers of the run's topology (the sink answers 200, so none is used unless something
/// goes wrong; then a retry comes soon enough to show up within the run).
pub const RETRY_DELAYS: [&str; 2] = ["1s", "10s"];

/// A fresh queue-name prefix for one run.
pub fn unique_prefix() -> String {
    format!("as4load-{}", uuid::Uuid::new_v4().simple())
}

/// The pid of the running RabbitMQ server: the one `beam.smp` process whose command line
/// boots the `rabbit` application (`-s rabbit boot`). `rabbitmqctl` runs its own short-lived
/// `beam.smp`, which does not.
pub fn rabbitmq_pid() -> anyhow::Result<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // Processes come and go while the directory is read: skip what cannot be read.
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        if comm.trim_end() != "beam.smp" {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if boots_rabbit(&cmdline) {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => anyhow::bail!("no running RabbitMQ (beam.smp with `-s rabbit boot`) in /proc"),
        many => anyhow::bail!("several RabbitMQ servers in /proc: {many:?}"),
    }
}

/// Whether a NUL-separated command line contains `-s rabbit boot`.
fn boots_rabbit(cmdline: &[u8]) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    args.windows(3)
        .any(|w| w[0] == b"-s" && w[1] == b"rabbit" && w[2] == b"boot")
}

/// The `[queue]` settings of a run with prefix `prefix` on `url`.
pub fn queue_config(url: &str, prefix: &str) -> anyhow::Result<QueueConfig> {
    Ok(QueueConfig {
        backend: QueueBackendKind::Rabbitmq,
        url: url.to_owned(),
        prefix: prefix.to_owned(),
        retry_delays: RETRY_DELAYS
            .iter()
            .map(|d| as4gate::queue::config::parse_duration(d).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<Duration>>>()?,
        ..QueueConfig::default()
    })
}

/// Deletes the queues and the exchange of `prefix` (run after the gateway has stopped), then
/// checks with `rabbitmqctl` that none of its queues is left. `scratch` is an empty directory
/// for the throw-away database [`RabbitQueue::open`] needs.
pub async fn delete_topology(url: &str, prefix: &str, scratch: &Path) -> anyhow::Result<()> {
    let store = as4gate::store::Store::open(&scratch.join("cleanup.db"), SqliteSynchronous::Normal)
        .await
        .context("scratch database for the broker clean-up")?;
    let queue = RabbitQueue::open(&queue_config(url, prefix)?, &store)
        .await
        .with_context(|| format!("connecting to {url} to delete prefix {prefix}"))?;
    queue
        .delete_topology()
        .await
        .with_context(|| format!("deleting the queues and exchange of prefix {prefix}"))?;
    drop(queue);
    let left = tokio::task::spawn_blocking({
        let prefix = prefix.to_owned();
        move || leftover_queues(&prefix)
    })
    .await??;
    for name in &left {
        rabbitmqctl(&["delete_queue", name])?;
    }
    if !left.is_empty() {
        eprintln!("as4load: deleted leftover queues {left:?} with rabbitmqctl");
    }
    Ok(())
}

/// Queues whose name starts with `prefix.`, as `rabbitmqctl list_queues` lists them.
fn leftover_queues(prefix: &str) -> anyhow::Result<Vec<String>> {
    let listing = rabbitmqctl(&["list_queues", "--quiet", "--no-table-headers", "name"])?;
    let own = format!("{prefix}.");
    Ok(listing
        .lines()
        .map(str::trim)
        .filter(|name| name.starts_with(&own))
        .map(str::to_owned)
        .collect())
}

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .context("running rabbitmqctl")?;
    anyhow::ensure!(
        output.status.success(),
        "rabbitmqctl {} failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_server_boots_rabbit() {
        let server = b"/usr/lib/erlang/erts/bin/beam.smp\0-W\0w\0--\0-noshell\0-s\0rabbit\0boot\0-boot\0start_sasl\0";
        let cli = b"/usr/lib/erlang/erts/bin/beam.smp\0--\0-noshell\0-s\0elixir\0start_cli\0rabbitmqctl\0";
        assert!(boots_rabbit(server));
        assert!(!boots_rabbit(cli));
    }

    #[test]
    fn prefixes_are_valid_and_unique() {
        let a = unique_prefix();
        assert_ne!(a, unique_prefix());
        let config = queue_config(DEFAULT_URL, &a).unwrap();
        assert!(config.problems().is_empty(), "{:?}", config.problems());
    }
}
