//! The `as4gate` binary: a thin wrapper around [`as4gate::cli::run`].

fn main() -> std::process::ExitCode {
    as4gate::cli::run()
}
